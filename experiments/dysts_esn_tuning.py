"""Does gradient tuning through the ridge readout pay for the ESN under the dysts protocol?

Run: `.venv/bin/python experiments/dysts_esn_tuning.py` (about 10 minutes on 2 cores) →
`experiments/results/dysts_esn_tuning.json`.

One ESN per system, fitted alone in this process (`Forecaster("esn", tune=...)`, seed 0) on
the protocol's 1000 univariate training rows (fine granularity, first coordinate;
`dysts_task`), scored by the sMAPE of one closed-loop forecast of the next 2 periods
(`score_dysts`), as `compare --protocol dysts` scores a cell:

- systems 1–30 of dysts' catalogue alphabetically (the benchmark's set): `tune=off`, and
  `tune=on` within a 10-s budget (the benchmark's cell budget);
- systems 31–60, a second set that no choice was made on: `tune=off` and `tune=on` without a
  budget.

The figures decided `tune=auto`'s rule for short series (`train.reservoir_tuning.
tunes_by_default`: ≤ 1000 training rows and a budget of ≥ 10 s); `docs/reservoir-tuning.md`.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _record import write_record

from diffdyn.data.dysts_source import dysts_names
from diffdyn.dysts_protocol import dysts_task, score_dysts
from diffdyn.train import Forecaster

RESULT = Path(__file__).parent / "results" / "dysts_esn_tuning.json"
RUNS = (  # (label, first system, end, tune, budget in seconds)
    ("systems 1-30, tune=off", 0, 30, "off", None),
    ("systems 1-30, tune=on, 10 s budget", 0, 30, "on", 10.0),
    ("systems 31-60, tune=off", 30, 60, "off", None),
    ("systems 31-60, tune=on, no budget", 30, 60, "on", None),
)


def run(lo: int, hi: int, tune: str, budget: float | None) -> dict[str, Any]:
    scores, seconds = {}, []
    for name in dysts_names()[lo:hi]:
        task = dysts_task(name, granularity="fine", setting="univariate", seed=0)
        model = Forecaster("esn", tune=tune)
        result = model.fit(task.train, seed=0, budget=budget)
        seconds.append(float(result.seconds))
        scores[name] = score_dysts(model, task.train, task.test).smape
    values = np.array(list(scores.values()))
    return {
        "median_smape": float(np.median(values)),
        "mean_smape": float(np.mean(values)),
        "fit_seconds_median": float(np.median(seconds)),
        "fit_seconds_max": float(np.max(seconds)),
        "smape": scores,
    }


def main() -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    started = time.perf_counter()
    record: dict[str, Any] = {
        "what": "the ESN's median sMAPE under the dysts protocol (fine, univariate), tune=off "
        "against tune=on, each model fitted alone in one process",
        "runs": {},
    }
    for label, lo, hi, tune, budget in RUNS:
        record["runs"][label] = out = run(lo, hi, tune, budget)
        print(f"{label}: median sMAPE {out['median_smape']:.1f} (mean {out['mean_smape']:.1f}; "
              f"fit {out['fit_seconds_median']:.1f} s median)", flush=True)  # fmt: skip
    write_record(RESULT, record, started)


if __name__ == "__main__":
    main()
