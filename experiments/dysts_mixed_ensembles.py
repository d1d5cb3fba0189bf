"""Median ensembles across model families under the dysts protocol (univariate, fine).

Run: `.venv/bin/python experiments/dysts_mixed_ensembles.py [--systems 0:60] [--workers 2]`
(about 60 s per system and worker on a 2-core machine: 60 systems ≈ 30 minutes). Writes
`experiments/results/dysts_mixed_ensembles.json` atomically; the members' forecasts are kept
in `experiments/results/dysts_mixed_ensembles/` (one `.npz` per system, not committed), so a
killed run resumes and the combinations can be recomputed without training.

The question (issue 19, `docs/dysts.md`): the best of ESN, LSTM and neural ODE on each system,
chosen by the test score, has a median sMAPE of 39.8 on systems 1–30, far below any single
family (ESN 57.8); choosing the family on the training part's own tail did not carry over to
systems 31–60. Does the median forecast of members of several families, which needs no choice,
get the gain?

Each system (dysts' catalogue in alphabetical order, `dysts_names()`, not chosen by result) is
split by `dysts_task` (10 training periods, 2 test periods, first coordinate). Every member is
trained with its registry defaults by `train_model` in 10 s (the per-cell budget of
`experiments/dysts_benchmark.py`), one process per core, pinned: ESN seeds 0–2 (each tunes its
scales on the training part, `tune=auto`), LSTM seeds 0–2, neural ODE seeds 0–1, GRU seed 0.
Each forecasts the test part closed loop from the end of the training part, as `score_dysts`
does. An ensemble's forecast is the median of its members' forecasts at every step (a member
that failed or went non-finite is left out; a forecast that is still non-finite scores 200),
scored by `diffdyn.metrics.smape` (0–200).
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from diffdyn import __version__
from diffdyn.files import atomic_write
from diffdyn.metrics import smape

RESULTS = Path(__file__).parent / "results"
CACHE = RESULTS / "dysts_mixed_ensembles"
BUDGET = 10.0
MEMBERS = [("esn", 0), ("esn", 1), ("esn", 2), ("lstm", 0), ("lstm", 1), ("lstm", 2),
           ("neural-ode", 0), ("neural-ode", 1), ("gru", 0)]  # fmt: skip
ESN3 = ["esn_0", "esn_1", "esn_2"]
LSTM3 = ["lstm_0", "lstm_1", "lstm_2"]
NODE2 = ["neural-ode_0", "neural-ode_1"]
COMBINATIONS = {
    "esn (seed 0)": ["esn_0"],
    "lstm (seed 0)": ["lstm_0"],
    "neural-ode (seed 0)": ["neural-ode_0"],
    "gru (seed 0)": ["gru_0"],
    "3 esn": ESN3,
    "3 lstm": LSTM3,
    "2 neural-ode": NODE2,
    "esn + lstm + neural-ode": ["esn_0", "lstm_0", "neural-ode_0"],
    "3 esn + 3 lstm": ESN3 + LSTM3,
    "2 esn + 2 lstm + 1 neural-ode": ["esn_0", "esn_1", "lstm_0", "lstm_1", "neural-ode_0"],
    "2 esn + 2 lstm + 2 neural-ode": ["esn_0", "esn_1", "lstm_0", "lstm_1", *NODE2],
    "3 esn + 3 lstm + 2 neural-ode": ESN3 + LSTM3 + NODE2,
    "3 esn + 3 lstm + 2 neural-ode + gru": ESN3 + LSTM3 + NODE2 + ["gru_0"],
}


def train_members(worker: int, indices: list[int]) -> None:
    """Train every member on each system of `indices` and keep their test forecasts."""
    from diffdyn.data.dysts_source import dysts_names
    from diffdyn.dysts_protocol import _joined, dysts_task
    from diffdyn.resources import pin_process
    from diffdyn.train import evaluate_model, train_model
    from diffdyn.train.checkpoint import read_sidecar
    from diffdyn.train.data_source import DataSource

    if (os.cpu_count() or 1) > 1:
        pin_process({worker % (os.cpu_count() or 1)})
    names = dysts_names()
    for index in indices:
        path = CACHE / f"{index:03d}_{names[index]}.npz"
        if path.exists():
            continue
        task = dysts_task(f"dysts:{names[index]}", granularity="fine", setting="univariate")
        forecasts = {}
        for model, seed in MEMBERS:
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp) / "model"
                try:
                    train_model(task.train, task.source, model, folder, seed=seed,
                                budget=BUDGET, progress=False)  # fmt: skip
                    context = int(read_sidecar(folder)["training"]["context"])
                    window = _joined(task.train.slice(len(task.train) - context, None), task.test)
                    evaluation = evaluate_model(folder, window, DataSource.of_series(window),
                                                horizon=len(task.test), starts=1)  # fmt: skip
                    forecasts[f"{model}_{seed}"] = np.asarray(evaluation.forecasts[0])
                    print(f"{index} {names[index]} {model} {seed}: sMAPE "
                          f"{evaluation.smape:.1f}", flush=True)  # fmt: skip
                except Exception as error:  # a failed member is left out of the medians
                    print(f"{index} {names[index]} {model} {seed}: failed ({error})", flush=True)
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, truth=np.asarray(task.test.values), **forecasts)
        partial.replace(path)


def ensemble_smape(stored: dict[str, np.ndarray], members: list[str]) -> float:
    """sMAPE of the median of the members' forecasts at every step (200 if none is finite)."""
    forecasts = [stored[m] for m in members if m in stored and np.all(np.isfinite(stored[m]))]
    if not forecasts:
        return 200.0
    return float(smape(np.median(np.stack(forecasts), axis=0), stored["truth"]))


