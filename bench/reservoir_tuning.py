"""Tuning reservoir hyperparameters: diffdyn's gradient through the readout against random search.

The peer is the hyperparameter search a reservoirpy user runs: `reservoirpy.hyper.research`,
which draws trials with hyperopt (random search, `hyperopt.rand`, or TPE) over ranges the user
gives and scores each with the user's objective. hyperopt is not installed here (not in the
`bench` extra), so the random search is written below, over the same ranges and with the same
objective, as `research` with hyperopt's random sampler would run it. Every trial is scored by
the very validation loss diffdyn's tuning minimises (`train.reservoir_tuning.tuning_loss`),
computed as diffdyn computes it (float64) on the same fixed reservoir draw (the ESN's W, W_in, b
at unit scale, key 0): the search therefore differs from diffdyn's only in how it moves through
the ranges, which is what is compared. (reservoirpy's own `Reservoir` computes the same states
from the same matrices: `bench/reservoir_fit.py`, `agreement`.)

Data: the ANCHORS setting, standardised Lorenz-63, dt = 0.025, 400 training points, and the
5000 rows that follow them (simulated in float64). Models: the registry's ESN (500 units) and
NG-RC (2 delays, quadratic). Two objectives, each compared on its own:

- `cross_validated`: 3-fold blocked cross-validated closed-loop forecasts of the 400 training
  rows (`nn.ridge.cross_validated_forecasts`; 3 solves an evaluation);
- `validation_series`: closed-loop forecasts of 64 windows of the 5000 rows after them by the
  readout fitted on the 400 (`nn.ridge.held_out_forecasts`; 1 solve an evaluation).

Ranges: `train.reservoir_tuning.TUNING_RANGES`, the ones diffdyn's space-filling starts cover
(log-uniform unless said): ESN spectral radius [0.05, 2], leak [0.05, 1] (uniform), input
scaling [0.01, 2], bias scaling [0.01, 2], α [1e-12, 1]; NG-RC α [1e-12, 1], feature scaling
[0.1, 10].

Counted: readout solves (one ridge factorisation = one solve; an evaluation costs 3 or 1, as
above; `ridge="auto"`'s grid costs 12; diffdyn's 20 starts count like any evaluation). The
figure is the number of solves random search needs before its best trial's validation loss is
at most the one diffdyn's tuning reached, against diffdyn's solves; target: ≥ 10× fewer for
diffdyn (`solves_ratio` ≥ 10). A search that never gets there within its 1000 trials reports
the ratio as at least trials × solves per evaluation / diffdyn's solves (`reached: false`).

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
    TUNING_RANGES,
    ReservoirHyperparameters,
    _as_float64,
    _loss_value,
    _TuningLoss,
    _validation_loss,
)

sys.path.insert(0, str(Path(__file__).parent))
from _harness import parse_arguments, write_result  # noqa: E402

DT, TRAIN, VALIDATION = 0.025, 400, 5000
FULL = {"esn_trials": 1000, "ngrc_trials": 1000, "steps": None}
QUICK = {"esn_trials": 4, "ngrc_trials": 4, "steps": 3}
TARGET = 10.0
OBJECTIVES = ("cross_validated", "validation_series")


def lorenz_series() -> tuple[jnp.ndarray, jnp.ndarray]:
    """The 400 standardised training rows and the 5000 rows that follow them."""
    with jax.enable_x64(True):
        run = simulate(
            get_system("lorenz63"), steps=TRAIN + VALIDATION, dt=DT, rtol=1e-10, atol=1e-10
        )
    raw = np.asarray(run.values, dtype=np.float64)
    scaled = np.asarray(Scaler.fit(raw[:TRAIN]).transform(raw), np.float32)
    return jnp.asarray(scaled[:TRAIN]), jnp.asarray(scaled[TRAIN:])


def draw(rng: np.random.Generator, names: list[str]) -> dict[str, float]:
    out = {}
    for name in names:
        scale, low, high = TUNING_RANGES[name]
        if scale == "log":
            out[name] = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        else:
            out[name] = float(rng.uniform(low, high))
    return out


def tuning_objective(model, train, validation=None):
    """The very objective `tune_reservoir` minimises, computed as it does (float64; call it
    under `jax.enable_x64(True)`): `(loss, batch)` for `_loss_value`. Cross-validated on
    `train` without `validation`, else on the validation series after it. The model's ridge
    is a placeholder: a search sets every tuned value."""
    base = _as_float64(model.with_values({"ridge": 1e-6}))
    values = jnp.asarray(train, jnp.float64)
    if validation is None:
        return _TuningLoss(base), (values, None)
    return _validation_loss(base, values, None, validation, None)


def compare(kind: str, objective: str, train, validation, trials: int, steps) -> dict[str, Any]:
    model = ESN(3, key=jax.random.key(0)) if kind == "esn" else NGRC(3)
    held_out = validation if objective == "validation_series" else None
    started = time.perf_counter()
    options = {} if steps is None else {"steps": steps}
    _, report = tune_reservoir(
        model, train, key=jax.random.key(1), validation=held_out, progress=False, **options
    )
    ours_seconds = time.perf_counter() - started

    rng = np.random.default_rng(0)
    best, history, reached_at = np.inf, [], None
    started = time.perf_counter()
    with jax.enable_x64(True):
        loss, batch = tuning_objective(model, train, held_out)
        for trial in range(trials):
            candidate = draw(rng, list(model.tunable))
            value = float(_loss_value(loss, ReservoirHyperparameters(candidate), batch))
            value = value if np.isfinite(value) else np.inf
            best = min(best, value)
            history.append({"trial": trial + 1, **candidate, "loss": value, "best": best})
            if reached_at is None and best <= report.tuned_loss:
                reached_at = trial + 1
    search_seconds = time.perf_counter() - started
    search_solves = (reached_at or trials) * loss.solves
    ratio = search_solves / report.readout_solves
    print(
        f"{kind}, {objective}: diffdyn loss {report.initial_loss:.4g} → {report.tuned_loss:.4g}"
        f" in {report.readout_solves} solves ({ours_seconds:.0f} s); random search best "
        f"{best:.4g} after {trials} trials ({search_seconds:.0f} s; "
        f"{'reached' if reached_at else 'not reached'}: ratio {'' if reached_at else '≥ '}"
        f"{ratio:.3g})",
        flush=True,
    )
    return {
        "objective": objective,
        "solves_per_evaluation": loss.solves,
        "diffdyn": {**report.to_json(), "seconds_incl_compile": ours_seconds},
        "random_search": {
            "trials": trials,
            "best_loss": best,
            "reached": reached_at is not None,
            "trials_to_reach": reached_at,
            "solves_to_reach_or_spent": search_solves,
            "seconds": search_seconds,
            "ranges": {k: list(TUNING_RANGES[k]) for k in model.tunable},
            "history": history,
        },
        "solves_ratio": ratio,
        "solves_ratio_is_lower_bound": reached_at is None,
        "target_met": ratio >= TARGET,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    sizes = QUICK if args.quick else FULL
    train, validation = lorenz_series()
    results = {
        f"{kind}_{objective}": compare(
            kind, objective, train, validation, sizes[f"{kind}_trials"], sizes["steps"]
        )
        for kind in ("esn", "ngrc")
        for objective in OBJECTIVES
    }
    payload = {
        "setting": "ANCHORS: Lorenz-63, dt 0.025, 400 standardised training points (and the "
        "5000 rows after them as a validation series); registry ESN (500 units, key 0) and "
        "NG-RC; validation loss = tuning_loss (float64) of 3-fold blocked cross-validated "
        "closed-loop forecasts of the training rows (cross_validated: 3 solves an "
        "evaluation) or of 64 windows of the validation series (validation_series: 1 solve)",
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
