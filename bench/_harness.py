"""Shared pieces of the benchmarks: timing, machine facts, and the result files.

Every benchmark compares diffdyn with the peer a user would pick instead, in one process, and
writes `bench/results/NAME.json` with `ratio = peer / diffdyn` (> 1: diffdyn is faster).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

RESULTS = Path(__file__).parent / "results"


def measure(fn: Callable[[], Any], *, repeats: int, warmup: int = 1) -> dict[str, Any]:
    """Time `fn()`: its first call, then `repeats` steady-state calls.

    **Arguments:**

    - `fn`: a function of no arguments; JAX results are waited for (`jax.block_until_ready`),
      so asynchronous dispatch is not mistaken for speed.
    - `repeats`: number of timed steady-state calls.
    - `warmup`: calls made before the steady-state ones; the first of them is timed as
      `first_call_s` (compile + run for a jitted function). With `warmup=0` (code that does
      not compile, e.g. SciPy) the first call is also the first steady-state sample.

    **Returns:** a dict with `first_call_s`, `steady_median_s`, `steady_min_s`, `steady_s` (all
    samples), `repeats`, `warmup`, and `compile_s = first_call_s − steady_median_s`.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}.")

    def timed() -> float:
        start = time.perf_counter()
        jax.block_until_ready(fn())
        return time.perf_counter() - start

    warm = [timed() for _ in range(warmup)]
    steady = [timed() for _ in range(repeats)]
    first = (warm or steady)[0]
    median = statistics.median(steady)
    return {
        "first_call_s": first,
        "steady_median_s": median,
        "steady_min_s": min(steady),
        "steady_s": steady,
        "repeats": repeats,
        "warmup": warmup,
        "compile_s": max(first - median, 0.0),
    }


def interleaved(
    runners: dict[str, Callable[[], Any]],
    rounds: int,
    repeats: int,
    steps: dict[str, int] | None = None,
) -> dict[str, dict]:
    """`measure` every runner in turn, `rounds` times, and pool each one's steady-state samples.

    Interleaving spreads any change of machine load over every side alike. Each runner gets one
    warm-up call (its `first_call_s`) in the first round only. `steps` names runners whose one
    call is that many optimiser steps (a `core_runner`): they are called
    `max(2, repeats // steps)` times a round and their samples are seconds **per step** (call
    time / steps); their `first_call_s` stays the whole first call, and `compile_s` is
    `first_call_s − steps × median`. **Returns:** name → a `measure` record whose `steady_s`
    holds all samples (median, min, repeats and `compile_s` recomputed from them).
    """
    steps = steps or {}
    results: dict[str, dict] = {}
    for round_ in range(rounds):
        for name, run in runners.items():
            k = steps.get(name, 1)
            calls = repeats if k == 1 else max(2, repeats // k)
            m = measure(run, repeats=calls, warmup=1 if round_ == 0 else 0)
            m["steady_s"] = [s / k for s in m["steady_s"]]
            if name not in results:
                results[name] = m | {"steps_per_call": k}
            else:
                results[name]["steady_s"] += m["steady_s"]
    for m in results.values():
        m["steady_median_s"] = statistics.median(m["steady_s"])
        m["steady_min_s"] = min(m["steady_s"])
        m["repeats"] = len(m["steady_s"])
        m["compile_s"] = max(m["first_call_s"] - m["steps_per_call"] * m["steady_median_s"], 0.0)
    return results


class FixedBatch(eqx.Module):
    """A batch source for `diffdyn.train.train` that returns the same batch at every step.

    The arrays are fields of the module, so they are arguments of the compiled chunk, not
    constants baked into it (as the core's documentation asks of a batch source).
    """

    batch: Any

    def __call__(self, key, step, progress):
        del key, step, progress
        return self.batch


def core_runner(
    module: Any,
    loss: Callable[..., Any],
    batch: Any,
    optimiser: Any,
    *,
    steps: int,
    devices: int | None = None,
    seed: int = 0,
) -> tuple[Callable[[], Any], dict[str, Any]]:
    """Train `module` for `steps` optimiser steps through the core, `diffdyn.train.train`.

    Every call starts from `module` again (so every call does the same work and the result can
    be checked), with the bench's fixed `batch` (`FixedBatch`) and `loss(module, batch, key)`,
    `steps_per_call=min(50, steps)` and `validate_every=steps`: one compiled call of `steps`
    steps, as a long run gets (there the default `validate_every`, `steps // 20`, is ≥ 50).
    `loss`, the batch source and `optimiser` are made once, so every call after the first
    reuses the compiled chunk. `devices=N` shards the batch's leading axis over N devices.

    **Returns:** `(run, last)`: `run()` trains and returns the module after the last step;
    `last["outcome"]` is the latest `TrainOutcome`.
    """
    from diffdyn.train import train

    source = FixedBatch(batch)
    key = jax.random.key(seed)
    last: dict[str, Any] = {}

    def run():
        last["outcome"] = train(
            module, loss, source, optimiser, key=key, steps=steps, validate_every=steps,
            steps_per_call=min(50, steps), devices=devices, progress=False,
        )  # fmt: skip
        return eqx.filter(last["outcome"].last_module, eqx.is_array)

    return run, last


def core_agreement(
    outcome: Any, reference_module: Any, reference_losses: list[float], tolerance: float = 1e-5
) -> dict[str, Any]:
    """Whether a core run (`outcome`) computed what the hand-written step did, from the same
    start for as many steps: the weights after the last step and the mean training loss.

    `reference_module` is the module after those steps, `reference_losses` each step's loss.
    """
    import numpy as np

    ours = jax.tree_util.tree_leaves(eqx.filter(outcome.last_module, eqx.is_inexact_array))
    theirs = jax.tree_util.tree_leaves(eqx.filter(reference_module, eqx.is_inexact_array))
    if len(ours) != len(theirs):
        raise AssertionError(f"{len(ours)} arrays trained by the core, {len(theirs)} by hand")
    weight = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(ours, theirs)
    )
    mean_loss = float(np.mean(reference_losses))
    core_loss = outcome.history[-1].loss
    return {
        "steps": outcome.steps,
        "failures": outcome.failures,
        "mean_loss_core": core_loss,
        "mean_loss_hand_written": mean_loss,
        "final_loss_hand_written": float(reference_losses[-1]),
        "mean_loss_abs_difference": abs(core_loss - mean_loss),
        "weights_max_abs_difference": weight,
        "ok": bool(
            outcome.steps == len(reference_losses)
            and outcome.failures == 0
            and abs(core_loss - mean_loss) < tolerance
            and weight < tolerance
        ),
    }


