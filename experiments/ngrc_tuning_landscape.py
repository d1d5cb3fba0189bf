"""The loss NG-RC's tuner minimises, on a grid: why its gradient does not reach random search.

Run: `.venv/bin/python experiments/ngrc_tuning_landscape.py` (about 20 s on 2 cores) →
`experiments/results/ngrc_tuning_landscape.json`.

`bench/reservoir_tuning.py` finds that random search over NG-RC's two tuned values (ridge α
and feature scaling c, `TUNING_RANGES`) reaches the loss of diffdyn's gradient tuning within
3–10 trials and ends an order of magnitude lower. This script evaluates the same float64
objectives (`_TuningLoss`: 3-fold blocked cross-validated closed-loop forecasts of the 400
training points; `_validation_loss`: 64 windows of the 5000-row validation series) of the
registry NG-RC on a 25 × 25 grid, log-spaced over both ranges, in the ANCHORS setting of the
bench, and measures how rough the surface is: the grid's best cell, how many cells come
within 2× of it, and how much higher that best cell's grid neighbours are (an isolated dip
is a loss a gradient cannot find, whose value says little about forecasts elsewhere).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import jax
import numpy as np
from _record import write_record

from diffdyn.models import NGRC
from diffdyn.train.reservoir_tuning import TUNING_RANGES, ReservoirHyperparameters, _loss_value

# The bench's setting and objective, loaded by path: `experiments/reservoir_tuning.py` has the
# same module name as `bench/reservoir_tuning.py`.
_BENCH = Path(__file__).parents[1] / "bench"
sys.path.insert(0, str(_BENCH))  # for the bench module's own `_harness` import
_spec = importlib.util.spec_from_file_location(
    "bench_reservoir_tuning", _BENCH / "reservoir_tuning.py"
)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

RESULTS = Path(__file__).parent / "results"
GRID = 25


def landscape(objective: str, train, validation) -> dict:
    with jax.enable_x64(True):
        held_out = None if objective == "cross_validated" else validation
        loss, batch = bench.tuning_objective(NGRC(3), train, held_out)
        axes = {}
        for name in ("ridge", "feature_scaling"):
            _, low, high = TUNING_RANGES[name]
            axes[name] = np.exp(np.linspace(np.log(low), np.log(high), GRID))
        table = np.array(
            [
                [
                    float(
                        _loss_value(
                            loss,
                            ReservoirHyperparameters({"ridge": r, "feature_scaling": c}),
                            batch,
                        )
                    )
                    for c in axes["feature_scaling"]
                ]
                for r in axes["ridge"]
            ]
        )
    table = np.where(np.isfinite(table), table, np.inf)
    i, j = np.unravel_index(np.argmin(table), table.shape)
    best = float(table[i, j])
    neighbours = [
        float(table[a, b])
        for a in (i - 1, i, i + 1)
        for b in (j - 1, j, j + 1)
        if (a, b) != (i, j) and 0 <= a < GRID and 0 <= b < GRID
    ]
    finite = table[np.isfinite(table)]
    return {
        "objective": objective,
        "best": best,
        "best_at": {
            "ridge": float(axes["ridge"][i]),
            "feature_scaling": float(axes["feature_scaling"][j]),
        },
        "cells_within_2x_of_best": int(np.sum(table <= 2 * best)),
        "cells": GRID * GRID,
        "best_neighbours_over_best": sorted(n / best for n in neighbours),
        "median_cell": float(np.median(finite)),
        "quantiles_10_25_50": [float(np.quantile(finite, q)) for q in (0.1, 0.25, 0.5)],
        "axes": {k: v.tolist() for k, v in axes.items()},
        "log10_loss": np.log10(table).tolist(),
    }


def main() -> None:
    started = time.perf_counter()
    train, validation = bench.lorenz_series()
    record = {
        "what": "NG-RC's tuning objectives on a 25 x 25 log grid of (ridge, feature_scaling), "
        "ANCHORS setting of bench/reservoir_tuning.py",
        "runs": [
            landscape(o, train, validation) for o in ("cross_validated", "validation_series")
        ],
    }
    for run in record["runs"]:
        print(
            f"{run['objective']}: best {run['best']:.3g} at {run['best_at']}, "
            f"{run['cells_within_2x_of_best']} of {run['cells']} cells within 2x, "
            f"neighbours {min(run['best_neighbours_over_best']):.3g}-"
            f"{max(run['best_neighbours_over_best']):.3g}x the best, median cell "
            f"{run['median_cell']:.3g}"
        )
    write_record(RESULTS / "ngrc_tuning_landscape.json", record, started)


if __name__ == "__main__":
    main()
