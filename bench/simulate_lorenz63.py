"""Simulating Lorenz-63: diffdyn `simulate` against SciPy `solve_ivp`, and vmap over y0.

Two comparisons, run side by side in this one process, both in float64:

- `simulate_lorenz63`: 10^5 saved steps (dt = 0.01, ≈ 1000 time units) at rtol = atol = 1e-8,
  diffdyn's public `simulate` against `solve_ivp(method="RK45")` on a NumPy vector field.
  Target: SciPy / diffdyn ≥ 10.
- `simulate_lorenz63_vmap`: 1024 initial conditions near the attractor, 10^4 saved steps
  each, against one initial condition, along two paths: `jax.jit(jax.vmap(...))` of
  `simulate(...).values`, and `simulate(system, y0=y0s, ...)` on the [1024, 3] batch (one ODE
  with a shared step). Target: time(1024) ≤ 20 × time(1), judged on the faster path; both
  paths are recorded, with a check that the batch matches one-at-a-time solves, and float32
  figures at rtol = atol = 1e-6 (diffdyn's default precision) as extra information.

Run `python bench/simulate_lorenz63.py` (writes `bench/results/*.json`) or add `--quick` for
a smoke test at small sizes that writes nothing unless `--out DIR` is given.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

from diffdyn.systems import Lorenz63, simulate

# The diagnostics use simulate's own batch error norm, not a copy that could drift.
from diffdyn.systems.simulate import _batch_norm

sys.path.insert(0, str(Path(__file__).parent))
from _harness import comparison, measure, parse_arguments, print_table, write_result  # noqa: E402

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
DT = 0.01
TOL = 1e-8
AGREEMENT_SPAN = 10.0  # time units over which both trajectories must agree
AGREEMENT_MAX = 1e-3  # chaos amplifies 1e-8 local errors by ~e^(0.9·10) ≈ 8000 over that span
AGREEMENT_SPAN_BATCH = 5.0  # time units over which the batch must match one-at-a-time solves
# A 1e-8 solve is itself up to ~1e-3 off a 1e-12 reference over 5 time units when it passes
# near the origin's saddle (measured: 1.3e-3 for 1 member in 1024; the median is ~1e-5).
AGREEMENT_BATCH_MAX = 1e-2
REFERENCE_TOL = 1e-12  # reference solutions for the agreement check
TOL32 = 1e-6  # float32 extra: diffdyn's default precision, at a tolerance float32 can meet
BATCH_SEED = 0

FULL = {"steps": 100_000, "vmap_steps": 10_000, "batch": 1024, "repeats": 10, "scipy_repeats": 3}
QUICK = {"steps": 5_000, "vmap_steps": 1_000, "batch": 64, "repeats": 2, "scipy_repeats": 1}


def lorenz63_numpy(t: float, u: np.ndarray) -> np.ndarray:
    """The vector field a SciPy user writes: plain NumPy, one state at a time."""
    x, y, z = u
    return np.array([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z])


def diffrax_solve(y0, steps: int, saveat: diffrax.SaveAt, *, batched: bool = False, norm=None):
    """Diffrax called directly with `simulate`'s settings, for the diagnostics only.

    `batched=True` solves a [B, 3] batch as one ODE with one step size shared by the batch
    (with `norm=_batch_norm`, as `simulate` does for a batch), instead of one per trajectory.
    """
    system = Lorenz63()

    def field(t, y, args):
        return (
            jax.vmap(lambda u: system.vector_field(t, u))(y)
            if batched
            else (system.vector_field(t, y))
        )

    ts = DT * jnp.arange(steps, dtype=jnp.float64)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        diffrax.Tsit5(),
        t0=0.0,
        t1=ts[-1],
        dt0=None,
        y0=y0,
        saveat=saveat(ts),
        stepsize_controller=diffrax.PIDController(
            rtol=TOL, atol=TOL, **({} if norm is None else {"norm": norm})
        ),
        max_steps=4096 + 256 * steps,
        throw=False,
    )
    return sol


def save_ts(ts):
    return diffrax.SaveAt(ts=ts)


def save_end(ts):
    return diffrax.SaveAt(t1=True)


def bench_scipy(size: dict[str, int]) -> dict[str, Any]:
    steps = size["steps"]
    system = Lorenz63()
    y0 = np.asarray(system.initial_state())
    times = DT * np.arange(steps)

    def run_diffdyn():
        return simulate(system, steps=steps, dt=DT, transient=0.0, rtol=TOL, atol=TOL).values

    def run_scipy():
        return solve_ivp(
            lorenz63_numpy, (0.0, times[-1]), y0, method="RK45", rtol=TOL, atol=TOL, t_eval=times
        )

    diffdyn = measure(run_diffdyn, repeats=size["repeats"])
    peer = measure(run_scipy, repeats=size["scipy_repeats"], warmup=0)

    ours = np.asarray(run_diffdyn())
    theirs_sol = run_scipy()
    if not theirs_sol.success:
        raise RuntimeError(f"solve_ivp failed: {theirs_sol.message}")
    theirs = theirs_sol.y.T
    span = int(round(AGREEMENT_SPAN / DT)) + 1
    difference = np.abs(ours - theirs).max(axis=-1)
    max_diff = float(difference[:span].max())
    apart = np.flatnonzero(difference > 1.0)

    # Diagnostics: where diffdyn's time goes (solver work, saving, host-side code), and how
    # the float32 path compares (at 1e-8 float32 is below its resolution, so 1e-6 is added
    # with float64 beside it for a like-for-like dtype comparison).
    y0_jax = system.initial_state()
    jitted = jax.jit(
        lambda y: (
            simulate(system, steps=steps, dt=DT, transient=0.0, rtol=TOL, atol=TOL, y0=y).values
        )
    )
    jitted_time = measure(lambda: jitted(y0_jax), repeats=size["repeats"])
    stats = jax.jit(lambda y: diffrax_solve(y, steps, save_ts).stats)(y0_jax)
    no_saving = jax.jit(lambda y: diffrax_solve(y, steps, save_end).ys)
    no_saving_time = measure(lambda: no_saving(y0_jax), repeats=size["repeats"])
    dtypes = {}
    for label, x64, tol in (
        ("float32_tol1e-8", False, TOL),
        ("float32_tol1e-6", False, 1e-6),
        ("float64_tol1e-6", True, 1e-6),
    ):
        with jax.enable_x64(x64):
            sys_dtype = Lorenz63()
            timing = measure(
                lambda s=sys_dtype, tol=tol: (
                    simulate(s, steps=steps, dt=DT, transient=0.0, rtol=tol, atol=tol).values
                ),
                repeats=size["repeats"],
            )
        dtypes[label] = {
            "median_s": timing["steady_median_s"],
            "compile_s": timing["compile_s"],
        }

    return comparison(
        compares=(
            f"Lorenz-63 (σ=10, ρ=28, β=8/3) from y0=(1,1,1), {steps} saved steps every "
            f"dt={DT} (t1={times[-1]:.2f}), rtol=atol={TOL:g}, float64 on both sides: "
            "diffdyn simulate(Lorenz63(), ...) with its default Tsit5 + PID controller (the "
            "public call, host-side checks and metadata included, waiting for .values) vs "
            "scipy.integrate.solve_ivp(method='RK45', t_eval=the same times) on a NumPy "
            "vector field"
        ),
        diffdyn=diffdyn,
        peer=peer,
        peer_name="scipy.integrate.solve_ivp RK45",
        ratio_at_least=10.0,
        target="SciPy / diffdyn ≥ 10 (a jitted Diffrax solve measures about 20× here)",
        settings={
            "steps": steps,
            "dt": DT,
            "t1": float(times[-1]),
            "rtol": TOL,
            "atol": TOL,
            "dtype": "float64 (jax_enable_x64 turned on at the start of the script)",
            "y0": y0.tolist(),
            "repeats": {
                "diffdyn": size["repeats"],
                "scipy": size["scipy_repeats"],
                "why_fewer_for_scipy": "one SciPy solve takes seconds; it does not compile, "
                "so it has no warm-up call",
            },
        },
        agreement={
            "span_time_units": AGREEMENT_SPAN,
            "max_abs_difference": max_diff,
            "threshold": AGREEMENT_MAX,
            "agree": bool(max_diff <= AGREEMENT_MAX),
            "first_time_apart_by_more_than_1": float(times[apart[0]]) if apart.size else None,
            "note": "chaos separates any two 1e-8 solutions after some tens of time units; "
            "the agreement over the first span is what shows both solve the same problem",
        },
        diagnostics={
            "diffdyn_solver_steps": {
                k: int(stats[k]) for k in ("num_steps", "num_accepted_steps", "num_rejected_steps")
            },
            "scipy_rhs_evaluations": int(theirs_sol.nfev),
            "scipy_steps_estimate": (int(theirs_sol.nfev) - 2) // 6,
            "diffdyn_jit_wrapped_median_s": jitted_time["steady_median_s"],
            "diffdyn_host_overhead_s": diffdyn["steady_median_s"] - jitted_time["steady_median_s"],
            "diffrax_no_saving_median_s": no_saving_time["steady_median_s"],
            "diffrax_no_saving_note": "Diffrax with simulate's settings saving only the end "
            "point: the difference to the jitted simulate is the cost of interpolating the "
            f"{steps} saved points",
            "dtypes": dtypes,
        },
    )


def bench_vmap(size: dict[str, int]) -> dict[str, Any]:
    steps, batch = size["vmap_steps"], size["batch"]
    system = Lorenz63()
    attractor = np.asarray(simulate(system, steps=20_000, rtol=TOL, atol=TOL).values)
    rng = np.random.default_rng(BATCH_SEED)
    y0s_np = attractor[rng.choice(len(attractor), batch, replace=False)]
    y0s = jnp.asarray(y0s_np)

    def trajectory(y0):
        return simulate(
            system, steps=steps, dt=DT, transient=0.0, rtol=TOL, atol=TOL, y0=y0
        ).values

    def batched(y0s, tol=TOL, s=system):
        # The public call with a [batch, 3] y0: one ODE, shared step, max-of-RMS error norm.
        return simulate(s, y0=y0s, steps=steps, dt=DT, transient=0.0, rtol=tol, atol=tol).values

    # (a) one initial state, (b) jax.vmap over simulate, (c) simulate on the [batch, 3] y0.
    one = jax.jit(trajectory)
    many = jax.jit(jax.vmap(trajectory))
    few = max(size["repeats"] // 3, 1)
    one_time = measure(lambda: one(y0s[0]), repeats=size["repeats"])
    vmap_time = measure(lambda: many(y0s), repeats=few)
    batched_time = measure(lambda: batched(y0s), repeats=size["repeats"])

    def path(timing: dict[str, Any], name: str) -> dict[str, Any]:
        over_one = timing["steady_median_s"] / one_time["steady_median_s"]
        return {
            "call": name,
            "median_s": timing["steady_median_s"],
            "compile_s": timing["compile_s"],
            "time_batch_over_time_one": over_one,
            "ratio": batch / over_one,
            "target_met": bool(over_one <= 20.0),
            "timings": timing,
        }

    paths = {
        "vmap": path(vmap_time, "jax.jit(jax.vmap(lambda y0: simulate(..., y0=y0).values))(y0s)"),
        "batched": path(batched_time, "simulate(system, y0=y0s, ...).values (not jitted)"),
    }
    best = min(paths, key=lambda k: paths[k]["median_s"])

    # Correctness: the batched solve against one-at-a-time solves of every member, over the
    # first AGREEMENT_SPAN_BATCH time units.
    span = int(round(AGREEMENT_SPAN_BATCH / DT)) + 1
    ours = np.asarray(batched(y0s))[:, :span]
    theirs = np.stack([np.asarray(one(y0))[:span] for y0 in y0s])
    vmapped = np.asarray(many(y0s))[:, :span]
    reference = np.asarray(
        jax.jit(
            jax.vmap(
                lambda y: (
                    simulate(
                        system,
                        steps=span,
                        dt=DT,
                        transient=0.0,
                        rtol=REFERENCE_TOL,
                        atol=REFERENCE_TOL,
                        y0=y,
                    ).values
                )
            )
        )(y0s)
    )
    difference = np.abs(ours - theirs).max(axis=(1, 2))
    max_diff = float(difference.max())
    error_batched = np.abs(ours - reference).max(axis=(1, 2))
    error_one = np.abs(theirs - reference).max(axis=(1, 2))
    as_accurate = bool(error_batched.max() <= 2 * error_one.max())

    # Diagnostics: solver steps (Diffrax called directly with simulate's settings; saving on
    # a grid is by interpolation, so it does not change the steps) and time per step.
    one_steps = jax.jit(lambda y: diffrax_solve(y, steps, save_end).stats)(y0s[0])
    vmapped_steps = jax.jit(jax.vmap(lambda y: diffrax_solve(y, steps, save_end).stats))(y0s)
    batch_steps = jax.jit(
        lambda y: diffrax_solve(y, steps, save_end, batched=True, norm=_batch_norm).stats
    )(y0s)
    vmap_no_saving = jax.jit(jax.vmap(lambda y: diffrax_solve(y, steps, save_end).ys))
    vmap_no_saving_time = measure(lambda: vmap_no_saving(y0s), repeats=1)
    batch_no_saving = jax.jit(
        lambda y: diffrax_solve(y, steps, save_end, batched=True, norm=_batch_norm).ys
    )
    batch_no_saving_time = measure(lambda: batch_no_saving(y0s), repeats=few)
    n_one, n_batch = int(one_steps["num_steps"]), int(batch_steps["num_steps"])

    # Extra: diffdyn's default precision, float32, at rtol = atol = 1e-6, for (a) and (c).
    with jax.enable_x64(False):
        system32 = Lorenz63()
        y0s32 = jnp.asarray(y0s_np, dtype=jnp.float32)

        def trajectory32(y0):
            return simulate(
                system32, steps=steps, dt=DT, transient=0.0, rtol=TOL32, atol=TOL32, y0=y0
            ).values

        one32 = jax.jit(trajectory32)
        one32_time = measure(lambda: one32(y0s32[0]), repeats=size["repeats"])
        batched32_time = measure(lambda: batched(y0s32, TOL32, system32), repeats=size["repeats"])
        dtype32 = str(batched(y0s32, TOL32, system32).dtype)
    over_one32 = batched32_time["steady_median_s"] / one32_time["steady_median_s"]

    return comparison(
        compares=(
            f"Lorenz-63, {batch} initial conditions, {steps} saved steps every dt={DT} "
            f"(t1={(steps - 1) * DT:.2f}), rtol=atol={TOL:g}, float64: diffdyn's best path "
            f"for a batch ('{best}'; both are in 'paths': jax.vmap over simulate, and "
            "simulate on a [batch, 3] y0) vs the same problem as "
            f"{batch} one-at-a-time solves ({batch} × the measured time of one jitted "
            "simulate(..., y0=y0).values)"
        ),
        diffdyn=paths[best]["timings"],
        peer=one_time,
        peer_multiplier=batch,
        peer_name=f"{batch} × one initial condition",
        ratio_at_least=batch / 20,
        target=f"time({batch}) ≤ 20 × time(1), i.e. ratio ≥ {batch}/20, judged on the best "
        "diffdyn path",
        best_path=best,
        time_batch_over_time_one=paths[best]["time_batch_over_time_one"],
        paths=paths,
        settings={
            "batch": batch,
            "steps": steps,
            "dt": DT,
            "rtol": TOL,
            "atol": TOL,
            "dtype": "float64 (jax_enable_x64 turned on at the start of the script)",
            "why_fewer_steps": f"{batch} × 10^5 × 3 float64 values (2.5 GB) would not fit "
            "comfortably in memory, so every path saves 10^4 steps (t = 100)",
            "initial_conditions": f"{batch} points drawn without replacement (numpy seed "
            f"{BATCH_SEED}) from a 20000-step Lorenz-63 trajectory after simulate's default "
            "transient of 20 time units",
            "repeats": {"one": size["repeats"], "vmap": few, "batched": size["repeats"]},
        },
        agreement={
            "compares": "simulate on the [batch, 3] y0 against each member solved on its "
            "own (the jitted one-initial-condition function, called once per member)",
            "span_time_units": AGREEMENT_SPAN_BATCH,
            "max_abs_difference": max_diff,
            "median_over_members_of_max_abs_difference": float(np.median(difference)),
            "max_abs_difference_vmap_vs_one_at_a_time": float(np.abs(vmapped - theirs).max()),
            "threshold": AGREEMENT_BATCH_MAX,
            "reference": f"each member solved on its own at rtol=atol={REFERENCE_TOL:g}",
            "max_abs_error_vs_reference": {
                "batched": float(error_batched.max()),
                "one_at_a_time": float(error_one.max()),
            },
            "median_over_members_of_max_abs_error_vs_reference": {
                "batched": float(np.median(error_batched)),
                "one_at_a_time": float(np.median(error_one)),
            },
            "batched_as_accurate": as_accurate,
            "agree": bool(max_diff <= AGREEMENT_BATCH_MAX and as_accurate),
            "agree_means": "max_abs_difference ≤ threshold, and the batch's worst error "
            "against the reference is at most 2 × the worst error of the one-at-a-time solves",
            "note": "both sides meet rtol=atol=1e-8 per step but take different steps (the "
            "batch takes its hardest member's), so they differ by their global errors, which "
            "chaos grows: members passing near the origin's saddle are ~1e-3 off the "
            "reference after 5 time units on either side, the typical member ~1e-5",
        },
        diagnostics={
            "solver_steps_one": n_one,
            "solver_steps_vmapped_mean": float(vmapped_steps["num_steps"].mean()),
            "solver_steps_vmapped_max": int(vmapped_steps["num_steps"].max()),
            "solver_steps_batched": n_batch,
            "seconds_per_step_one": one_time["steady_median_s"] / n_one,
            "seconds_per_step_batched": batched_time["steady_median_s"] / n_batch,
            "vmapped_no_saving_median_s": vmap_no_saving_time["steady_median_s"],
            "batched_no_saving_median_s": batch_no_saving_time["steady_median_s"],
            "seconds_per_step_batched_no_saving": batch_no_saving_time["steady_median_s"]
            / n_batch,
            "note": "Diffrax called directly with simulate's settings for the step counts and "
            "the 'no_saving' times (end point only): the batch takes the steps of its hardest "
            "member, and one step of the batch evaluates the vector field for all members",
            "float32_tol1e-6": {
                "how": "same process, inside `with jax.enable_x64(False):` (a fresh "
                "Lorenz63() and float32 y0s made inside it, so nothing is float64)",
                "rtol": TOL32,
                "atol": TOL32,
                "values_dtype": dtype32,
                "one_median_s": one32_time["steady_median_s"],
                "one_compile_s": one32_time["compile_s"],
                "batched_median_s": batched32_time["steady_median_s"],
                "batched_compile_s": batched32_time["compile_s"],
                "time_batch_over_time_one": over_one32,
                "ratio": batch / over_one32,
                "target_met": bool(over_one32 <= 20.0),
            },
        },
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    size = QUICK if args.quick else FULL

    records = {
        "simulate_lorenz63": bench_scipy(size),
        "simulate_lorenz63_vmap": bench_vmap(size),
    }
    for name, record in records.items():
        record["quick"] = args.quick
        if args.out is not None or not args.quick:
            path = write_result(name, record, args.out)
            print(f"wrote {path}")
    print_table("Lorenz-63 simulation (float64)" + (" — quick" if args.quick else ""), records)
    vmap = records["simulate_lorenz63_vmap"]
    for name, p in vmap["paths"].items():
        print(
            f"{name}: {p['median_s']:.4g} s, time(batch) = {p['time_batch_over_time_one']:.3g} × "
            f"time(1), ratio {p['ratio']:.3g}×, target met: {p['target_met']}"
        )
    f32 = vmap["diagnostics"]["float32_tol1e-6"]
    print(
        f"float32 at 1e-6: one {f32['one_median_s']:.4g} s, "
        f"batched {f32['batched_median_s']:.4g} s "
        f"= {f32['time_batch_over_time_one']:.3g} × time(1)"
    )
    print(
        f"batch vs one-at-a-time over 5 time units: {vmap['agreement']['max_abs_difference']:.3g}"
    )


if __name__ == "__main__":
    # Both sides in float64: before any array is made, so the system's parameters are too.
    jax.config.update("jax_enable_x64", True)
    main()
