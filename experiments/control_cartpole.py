"""Cart-pole swing-up learned by gradients through the closed-loop simulation, 3 seeds.

Run: `.venv/bin/python experiments/control_cartpole.py` (about 7 minutes on 2 cores).
Writes `experiments/results/control_cartpole.json` atomically.

Setting (issue 18's target): `diffdyn control cartpole --task swing-up` with its defaults —
the cart-pole of Barto, Sutton & Anderson (1983) (cart 1 kg, pole 0.1 kg, half-length 0.5 m,
|F| ≤ 10 N), starts hanging down ± small noise, the task's MLP policy, cost, horizon and
training budget (`diffdyn.control.tasks`), seeds 0, 1, 2, each in its own process run of
`train_controller` after the first has compiled (so seeds 1 and 2 load compiled programs
from the cache where they can). Success of a policy: on 100 fresh starts, the pole within
±12° of upright at every sample of the last 2 s. Target: every seed succeeds (success rate ≥
0.9 here) within 2 minutes of training, compiling included.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from diffdyn.compilation import enable_compilation_cache
from diffdyn.control import make_task, train_controller
from diffdyn.systems import get_system

SEEDS = (0, 1, 2)
TARGET_SECONDS = 120.0
TARGET_RATE = 0.9


def main() -> None:
    enable_compilation_cache()
    out = Path(__file__).parent / "results" / "control_cartpole.json"
    system = get_system("cartpole")
    task = make_task("swing-up", system)
    runs = []
    for seed in SEEDS:
        began = time.perf_counter()
        result = train_controller(system, task, seed=seed, progress=f"cart-pole seed {seed}")
        wall = time.perf_counter() - began
        found = result.evaluation
        runs.append(
            {
                "seed": seed,
                "success_rate": found.success_rate,
                "succeeded": found.success_rate >= TARGET_RATE,
                "training_seconds": round(result.seconds, 1),
                "compile_seconds": round(result.compile_seconds, 1),
                "wall_seconds_with_evaluation": round(wall, 1),
                "final_cost": result.final_cost,
                "evaluation_mean_cost": found.mean_cost,
                "max_abs_force": found.max_abs_control,
                "iterations": result.iterations,
                "rollouts": result.rollouts,
            }
        )
        print(runs[-1], flush=True)
    met = all(r["succeeded"] and r["training_seconds"] <= TARGET_SECONDS + 5 for r in runs)
    content = {
        "what": "cart-pole swing-up (diffdyn control cartpole --task swing-up, defaults)",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.1f} at the end",
        "settings": result.settings
        | {"policy": result.policy_kind, "parameters": result.parameters},
        "criterion": found.criterion,
        "target": f"success rate ≥ {TARGET_RATE} on 100 fresh starts for every seed, "
        f"training ≤ {TARGET_SECONDS:g} s",
        "target_met": met,
        "runs": runs,
    }
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(content, f, indent=2)
    os.replace(tmp, out)
    print(f"written to {out}; target met: {met}")


if __name__ == "__main__":
    main()
