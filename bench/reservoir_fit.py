"""Fitting reservoir models: diffdyn's ESN and NG-RC against reservoirpy, side by side.

Two comparisons, run in this one process on the same standardised Lorenz-63 series
(dt = 0.025, 5000 training points, simulated in float64):

- `reservoir_fit_esn`: an echo-state network of 500 units (10 connections per unit, spectral
  radius 0.9, leak 1, input scaling 0.5, washout 100, ridge 1e-6, readout of the increment
  from [1; r; u]). reservoirpy gets **the very same W, W_in and b** (W as the SciPy CSR matrix
  its own initialiser makes), in `reservoirpy.ESN(Reservoir(W=..., Win=..., bias=...),
  Ridge(ridge=1e-6), input_to_readout=True)`, so both sides compute the same reservoir states.
- `reservoir_fit_ngrc`: NG-RC with 2 delays, spacing 1, quadratic monomials and a constant
  (28 features), ridge 1e-7, against `NVAR(delay=2, order=2, strides=1) >> Ridge(1e-7)`
  (its `Ridge` fits an unpenalised intercept, diffdyn leaves the constant unpenalised: the
  same model).

Timed: one call of each side's fit on a built model (reservoir run + ridge solve), 10 times
after a warm-up; diffdyn's first call (tracing + XLA compilation) is reported separately as
`diffdyn_compile_s`. diffdyn runs in float32 (its default), reservoirpy in float64 (its
default). Both one-step training errors are recorded (`agreement`): the two fits must be the
same model. Target: ratio = reservoirpy / diffdyn ≥ 1 for each.

Run `python bench/reservoir_fit.py` (writes `bench/results/reservoir_fit_*.json`) or add
`--quick` for a smoke test at small sizes that writes nothing unless `--out DIR` is given.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import reservoirpy
import scipy.sparse
from reservoirpy.nodes import NVAR, Reservoir, Ridge

from diffdyn.data import Scaler
from diffdyn.models import ESN, NGRC, model_spec
from diffdyn.nn.ridge import ridge_regression
from diffdyn.systems import get_system, simulate

sys.path.insert(0, str(Path(__file__).parent))
from _harness import comparison, measure, parse_arguments, print_table, write_result  # noqa: E402

DT = 0.025
# The registry defaults: the sizes a user gets from `--model esn` / `--model ngrc`.
ESN_SETTINGS = model_spec("esn").defaults
NGRC_SETTINGS = model_spec("ngrc").defaults
FULL = {"train": 5000, "repeats": 10}
QUICK = {"train": 1000, "repeats": 2}


def lorenz_training_series(steps: int) -> np.ndarray:
    """Standardised Lorenz-63, dt = 0.025, simulated in float64 at rtol = atol = 1e-10."""
    with jax.enable_x64(True):
        values = simulate(
            get_system("lorenz63"), steps=steps, dt=DT, rtol=1e-10, atol=1e-10
        ).values
    values = np.asarray(values, dtype=np.float64)
    return np.asarray(Scaler.fit(values).transform(values))


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def bench_esn(values: np.ndarray, repeats: int) -> dict[str, Any]:
    washout = ESN_SETTINGS["washout"]
    values32 = jnp.asarray(values, dtype=jnp.float32)
    model = ESN(3, key=jax.random.key(0), **ESN_SETTINGS)

    # reservoirpy, with diffdyn's reservoir: the same states on both sides
    w = np.asarray(model.recurrent_matrix(), dtype=np.float64)
    reservoir = Reservoir(
        W=scipy.sparse.csr_array(w),
        Win=np.asarray(model.input_weight, dtype=np.float64),
        bias=np.asarray(model.bias, dtype=np.float64),
        lr=ESN_SETTINGS["leak"],
    )
    peer = reservoirpy.ESN(
        reservoir=reservoir, readout=Ridge(ridge=ESN_SETTINGS["ridge"]), input_to_readout=True
    )
    inputs, targets = values[:-1], values[1:] - values[:-1]

    def peer_fit():
        if peer.initialized:
            peer.reset()  # start from r = 0, as diffdyn does
        peer.fit(inputs, targets, warmup=washout)

    ours = measure(lambda: model.fit_closed_form(values32).readout, repeats=repeats)
    theirs = measure(peer_fit, repeats=repeats)

    # one-step training error (teacher forced), t ≥ washout, in standardised units
    fitted = model.fit_closed_form(values32)
    _, states = fitted._drive(values32[:-1])
    design = jax.vmap(fitted._readout_features)(states, values32[:-1])
    ours_pred = np.asarray(design @ fitted.readout)[washout:]
    peer_fit()
    peer.reset()
    theirs_pred = peer.run(inputs)[washout:]
    peer.reset()
    peer_states = reservoir.run(inputs)
    truth = targets[washout:]

    # building the reservoir (eigenvalues included) with each side's own initialiser
    def build_peer():
        node = Reservoir(
            ESN_SETTINGS["size"],
            sr=ESN_SETTINGS["spectral_radius"],
            lr=ESN_SETTINGS["leak"],
            input_scaling=ESN_SETTINGS["input_scaling"],
            rc_connectivity=ESN_SETTINGS["connectivity"],
            input_connectivity=1.0,
            seed=0,
        )
        node.initialize(inputs[:1])
        return node

    run = jax.jit(lambda m, u: m._drive(u)[1])
    run_ours = measure(lambda: run(model, values32[:-1]), repeats=repeats)
    solve = jax.jit(lambda x, y: ridge_regression(x, y, ESN_SETTINGS["ridge"], unpenalised=[0]))
    truth32 = jnp.asarray(truth, dtype=jnp.float32)
    solve_ours = measure(lambda: solve(design[washout:], truth32), repeats=repeats)

    def run_peer():
        reservoir.reset()
        reservoir.run(inputs)

    run_theirs = measure(run_peer, repeats=repeats)

    build_ours = measure(lambda: ESN(3, key=jax.random.key(1), **ESN_SETTINGS), repeats=3)
    build_theirs = measure(build_peer, repeats=3, warmup=0)
    return comparison(
        compares=(
            f"ESN fit on {len(values)} standardised Lorenz-63 points: reservoir run "
            f"({ESN_SETTINGS['size']} units, {round(ESN_SETTINGS['connectivity'] * 500)} "
            "connections per unit) + ridge readout of the increment from [1; r; u], washout "
            f"{washout}, ridge {ESN_SETTINGS['ridge']}; diffdyn ESN.fit_closed_form (float32) "
            "vs reservoirpy.ESN(Reservoir, Ridge, input_to_readout=True).fit (float64) with "
            "the same W, W_in, b"
        ),
        diffdyn=ours,
        peer=theirs,
        peer_name=f"reservoirpy {reservoirpy.__version__} Reservoir + Ridge",
        ratio_at_least=1.0,
        target="reservoirpy / diffdyn ≥ 1.0",
        settings={"train_points": len(values), "dt": DT, **ESN_SETTINGS},
        agreement={
            "one_step_rmse_diffdyn": rmse(ours_pred, truth),
            "one_step_rmse_reservoirpy": rmse(theirs_pred, truth),
            "max_abs_difference_of_one_step_predictions": float(
                np.max(np.abs(ours_pred - theirs_pred))
            ),
            "max_abs_difference_of_reservoir_states": float(
                np.max(np.abs(np.asarray(states) - peer_states))
            ),
            "target_rms": rmse(truth, 0.0 * truth),
            "units": "standardised (each variable's training std = 1); increments y_{t+1} − y_t",
        },
        diagnostics={
            "build_reservoir_s": {
                "diffdyn": build_ours["steady_median_s"],
                "reservoirpy": build_theirs["steady_median_s"],
                "note": (
                    "building a 500-unit reservoir with each side's own initialiser (both take "
                    "the spectral radius with ARPACK on the sparse W); not part of the fit "
                    "timing"
                ),
            },
            "where_the_time_goes_s": {
                "diffdyn_reservoir_run": run_ours["steady_median_s"],
                "diffdyn_ridge_solve": solve_ours["steady_median_s"],
                "reservoirpy_reservoir_run": run_theirs["steady_median_s"],
            },
        },
    )


def bench_ngrc(values: np.ndarray, repeats: int) -> dict[str, Any]:
    values32 = jnp.asarray(values, dtype=jnp.float32)
    model = NGRC(3, **NGRC_SETTINGS)
    span = model.span
    nvar = NVAR(
        delay=NGRC_SETTINGS["delays"],
        order=NGRC_SETTINGS["order"],
        strides=NGRC_SETTINGS["spacing"],
    )
    readout = Ridge(ridge=NGRC_SETTINGS["ridge"])
    peer = nvar >> readout
    inputs, targets = values[:-1], values[1:] - values[:-1]

    def peer_fit():
        if peer.initialized:
            peer.reset()
        # the first span − 1 rows have zero-padded delays: dropped, as diffdyn does
        peer.fit(inputs, targets, warmup=span - 1)

    ours = measure(lambda: model.fit_closed_form(values32).readout, repeats=repeats)
    theirs = measure(peer_fit, repeats=repeats)

    fitted = model.fit_closed_form(values32)
    windows = np.stack([values[t - span + 1 : t + 1] for t in range(span - 1, len(values) - 1)])
    design = jax.vmap(fitted.features)(jnp.asarray(windows, dtype=jnp.float32))
    ours_pred = np.asarray(design @ fitted.readout)
    peer_fit()
    peer.reset()
    theirs_pred = peer.run(inputs)[span - 1 :]
    truth = targets[span - 1 :]
    return comparison(
        compares=(
            f"NG-RC fit on {len(values)} standardised Lorenz-63 points: constant + "
            f"{NGRC_SETTINGS['delays']} delays (spacing {NGRC_SETTINGS['spacing']}) + "
            f"quadratic monomials = {model.feature_count} features, ridge "
            f"{NGRC_SETTINGS['ridge']} on the increment; diffdyn NGRC.fit_closed_form "
            "(float32) vs reservoirpy (NVAR >> Ridge).fit (float64)"
        ),
        diffdyn=ours,
        peer=theirs,
        peer_name=f"reservoirpy {reservoirpy.__version__} NVAR + Ridge",
        ratio_at_least=1.0,
        target="reservoirpy / diffdyn ≥ 1.0",
        settings={"train_points": len(values), "dt": DT, **NGRC_SETTINGS},
        agreement={
            "one_step_rmse_diffdyn": rmse(ours_pred, truth),
            "one_step_rmse_reservoirpy": rmse(theirs_pred, truth),
            "max_abs_difference_of_one_step_predictions": float(
                np.max(np.abs(ours_pred - theirs_pred))
            ),
            "target_rms": rmse(truth, 0.0 * truth),
            "units": "standardised (each variable's training std = 1); increments y_{t+1} − y_t",
        },
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    size = QUICK if args.quick else FULL
    start = time.perf_counter()
    values = lorenz_training_series(size["train"])
    records = {
        "reservoir_fit_esn": bench_esn(values, size["repeats"]),
        "reservoir_fit_ngrc": bench_ngrc(values, size["repeats"]),
    }
    for name, record in records.items():
        record["quick"] = args.quick
        if args.out is not None or not args.quick:
            path = write_result(name, record, args.out)
            print(f"wrote {path}")
    print_table("Reservoir fits vs reservoirpy" + (" — quick" if args.quick else ""), records)
    for name, record in records.items():
        a = record["agreement"]
        print(
            f"{name}: one-step RMSE diffdyn {a['one_step_rmse_diffdyn']:.3g}, reservoirpy "
            f"{a['one_step_rmse_reservoirpy']:.3g} (targets' RMS {a['target_rms']:.3g}); "
            "largest difference of predictions "
            f"{a['max_abs_difference_of_one_step_predictions']:.2g}"
        )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
