"""The model zoo on Lorenz-63 as dynamical systems: each model's λ₁, spectrum error and long-run
distances beside its valid prediction time.

Run: `.venv/bin/python experiments/analyze_zoo_lorenz63.py [RUN_FOLDER]` (about 8 minutes on
2 cores). Writes `experiments/results/analyze_zoo_lorenz63.json` atomically; the compare run
(store, report, models) stays in RUN_FOLDER (default `runs/analyze-zoo-lorenz63`, ignored by
git), and a rerun resumes it.

This is the default `compare` grid restricted to Lorenz-63: every registered model with its
registry defaults, trained for 20 s of wall-clock (compiling included) on the default
simulation (10 000 samples, dt = 0.01, seed 0), scored on a fresh trajectory (VPT, ε = 0.5,
in Lyapunov times λ₁ = 0.9056), then analyzed as `compare` does it
(`diffdyn.analysis.analyze_model`): the model's Lyapunov spectrum (variables + 1 = 4
exponents, 20 Lyapunov times of averaging) against the system's own (float32, 1000 time
units), and a closed-loop run of 100 Lyapunov times against the fresh trajectory
(power-spectrum Hellinger distance averaged over x, y, z; sliced Wasserstein-1 of the state
density; Grassberger–Procaccia dimension; behaviour). Two cells run side by side.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import time
from pathlib import Path

import jax

from diffdyn import __version__
from diffdyn.compare import ResultsStore, run_compare, write_report
from diffdyn.compare.report import attractor_verdict
from diffdyn.compare.store import STORE_FILE
from diffdyn.files import atomic_write

RESULTS = Path(__file__).parent / "results" / "analyze_zoo_lorenz63.json"
RUN = Path("runs/analyze-zoo-lorenz63")
BUDGET = 20.0
KEPT = (
    "status", "reason", "vpt_mean", "vpt_std", "vpt_censored", "train_seconds", "parameters",
    "model_lyapunov_exponent", "system_lyapunov_exponent", "spectrum_error",
    "power_spectrum_distance", "density_distance", "correlation_dimension", "long_run", "note",
)  # fmt: skip


def main() -> None:
    started = time.perf_counter()
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else RUN
    run.parent.mkdir(parents=True, exist_ok=True)
    summary = run_compare(run, ["lorenz63"], ["all"], budget_per_model=BUDGET, workers=2)
    write_report(run)
    with ResultsStore(run / STORE_FILE, create=False) as store:
        cells = store.cells()
    models = {}
    for (_, model, _), metrics in sorted(cells.items()):
        row = {k: metrics[k] for k in KEPT if k in metrics}
        verdict = attractor_verdict({**row, "lyapunov_exponent": metrics.get("lyapunov_exponent")})
        row["reproduces_attractor"] = None if verdict is None else verdict[0]
        models[model] = row
        lam = row.get("model_lyapunov_exponent")
        psd = row.get("power_spectrum_distance")
        print(
            f"{model:18s} VPT {row.get('vpt_mean', float('nan')):6.2f}  λ₁ "
            f"{'—' if lam is None else f'{lam:7.3f}'}  PSD {'—' if psd is None else f'{psd:.3f}'}"
            f"  {row.get('long_run', row.get('reason', ''))}",
            flush=True,
        )
    record = {
        "what": "every registered model on Lorenz-63: VPT beside λ₁ and long-run distances",
        "settings": {
            "grid": f"run_compare(['lorenz63'], ['all'], budget_per_model={BUDGET}, workers=2)",
            "long_run": "compare's analysis: 4 exponents over 20 Lyapunov times; closed loop "
            "of 100 Lyapunov times against a fresh trajectory; standardised units",
            "true_lambda_1": 0.9056,
        },
        "cells": summary.cells,
        "failed": len(summary.failed_cells),
        "models": models,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "jax": jax.__version__,
            "diffdyn": __version__,
        },
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "wall_seconds": time.perf_counter() - started,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    atomic_write(RESULTS, lambda f: f.write(text.encode()))
    print(f"wrote {RESULTS}; the report is {run / 'report.md'}")


if __name__ == "__main__":
    main()
