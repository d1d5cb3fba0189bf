"""Costs of a closed-loop rollout, written as code: state cost, effort, terminal cost.

`Cost` is the quadratic one every built-in task uses; any callable `cost(rollout) -> scalar`
(`Rollout` of one trajectory) can take its place in `train_controller` (a horizon curriculum
then needs it to accept `scored` too, as `Cost` does).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .rollout import Rollout


def _array(x) -> Array:
    return jnp.asarray(x, dtype=float)


class Cost(eqx.Module):
    """J = mean_k Σ_i w_k q_i (o_ki − r_ki)² + ρ mean_k Σ_j (u_kj/U)² + Σ_i q^T_i (o_Ti − r_Ti)².

    The running state cost (weights `state` q per feature, over steps k = 1 … T, each step
    weighted by w_k = (k/T)^`late` normalised to mean 1, so `late` > 0 cares more about the end
    of the horizon), the effort (weight `effort` ρ on the control relative to `effort_scale` U,
    usually the actuator limit) and the terminal cost (weights `terminal` q^T on the last
    state). o are the control features, r the targets.

    **Example:**

    ```python
    from diffdyn.control import Cost

    cost = Cost(state=[1.0, 1.0, 0.1], effort=0.01, effort_scale=5.0, terminal=[0, 0, 0])
    ```
    """

    state: Float[Array, " f"] = eqx.field(converter=_array)
    effort: Float[Array, ""] = eqx.field(converter=_array)
    effort_scale: Float[Array, ""] = eqx.field(converter=_array)
    terminal: Float[Array, " f"] = eqx.field(converter=_array)
    late: float = eqx.field(static=True, default=0.0)

    def __call__(
        self, trajectory: Rollout, scored: Float[Array, " T"] | None = None
    ) -> Float[Array, ""]:
        """The cost of one rollout; `scored` (0/1 per step, a horizon curriculum) counts only
        the steps it marks, the terminal cost then applying at the last one marked."""
        error = trajectory.observations[1:] - trajectory.targets[1:]
        steps = error.shape[0]
        mask = jnp.ones(steps, error.dtype) if scored is None else scored.astype(error.dtype)
        weight = mask * (jnp.arange(1, steps + 1, dtype=error.dtype) / steps) ** self.late
        weight = weight / jnp.maximum(jnp.sum(weight), 1e-12)
        running = jnp.sum(weight * jnp.sum(self.state[None] * error**2, axis=-1))
        effort = jnp.sum((trajectory.controls / self.effort_scale) ** 2, axis=-1)
        effort = self.effort * jnp.sum(mask * effort) / jnp.maximum(jnp.sum(mask), 1.0)
        last = mask * (1 - jnp.concatenate([mask[1:], jnp.zeros(1, mask.dtype)]))
        final = jnp.sum(last * jnp.sum(self.terminal[None] * error**2, axis=-1))
        return running + effort + final
