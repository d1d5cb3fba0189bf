"""Tuning reservoir hyperparameters: diffdyn's gradient through the readout against random search.

The peer is the hyperparameter search a reservoirpy user runs: `reservoirpy.hyper.research`,
which draws trials with hyperopt (random search, `hyperopt.rand`, or TPE) over ranges the user
gives and scores each with the user's objective. hyperopt is not installed here (not in the
`bench` extra), so the random search is written below, over the same ranges and with the same
objective, as `research` with hyperopt's random sampler would run it. Every trial is scored by
the very validation loss diffdyn's tuning minimises (`train.reservoir_tuning.tuning_loss` of the
3-fold blocked cross-validated closed-loop forecasts, `nn.ridge.cross_validated_forecasts`),
computed by diffdyn on the same fixed reservoir draw (the ESN's W, W_in, b at unit scale, key
0): the search therefore differs from diffdyn's only in how it moves through the ranges, which
is what is compared. (reservoirpy's own `Reservoir` computes the same states from the same
matrices: `bench/reservoir_fit.py`, `agreement`.)

Data: the ANCHORS setting, standardised Lorenz-63, dt = 0.025, 400 training points (simulated
in float64). Models: the registry's ESN (500 units) and NG-RC (2 delays, quadratic).

Ranges (log-uniform unless said): ESN spectral radius [0.05, 2], leak [0.05, 1] (uniform),
input scaling [0.01, 2], bias scaling [0.01, 2], α [1e-10, 1]; NG-RC α [1e-10, 1], feature
scaling [0.1, 10].

Counted: readout solves (one ridge factorisation = one solve; a validation of diffdyn's or a
trial of the search costs 3, one per fold; `ridge="auto"`'s grid costs 12). The figure is the
number of solves random search needs before its best trial's validation loss is at most the
one diffdyn's tuning reached, against diffdyn's solves; target: ≥ 10× fewer for diffdyn
(`solves_ratio` ≥ 10). A search that never gets there within its trials reports the ratio as
at least trials·3 / diffdyn's solves (`reached: false`).

Run `python bench/reservoir_tuning.py` (writes `bench/results/reservoir_tuning.json`), or
`--quick` for a smoke test that writes nothing unless `--out DIR` is given.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffdyn.data import Scaler
from diffdyn.models import ESN, NGRC
from diffdyn.systems import get_system, simulate
from diffdyn.train import tune_reservoir
from diffdyn.train.reservoir_tuning import (
    FOLDS,
    ReservoirHyperparameters,
    _loss_value,
    _TuningLoss,
)

sys.path.insert(0, str(Path(__file__).parent))
from _harness import parse_arguments, write_result  # noqa: E402

DT, TRAIN = 0.025, 400
FULL = {"esn_trials": 100, "ngrc_trials": 200, "steps": None}
QUICK = {"esn_trials": 4, "ngrc_trials": 4, "steps": 3}
TARGET = 10.0
RANGES = {
    "esn": {
        "spectral_radius": ("log", 0.05, 2.0),
        "leak": ("uniform", 0.05, 1.0),
        "input_scaling": ("log", 0.01, 2.0),
        "bias_scaling": ("log", 0.01, 2.0),
        "ridge": ("log", 1e-10, 1.0),
    },
    "ngrc": {"ridge": ("log", 1e-10, 1.0), "feature_scaling": ("log", 0.1, 10.0)},
}


def lorenz_training_series() -> jnp.ndarray:
    with jax.enable_x64(True):
        values = simulate(get_system("lorenz63"), steps=TRAIN, dt=DT, rtol=1e-10, atol=1e-10)
    raw = np.asarray(values.values, dtype=np.float64)
    return jnp.asarray(Scaler.fit(raw).transform(raw), jnp.float32)


def draw(rng: np.random.Generator, ranges: dict[str, tuple]) -> dict[str, float]:
    out = {}
    for name, (kind, low, high) in ranges.items():
        if kind == "log":
            out[name] = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        else:
            out[name] = float(rng.uniform(low, high))
    return out


def compare(kind: str, values, trials: int, steps: int | None) -> dict[str, Any]:
    model = ESN(3, key=jax.random.key(0)) if kind == "esn" else NGRC(3)
    started = time.perf_counter()
    options = {} if steps is None else {"steps": steps}
    _, report = tune_reservoir(model, values, key=jax.random.key(1), progress=False, **options)
    ours_seconds = time.perf_counter() - started

    base = model.with_values({"ridge": 1e-6})  # the search sets every value itself
    loss, batch = _TuningLoss(base), (values, None)
    rng = np.random.default_rng(0)
    best, history, reached_at = np.inf, [], None
    started = time.perf_counter()
    for trial in range(trials):
        candidate = draw(rng, RANGES[kind])
        value = float(_loss_value(loss, ReservoirHyperparameters(candidate), batch))
        value = value if np.isfinite(value) else np.inf
        best = min(best, value)
        history.append({"trial": trial + 1, **candidate, "loss": value, "best": best})
        if reached_at is None and best <= report.tuned_loss:
            reached_at = trial + 1
    search_seconds = time.perf_counter() - started
    search_solves = (reached_at or trials) * FOLDS
    ratio = search_solves / report.readout_solves
    print(
        f"{kind}: diffdyn loss {report.initial_loss:.4g} → {report.tuned_loss:.4g} in "
        f"{report.readout_solves} solves; random search best {best:.4g} after {trials} trials"
        f" ({'reached' if reached_at else 'not reached'}: ratio {'' if reached_at else '≥ '}"
        f"{ratio:.3g})",
        flush=True,
    )
    return {
        "diffdyn": {**report.to_json(), "seconds_incl_compile": ours_seconds},
        "random_search": {
            "trials": trials,
            "best_loss": best,
            "reached": reached_at is not None,
            "trials_to_reach": reached_at,
            "solves_to_reach_or_spent": search_solves,
            "seconds": search_seconds,
            "ranges": {k: list(v) for k, v in RANGES[kind].items()},
            "history": history,
        },
        "solves_ratio": ratio,
        "solves_ratio_is_lower_bound": reached_at is None,
        "target_met": ratio >= TARGET,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    sizes = QUICK if args.quick else FULL
    values = lorenz_training_series()
    results = {
        kind: compare(kind, values, sizes[f"{kind}_trials"], sizes["steps"])
        for kind in ("esn", "ngrc")
    }
    payload = {
        "setting": "ANCHORS: Lorenz-63, dt 0.025, 400 standardised training points; registry "
        "ESN (500 units, key 0) and NG-RC; validation loss = tuning_loss of 3-fold blocked "
        "cross-validated closed-loop forecasts",
        "peer": "random search over the same ranges (reservoirpy.hyper.research with "
        "hyperopt's random sampler; hyperopt not installed, so written here), same objective",
        "target": {"solves_ratio_at_least": TARGET},
        **results,
        "target_met": all(r["target_met"] for r in results.values()),
    }
    if not args.quick or args.out is not None:
        write_result("reservoir_tuning", payload, args.out)


if __name__ == "__main__":
    main()
