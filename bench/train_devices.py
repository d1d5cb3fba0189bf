"""Does `diffdyn train --devices 2` train faster than one device? Measured, model by model.

For each of the default `lstm`, `tdnn` and `transformer` forecasters (registered
hyperparameters and training options: batch 64, context 32, horizon 10, curriculum, cosine
schedule) on the series `diffdyn train --system lorenz63` simulates (10 000 steps, the
system's default), this script runs the path the CLI runs, `train_forecaster` (`fit` on the
one core `diffdyn.train.train`, validation every epoch), in a fresh process per run:

- one device: a process that never makes a second host device (what `diffdyn train` runs);
- two devices: a process that calls `use_devices(2)` first and passes `devices=2` (what
  `diffdyn train --devices 2` runs: the batch of 64 split into two halves of 32).

Each process measures (1) a cold run of a few epochs (`EPOCHS`), wall clock from the call to the
trained model (compilation, training steps, the validation after every epoch), (2) the same
run again in the same process (compiled already: steps and validation), and (3) steps alone:
`train` with fit's batch source, loss, optimiser and schedule, no validation, in calls of 50
steps after a warm-up call. The processes alternate (1, 2, 1, 2, …) so that load changes hit
both alike. Nothing here has a peer: the record says, per model, which device count is faster
and by how much (`speedup_2_over_1 = time(1 device) / time(2 devices)`).

Run `python bench/train_devices.py` (writes `bench/results/train_devices.json`; `--quick`:
one round, one epoch, writes nothing unless `--out DIR` is given).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODELS = ("lstm", "tdnn", "transformer")
# The transformer's step is ≈ 50× the LSTM's (bench/README.md): fewer epochs and rounds.
EPOCHS = {"lstm": 3, "tdnn": 3, "transformer": 1}
ROUNDS = {"lstm": 3, "tdnn": 3, "transformer": 2}
CORE_STEPS = 50  # steps per timed `train` call in measurement (3)
CORE_CALLS = {"lstm": 5, "tdnn": 5, "transformer": 2}


def worker(model_name: str, devices: int, epochs: int) -> dict[str, Any]:
    """One process's measurements (run with `--worker`)."""
    if devices > 1:
        from diffdyn.train.devices import use_devices

        use_devices(devices)  # first, as the CLI does
    import importlib

    import jax
    import jax.numpy as jnp
    import numpy as np

    # `diffdyn.train.fit` is also the name of a function: import the modules by name.
    data_source = importlib.import_module("diffdyn.train.data_source")
    fit = importlib.import_module("diffdyn.train.fit")
    loop = importlib.import_module("diffdyn.train.loop")
    from diffdyn.data.scale import Scaler
    from diffdyn.models.registry import build_model, model_spec
    from diffdyn.train.config import TrainConfig
    from diffdyn.train.training import train_forecaster

    series, source = data_source.load_data(system="lorenz63")
    options = {"epochs": epochs, "patience": 0}
    n = None if devices == 1 else devices

    def one_run():
        began = time.perf_counter()
        _, result = train_forecaster(series, source, model_name, None, options=options,
                                     progress=False, devices=n)  # fmt: skip
        return time.perf_counter() - began, result

    cold_s, result = one_run()
    warm_s, warm = one_run()
    steps = warm.steps

    # (3) steps alone: fit's batch source, loss, optimiser and schedule, no validation.
    spec = model_spec(model_name)
    config = TrainConfig.from_options(spec.training, **options)
    values = jnp.asarray(Scaler.fit(series).transform(np.asarray(series.values)))
    starts = fit.window_starts(values.shape[0], config)
    batches = fit.WindowBatches(values, None, jnp.asarray(starts), config.context,
                                config.horizon, config.batch_size, config.strategy)  # fmt: skip
    module = build_model(model_name, series.dim, 0, dt=float(series.dt or 1.0),
                         key=jax.random.key(0))  # fmt: skip
    loss = fit._RolloutLoss(fit.rollout_length(config))

    def steps_only():
        return loop.train(
            module, loss, batches, fit.make_optimiser(config), key=jax.random.key(1),
            steps=CORE_STEPS, validate_every=CORE_STEPS, schedule=fit.make_schedule(config),
            devices=n, progress=False,
        )  # fmt: skip

    steps_only()  # compiles
    per_step = []
    for _ in range(CORE_CALLS[model_name]):
        began = time.perf_counter()
        out = steps_only()
        jax.block_until_ready(out.last_module)
        per_step.append((time.perf_counter() - began) / CORE_STEPS)
    return {
        "model": model_name,
        "devices": devices,
        "local_devices": len(jax.local_devices()),
        "epochs": epochs,
        "steps": steps,
        "cold_run_s": cold_s,
        "warm_run_s": warm_s,
        "warm_steps_per_s": None if not steps else steps / warm_s,
        "steps_only_s_per_step": per_step,
        "steps_only_median_s_per_step": statistics.median(per_step),
        "train_seconds_reported": warm.seconds,
        "parameters": warm.parameters,
        "stop_reason": warm.stop_reason,
    }


