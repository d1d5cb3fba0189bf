"""Resource checks made before work: will it fit in memory, and on disk? And the share of the
CPUs a worker process runs on.

A request that cannot fit is refused before anything is allocated or written, with the
estimate and what to change, instead of an out-of-memory kill, an aborted process or a disk
filled halfway. The estimates are deliberately simple upper-ish bounds; they refuse only what
clearly cannot work (more than `MEMORY_SHARE` of the memory available now, or of the free disk).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import jax
import numpy as np

from .errors import DiffdynError

MEMORY_SHARE = 0.8  # the most of the available memory (or free disk) a request may plan to use
CSV_BYTES_PER_VALUE = 25  # full float64 precision in text: "-1.2345678901234567e+01,"
BINARY_BYTES_PER_VALUE = 8
# Weights, gradients, Adam's two moments, the best and the last module kept by training.
TRAINING_COPIES = 6


def size_text(n: float) -> str:
    """Bytes in words: `size_text(2.5e9) == "2.5 GB"`."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (Linux `MemAvailable`; elsewhere
    the physical memory), or a very large number when it cannot be told."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 1 << 62


def check_memory(needed: float, what: str, advice: str) -> None:
    """Refuse when `needed` bytes are more than `MEMORY_SHARE` of the available memory."""
    have = available_memory()
    if needed > MEMORY_SHARE * have:
        raise DiffdynError(
            f"{what} needs about {size_text(needed)} of memory, more than the "
            f"{size_text(have)} this machine has available; {advice}"
        )


def parameter_count(module) -> int:
    """Array elements in a module, real or abstract (`jax.ShapeDtypeStruct` leaves)."""
    leaves = jax.tree_util.tree_leaves(module)
    arrays = [x for x in leaves if isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))]
    return int(sum(math.prod(x.shape) for x in arrays))


def check_training_memory(count: int, what: str, advice: str) -> None:
    """Refuse a model of `count` float32 parameters whose training state cannot fit."""
    check_memory(
        float(count) * 4 * TRAINING_COPIES,
        f"{what} has {count:.3g} parameters; training it",
        advice,
    )


# Values kept per step and unit for the backward pass (gates, activations, their gradients).
ACTIVATION_FACTOR = 16


def check_activation_memory(module, batch: int, steps: int, what: str, advice: str) -> None:
    """Refuse a training batch whose activations cannot fit: a rough estimate of
    `batch × steps × width × ACTIVATION_FACTOR` float32 values, where the width is the largest
    dimension of any parameter of `module` (real or abstract)."""
    leaves = jax.tree_util.tree_leaves(module)
    shapes = [
        x.shape for x in leaves if isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))
    ]
    width = max((max(shape) for shape in shapes if shape), default=1)
    check_memory(4.0 * batch * steps * width * ACTIVATION_FACTOR, what, advice)


def check_output_size(path: str | os.PathLike, rows: int, columns: int, what: str) -> None:
    """Refuse writing a `rows` × `columns` table to `path` (its suffix picks the format)
    when it cannot fit in memory or on the disk that holds `path`."""
    path = Path(path)
    values = float(rows) * float(columns)
    in_memory = values * 8 * 3  # float64 values, times, and the writer's own copy
    check_memory(in_memory, what, "ask for fewer steps.")
    per_value = CSV_BYTES_PER_VALUE if path.suffix.lower() == ".csv" else BINARY_BYTES_PER_VALUE
    on_disk = values * per_value
    try:
        free = shutil.disk_usage(path.parent if str(path.parent) else ".").free
    except OSError:
        return  # the path checks report a missing folder
    if on_disk > MEMORY_SHARE * free:
        raise DiffdynError(
            f"{what} would write about {size_text(on_disk)} to {path}, more than the "
            f"{size_text(free)} free on its disk; ask for fewer steps or write elsewhere."
        )


def worker_cpus(slot: int, workers: int, cpus: list[int]) -> set[int]:
    """The CPUs that worker `slot` of `workers` runs on, out of `cpus` (the parent's): an equal
    share of its own when there are at least as many CPUs as workers, else one, shared round
    robin.

    Left to the scheduler, each process's XLA runtime spreads its work over every CPU and the
    processes' threads contend: measured on 2 cores (2026-12-02, two LSTM trainings of 20 s
    side by side), 817 and 859 steps unpinned against 1207 and 1182 with one core each, about
    what one training alone takes (1222). Limiting XLA's threads instead
    (`--xla_cpu_multi_thread_eigen=false`) gave 928 and 934.

    **Example:** `worker_cpus(1, 2, [0, 1, 2, 3]) == {2, 3}`.
    """
    n = len(cpus)
    if workers >= n:
        return {cpus[slot % n]}
    slot %= workers
    return set(cpus[slot * n // workers : (slot + 1) * n // workers])


def pin_process(cpus: set[int]) -> None:
    """Keep every thread of this process (and what it starts later) on `cpus`. Call it before
    JAX starts computing: XLA sizes its thread pools from the CPUs it may use. Where the
    platform has no CPU affinity, or refuses it, the process runs unpinned."""
    if not hasattr(os, "sched_setaffinity"):
        return
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    for thread in threads:
        try:
            os.sched_setaffinity(thread, cpus)
        except OSError:
            continue
