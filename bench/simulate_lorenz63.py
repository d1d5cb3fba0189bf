"""Simulating Lorenz-63: diffdyn `simulate` against SciPy `solve_ivp`, and vmap over y0.

Two comparisons, run side by side in this one process, both in float64:

- `simulate_lorenz63`: 10^5 saved steps (dt = 0.01, ≈ 1000 time units) at rtol = atol = 1e-8,
  diffdyn's public `simulate` against `solve_ivp(method="RK45")` on a NumPy vector field.
  Target: SciPy / diffdyn ≥ 10.
- `simulate_lorenz63_vmap`: 1024 initial conditions near the attractor through
  `jax.jit(jax.vmap(...))` of `simulate(...).values`, against one initial condition, 10^4
  saved steps each. Target: time(1024) ≤ 20 × time(1).

Run `python bench/simulate_lorenz63.py` (writes `bench/results/*.json`) or add `--quick` for
a smoke test at small sizes that writes nothing unless `--out DIR` is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

from diffdyn.systems import Lorenz63, simulate

sys.path.insert(0, str(Path(__file__).parent))
from _harness import comparison, measure, print_table, write_result  # noqa: E402

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
DT = 0.01
TOL = 1e-8
AGREEMENT_SPAN = 10.0  # time units over which both trajectories must agree
AGREEMENT_MAX = 1e-3  # chaos amplifies 1e-8 local errors by ~e^(0.9·10) ≈ 8000 over that span
BATCH_SEED = 0

FULL = {"steps": 100_000, "vmap_steps": 10_000, "batch": 1024, "repeats": 10, "scipy_repeats": 3}
QUICK = {"steps": 5_000, "vmap_steps": 1_000, "batch": 64, "repeats": 2, "scipy_repeats": 1}


def lorenz63_numpy(t: float, u: np.ndarray) -> np.ndarray:
    """The vector field a SciPy user writes: plain NumPy, one state at a time."""
    x, y, z = u
    return np.array([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z])


def diffrax_solve(y0, steps: int, saveat: diffrax.SaveAt, *, batched: bool = False):
    """Diffrax called directly with `simulate`'s settings, for the diagnostics only.

    `batched=True` solves a [B, 3] batch as one ODE with one step size shared by the batch
    (the error norm is the RMS over the batch), instead of one step size per trajectory.
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
        stepsize_controller=diffrax.PIDController(rtol=TOL, atol=TOL),
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
    y0s = jnp.asarray(attractor[rng.choice(len(attractor), batch, replace=False)])

    def trajectory(y0):
        return simulate(
            system, steps=steps, dt=DT, transient=0.0, rtol=TOL, atol=TOL, y0=y0
        ).values

    one = jax.jit(trajectory)
    many = jax.jit(jax.vmap(trajectory))
    one_time = measure(lambda: one(y0s[0]), repeats=size["repeats"])
    many_time = measure(lambda: many(y0s), repeats=max(size["repeats"] // 3, 1))
    scaling = many_time["steady_median_s"] / one_time["steady_median_s"]

    # Diagnostics: steps per trajectory under vmap, the cost of saving, and the same batch
    # solved as one [batch, 3] ODE with a shared step size instead of vmap.
    vmapped_steps = jax.jit(jax.vmap(lambda y: diffrax_solve(y, steps, save_ts).stats))(y0s)
    one_steps = jax.jit(lambda y: diffrax_solve(y, steps, save_ts).stats)(y0s[0])
    no_saving = jax.jit(jax.vmap(lambda y: diffrax_solve(y, steps, save_end).ys))
    no_saving_time = measure(lambda: no_saving(y0s), repeats=1)
    shared = jax.jit(lambda y: diffrax_solve(y, steps, save_ts, batched=True))
    shared_time = measure(lambda: shared(y0s).ys, repeats=max(size["repeats"] // 3, 1))
    shared_sol = shared(y0s)

    return comparison(
        compares=(
            f"diffdyn jax.jit(jax.vmap(simulate(...).values)) over {batch} initial conditions "
            f"vs the same jitted function on one, Lorenz-63, {steps} saved steps every "
            f"dt={DT} (t1={(steps - 1) * DT:.2f}), rtol=atol={TOL:g}, float64; "
            f"the peer is {batch} one-at-a-time solves ({batch} × the measured time of one)"
        ),
        diffdyn=many_time,
        peer=one_time,
        peer_multiplier=batch,
        peer_name=f"{batch} × one initial condition",
        ratio_at_least=batch / 20,
        target=f"time({batch}) ≤ 20 × time(1), i.e. ratio ≥ {batch}/20",
        time_batch_over_time_one=scaling,
        settings={
            "batch": batch,
            "steps": steps,
            "dt": DT,
            "rtol": TOL,
            "atol": TOL,
            "dtype": "float64 (jax_enable_x64 turned on at the start of the script)",
            "why_fewer_steps": f"{batch} × 10^5 × 3 float64 values (2.5 GB) would not fit "
            "comfortably in memory, so both sides save 10^4 steps (t = 100)",
            "initial_conditions": f"{batch} points drawn without replacement (numpy seed "
            f"{BATCH_SEED}) from a 20000-step Lorenz-63 trajectory after simulate's default "
            "transient of 20 time units",
        },
        diagnostics={
            "solver_steps_one": int(one_steps["num_steps"]),
            "solver_steps_vmapped_mean": float(vmapped_steps["num_steps"].mean()),
            "solver_steps_vmapped_max": int(vmapped_steps["num_steps"].max()),
            "vmapped_no_saving_median_s": no_saving_time["steady_median_s"],
            "shared_step_batch_median_s": shared_time["steady_median_s"],
            "shared_step_batch_compile_s": shared_time["compile_s"],
            "shared_step_batch_steps": int(shared_sol.stats["num_steps"]),
            "shared_step_batch_over_time_one": shared_time["steady_median_s"]
            / one_time["steady_median_s"],
            "note": "Diffrax called directly with simulate's settings: 'vmapped_no_saving' "
            "saves only the end point of each trajectory; 'shared_step_batch' solves the batch "
            "as one [batch, 3] ODE whose step size is shared (RMS error over the batch), "
            "which vmap does not do",
        },
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the JSON (default bench/results; "
        "with --quick nothing is written unless --out is given)",
    )
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    # Both sides in float64: before any array is made, so the system's parameters are too.
    jax.config.update("jax_enable_x64", True)
    main()
