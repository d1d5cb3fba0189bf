"""Schedules in units of run progress: functions of p ∈ [0, 1], the fraction of the run done.

A run ends at its step count or its wall-clock budget, whichever comes first; `train` measures
progress as the larger of the two fractions, so a budget-limited run warms up, anneals and
reaches the end of its curriculum before it stops, however few steps the budget allows.

A schedule multiplies the optimiser's updates (for Adam and its kin that is the learning rate):
`train(..., schedule=cosine(warmup=0.05))`. They are plain functions of a traced scalar, so any
`p -> factor` written with `jax.numpy` works too.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jaxtyping import Array, Float

Schedule = Callable[[Float[Array, ""]], Float[Array, ""]]


def constant() -> Schedule:
    """Factor 1 throughout."""
    return lambda progress: jnp.ones_like(progress)


def cosine(*, warmup: float = 0.0, final: float = 0.05) -> Schedule:
    """Linear warm-up from 0 over the first `warmup` of the run, then a cosine decay to `final`.

    Loshchilov & Hutter 2017 (SGDR), one cycle: f(p) = final + (1 − final)·(1 + cos(π q))/2 with
    q = (p − warmup)/(1 − warmup).

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.train.schedule import cosine

    f = cosine(warmup=0.1)
    float(f(jnp.asarray(0.05))), float(f(jnp.asarray(1.0)))  # (0.5, 0.05)
    ```
    """
    if not 0 <= warmup < 1 or not 0 <= final <= 1:
        raise ValueError(
            f"cosine needs 0 <= warmup < 1 and 0 <= final <= 1; got {warmup}, {final}."
        )

    def schedule(progress):
        p = jnp.clip(progress, 0.0, 1.0)
        ramp = jnp.where(warmup > 0, jnp.minimum(1.0, p / max(warmup, 1e-12)), 1.0)
        q = jnp.clip((p - warmup) / (1.0 - warmup), 0.0, 1.0)
        return ramp * (final + (1.0 - final) * 0.5 * (1.0 + jnp.cos(jnp.pi * q)))

    return schedule


def ramp(start: float, end: float, *, until: float = 0.5) -> Schedule:
    """A value going linearly from `start` to `end` over the first `until` of the run, then
    held: the curriculum of a rollout horizon (1 → H over the first half of the run).

    **Example:** `ramp(1, 20)(jnp.asarray(0.25))` is 10.5.
    """
    if not 0 < until <= 1:
        raise ValueError(f"ramp needs 0 < until <= 1; got {until}.")

    def schedule(progress):
        p = jnp.clip(progress / until, 0.0, 1.0)
        return start + (end - start) * p

    return schedule
