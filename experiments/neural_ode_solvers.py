"""Which solver trains the `neural-ode` forecaster best in `compare`'s 20-second budget?

Run: `.venv/bin/python experiments/neural_ode_solvers.py [--budget 20] [--seeds 1]`
Writes `experiments/results/neural_ode_solvers.json`.

Setting: what `diffdyn compare` runs for every model, one cell at a time: Lorenz-63 and
Mackey–Glass simulated with their defaults (seed s), the model trained with the registry's
training defaults for `--budget` seconds of wall-clock time (compiling and validation
included), then scored on a trajectory from another initial condition (`fresh=True`) at 50
start points: VPT (ε = 0.5, Lyapunov times) and NRMSE at one Lyapunov time (compare's
`nrmse_lead`). Each variant changes only the solver settings of the registry defaults:

- `rk4` with 1 or 2 fixed steps per sampling step (`diffdyn.systems.rk4_step` in a
  `lax.scan`, differentiated step by step);
- `tsit5` / `dopri5`: Diffrax's adaptive solvers with a PID controller (rtol 1e-3, atol 1e-4)
  and `RecursiveCheckpointAdjoint`.

Persistence is scored beside them as the baseline. Every run is a fresh process, as a
`diffdyn train` command is, so each pays its own compiling (in one process the second run of
a variant would reuse the first one's compiled programs). The machine is shared: the steps
each run managed and the load average are recorded with the scores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from diffdyn import __version__
from diffdyn.files import atomic_write
from diffdyn.train import evaluate_model, load_data, train_model

RESULTS = Path(__file__).parent / "results" / "neural_ode_solvers.json"
SYSTEMS = ("lorenz63", "mackey-glass")
VARIANTS = {
    "rk4, 1 step per sample": {"solver": "rk4", "substeps": 1},
    "rk4, 2 steps per sample": {"solver": "rk4", "substeps": 2},
    "tsit5 adaptive": {"solver": "tsit5"},
    "dopri5 adaptive": {"solver": "dopri5"},
}


def score(system: str, model: str, hyperparameters: dict, seed: int, budget: float) -> dict:
    series, source = load_data(system=system, seed=seed)
    fresh, fresh_source = load_data(system=system, seed=seed, fresh=True)
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0]
        result = train_model(
            series, source, model, Path(tmp) / "m", hyperparameters=hyperparameters,
            seed=seed, budget=budget, progress=False,
        )  # fmt: skip
        evaluation = evaluate_model(Path(tmp) / "m", fresh, fresh_source)
    lead = max(1, round(1 / (evaluation.lyapunov_exponent * evaluation.dt)))
    return {
        "system": system,
        "model": model,
        "hyperparameters": hyperparameters,
        "seed": seed,
        "vpt": evaluation.vpt.mean,
        "vpt_std": evaluation.vpt.std,
        "vpt_unit": evaluation.vpt.unit,
        "nrmse_at_one_lyapunov_time": float(evaluation.nrmse_curve[lead - 1]),
        "nrmse": evaluation.nrmse,
        "diverged_starts": evaluation.diverged,
        "steps": result.sidecar.get("steps"),
        "train_seconds": result.sidecar.get("train_seconds"),
        "compile_seconds": result.sidecar.get("compile_seconds"),
        "load_average_1min_at_start": load,
    }


def one_run(system: str, variant: str, seed: int, budget: float) -> dict:
    """`score` in a fresh Python process (its own compiling), returned as a dict."""
    command = [sys.executable, __file__, "--one", system, variant, str(seed), str(budget)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        system, variant, seed, budget = sys.argv[2:6]
        model, hyperparameters = (
            ("persistence", {}) if variant == "persistence" else ("neural-ode", VARIANTS[variant])
        )
        row = score(system, model, hyperparameters, int(seed), float(budget))
        print(json.dumps({"variant": variant, **row}, default=float))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    started = time.time()
    rows = []
    for seed in range(args.seeds):
        for system in SYSTEMS:
            for variant in ("persistence", *VARIANTS):
                row = one_run(system, variant, seed, args.budget)
                rows.append(row)
                print(
                    f"{system:13s} {variant:24s} seed {seed}: VPT {row['vpt']:.3f} ± "
                    f"{row['vpt_std']:.3f}, NRMSE@1LT {row['nrmse_at_one_lyapunov_time']:.3f}, "
                    f"{row['steps']} steps, compile {row['compile_seconds'] or 0:.1f} s",
                    flush=True,
                )
    record = {
        "experiment": "neural_ode_solvers",
        "budget_seconds": args.budget,
        "seeds": args.seeds,
        "rows": rows,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "diffdyn_version": __version__,
        "seconds": time.time() - started,
        "date": time.strftime("%Y-%m-%d"),
    }
    text = json.dumps(record, indent=2, ensure_ascii=False, default=float) + "\n"
    atomic_write(RESULTS, lambda f: f.write(text.encode()))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
