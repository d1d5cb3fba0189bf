"""Continual learning: forecasting Lorenz-63 after its parameter ρ moves, with plastic traces
that keep adapting on the incoming context, against a non-plastic twin, an LSTM, and the twin
fine-tuned online by gradient steps.

Run: `.venv/bin/python experiments/plastic_continual.py [--budget 150]`. Writes
`experiments/results/plastic_continual.json` and `plastic_continual.png`.

Setting: Lorenz-63 (σ = 10, β = 8/3), dt = 0.01. Every model trains on 10 000 samples of the
regime ρ = 28 with its registry defaults (context 48, horizon 10, curriculum) for `--budget`
seconds through the core (`Forecaster.fit`):

- `plastic-rnn` (32 units, Hebbian trace in the recurrent state);
- `twin`: the same model with `-p plastic=false` (α = 0);
- `lstm` (64 units);
- `twin + online`: the trained twin, before each forecast, fine-tuned on the incoming context
  alone (`train.fit` on its 243 windows of 48 + 10 samples: 6 epochs = 48 Adam steps of 32
  windows, learning rate 1e-3, free-running loss, no validation) — the gradient-step way to
  adapt.

Then the regime changes: for ρ in {28 (no change), 35, 45}, a fresh trajectory; at 20 start
points every model reads `CONTEXT` = 300 samples of the new regime (3 time units: the plastic
trace adapts on all of them) and forecasts 600 samples closed loop. VPT at ε = 0.5 with the
training data's standard deviations, in Lyapunov times of the new regime (λ₁ computed here by
`analysis.lyapunov_spectrum`, float32, default settings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from diffdyn import Forecaster, __version__  # noqa: E402
from diffdyn.analysis import lyapunov_spectrum  # noqa: E402
from diffdyn.data import Scaler  # noqa: E402
from diffdyn.files import atomic_write  # noqa: E402
from diffdyn.metrics import valid_prediction_time  # noqa: E402
from diffdyn.systems import get_system, simulate  # noqa: E402
from diffdyn.train.config import TrainConfig  # noqa: E402
from diffdyn.train.fit import fit  # noqa: E402
from diffdyn.train.forecast import forecast_windows  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "plastic_continual.json"
FIGURE = RESULTS.with_suffix(".png")
DT, TRAIN_STEPS, EVAL_STEPS = 0.01, 10_000, 4_000
CONTEXT, HORIZON, STARTS = 300, 600, 20
REGIMES = (28.0, 35.0, 45.0)
ONLINE = TrainConfig(
    context=48, horizon=10, strategy="free", epochs=6, batch_size=32, learning_rate=1e-3,
    validation=0.0, patience=0, schedule="constant", warmup=0.0,
)  # fmt: skip


def fine_tuned_forecasts(model, values, starts, seed):
    """The twin fine-tuned on each start point's incoming context, then forecasting."""
    out = []
    for i, s in enumerate(starts):
        context = values[s : s + CONTEXT]
        tuned = fit(model, jnp.asarray(context), None, ONLINE,
                    key=jax.random.key(seed + i), progress=False).module  # fmt: skip
        out.append(forecast_windows(tuned, values, None, np.array([s]), CONTEXT, HORIZON)[0])
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    key = jax.random.key(args.seed)
    train = simulate(get_system("lorenz63"), steps=TRAIN_STEPS, dt=DT, key=key)
    models = {
        "plastic-rnn": Forecaster("plastic-rnn"),
        "twin": Forecaster("plastic-rnn", plastic="false"),
        "lstm": Forecaster("lstm"),
    }
    training = {}
    for name, model in models.items():
        print(f"== training {name}", flush=True)
        result = model.fit(train, budget=args.budget, seed=args.seed)
        training[name] = {"parameters": result.parameters, "steps": result.steps,
                          "stop_reason": result.stop_reason,
                          "hyperparameters": result.sidecar["hyperparameters"]}  # fmt: skip
    scaler = Scaler.from_dict(models["twin"].result.sidecar["scaler"])
    std = np.asarray(models["twin"].result.sidecar["scaler"]["scale"])

    regimes = {}
    for rho in REGIMES:
        system = get_system("lorenz63", rho=rho)
        lam = float(lyapunov_spectrum(system, n_exponents=1).exponents[0])
        fresh = simulate(system, steps=EVAL_STEPS, dt=DT, key=jax.random.key(100 + args.seed),
                         y0=[-3.0, 4.0, 20.0])  # fmt: skip
        raw = np.asarray(fresh.values)
        values = np.asarray(scaler.transform(raw), np.float32)
        starts = np.linspace(0, len(values) - CONTEXT - HORIZON, STARTS).round().astype(int)
        truths = np.stack([raw[s + CONTEXT : s + CONTEXT + HORIZON] for s in starts])
        forecasts = {
            name: forecast_windows(m.module, values, None, starts, CONTEXT, HORIZON)
            for name, m in models.items()
        }
        print(f"== rho {rho}: fine-tuning the twin at {STARTS} start points", flush=True)
        forecasts["twin + online"] = fine_tuned_forecasts(
            models["twin"].module, values, starts, args.seed
        )
        scores = {}
        for name, f in forecasts.items():
            with np.errstate(over="ignore", invalid="ignore"):
                f = np.asarray(scaler.inverse_transform(f))
                vpt = valid_prediction_time(f, truths, std, DT, lyapunov_exponent=lam)
            scores[name] = {"vpt_mean": vpt.mean, "vpt_std": vpt.std, "censored": vpt.censored,
                            "per_start": [float(v) for v in vpt.per_start]}  # fmt: skip
            print(f"rho {rho:g} {name:14s} VPT {vpt.mean:.2f} ± {vpt.std:.2f} Lyapunov times",
                  flush=True)  # fmt: skip
        regimes[f"{rho:g}"] = {"rho": rho, "lyapunov_exponent": lam, "models": scores}

    names = list(regimes[f"{REGIMES[0]:g}"]["models"])
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        means = [regimes[r]["models"][name]["vpt_mean"] for r in regimes]
        stds = [regimes[r]["models"][name]["vpt_std"] for r in regimes]
        ax.bar(np.arange(len(regimes)) + i * width, means, width, yerr=stds, label=name,
               capsize=2)  # fmt: skip
    ax.set_xticks(np.arange(len(regimes)) + 0.4 - width / 2)
    ax.set_xticklabels([f"ρ = {r}" + (" (trained)" if float(r) == 28 else "") for r in regimes])
    ax.set_ylabel("VPT (Lyapunov times, ε = 0.5)")
    ax.set_title("Lorenz-63, trained at ρ = 28, forecast after ρ moves")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=120)

    result = {
        "command": f"python experiments/plastic_continual.py --budget {args.budget:g} "
        f"--seed {args.seed}",
        "setting": {"dt": DT, "train_steps": TRAIN_STEPS, "train_rho": 28.0,
                    "eval_steps": EVAL_STEPS, "context": CONTEXT, "horizon": HORIZON,
                    "start_points": STARTS, "threshold": 0.5, "budget_seconds": args.budget,
                    "online_fine_tuning": {"epochs": ONLINE.epochs, "batch_size": 32,
                                           "learning_rate": 1e-3, "strategy": "free"}},
        "training": training,
        "regimes": regimes,
        "figure": FIGURE.name,
        "wall_seconds": time.perf_counter() - started,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "diffdyn_version": __version__,
    }  # fmt: skip
    text = (json.dumps(result, indent=2) + "\n").encode()
    atomic_write(RESULTS, lambda f: f.write(text))


if __name__ == "__main__":
    main()
