"""Lorenz-63 identification: diffdyn `identify` against SciPy `least_squares` over `solve_ivp`.

One comparison, side by side in this one process, on the same problem:

- Data: Lorenz-63 (σ=10, ρ=28, β=8/3) after `simulate`'s default transient, dt = 0.01 over
  10 time units (1001 samples), x, y, z observed with 5 % Gaussian noise (key 0): the
  `all_observed` case of `experiments/identify_lorenz.py`.
- Start: (σ, ρ, β) = (13, 19.6, 3.467) (30 % off); each segment's initial state from the data.
- The same objective on both sides: multiple shooting with 20 segments of 0.5 time units, the
  residuals standardised by each variable's standard deviation (divided by √N) and the
  continuity gaps (weight 1, divided by √N_c) — `diffdyn.identify.shooting`'s definition,
  written out in NumPy for SciPy. Unknowns: 3 parameters + 20 × 3 initial states.
- diffdyn: `identify(..., segments=20)` with its defaults, as the experiment runs it (200
  Adam steps through the training core, then Levenberg–Marquardt with the structured
  forward-mode Jacobian; standard errors included), float32, Tsit5 at rtol = 1e-6,
  atol = 1e-8.
- SciPy: what a scientist writes today — `least_squares(residuals, x0)` (trust-region
  reflective, its default `jac="2-point"` finite differences, default tolerances) over
  `solve_ivp(method="RK45", rtol=1e-6, atol=1e-8, t_eval=...)` per segment with a NumPy vector
  field, float64.

"Time to the same accuracy": diffdyn's whole `identify` call (it ends within 1 % of every
parameter) against the time at which SciPy's iterate is first within 1 % of every parameter
(`least_squares`' callback) — the peer is credited with stopping there, though it runs on
to its tolerances (its full time is recorded too). **Target: ratio = SciPy / diffdyn ≥ 20**,
on diffdyn's steady-state time (compiled); its first call (compiling) is recorded beside it,
and so is SciPy told the Jacobian's sparsity (`jac_sparsity`), a faster peer few write.

Run `python bench/identify_lorenz.py` (writes `bench/results/identify_lorenz.json`, several
minutes) or `--quick` for a smoke test at small sizes (2 time units, 4 segments) that writes
nothing unless `--out DIR` is given.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix

from diffdyn.identify import identify
from diffdyn.identify.shooting import segment_layout
from diffdyn.systems import Lorenz63, simulate

sys.path.insert(0, str(Path(__file__).parent))
from _harness import comparison, measure, parse_arguments, print_table, write_result  # noqa: E402

TRUTH = np.asarray([10.0, 28.0, 8.0 / 3.0])
START = np.asarray([13.0, 19.6, 8.0 / 3.0 * 1.3])
NAMES = ("sigma", "rho", "beta")
NOISE, DT, RTOL, ATOL, WITHIN = 0.05, 0.01, 1e-6, 1e-8, 0.01
FULL = {"duration": 10.0, "segments": 20, "repeats": 5, "scipy_repeats": 2}
QUICK = {"duration": 2.0, "segments": 4, "repeats": 1, "scipy_repeats": 1}


def lorenz63_numpy(t: float, u: np.ndarray, sigma: float, rho: float, beta: float):
    """The vector field a SciPy user writes: plain NumPy, one state at a time."""
    x, y, z = u
    return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])


class ScipyShooting:
    """Multiple shooting for `least_squares`: the residual vector of diffdyn's objective over
    `solve_ivp`, unknowns `[σ, ρ, β, u_0 (3), ..., u_{K−1} (3)]` in their own units."""

    def __init__(self, values: np.ndarray, times: np.ndarray, segments: int):
        self.values, self.times, self.segments = values, times, segments
        self.layout = segment_layout(len(times), segments)
        self.scale = values.std(axis=0)
        self.n_data = int(self.layout.mask.sum()) * values.shape[1]
        self.n_continuity = (segments - 1) * values.shape[1]
        self.evaluations = 0

    def start(self) -> np.ndarray:
        return np.concatenate([START, self.values[self.layout.starts].reshape(-1)])

    def __call__(self, p: np.ndarray) -> np.ndarray:
        self.evaluations += 1
        theta, states = p[:3], p[3:].reshape(self.segments, 3)
        data, gaps = [], []
        length, last = self.layout.length, len(self.times) - 1
        for k in range(self.segments):
            begin, end = k * length, min((k + 1) * length, last)
            t_eval = self.times[begin : end + 1]
            solution = solve_ivp(lorenz63_numpy, (t_eval[0], t_eval[-1]), states[k],
                                 method="RK45", t_eval=t_eval, args=tuple(theta), rtol=RTOL,
                                 atol=ATOL)  # fmt: skip
            ys = solution.y.T
            if not solution.success or ys.shape[0] != t_eval.size:
                ys = np.full((t_eval.size, 3), 1e3)  # a failed solve: a large residual
            stop = ys.shape[0] if k == self.segments - 1 else ys.shape[0] - 1
            data.append(((ys[:stop] - self.values[begin : begin + stop]) / self.scale).ravel())
            if k < self.segments - 1:
                gaps.append((ys[-1] - states[k + 1]) / self.scale)
        out = [np.concatenate(data) / math.sqrt(self.n_data)]
        if gaps:
            out.append(np.concatenate(gaps) * math.sqrt(1.0 / self.n_continuity))
        return np.concatenate(out)

    def sparsity(self) -> lil_matrix:
        """Which residual depends on which unknown: the parameters everywhere, segment k's
        state in its data and its gap, segment k + 1's state in gap k."""
        m = self.n_data + self.n_continuity
        pattern = lil_matrix((m, 3 + 3 * self.segments), dtype=int)
        pattern[:, :3] = 1
        row, length, last = 0, self.layout.length, len(self.times) - 1
        for k in range(self.segments):
            end = min((k + 1) * length, last)
            count = (end - k * length + (1 if k == self.segments - 1 else 0)) * 3
            pattern[row : row + count, 3 + 3 * k : 6 + 3 * k] = 1
            row += count
        for k in range(self.segments - 1):
            pattern[row + 3 * k : row + 3 * k + 3, 3 + 3 * k : 9 + 3 * k] = 1
        return pattern


