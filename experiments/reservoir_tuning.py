"""ESN and NG-RC tuned by gradient through their ridge readout, against the same models untuned.

Run: `.venv/bin/python experiments/reservoir_tuning.py [--replicates 3]` (about 5 minutes on
a 2-core machine). Writes `experiments/results/reservoir_tuning.json` atomically.

Two settings:

- **ANCHORS** (`experiments/ngrc_lorenz63.py`'s): Lorenz-63, dt = 0.025, 400 standardised
  training points, a fresh test trajectory from another initial condition, 50 start points,
  100 rows of context, 15 Lyapunov times of closed loop, VPT at ε = 0.5 in Lyapunov times
  (λ₁ = 0.9056); the main trajectory and `--replicates` more training/test trajectories. Each
  model with its registry defaults (`ridge="auto"`) untuned, then tuned by
  `diffdyn.train.tune_reservoir` (its defaults) twice: on the 400 training points only
  (cross-validated), and scoring the 5000-row validation trajectory that follows them (the
  one `ngrc_lorenz63.py`'s hand-tuning grid search chose on). The readout is always fitted on
  the 400 training points.
- **Another system, through the pipeline** (`train_forecaster` + `evaluate_model`, what
  `diffdyn train` and `compare` run): Mackey–Glass at its catalogue settings, 3000 samples,
  `-p tune=on` against `-p tune=off` within `compare`'s default 20-s budget, scored on a
  fresh trajectory (the evaluation's own defaults).

The default of `tune=auto` (`train.reservoir_tuning.tunes_by_default`) was chosen from these
figures (`docs/reservoir-tuning.md`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from ngrc_lorenz63 import THRESHOLD, forecast, split, vpt, windows

from diffdyn import __version__
from diffdyn.files import atomic_write
from diffdyn.models import ESN, NGRC
from diffdyn.train import evaluate_model, load_data, tune_reservoir
from diffdyn.train.training import train_forecaster

RESULTS = Path(__file__).parent / "results" / "reservoir_tuning.json"
OTHER_SYSTEM, OTHER_STEPS = "mackey-glass", 3000
BUDGET = 20.0  # seconds: a `compare` cell's default budget


def anchors(kind: str, seed: int | None) -> dict[str, Any]:
    (train, validation, test), _, train_std = split(seed)
    contexts, truths = windows(test)
    values = jnp.asarray(train, dtype=jnp.float32)
    model = ESN(3, key=jax.random.key(0)) if kind == "esn" else NGRC(3)
    untuned = model.fit_closed_form(values)
    before = vpt(forecast(untuned, contexts), truths, train_std)
    run: dict[str, Any] = {
        "seed": seed,
        "untuned_vpt_mean": before.mean,
        "untuned_vpt_std": before.std,
        "untuned_ridge": float(untuned.ridge),
    }
    for variant, held_out in (("tuned", None), ("tuned_on_validation", validation)):
        started = time.perf_counter()
        tuned, report = tune_reservoir(
            model, values, key=jax.random.key(1), progress=False,
            validation=None if held_out is None else jnp.asarray(held_out, jnp.float32),
        )  # fmt: skip
        fitted = tuned.fit_closed_form(values, choose_ridge=False)
        seconds = time.perf_counter() - started
        after = vpt(forecast(fitted, contexts), truths, train_std)
        print(
            f"  {kind} seed {seed} {variant}: VPT {before.mean:.2f} → {after.mean:.2f}; "
            f"validation loss {report.initial_loss:.4g} → {report.tuned_loss:.4g} in "
            f"{report.readout_solves} solves, {seconds:.0f} s; {report.tuned}",
            flush=True,
        )
        run[f"{variant}_vpt_mean"] = after.mean
        run[f"{variant}_vpt_std"] = after.std
        run[f"{variant}_seconds_incl_compile"] = seconds
        run[f"{variant}_tuning"] = report.to_json()
    return run


def pipeline(kind: str, tune: str) -> dict[str, Any]:
    series, source = load_data(system=OTHER_SYSTEM, steps=OTHER_STEPS, seed=0)
    fresh, fresh_source = load_data(system=OTHER_SYSTEM, steps=OTHER_STEPS, seed=0, fresh=True)
    with tempfile.TemporaryDirectory() as folder:
        _, result = train_forecaster(
            series, source, kind, Path(folder) / "m", hyperparameters={"tune": tune},
            budget=BUDGET, progress=False,
        )  # fmt: skip
        scores = evaluate_model(Path(folder) / "m", fresh, fresh_source, threshold=THRESHOLD)
    scored = scores.to_json()
    print(f"  {OTHER_SYSTEM} {kind} tune={tune}: VPT {scored['vpt']['mean']:.2f}", flush=True)
    return {
        "tune": tune,
        "vpt_mean": scored["vpt"]["mean"],
        "vpt_std": scored["vpt"]["std"],
        "start_points": scored["start_points"],
        "train_seconds": result.seconds,
        "tuning": None if result.tuning is None else result.tuning.to_json(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicates", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    record: dict[str, Any] = {
        "experiment": "reservoir_tuning",
        "settings": {
            "anchors": "experiments/ngrc_lorenz63.py's split: Lorenz-63, dt 0.025, 400 "
            "standardised training points; fresh test trajectory, 50 starts, 100-row context, "
            "15 Lyapunov times; VPT at epsilon 0.5 (per-variable training std), lambda 0.9056",
            "models": "registry defaults (ridge=auto), ESN key 0",
            "tuning": "diffdyn.train.tune_reservoir defaults (float64, 4 scaled + 16 "
            "space-filling starts, 50 Adam steps): 'tuned' on the 400 training points only "
            "(3-fold cross-validated closed-loop forecasts), 'tuned_on_validation' scoring "
            "the 5000-row validation trajectory that follows them (the one "
            "experiments/ngrc_lorenz63.py's hand-tuning grid searched on); the readout is "
            "fitted on the 400 training points either way",
            "hand_tuned_reference": "experiments/results/ngrc_lorenz63.json (grid search on "
            "the validation trajectory's VPT)",
            "other_system": f"{OTHER_SYSTEM}, {OTHER_STEPS} samples, through train_forecaster "
            f"+ evaluate_model (tune=on vs tune=off), budget {BUDGET:g} s",
            "threshold_epsilon": THRESHOLD,
        },
    }
    seeds = [None, *range(1, args.replicates + 1)]
    for kind in ("esn", "ngrc"):
        print(f"ANCHORS setting, {kind}", flush=True)
        runs = [anchors(kind, seed) for seed in seeds]
        record[f"anchors_{kind}"] = {
            "runs": runs,
            "untuned_mean_of_means": float(np.mean([r["untuned_vpt_mean"] for r in runs])),
            "tuned_mean_of_means": float(np.mean([r["tuned_vpt_mean"] for r in runs])),
            "tuned_on_validation_mean_of_means": float(
                np.mean([r["tuned_on_validation_vpt_mean"] for r in runs])
            ),
            "tuned_on_validation_min": float(min(r["tuned_on_validation_vpt_mean"] for r in runs)),
        }
    for kind in ("esn", "ngrc"):
        print(f"{OTHER_SYSTEM}, {kind}", flush=True)
        record[f"{OTHER_SYSTEM}_{kind}"] = [pipeline(kind, tune) for tune in ("off", "on")]
    record["machine"] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "diffdyn": __version__,
    }
    record["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    record["wall_seconds"] = time.perf_counter() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    atomic_write(RESULTS, lambda f: f.write(text.encode()))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
