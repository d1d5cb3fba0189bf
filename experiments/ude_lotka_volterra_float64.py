"""The UDE study of `ude_lotka_volterra.py` in float64, trained towards convergence: does the
network recover the interaction when the optimiser is not the limit?

Run: `.venv/bin/python experiments/ude_lotka_volterra_float64.py` (about 4 minutes on 2 cores).
Writes `experiments/results/ude_lotka_volterra_float64.json` atomically.

Setting: the same data (Rackauckas et al. 2020, §2.1: x₀ = (0.44249296, 4.6280594), t ∈ [0, 3]
every 0.1, noise X + 0.05 · mean(X) · N(0, 1), seeds `SEEDS`, and the clean data), the same
hybrid (`PaperHybridLotkaVolterra`: αx, −δy known, the 2 → 5 → 5 → 5 → 2 network with
exp(−h²) for the rest) and the same plain neural ODE, each cast to float64 and fitted by
`identify(..., fit=["net"], learning_rate=0.1, steps=2000, refine_steps=3000)` (the main
study: float32, 600 Adam and 300 Levenberg–Marquardt steps). Discovery as there: `discover_terms`
on the network along the fitted trajectory, degrees 2 and 3, the threshold chosen on the
held-out last 20 % of the rows; target −βxy and +γxy within 10 % and no other term. Forecasts
from each model's fitted initial state to t = 6, RMSE over (3, 6] against the noise-free truth.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

import ude_lotka_volterra as study  # noqa: E402
from lv_hybrid import PaperHybridLotkaVolterra, PaperNeuralLotkaVolterra  # noqa: E402

from diffdyn.files import atomic_write  # noqa: E402
from diffdyn.identify import identify  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "ude_lotka_volterra_float64.json"
SEEDS = study.SEEDS
STEPS, REFINE_STEPS = 2000, 3000


def to_float64(module):
    return jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, module)


def run(seed: int, noise: float, truth) -> dict[str, Any]:
    series = study.data(seed, noise)
    series = series.replace(values=np.asarray(series.values, np.float64))
    record: dict[str, Any] = {"seed": seed, "noise": noise}
    fits = {}
    for name, cls in (
        ("hybrid", PaperHybridLotkaVolterra),
        ("neural_ode", PaperNeuralLotkaVolterra),
    ):
        started = time.perf_counter()
        fits[name] = identify(to_float64(cls()), series, fit=["net"], learning_rate=0.1,
                              steps=STEPS, refine_steps=REFINE_STEPS)  # fmt: skip
        record[f"{name}_fit"] = {
            "loss": fits[name].loss,
            "residual_rms": fits[name].noise,
            "levenberg_marquardt_steps": fits[name].refine_steps,
            "seconds": time.perf_counter() - started,
        }
    hybrid = fits["hybrid"]
    trajectory = np.asarray(hybrid.trajectory.values, np.float64)
    along = np.asarray(jax.vmap(hybrid.system.net)(jnp.asarray(trajectory)), np.float64)
    record["discovery_degree_2"], found2 = study.read_terms(trajectory, along, 2)
    record["discovery_degree_3"], found3 = study.read_terms(trajectory, along, 3)
    start = hybrid.initial_states[0]
    record["forecast_rmse_after_data"] = {
        "hybrid": study.forecast(hybrid.system, truth, start)[0]["rmse_after_data"],
        "neural_ode": study.forecast(
            fits["neural_ode"].system, truth, fits["neural_ode"].initial_states[0]
        )[0]["rmse_after_data"],
        "discovered_degree_2": study.forecast(
            study.discovered_system(found2, jnp.float64), truth, start
        )[0]["rmse_after_data"],
    }
    d = record["discovery_degree_2"]
    print(f"  noise {noise:g} seed {seed}: {d['equations']} (worst error "
          f"{d['worst_relative_error']:.3g}); RMSE (3, 6] {record['forecast_rmse_after_data']}",
          flush=True)  # fmt: skip
    return record


def main() -> None:
    started = time.perf_counter()
    truth = study.truth_to(study.T_FORECAST)
    truth = truth.replace(values=np.asarray(truth.values, np.float64))
    clean = run(0, 0.0, truth)
    noisy = [run(seed, study.NOISE, truth) for seed in SEEDS]
    record = {
        "experiment": "ude_lotka_volterra_float64",
        "settings": {
            "as": "experiments/ude_lotka_volterra.py (data, networks, discovery, forecast)",
            "dtype": "float64 (jax_enable_x64)",
            "fit": f"identify(..., fit=['net'], learning_rate=0.1, steps={STEPS}, "
            f"refine_steps={REFINE_STEPS})",
            "target": "-beta x y and +gamma x y within 10 % and no other term",
        },
        "clean": clean,
        "noisy": noisy,
        "seeds_meeting_the_discovery_target": {
            f"degree_{k}": sum(r[f"discovery_degree_{k}"]["met"] for r in noisy) for k in (2, 3)
        },
        "clean_meets_the_discovery_target": {
            f"degree_{k}": clean[f"discovery_degree_{k}"]["met"] for k in (2, 3)
        },
        "machine": study.machine(),
        "date": datetime.date.today().isoformat(),
        "total_seconds": time.perf_counter() - started,
    }
    text = json.dumps(study.finite(record), indent=2) + "\n"
    atomic_write(RESULTS, lambda f: f.write(text.encode()))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
