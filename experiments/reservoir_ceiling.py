"""How far can tuning its hyperparameters take a reservoir in the ANCHORS setting? An oracle.

Run: `.venv/bin/python experiments/reservoir_ceiling.py` (about 5 minutes on 2 cores) →
`experiments/results/reservoir_ceiling.json`.

Issue 17 asks the gradient-tuned ESN and NG-RC to forecast ≥ 8 Lyapunov times in the ANCHORS
setting (`experiments/ngrc_lorenz63.py`'s split: Lorenz-63, dt = 0.025, 400 standardised
training points, VPT at ε = 0.5 over 50 starts of a fresh test trajectory). This script scores
many settings of exactly the values `tune_reservoir` tunes **on the test trajectory itself**
and reports the best: a ceiling that no tuning, by gradient or otherwise, can pass with those
values, because no tuning may look at the test data. It is not a method.

- NG-RC (registry defaults: 2 delays, quadratic): a grid of 27 α (1e-12 … 10) × 13 feature
  scalings (0.03 … 30), 351 settings;
- ESN (registry defaults: 500 units, key 0): 400 random settings from a box around where the
  tuned values landed (spectral radius 0.05–0.8, leak 0.2–1, input scaling 0.02–0.5, bias
  scaling 0.1–2, α 1e-11–1e-6; log-uniform but the leak), seed 5.

Each setting's readout is fitted on the 400 training points (float32, as the pipeline fits).
For the ESN's settings the script also computes the two losses `tune_reservoir` can minimise
(float64, as it computes them): the cross-validated loss of the 400 training points and the
loss on the 5000-row validation trajectory that follows them, and how well each ranks the
settings' test VPT (Spearman's ρ of the loss against the VPT; −1 ranks them perfectly).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _record import write_record
from ngrc_lorenz63 import forecast, split, vpt, windows
from scipy.stats import spearmanr

from diffdyn.models import ESN, NGRC
from diffdyn.train.reservoir_tuning import (
    ReservoirHyperparameters,
    _as_float64,
    _loss_value,
    _TuningLoss,
    _validation_loss,
)

RESULT = Path(__file__).parent / "results" / "reservoir_ceiling.json"
ESN_SETTINGS = 400
BOX = {  # (low, high, log?)
    "spectral_radius": (0.05, 0.8, True),
    "leak": (0.2, 1.0, False),
    "input_scaling": (0.02, 0.5, True),
    "bias_scaling": (0.1, 2.0, True),
    "ridge": (1e-11, 1e-6, True),
}


def main() -> None:
    started = time.perf_counter()
    (train, validation, test), _, train_std = split(None)
    contexts, truths = windows(test)
    values = jnp.asarray(train, jnp.float32)

    def score(model) -> float:
        fitted = model.fit_closed_form(values, choose_ridge=False)
        return float(vpt(forecast(fitted, contexts), truths, train_std).mean)

    ngrc = [
        {"ridge": float(a), "feature_scaling": float(c),
         "test_vpt": score(NGRC(3).with_values({"ridge": float(a), "feature_scaling": float(c)}))}
        for a in np.logspace(-12, 1, 27)
        for c in np.logspace(-1.5, 1.5, 13)
    ]  # fmt: skip
    rng = np.random.default_rng(5)
    base = ESN(3, key=jax.random.key(0))
    esn = []
    for _ in range(ESN_SETTINGS):
        setting = {}
        for name, (lo, hi, log) in BOX.items():
            u = rng.uniform(np.log(lo), np.log(hi)) if log else rng.uniform(lo, hi)
            setting[name] = float(np.exp(u) if log else u)
        esn.append({**setting, "test_vpt": score(base.with_values(setting))})
    with jax.enable_x64(True):
        precise = _as_float64(base)
        train64 = jnp.asarray(train, jnp.float64)
        losses = {
            "cross_validated": (_TuningLoss(precise), (train64, None)),
            "validation_series": _validation_loss(
                precise, train64, None, jnp.asarray(validation, jnp.float64), None
            ),
        }
        for row in esn:
            point = ReservoirHyperparameters({k: row[k] for k in BOX})
            for name, (loss, batch) in losses.items():
                row[f"{name}_loss"] = float(_loss_value(loss, point, batch))
    record: dict[str, Any] = {"experiment": "reservoir_ceiling", "note": __doc__.split("\n\n")[1]}
    for name, rows in (("ngrc", ngrc), ("esn", esn)):
        rows.sort(key=lambda r: -r["test_vpt"])
        record[name] = {
            "settings": len(rows),
            "best_test_vpt": rows[0]["test_vpt"],
            "settings_at_least_8": sum(r["test_vpt"] >= 8 for r in rows),
            "best_five": rows[:5],
        }
        print(f"{name}: best test VPT {rows[0]['test_vpt']:.2f} of {len(rows)} settings "
              f"({record[name]['settings_at_least_8']} at ≥ 8)", flush=True)  # fmt: skip
    vpts = [r["test_vpt"] for r in esn]
    for name in ("cross_validated", "validation_series"):
        chosen = min(esn, key=lambda r: r[f"{name}_loss"])
        record["esn"][f"{name}_loss"] = {
            "spearman_with_test_vpt": float(spearmanr([r[f"{name}_loss"] for r in esn], vpts)[0]),
            "test_vpt_of_the_lowest_loss": chosen["test_vpt"],
        }
        print(f"esn {name} loss: Spearman ρ with test VPT "
              f"{record['esn'][f'{name}_loss']['spearman_with_test_vpt']:.2f}; its lowest "
              f"loss forecasts {chosen['test_vpt']:.2f}", flush=True)  # fmt: skip
    record["box_esn"] = {k: list(v) for k, v in BOX.items()}
    write_record(RESULT, record, started)
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