def medians(timings: dict[str, dict]) -> dict[str, float]:
    """name → steady-state median of an `interleaved` result."""
    return {name: m["steady_median_s"] for name, m in timings.items()}


def torch_one_thread_medians(
    diffdyn: Callable[[], Any],
    torch_step: Callable[[], Any],
    rounds: int,
    repeats: int,
    diffdyn_steps: int = 1,
) -> dict[str, float]:
    """Medians of `diffdyn` and of `torch_step` under `torch.set_num_threads(1)`, interleaved.

    On a loaded machine PyTorch's threads wait on each other; this shows how much of a ratio
    depends on that. PyTorch's thread count is restored afterwards. `diffdyn_steps`: optimiser
    steps per `diffdyn` call (a `core_runner`; its median is then per step). **Returns:**
    `{"diffdyn": s, "torch_1_thread": s}`.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = interleaved(
            {"diffdyn": diffdyn, "torch_1_thread": torch_step}, rounds, repeats,
            {"diffdyn": diffdyn_steps},
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return medians(single)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: hardware, load, library versions, thread settings."""
    thread_vars = (
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "XLA_FLAGS",
        "JAX_ENABLE_X64",
    )
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        # Other processes on a small machine slow both sides; the load says how busy it was.
        "load_average_1_5_15min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax_backend": jax.default_backend(),
        "versions": {
            p: _version(p)
            for p in ("diffdyn", "jax", "jaxlib", "equinox", "diffrax", "numpy", "scipy")
        },
        "env": {k: os.environ.get(k) for k in thread_vars},
    }


def comparison(
    *,
    compares: str,
    diffdyn: dict[str, Any],
    peer: dict[str, Any],
    peer_name: str,
    ratio_at_least: float,
    target: str,
    peer_multiplier: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """The standard record of one side-by-side comparison.

    **Arguments:**

    - `compares`: one sentence saying what is run on each side, with sizes and settings.
    - `diffdyn`, `peer`: `measure` results of the two sides.
    - `peer_name`: what the peer is (`"scipy.integrate.solve_ivp RK45"`).
    - `ratio_at_least`: the target on `ratio = peer median / diffdyn median`.
    - `target`: the target in words, as it was set.
    - `peer_multiplier`: the peer is this many runs of its measured call (e.g. 1024 solves of
      one initial condition against one vmapped solve of 1024).
    - `extra`: anything else worth keeping (settings, checks, diagnostics).
    """
    peer_median = peer_multiplier * peer["steady_median_s"]
    ratio = peer_median / diffdyn["steady_median_s"]
    return {
        "compares": compares,
        "peer": peer_name,
        "diffdyn_median_s": diffdyn["steady_median_s"],
        "peer_median_s": peer_median,
        "peer_multiplier": peer_multiplier,
        "diffdyn_compile_s": diffdyn["compile_s"],
        "ratio": ratio,
        "ratio_means": "peer median / diffdyn median; > 1 means diffdyn is faster",
        "target": {"ratio_at_least": ratio_at_least, "as_set": target},
        "target_met": bool(ratio >= ratio_at_least),
        "timings": {"diffdyn": diffdyn, "peer": peer},
        **extra,
    }


def write_result(name: str, payload: dict[str, Any], directory: Path | None = None) -> Path:
    """Write `directory/NAME.json` (default `bench/results`) atomically and print a summary.

    The benchmark name, the machine facts and the date are added to `payload`; the file is
    written to a temporary file first and moved into place, so a crash never leaves half a
    result behind.
    """
    directory = RESULTS if directory is None else Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        **payload,
        "machine": machine_facts(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    path = directory / f"{name}.json"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a result is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def print_table(title: str, records: dict[str, dict[str, Any]]) -> None:
    """A short Rich table: one row per comparison record (as built by `comparison`)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("benchmark", "diffdyn", "peer", "ratio", "target", "met", "compile"):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for name, r in records.items():
        table.add_row(
            name,
            f"{r['diffdyn_median_s']:.4g} s",
            f"{r['peer_median_s']:.4g} s",
            f"{r['ratio']:.3g}×",
            f"≥ {r['target']['ratio_at_least']:.3g}×",
            "[green]yes[/]" if r["target_met"] else "[red]no[/]",
            f"{r['diffdyn_compile_s']:.3g} s",
        )
    Console().print(table)


def parse_arguments(doc: str | None, argv: list[str] | None = None) -> argparse.Namespace:
    """The options every benchmark script takes: `--quick` and `--out DIR`."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the JSON (default bench/results; "
        "with --quick nothing is written unless --out is given)",
    )
    return parser.parse_args(argv)
