"""diffdyn's models under the dysts forecasting protocol (Gilpin 2021), beside the published
median sMAPE.

Run: `.venv/bin/python experiments/dysts_benchmark.py [--systems 30] [--models ...]
[--budget 10] [--granularity fine] [--workers 2]` (30 systems × 7 models: about 8–25 minutes
on 2 cores). It runs `diffdyn compare --systems dysts:... --protocol dysts` through the library
(`run_compare`, in `experiments/results/dysts_benchmark/`, resumable) and writes
`experiments/results/dysts_benchmark.json` (`_multivariate` with `--protocol
dysts-multivariate`): each model's median sMAPE over the systems, the
published figures, the wall time, the machine's load.

The systems are the first `--systems` of dysts' catalogue in alphabetical order
(`dysts_names()`), not chosen by result. Each model runs with its registry defaults under the
per-cell budget. The ESN's default `tune=auto` (and `esn-ensemble`'s, through its first
member) tunes its scales by gradient on each system's training part alone (a short series with
a budget of ≥ 10 s; `docs/reservoir-tuning.md`); nothing else is tuned per system (dysts'
published figures come from a hyperparameter search per system and model, on a separate
trajectory).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

from diffdyn import __version__
from diffdyn.compare import ResultsStore, run_compare, write_report
from diffdyn.compare.report import protocol_table
from diffdyn.compare.store import STORE_FILE
from diffdyn.data.dysts_source import dysts_names, dysts_version
from diffdyn.dysts_protocol import PUBLISHED_SOURCE, published_scores
from diffdyn.files import atomic_write

RESULTS = Path(__file__).parent / "results"
MODELS = "persistence,ngrc,esn,esn-ensemble,lstm,gru,neural-ode"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", type=int, default=30)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--granularity", default="fine")
    parser.add_argument("--protocol", default="dysts")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    systems = [f"dysts:{n}" for n in dysts_names()[: args.systems]]
    stem = "dysts_benchmark" + ("" if args.protocol == "dysts" else "_multivariate")
    out = RESULTS / stem
    started = time.perf_counter()
    load_before = os.getloadavg()
    summary = run_compare(out, systems, args.models.split(","), budget_per_model=args.budget,
                          workers=args.workers, protocol=args.protocol,
                          granularity=args.granularity)  # fmt: skip
    seconds = time.perf_counter() - started
    write_report(out)
    with ResultsStore(out / STORE_FILE, create=False) as store:
        protocol, granularity, rows = protocol_table(store)
    result = {
        "what": "median sMAPE under the dysts forecasting protocol",
        "date": datetime.date.today().isoformat(),
        "diffdyn": __version__,
        "dysts": dysts_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_before_after": [load_before, os.getloadavg()],
        "protocol": protocol,
        "granularity": granularity,
        "systems": systems,
        "budget_per_model_s": args.budget,
        "workers": args.workers,
        "cells": summary.cells,
        "cells_run_now": summary.ran,
        "failed": summary.failed,
        "wall_seconds_this_run": seconds,
        "models": [row.__dict__ for row in rows],
        "published": [p.to_json() for p in published_scores(granularity=granularity)],
        "published_source": PUBLISHED_SOURCE,
    }
    path = RESULTS / f"{stem}.json"
    atomic_write(path, lambda f: f.write(json.dumps(result, indent=2).encode()))
    for row in rows:
        print(f"{row.model:12s} median sMAPE {row.median_smape}  ({row.systems} systems, "
              f"{row.failed} failed)")  # fmt: skip
    print(f"{summary.ran} cells in {seconds:.0f} s; {path}")


if __name__ == "__main__":
    main()