def run_worker(model_name: str, devices: int, epochs: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", model_name, str(devices), str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{model_name} on {devices} device(s) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median_of(key: str, devices: int) -> float:
        return statistics.median(r[key] for r in runs if r["devices"] == devices)

    out: dict[str, Any] = {}
    for key in ("cold_run_s", "warm_run_s", "steps_only_median_s_per_step"):
        one, two = median_of(key, 1), median_of(key, 2)
        out[key] = {"1_device": one, "2_devices": two, "speedup_2_over_1": one / two}
    steps = runs[0]["steps"]
    out["steps_per_run"] = steps
    out["warm_steps_per_s"] = {
        "1_device": steps / out["warm_run_s"]["1_device"],
        "2_devices": steps / out["warm_run_s"]["2_devices"],
    }
    out["faster"] = "2 devices" if out["warm_run_s"]["speedup_2_over_1"] > 1 else "1 device"
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        print(json.dumps(worker(argv[1], int(argv[2]), int(argv[3]))))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, one epoch")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args(argv)
    rounds = {m: 1 if args.quick else ROUNDS[m] for m in args.models}
    epochs = {m: 1 if args.quick else EPOCHS[m] for m in args.models}

    sys.path.insert(0, str(Path(__file__).parent))
    from _harness import write_result

    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.models}
    for round_ in range(max(rounds.values())):
        for model_name in args.models:
            if round_ >= rounds[model_name]:
                continue
            for devices in (1, 2) if round_ % 2 == 0 else (2, 1):
                r = run_worker(model_name, devices, epochs[model_name])
                runs[model_name].append(r)
                print(
                    f"{model_name:12s} devices={devices}: cold {r['cold_run_s']:.2f} s, warm "
                    f"{r['warm_run_s']:.2f} s ({r['steps']} steps), steps alone "
                    f"{1e3 * r['steps_only_median_s_per_step']:.2f} ms/step",
                    flush=True,
                )
    models = {m: summarise(rs) for m, rs in runs.items()}
    record = {
        "kind": "measurement (no peer): 1 device against 2 host devices",
        "compares": (
            "`diffdyn train --system lorenz63 --model M` (train_forecaster, a few epochs, "
            "registered options: batch 64, context 32, horizon 10) in fresh processes, one "
            "device against --devices 2 (two host devices, the batch split in halves)"
        ),
        "settings": {
            "models": list(args.models),
            "epochs": epochs,
            "rounds": rounds,
            "processes_per_round": "one per device count, alternating order",
            "core_steps_per_call": CORE_STEPS,
            "core_calls": CORE_CALLS,
        },
        "models": models,
        "runs": runs,
        "quick": args.quick,
    }
    for m, s in models.items():
        w = s["warm_run_s"]
        print(
            f"{m}: warm run {w['1_device']:.2f} s (1 device) vs {w['2_devices']:.2f} s "
            f"(2 devices): 2 devices {w['speedup_2_over_1']:.2f}× the speed; steps alone "
            f"{s['steps_only_median_s_per_step']['speedup_2_over_1']:.2f}×; cold "
            f"{s['cold_run_s']['speedup_2_over_1']:.2f}×"
        )
    if args.out is not None or not args.quick:
        print(f"wrote {write_result('train_devices', record, args.out)}")


if __name__ == "__main__":
    main()
