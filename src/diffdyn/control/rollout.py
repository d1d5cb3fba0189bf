"""The closed-loop rollout: a policy driving a controlled system, as one `lax.scan`.

The policy acts every sampling step `dt` and its control is held over the step (a zero-order
hold); within it a flow takes `substeps` classical RK4 steps (`systems.flow.rk4_step`), a map
one iteration with u as its `exog`. For long horizons the gradient can be truncated: every
`truncation` sampling steps the state is passed on through `jax.lax.stop_gradient`, so the
backward pass sees windows of at most that many steps (truncated backpropagation through
time) — the value of the rollout is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..systems.controlled import ControlledSystem, controlled_stepper

Policy = Callable[[Array, Array], Array]


class Rollout(eqx.Module):
    """One closed-loop trajectory (or a batch of them, with a leading batch axis).

    - `times` `[T+1]`: sampling times, from 0.
    - `states` `[T+1, n]`: the system's state at each sampling time, the initial one first.
    - `observations` `[T+1, f]`: what the policy saw (`system.observe_for_control`).
    - `targets` `[T+1, f]`: the target at each time, in the same features.
    - `controls` `[T, m]`: the control held over each sampling step.
    """

    times: Float[Array, " T1"]
    states: Float[Array, "T1 n"]
    observations: Float[Array, "T1 f"]
    targets: Float[Array, "T1 f"]
    controls: Float[Array, "T m"]


def rollout(
    system: ControlledSystem,
    policy: Policy,
    y0: Float[Array, " n"],
    targets: Float[Array, "T1 f"],
    *,
    dt: float,
    substeps: int = 1,
    truncation: int | None = None,
) -> Rollout:
    """Run `policy` in closed loop on `system` from `y0` for `len(targets) − 1` sampling steps.

    **Arguments:**

    - `system`: an `AbstractControlledFlow` or `AbstractControlledMap`.
    - `policy(observation, target) -> u` (e.g. `MLPPolicy`), on one example.
    - `y0` `[n]`: the initial state; `targets` `[T+1, f]`: the target at each sampling time.
    - `dt`: the sampling step (the control is held over it); `substeps`: RK4 steps per `dt`
      (a map takes one iteration per step whatever `dt` says).
    - `truncation`: cut the gradient through the state every that many steps (`None`: full
      backpropagation through the whole rollout).

    **Returns:** a `Rollout`. `jax.vmap` it over `y0` for a batch.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.control import LinearPolicy, rollout
    from diffdyn.systems import get_system

    pendulum = get_system("pendulum")
    policy = LinearPolicy(3, 1, limit=5.0)
    targets = jnp.tile(jnp.asarray([-1.0, 0.0, 0.0]), (101, 1))  # upright, 100 steps
    out = rollout(pendulum, policy, jnp.asarray([0.1, 0.0]), targets, dt=0.05, substeps=2)
    out.states.shape, out.controls.shape  # (101, 2), (100, 1)
    ```
    """
    from ..systems.controlled import AbstractControlledFlow

    is_flow = isinstance(system, AbstractControlledFlow)
    n_sub = int(substeps) if is_flow else 1
    h = dt / n_sub
    step = controlled_stepper(system, h)
    steps = targets.shape[0] - 1
    times = dt * jnp.arange(steps + 1, dtype=y0.dtype)
    if truncation is not None and truncation >= 1:
        cut = (jnp.arange(1, steps + 1) % int(truncation)) == 0
    else:
        cut = jnp.zeros(steps, dtype=bool)

    def sample(state, inputs):
        t, target, cut_here = inputs
        u = policy(system.observe_for_control(state), target)

        def substep(j, s):
            return step(s, t + j * h, u)

        new = jax.lax.fori_loop(0, n_sub, substep, state)
        # The value passes unchanged; the gradient only where the window does not end here.
        keep = jnp.where(cut_here, 0.0, 1.0).astype(new.dtype)
        held = jax.lax.stop_gradient(new)
        new = held + keep * (new - held)
        return new, (new, u)

    _, (states, controls) = jax.lax.scan(sample, y0, (times[:-1], targets[:-1], cut))
    states = jnp.concatenate([y0[None], states])
    observations = jax.vmap(system.observe_for_control)(states)
    return Rollout(times, states, observations, targets, controls)