def run_scipy(problem: ScipyShooting, **options: Any) -> dict[str, Any]:
    """One `least_squares` solve, timed, with the time its iterate was first within 1 %."""
    problem.evaluations = 0
    started = time.perf_counter()
    reached: list[float] = []

    def callback(intermediate_result):
        error = np.max(np.abs(intermediate_result.x[:3] - TRUTH) / TRUTH)
        if not reached and error <= WITHIN:
            reached.append(time.perf_counter() - started)

    solution = least_squares(problem, problem.start(), callback=callback, **options)
    seconds = time.perf_counter() - started
    fitted = solution.x[:3]
    return {
        "seconds": seconds,
        "seconds_to_within_1_percent": reached[0] if reached else None,
        "fitted": dict(zip(NAMES, fitted.tolist(), strict=True)),
        "max_relative_error": float(np.max(np.abs(fitted - TRUTH) / TRUTH)),
        "loss": float(solution.cost * 2),
        "residual_evaluations": problem.evaluations,
        "jacobian_evaluations": int(solution.njev),
        "status": solution.message,
    }


def as_timing(samples: list[float]) -> dict[str, Any]:
    """A `measure`-shaped record of samples that need no warm-up (SciPy compiles nothing)."""
    return {
        "first_call_s": samples[0],
        "steady_median_s": statistics.median(samples),
        "steady_min_s": min(samples),
        "steady_s": samples,
        "repeats": len(samples),
        "warmup": 0,
        "compile_s": 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    size = QUICK if args.quick else FULL
    series = simulate(Lorenz63(), t1=size["duration"], dt=DT, noise=NOISE, key=jax.random.key(0))
    values, times = np.asarray(series.values, np.float64), np.asarray(series.times, np.float64)
    segments = size["segments"]
    start = Lorenz63(**dict(zip(NAMES, START.tolist(), strict=True)))

    def run_diffdyn():
        return identify(start, series, fit=list(NAMES), segments=segments, rtol=RTOL, atol=ATOL)

    diffdyn = measure(lambda: run_diffdyn().loss, repeats=size["repeats"])
    ours = run_diffdyn()
    fitted = np.asarray([float(ours.fitted[n]) for n in NAMES])
    errors = np.asarray([float(ours.standard_errors[n]) for n in NAMES])

    problem = ScipyShooting(values, times, segments)
    dense = [run_scipy(problem) for _ in range(size["scipy_repeats"])]
    if any(r["seconds_to_within_1_percent"] is None for r in dense):
        raise RuntimeError(f"SciPy never came within 1 % of every parameter: {dense}")
    peer = as_timing([r["seconds_to_within_1_percent"] for r in dense])
    sparse = None if args.quick else run_scipy(problem, jac_sparsity=problem.sparsity())
    theirs = np.asarray([dense[0]["fitted"][n] for n in NAMES])

    record = comparison(
        compares=(
            f"Lorenz-63 σ, ρ, β from {len(times)} samples (dt={DT}, {size['duration']:g} time "
            f"units, x, y, z with {NOISE:.0%} noise) started 30 % off, multiple shooting with "
            f"{segments} segments on both sides (the same objective): diffdyn identify(...) "
            "(its defaults: 200 Adam steps through the core, then Levenberg–Marquardt; float32) "
            "vs scipy.optimize.least_squares (trf, 2-point finite-difference Jacobian) over "
            "solve_ivp RK45 per segment (float64); rtol=1e-6, atol=1e-8 on both; time to "
            "within 1 % of every parameter"
        ),
        diffdyn=diffdyn,
        peer=peer,
        peer_name="scipy.optimize.least_squares (2-point) over solve_ivp RK45",
        ratio_at_least=20.0,
        target="SciPy / diffdyn ≥ 20 to the same accuracy (issue 14)",
        settings={
            "samples": len(times),
            "dt": DT,
            "duration": size["duration"],
            "noise": NOISE,
            "noise_key": 0,
            "segments": segments,
            "unknowns": 3 + 3 * segments,
            "truth": dict(zip(NAMES, TRUTH.tolist(), strict=True)),
            "start": dict(zip(NAMES, START.tolist(), strict=True)),
            "rtol": RTOL,
            "atol": ATOL,
            "diffdyn": f"identify(Lorenz63(sigma=13, rho=19.6, beta=3.467), data, fit=[sigma, "
            f"rho, beta], segments={segments}) with its defaults (200 Adam steps, then at most "
            "100 Levenberg-Marquardt steps), float32",
            "scipy": "least_squares(residuals, x0) with defaults (method='trf', jac='2-point', "
            "ftol=xtol=gtol=1e-8); solve_ivp(method='RK45', t_eval=each segment's times)",
            "peer_time": "seconds until least_squares' iterate was first within 1 % of every "
            "parameter (its callback); its full run is in 'scipy_runs'",
            "repeats": {"diffdyn": size["repeats"], "scipy": size["scipy_repeats"]},
        },
        agreement={
            "diffdyn_fitted": dict(zip(NAMES, fitted.tolist(), strict=True)),
            "diffdyn_standard_errors": dict(zip(NAMES, errors.tolist(), strict=True)),
            "diffdyn_max_relative_error": float(np.max(np.abs(fitted - TRUTH) / TRUTH)),
            "scipy_fitted": dense[0]["fitted"],
            "scipy_max_relative_error": dense[0]["max_relative_error"],
            "difference_in_diffdyn_standard_errors": dict(
                zip(NAMES, (np.abs(fitted - theirs) / errors).tolist(), strict=True)
            ),
            "diffdyn_loss": ours.loss,
            "scipy_loss": dense[0]["loss"],
            "agree": bool(
                np.max(np.abs(fitted - TRUTH) / TRUTH) <= WITHIN
                and dense[0]["max_relative_error"] <= WITHIN
            ),
            "agree_means": "both end within 1 % of every parameter",
        },
        scipy_runs=dense,
        diagnostics={
            "diffdyn_first_call_s": diffdyn["first_call_s"],
            "ratio_with_diffdyn_first_call": peer["steady_median_s"] / diffdyn["first_call_s"],
            "diffdyn_adam_steps": ours.adam_steps,
            "diffdyn_levenberg_marquardt_steps": ours.refine_steps,
            "scipy_seconds_per_residual_evaluation": dense[0]["seconds"]
            / dense[0]["residual_evaluations"],
            "scipy_full_run_median_s": statistics.median(r["seconds"] for r in dense),
            "scipy_with_jac_sparsity": sparse,
            "ratio_against_scipy_with_jac_sparsity": None
            if sparse is None or sparse["seconds_to_within_1_percent"] is None
            else sparse["seconds_to_within_1_percent"] / diffdyn["steady_median_s"],
        },
    )
    record["quick"] = args.quick
    if args.out is not None or not args.quick:
        path = write_result("identify_lorenz", record, args.out)
        print(f"wrote {path}")
    print_table("Lorenz-63 identification" + (" — quick" if args.quick else ""),
                {"identify_lorenz": record})  # fmt: skip
    print(
        f"diffdyn {diffdyn['steady_median_s']:.3g} s (first call {diffdyn['first_call_s']:.3g} s),"
        f" SciPy to 1 %: {peer['steady_median_s']:.3g} s (full run "
        f"{record['diagnostics']['scipy_full_run_median_s']:.3g} s)"
    )


if __name__ == "__main__":
    main()
