"""LSTM with attention vs stand-alone LSTM on chaotic systems (issue 5).

Run: `.venv/bin/python experiments/attention_vs_lstm.py --budget 120 --seeds 3
--systems lorenz63 mackey-glass` (the recorded study: 1125 s wall time on 2 shared cores;
add `rossler` for a third system). The same with `--budget 0 --seeds 1 --results
experiments/results/attention_vs_lstm_schedule.json` trains both models to their full 40-epoch
schedule with no time cap (the check that the attention model is not just short of time).
Writes `experiments/results/attention_vs_lstm.json` (merged: rerunning one system or seed keeps
the others) and `experiments/results/attention_vs_lstm.png` (drawn from the whole JSON).

Setting: two models, each with its registry defaults —
`lstm` (one LSTM layer, 64 units, predicts increments; context 32, training horizon 10) and
`seq2seq-attention` with `cell=lstm` (bidirectional LSTM encoder, 2 × 32 units, LSTM decoder
with additive attention, Bahdanau et al. 2015; context 32, training horizon 20) — on Lorenz-63
(dt = 0.01, λ₁ = 0.9056), Mackey–Glass (τ = 17, dt = 1, λ₁ = 0.00499; a delay system, where
attention's claimed benefit for long dependencies should show) and Rössler (dt = 0.05,
λ₁ = 0.0714). Per system and seed: 10 000 training samples at the system's default dt, the
same wall-clock training budget per model (`--budget` seconds, default 120, on a shared 2-core
machine), then evaluation on a fresh trajectory (another initial condition) at 50 start
points with ε = 0.5: valid prediction time (VPT) in Lyapunov times and the NRMSE curve, read
at 0.5, 1 and 2 Lyapunov times (lead steps = lead / (λ₁ dt), rounded). The two models of one
(system, seed) train back to back so that they share the machine's load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from diffdyn import __version__
from diffdyn.plot import save_figure
from diffdyn.systems.registry import system_class
from diffdyn.train import evaluate_model, load_data, train_model

RESULTS = Path(__file__).parent / "results" / "attention_vs_lstm.json"
TRAIN_STEPS = 10_000
EVAL_HORIZON_LT = 10  # evaluate_model's default horizon: 10 Lyapunov times
LEADS = (0.5, 1.0, 2.0)  # Lyapunov times at which the NRMSE is read
CURVE_POINTS = 201  # the stored NRMSE curve is sampled at this many lead steps
THRESHOLD = 0.5
STARTS = 50
SYSTEMS = ("lorenz63", "mackey-glass", "rossler")
MODELS: dict[str, dict[str, Any]] = {
    "lstm": {},
    "seq2seq-attention": {"cell": "lstm"},
}


def system_info(system: str) -> dict[str, Any]:
    cls = system_class(system)
    if cls.dt is None or cls.lyapunov_exponent is None:
        raise ValueError(f"{system} needs a default dt and a known Lyapunov exponent")
    dt, lam = float(cls.dt), float(cls.lyapunov_exponent)
    horizon = math.ceil(EVAL_HORIZON_LT / (lam * dt))
    return {
        "dt": dt,
        "lyapunov_exponent": lam,
        "lyapunov_time_steps": 1 / (lam * dt),
        "eval_horizon_steps": horizon,
        # evaluate_model keeps a quarter of the room for the spread of start points
        "eval_samples": max(6_000, 3 * horizon),
        "lead_steps": {f"{lead:g}": round(lead / (lam * dt)) for lead in LEADS},
    }


def run(system: str, model: str, seed: int, budget: float | None) -> dict[str, Any]:
    info = system_info(system)
    series, source = load_data(system=system, steps=TRAIN_STEPS, seed=seed)
    fresh, fresh_source = load_data(
        system=system, steps=info["eval_samples"], seed=seed, fresh=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / model
        started = time.perf_counter()
        result = train_model(
            series,
            source,
            model,
            folder,
            hyperparameters=MODELS[model],
            seed=seed,
            budget=budget,
            progress=False,
        )
        wall = time.perf_counter() - started
        scores = evaluate_model(
            folder, fresh, fresh_source, threshold=THRESHOLD, starts=STARTS
        ).to_json()
    curve = np.asarray(scores["nrmse_curve"])
    steps = np.unique(np.linspace(1, len(curve), CURVE_POINTS).round().astype(int))
    lt_per_step = info["lyapunov_exponent"] * info["dt"]
    history = result.sidecar.get("history", [])
    return {
        "vpt_lyapunov_times": scores["vpt"]["mean"],
        "vpt_std_over_starts": scores["vpt"]["std"],
        "vpt_unit": scores["vpt"]["unit"],
        "vpt_censored": scores["vpt"]["censored"],
        "start_points": scores["start_points"],
        "horizon_steps": scores["horizon"],
        "nrmse_at_leads": {lead: float(curve[n - 1]) for lead, n in info["lead_steps"].items()},
        "nrmse_curve": {
            "lead_lyapunov_times": [float(n * lt_per_step) for n in steps],
            "nrmse": [float(curve[n - 1]) for n in steps],
        },
        "train_seconds": result.sidecar.get("train_seconds"),
        "wall_seconds_incl_compile": wall,
        "parameters": result.sidecar["parameters"],
        "stop_reason": result.stop_reason,
        "epochs": len(history),
        "best_val_loss": result.sidecar.get("best_val_loss"),
        "history": history,
        "hyperparameters": result.sidecar["hyperparameters"],
        "training": result.sidecar["training"],
        "note": scores["note"],
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d"),
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def summarise(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean ± sample standard deviation (ddof = 1) over seeds."""
    seeds = sorted(runs, key=int)
    vpt = [runs[s]["vpt_lyapunov_times"] for s in seeds]
    mean, std = _mean_std(vpt)
    out: dict[str, Any] = {
        "seeds": [int(s) for s in seeds],
        "vpt_mean": mean,
        "vpt_std_over_seeds": std,
        "vpt_per_seed": vpt,
        "nrmse_at_leads": {},
        "parameters": runs[seeds[0]]["parameters"],
        "train_seconds_mean": float(np.mean([runs[s]["train_seconds"] for s in seeds])),
        "epochs_per_seed": [runs[s]["epochs"] for s in seeds],
        "stop_reasons": [runs[s]["stop_reason"] for s in seeds],
    }
    for lead in runs[seeds[0]]["nrmse_at_leads"]:
        m, s = _mean_std([runs[k]["nrmse_at_leads"][lead] for k in seeds])
        out["nrmse_at_leads"][lead] = {"mean": m, "std": s}
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    systems = [s for s in SYSTEMS if s in results["systems"]]
    if not systems:
        return
    figure = Figure(figsize=(4.6 * len(systems), 3.8), layout="constrained")
    axes = figure.subplots(1, len(systems), squeeze=False)[0]
    colours = {"lstm": "tab:blue", "seq2seq-attention": "tab:red"}
    for ax, system in zip(axes, systems, strict=True):
        entry = results["systems"][system]
        for model, colour in colours.items():
            block = entry["models"].get(model)
            if not block or not block["runs"]:
                continue
            runs = list(block["runs"].values())
            lead = np.asarray(runs[0]["nrmse_curve"]["lead_lyapunov_times"])
            curves = np.stack([r["nrmse_curve"]["nrmse"] for r in runs])
            curves = np.minimum(curves, 10.0)  # diverged forecasts would flatten the axis
            mean, std = curves.mean(axis=0), curves.std(axis=0)
            keep = lead <= 5.0
            s = block["summary"]
            label = (
                f"{model}{' (cell=lstm)' if model != 'lstm' else ''}\n"
                f"VPT {s['vpt_mean']:.2f} ± {s['vpt_std_over_seeds']:.2f} LT "
                f"({len(runs)} seeds)"
            )
            ax.plot(lead[keep], mean[keep], color=colour, label=label)
            ax.fill_between(
                lead[keep],
                np.maximum(mean - std, 0)[keep],
                (mean + std)[keep],
                color=colour,
                alpha=0.2,
            )
        ax.axhline(THRESHOLD, color="grey", linestyle=":", linewidth=1)
        ax.set_title(system)
        ax.set_xlabel("lead time (Lyapunov times)")
        ax.set_ylabel("NRMSE (mean over 50 starts)")
        ax.set_xlim(0, 5)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="upper left")
    budget = results["setting"]["budget_seconds"]
    figure.suptitle(
        "LSTM vs LSTM encoder–decoder with attention: NRMSE vs lead, mean ± std over seeds; "
        + (f"{budget:g} s of training per run" if budget else "no time cap (40-epoch schedule)"),
        fontsize=10,
    )
    save_figure(figure, path, force=True)


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--budget", type=float, default=120.0, help="seconds; 0: no cap, the 40-epoch schedule"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="JSON to merge into (figure beside it)"
    )
    parser.add_argument("--seeds", type=int, default=3, help="runs seeds 0 … SEEDS−1")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    results: dict[str, Any] = (
        json.loads(args.results.read_text()) if args.results.exists() else {"systems": {}}
    )
    results["setting"] = {
        "train_samples": TRAIN_STEPS,
        "budget_seconds": args.budget or None,
        "threshold": THRESHOLD,
        "start_points": STARTS,
        "leads_lyapunov_times": list(LEADS),
        "models": {m: {"hyperparameters_given": h} for m, h in MODELS.items()},
        "std": "sample standard deviation over seeds (ddof = 1)",
        "command": "python experiments/attention_vs_lstm.py "
        f"--budget {args.budget:g} --seeds {args.seeds} --systems {' '.join(args.systems)}"
        + ("" if args.results == RESULTS else f" --results {args.results}"),
    }
    started = time.perf_counter()
    for system in args.systems:
        entry = results["systems"].setdefault(system, {"models": {}})
        entry.update(system_info(system))
        for seed in range(args.seeds):
            for model in args.models:
                print(f"== {system} {model} seed {seed}", flush=True)
                block = entry["models"].setdefault(model, {"runs": {}})
                block["runs"][str(seed)] = r = run(system, model, seed, args.budget or None)
                block["summary"] = summarise(block["runs"])
                results["machine"] = {
                    "cpus": os.cpu_count(),
                    "load_average": os.getloadavg(),
                    "platform": platform.platform(),
                    "diffdyn": __version__,
                }
                results["study_wall_seconds_last_invocation"] = time.perf_counter() - started
                write(results, args.results)
                plot(results, args.results.with_suffix(".png"))
                leads = ", ".join(f"{k} LT {v:.3f}" for k, v in r["nrmse_at_leads"].items())
                print(
                    f"{system} {model} seed {seed}: VPT {r['vpt_lyapunov_times']:.2f} LT, "
                    f"NRMSE {leads}; {r['parameters']} parameters, trained "
                    f"{r['train_seconds']:.0f} s, {r['epochs']} epochs ({r['stop_reason']})"
                    + (f"; {r['note']}" if r["note"] else ""),
                    flush=True,
                )
    print(f"study wall time {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
