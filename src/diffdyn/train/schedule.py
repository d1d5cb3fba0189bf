"""Schedules in units of run progress: functions of p ∈ [0, 1], the fraction of the run done.

A run ends at its step count or its wall-clock budget (compiling and validation included),
whichever comes first; `train` measures progress as the larger of the two fractions, so a
budget-limited run warms up, anneals and reaches the end of its curriculum before it stops,
however few steps the budget allows.

A schedule multiplies the optimiser's updates (for Adam and its kin that is the learning rate):
`train(..., schedule=cosine(warmup=0.05))`. Any traceable `p -> factor` works too; the ones
here are small Equinox modules compared by value, so two runs with the same schedule share one
compilation of the training step.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

Schedule = Callable[[Float[Array, ""]], Float[Array, ""]]


class Constant(eqx.Module):
    """Factor 1 throughout."""

    def __call__(self, progress):
        return jnp.ones_like(progress)


class Cosine(eqx.Module):
    """Linear warm-up from 0 over the first `warmup` of the run, then a cosine decay to `final`.

    Loshchilov & Hutter 2017 (SGDR), one cycle: f(p) = final + (1 − final)·(1 + cos(π q))/2 with
    q = (p − warmup)/(1 − warmup).
    """

    warmup: float = eqx.field(static=True)
    final: float = eqx.field(static=True)

    def __call__(self, progress):
        p = jnp.clip(progress, 0.0, 1.0)
        ramp = jnp.minimum(1.0, p / self.warmup) if self.warmup > 0 else jnp.ones_like(p)
        q = jnp.clip((p - self.warmup) / (1.0 - self.warmup), 0.0, 1.0)
        return ramp * (self.final + (1.0 - self.final) * 0.5 * (1.0 + jnp.cos(jnp.pi * q)))


class Ramp(eqx.Module):
    """A value going linearly from `start` to `end` over the first `until` of the run, then
    held: the curriculum of a rollout horizon (1 → H over the first half of the run)."""

    start: float = eqx.field(static=True)
    end: float = eqx.field(static=True)
    until: float = eqx.field(static=True)

    def __call__(self, progress):
        p = jnp.clip(progress / self.until, 0.0, 1.0)
        return self.start + (self.end - self.start) * p


def constant() -> Schedule:
    """Factor 1 throughout."""
    return Constant()


def cosine(*, warmup: float = 0.0, final: float = 0.05) -> Schedule:
    """Warm-up over the first `warmup` of the run, then cosine decay to `final` (`Cosine`).

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
    return Cosine(float(warmup), float(final))


def ramp(start: float, end: float, *, until: float = 0.5) -> Schedule:
    """`start` → `end` linearly over the first `until` of the run, then held (`Ramp`).

    **Example:** `ramp(1, 20)(jnp.asarray(0.25))` is 10.5.
    """
    if not 0 < until <= 1:
        raise ValueError(f"ramp needs 0 < until <= 1; got {until}.")
    return Ramp(float(start), float(end), float(until))