def _cached(low: int, high: int) -> list[Path]:
    """The cached systems with catalogue index in [low, high), in index order."""
    return [
        path
        for path in sorted(CACHE.glob("[0-9][0-9][0-9]_*.npz"))
        if low <= int(path.name[:3]) < high and not path.name.endswith(".partial.npz")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="0:60", help="a range of catalogue indices, LO:HI")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    low, high = (int(v) for v in args.systems.split(":"))
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    indices = list(range(low, high))
    cached_before = len(_cached(low, high))
    workers = [
        multiprocessing.get_context("spawn").Process(
            target=train_members, args=(w, indices[w :: args.workers])
        )
        for w in range(args.workers)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
    stored = {int(p.name[:3]): (p.name[4:-4], dict(np.load(p))) for p in _cached(low, high)}
    systems = {
        name: {combo: ensemble_smape(data, members) for combo, members in COMBINATIONS.items()}
        for _, (name, data) in sorted(stored.items())
    }
    ranges = {"systems 1-30": (0, 30), "systems 31-60": (30, 60), "all": (low, high)}
    medians = {}
    for label, (a, b) in ranges.items():
        chosen = [systems[name] for i, (name, _) in sorted(stored.items()) if a <= i < b]
        if chosen:
            medians[label] = {
                "systems": len(chosen),
                **{c: float(np.median([s[c] for s in chosen])) for c in COMBINATIONS},
            }
    result = {
        "what": "median sMAPE of median ensembles across model families, dysts protocol "
        "(univariate, fine)",
        "date": datetime.date.today().isoformat(),
        "diffdyn": __version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "budget_per_member_s": BUDGET,
        "members": [f"{m}_{s}" for m, s in MEMBERS],
        "combinations": COMBINATIONS,
        "median_smape": medians,
        "per_system_smape": systems,
        "wall_seconds_this_run": time.perf_counter() - started,
        "systems_trained_this_run": len(stored) - cached_before,
        "note": "the members of systems not trained this run were read from the cache, "
        "trained by an earlier run of this script (2026-12-06: 60 systems in about 38 minutes, "
        "two pinned workers, load 2-4)",
    }
    text = json.dumps(result, indent=1) + "\n"
    atomic_write(RESULTS / "dysts_mixed_ensembles.json", lambda f: f.write(text.encode()))
    for label, row in medians.items():
        print(label, {k: round(v, 1) for k, v in row.items()})


if __name__ == "__main__":
    main()
