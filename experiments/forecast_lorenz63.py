"""Every registered model on Lorenz-63: train, then valid prediction time on a fresh trajectory.

Run: `.venv/bin/python experiments/forecast_lorenz63.py [MODEL ...] [--budget 300]`
Writes `experiments/results/forecast_lorenz63.json` (merged: rerunning one model keeps the
others), the source of the README's model table.

Setting: Lorenz-63 (σ=10, ρ=28, β=8/3), dt = 0.01, 20 000 training samples after a transient,
each model with its registry defaults and at most `--budget` seconds of training (default
300 s = 5 minutes on 2 cores); evaluation on a trajectory from another initial condition,
50 forecast start points, ε = 0.5, VPT in Lyapunov times (λ₁ = 0.9056).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from diffdyn import __version__
from diffdyn.models.registry import MODELS, model_spec
from diffdyn.train import evaluate_model, load_data, train_model

RESULTS = Path(__file__).parent / "results" / "forecast_lorenz63.json"
TRAIN_STEPS, EVAL_STEPS = 20_000, 6_000


def run(name: str, budget: float, seed: int) -> dict:
    series, source = load_data(system="lorenz63", steps=TRAIN_STEPS, seed=seed)
    fresh, fresh_source = load_data(system="lorenz63", steps=EVAL_STEPS, seed=seed, fresh=True)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = train_model(
            series, source, name, Path(tmp) / name, seed=seed, budget=budget, progress=True
        )
        wall = time.perf_counter() - started
        scores = evaluate_model(Path(tmp) / name, fresh, fresh_source, threshold=0.5).to_json()
    return {
        "vpt_lyapunov_times": scores["vpt"]["mean"],
        "vpt_std": scores["vpt"]["std"],
        "vpt_censored": scores["vpt"]["censored"],
        "start_points": scores["start_points"],
        "horizon_steps": scores["horizon"],
        "nrmse": scores["nrmse"],
        "smape": scores["smape"],
        "train_seconds": result.sidecar.get("train_seconds"),
        "wall_seconds_incl_compile": wall,
        "parameters": result.sidecar["parameters"],
        "stop_reason": result.stop_reason,
        "hyperparameters": result.sidecar["hyperparameters"],
        "training": result.sidecar["training"],
        "note": scores["note"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*")
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model_spec("persistence")  # loads the catalogue
    names = args.models or [n for n in MODELS if not n.startswith("test")]
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"models": {}}
    results["setting"] = {
        "system": "lorenz63",
        "dt": 0.01,
        "train_samples": TRAIN_STEPS,
        "eval_samples": EVAL_STEPS,
        "budget_seconds": args.budget,
        "threshold": 0.5,
        "lyapunov_exponent": 0.9056,
        "seed": args.seed,
        "command": "python experiments/forecast_lorenz63.py",
    }
    for name in names:
        print(f"== {name}", flush=True)
        results["models"][name] = run(name, args.budget, args.seed)
        results["models"][name]["date"] = time.strftime("%Y-%m-%d")
        results["machine"] = {
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "platform": platform.platform(),
            "diffdyn": __version__,
        }
        RESULTS.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=RESULTS.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, RESULTS)
        m = results["models"][name]
        print(
            f"{name}: VPT {m['vpt_lyapunov_times']:.2f} ± {m['vpt_std']:.2f} Lyapunov times, "
            f"trained {m['train_seconds']:.0f} s ({m['stop_reason']})",
            flush=True,
        )


if __name__ == "__main__":
    main()
