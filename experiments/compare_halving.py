"""Successive halving against equal budgets, at the same total budget of the grid.

Run: `.venv/bin/python experiments/compare_halving.py [--models ...] [--budget 20]` (about
15 minutes on 2 cores with the defaults). Both grids run as `diffdyn compare` processes on the
default systems (Lorenz-63, Mackey–Glass), one seed, two workers, the same models, each with
its own empty compilation cache; `--allocate equal` gives every model `--budget` seconds,
`--allocate halving` shares models × `--budget` among the gradient-trained ones in rounds
(`compare.grid.halving_rounds`). Writes `experiments/results/compare_halving.json`: per
system the best model's VPT under each allocation and every model's VPT and budget.

The target (issue 19): with halving the best model's VPT at least as good as with equal
budgets on both systems.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sqlite3
import tempfile
from pathlib import Path

from compare_parallel import RESULTS, timed_compare

MODELS = "persistence,tdnn,rnn,gru,lstm,neural-ode,transformer,seq2seq"


def _cells(store: Path) -> dict[str, dict[str, dict]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT dataset, model, metric, value, text FROM results").fetchall()
    out: dict[str, dict[str, dict]] = {}
    for dataset, model, metric, value, text in rows:
        if metric in ("vpt_mean", "train_seconds", "halving_round", "halving_budget_s",
                      "validation_vpt", "status"):  # fmt: skip
            out.setdefault(dataset, {}).setdefault(model, {})[metric] = (
                value if text is None else text
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--budget", default="20")
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for allocate in ("equal", "halving"):
            options = ["--models", args.models, "--budget-per-model", args.budget,
                       "--allocate", allocate]  # fmt: skip
            out, seconds, load = timed_compare(allocate, Path(tmp), options)
            runs[allocate] = {"seconds": seconds, "load_before": load,
                              "cells": _cells(out / "results.sqlite")}  # fmt: skip
    best = {}
    for system in runs["equal"]["cells"]:
        best[system] = {}
        for allocate, run in runs.items():
            gradient = {m: c for m, c in run["cells"][system].items() if m != "persistence"}
            model = max(gradient, key=lambda m: gradient[m].get("vpt_mean") or 0.0)
            best[system][allocate] = {"model": model, "vpt": gradient[model].get("vpt_mean")}
        best[system]["halving_at_least_as_good"] = (
            best[system]["halving"]["vpt"] >= best[system]["equal"]["vpt"]
        )
    result = {
        "what": "successive halving against equal budgets, same total",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "models": args.models.split(","),
        "budget_per_model_s": float(args.budget),
        "best_gradient_model": best,
        "runs": runs,
    }
    from diffdyn.files import atomic_write

    path = RESULTS / "compare_halving.json"
    atomic_write(path, lambda f: f.write(json.dumps(result, indent=2).encode()))
    print(json.dumps(best, indent=2))


if __name__ == "__main__":
    main()
