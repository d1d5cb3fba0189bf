"""Train a forecaster for the quantity it is judged by: MSE vs soft-VPT vs soft-DTW losses.

Run: `.venv/bin/python experiments/soft_vpt_loss.py [--seeds 3] [--epochs 4]`
Writes `experiments/results/soft_vpt_loss.json`.

Setting: Lorenz-63 simulated with its defaults (dt = 0.01, 10 000 samples, seed s); the `gru`
forecaster (hidden 32, one layer) trained by `train_model` — the one core — with the registry's
training defaults except a longer horizon (40 samples, so that the soft VPT has steps to count)
and `--epochs`; the three runs of a seed differ **only** in `TrainConfig.loss`:

- `mse`: the mean squared error of the rollout (the default);
- `soft-vpt`: minus the soft count Σₜ Πₛ≤ₜ σ((ε − eₛ)/τ) of rollout steps whose NRMSE stays
  under ε = 0.5 (τ = 0.1), over the scored steps (`train/losses.py`);
- `soft-dtw`: the soft-DTW divergence (γ = 0.1) per scored step.

Validation (best-model selection) uses the run's own loss. Every model is then scored the usual
way (`evaluate_model`, `metrics.valid_prediction_time`): on a trajectory from another initial
condition (`fresh=True`), VPT at ε = 0.5 in Lyapunov times (λ₁ = 0.9056) over the evaluation's
start points, and NRMSE at one Lyapunov time. Every run is a fresh process, so each pays its
own compiling. Reported whatever it shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from diffdyn import __version__
from diffdyn.files import atomic_write
from diffdyn.train import evaluate_model, load_data, train_model

RESULTS = Path(__file__).parent / "results" / "soft_vpt_loss.json"
LOSSES = ("mse", "soft-vpt", "soft-dtw")
MODEL, HYPERPARAMETERS = "gru", {"hidden": 32, "layers": 1}


def score(loss: str, seed: int, epochs: int) -> dict:
    series, source = load_data(system="lorenz63", seed=seed)
    fresh, fresh_source = load_data(system="lorenz63", seed=seed, fresh=True)
    options = {"loss": loss, "horizon": 40, "epochs": epochs, "patience": 0}
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        result = train_model(
            series, source, MODEL, Path(tmp) / "m", hyperparameters=HYPERPARAMETERS,
            options=options, seed=seed, progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        evaluation = evaluate_model(Path(tmp) / "m", fresh, fresh_source)
    lead = max(1, round(1 / (evaluation.lyapunov_exponent * evaluation.dt)))
    return {
        "loss": loss,
        "seed": seed,
        "vpt": evaluation.vpt.mean,
        "vpt_std": evaluation.vpt.std,
        "vpt_unit": evaluation.vpt.unit,
        "vpt_threshold": evaluation.vpt.threshold,
        "vpt_censored": evaluation.vpt.censored,
        "start_points": len(evaluation.vpt.per_start),
        "nrmse_at_one_lyapunov_time": float(evaluation.nrmse_curve[lead - 1]),
        "steps": result.sidecar.get("steps"),
        "train_seconds": seconds,
        "compile_seconds": result.sidecar.get("compile_seconds"),
        "best_validation_loss": min(r["val_loss"] for r in result.sidecar["history"]),
        "load_average_1min_at_start": load,
    }


def one_run(loss: str, seed: int, epochs: int) -> dict:
    """`score` in a fresh Python process (its own compiling), returned as a dict."""
    command = [sys.executable, __file__, "--one", loss, str(seed), str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(rows: list[dict]) -> dict:
    out = {}
    for loss in LOSSES:
        vpts = [r["vpt"] for r in rows if r["loss"] == loss]
        out[loss] = {
            "vpt_mean_over_seeds": statistics.mean(vpts),
            "vpt_per_seed": vpts,
            "vpt_min": min(vpts),
            "vpt_max": max(vpts),
        }
    mse = {r["seed"]: r["vpt"] for r in rows if r["loss"] == "mse"}
    for loss in LOSSES[1:]:
        gains = [r["vpt"] - mse[r["seed"]] for r in rows if r["loss"] == loss]
        out[loss]["vpt_minus_mse_per_seed"] = gains
        out[loss]["seeds_better_than_mse"] = sum(g > 0 for g in gains)
    return out


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        loss, seed, epochs = sys.argv[2:5]
        print(json.dumps(score(loss, int(seed), int(epochs)), default=float))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    started = time.time()
    rows = []
    for seed in range(args.seeds):
        for loss in LOSSES:
            row = one_run(loss, seed, args.epochs)
            rows.append(row)
            print(
                f"{loss:9s} seed {seed}: VPT {row['vpt']:.3f} ± {row['vpt_std']:.3f} "
                f"{row['vpt_unit']} (ε = {row['vpt_threshold']}), NRMSE@1LT "
                f"{row['nrmse_at_one_lyapunov_time']:.3f}, {row['steps']} steps, "
                f"{row['train_seconds']:.0f} s",
                flush=True,
            )
    record = {
        "experiment": "soft_vpt_loss",
        "model": MODEL,
        "hyperparameters": HYPERPARAMETERS,
        "training": {"horizon": 40, "epochs": args.epochs, "patience": 0,
                     "soft_vpt_epsilon": 0.5, "soft_vpt_temperature": 0.1,
                     "soft_dtw_gamma": 0.1, "other options": "the gru registry defaults"},
        "seeds": args.seeds,
        "summary": summary(rows),
        "rows": rows,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "diffdyn_version": __version__,
        "seconds": time.time() - started,
        "date": time.strftime("%Y-%m-%d"),
    }  # fmt: skip
    text = json.dumps(record, indent=2, ensure_ascii=False, default=float) + "\n"
    atomic_write(RESULTS, lambda f: f.write(text.encode()))
    print(f"wrote {RESULTS}")
    for loss, s in record["summary"].items():
        print(f"{loss}: mean VPT {s['vpt_mean_over_seeds']:.3f} (per seed {s['vpt_per_seed']})")


if __name__ == "__main__":
    main()
