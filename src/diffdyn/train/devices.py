"""How many local devices training shards its batches over (`train(..., devices=N)`).

On a GPU machine the devices are the GPUs. On CPU, XLA runs one device whose kernels use a
thread pool; `use_devices(N)` instead exposes N host devices (`jax_num_cpu_devices`) so that a
batch is split over N cores, each running its share of the small recurrent kernels. It must
run before JAX starts computing (the CLI calls it first, from `--devices`).
"""

from __future__ import annotations

import jax

from ..errors import DiffdynError

# Measured on 2 cores (bench/train_devices.py, `diffdyn train --system lorenz63`): 2 host
# devices ran the lstm forecaster 1.13x and the transformer 1.38x as fast as one, but the small
# tdnn step at 0.51x; no count is fastest for every model, so one device is the default.
DEFAULT_DEVICES = 1


def use_devices(count: int | None) -> int:
    """Make `count` local devices available (on CPU: host devices) and return how many to use.

    `None` keeps what JAX has and returns `DEFAULT_DEVICES`. Raises `DiffdynError` when more
    devices are asked for than there are (GPUs), or when JAX has already started with fewer
    host devices.
    """
    if count is None:
        return DEFAULT_DEVICES
    if count < 1:
        raise DiffdynError(f"--devices must be at least 1; got {count}.")
    if count > 1:
        # Only the CPU backend reads it; asking the backend first would start it too early.
        try:
            jax.config.update("jax_num_cpu_devices", count)
        except RuntimeError:
            pass  # JAX has started: use what it has, checked below
    have = len(jax.local_devices())
    if count > have:
        raise DiffdynError(
            f"--devices {count} asked for, but {have} local device(s) are available "
            "(JAX had already started); give --devices at most "
            f"{have}, or start a new process."
        )
    return count
