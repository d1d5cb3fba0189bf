"""Does combining several ESNs pay under the dysts protocol, and how should they be combined?

Run: `.venv/bin/python experiments/dysts_esn_ensemble.py` (about 3 minutes on 2 cores) →
`experiments/results/dysts_esn_ensemble.json`.

One untuned `esn-ensemble` (7 members, registry defaults but `tune="off"`: the ensemble has
tuned itself by default since 2026-12-06, and this study measures the members' own luck) per
system and seed (0, 1, 2), fitted
alone in this process on the protocol's 1000 univariate training rows (fine granularity,
first coordinate; `dysts_task`). From each fit, forecasts of the next 2 periods, each
scored by sMAPE as `compare --protocol dysts` scores a cell (`score_dysts`):

- `one member`: each member alone (the same ESN as `--model esn -p tune=off`, another draw):
  the median over systems of each of the 21 members;
- `median`: the model itself, the members' median at every step;
- `mean`: the members' mean at every step.

A member whose forecast went non-finite scores 200 alone and is left out of both
combinations, as the model leaves it out of its median.

On systems 1–30, the benchmark's set. A median over 30 systems of one draw moves by ±10
from draw to draw (one untuned ESN: 50.6 to 67.9 over three seeds): hence three seeds.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import equinox as eqx
import numpy as np
from _record import write_record

from diffdyn.data.dysts_source import dysts_names
from diffdyn.dysts_protocol import dysts_task, score_dysts
from diffdyn.metrics import smape
from diffdyn.models import ESNEnsemble
from diffdyn.train import Forecaster
from diffdyn.train.forecast import ForecastDivergedError

RESULT = Path(__file__).parent / "results" / "dysts_esn_ensemble.json"
SEEDS = (0, 1, 2)
SYSTEMS = 30


def run(seed: int) -> dict[str, Any]:
    member_scores, median_scores, mean_scores, seconds = [], {}, {}, []
    for name in dysts_names()[:SYSTEMS]:
        task = dysts_task(name, granularity="fine", setting="univariate", seed=0)
        model = Forecaster("esn-ensemble", tune="off")
        seconds.append(float(model.fit(task.train, seed=seed, budget=10.0).seconds))
        median_scores[name] = score_dysts(model, task.train, task.test).smape
        ensemble, truth = model.module, np.asarray(task.test.values)
        assert isinstance(ensemble, ESNEnsemble)
        forecasts = []
        for member in ensemble.members:  # each member alone: a one-member ensemble
            model.module = eqx.tree_at(lambda m: m.members, ensemble, (member,))
            try:
                forecast = np.asarray(model.forecast(task.train, len(truth)).forecast.values)
            except ForecastDivergedError:  # left out of the combinations, as by the model
                forecast = np.full_like(truth, np.nan)
            forecasts.append(forecast)
        model.module = ensemble
        member_scores.append([smape(f, truth) if np.isfinite(f).all() else 200.0
                              for f in forecasts])  # fmt: skip
        mean_scores[name] = smape(np.nanmean(forecasts, axis=0), truth)
    members = np.median(np.array(member_scores), axis=0)  # each member's median over systems
    return {
        "one_member_median_smape": [float(m) for m in members],
        "median_of_members_median_smape": float(np.median(list(median_scores.values()))),
        "mean_of_members_median_smape": float(np.median(list(mean_scores.values()))),
        "fit_seconds_median": float(np.median(seconds)),
        "smape_median_of_members": median_scores,
        "smape_mean_of_members": mean_scores,
    }


def main() -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    started = time.perf_counter()
    record: dict[str, Any] = {
        "what": "median sMAPE under the dysts protocol (fine, univariate, systems 1-30) of one "
        "ESN against 7 ESNs combined by their median or their mean (esn-ensemble)",
        "seeds": {},
    }
    for seed in SEEDS:
        record["seeds"][str(seed)] = out = run(seed)
        members = out["one_member_median_smape"]
        combined = out["median_of_members_median_smape"], out["mean_of_members_median_smape"]
        print(f"seed {seed}: one member {min(members):.1f}–{max(members):.1f} (median "
              f"{np.median(members):.1f}), median of 7 {combined[0]:.1f}, mean of 7 "
              f"{combined[1]:.1f}", flush=True)  # fmt: skip
    write_record(RESULT, record, started)


if __name__ == "__main__":
    main()
