"""Policies: a control u from what the controller sees, with an optional actuator limit.

A policy is an Equinox module called on **one unbatched observation**: `policy(observation,
target) -> u`, `observation` and `target` in the system's control features
(`system.observe_for_control`), `u` of shape `[m]`. With an actuator limit U the raw output is
saturated smoothly, u = U·tanh(raw/U): |u| < U always, u ≈ raw for |raw| ≪ U, and the
gradient never vanishes abruptly as a hard clip's does.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def saturate(raw: Float[Array, " m"], limit: float | None) -> Float[Array, " m"]:
    """Smooth saturation `limit·tanh(raw/limit)` (the identity when `limit` is `None`).

    As the scale shrinks relative to `raw` it tends to the hard clip `clip(raw, −limit, limit)`
    with its sign; for |raw| ≪ limit it is `raw` to third order.

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.control import saturate

    saturate(jnp.asarray([0.1, 100.0]), 2.0)  # ≈ [0.1, 2.0]
    ```
    """
    if limit is None:
        return raw
    return limit * jnp.tanh(raw / limit)


class LinearPolicy(eqx.Module):
    """Linear state feedback u = sat(K (observation − target) + b), with an optional
    feedforward on the target: u = sat(K (o − r) + F r + b).

    The feedforward term lets a linear policy lead a moving target instead of lagging it: for
    a sinusoidal reference, F r is any phase and amplitude of the sinusoid (r holds its value
    and its derivative), such as the force that a cart-pole needs ahead of the motion.

    **Arguments:** `features` (observation size), `controls` (m), `limit` (actuator limit or
    `None`), `feedforward` (learn F as well), `key` (unused: K, F and b start at zero, the
    uncontrolled system).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.control import LinearPolicy

    policy = LinearPolicy(3, 1, limit=5.0, key=jax.random.key(0))
    policy(jnp.ones(3), jnp.zeros(3)).shape  # (1,)
    ```
    """

    gain: Float[Array, "m f"]
    bias: Float[Array, " m"]
    forward: Float[Array, "m f"] | None
    limit: float | None = eqx.field(static=True)

    def __init__(self, features: int, controls: int, *, limit: float | None = None,
                 feedforward: bool = False, key: PRNGKeyArray | None = None):  # fmt: skip
        self.gain = jnp.zeros((controls, features))
        self.bias = jnp.zeros((controls,))
        self.forward = jnp.zeros((controls, features)) if feedforward else None
        self.limit = None if limit is None else float(limit)

    def __call__(
        self, observation: Float[Array, " f"], target: Float[Array, " f"]
    ) -> Float[Array, " m"]:
        raw = self.gain @ (observation - target) + self.bias
        if self.forward is not None:
            raw = raw + self.forward @ target
        return saturate(raw, self.limit)


class MLPPolicy(eqx.Module):
    """A tanh multilayer perceptron u = sat(U · MLP([(o − target)/s, target/s])).

    The network sees the error and the target (so one network can track a moving target), each
    divided by `input_scale` s (the typical size of each feature, e.g. an angular velocity of
    10); its output is multiplied by `output_scale` U (default: the limit), so the raw control
    is of the actuator's size from the start. The last layer starts at a tenth of its default
    initialisation: the first rollouts are nearly uncontrolled rather than random bang-bang.

    **Arguments:** `features`, `controls`, `hidden` (width), `depth` (hidden layers), `limit`,
    `input_scale` (a tuple of `features` numbers, default ones), `output_scale`, `key`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.control import MLPPolicy

    policy = MLPPolicy(5, 1, hidden=32, limit=10.0, key=jax.random.key(0))
    policy(jnp.ones(5), jnp.zeros(5)).shape  # (1,)
    ```
    """

    mlp: eqx.nn.MLP
    limit: float | None = eqx.field(static=True)
    input_scale: tuple[float, ...] = eqx.field(static=True)
    output_scale: float = eqx.field(static=True)

    def __init__(self, features: int, controls: int, *, hidden: int = 64, depth: int = 2,
                 limit: float | None = None, input_scale: tuple[float, ...] | None = None,
                 output_scale: float | None = None, key: PRNGKeyArray):  # fmt: skip
        mlp = eqx.nn.MLP(2 * features, controls, hidden, depth, activation=jnp.tanh, key=key)
        last = mlp.layers[-1]
        self.mlp = eqx.tree_at(lambda m: m.layers[-1].weight, mlp, 0.1 * last.weight)
        self.limit = None if limit is None else float(limit)
        scale = (1.0,) * features if input_scale is None else tuple(map(float, input_scale))
        if len(scale) != features:
            raise ValueError(f"input_scale needs {features} numbers; got {len(scale)}.")
        self.input_scale = scale
        self.output_scale = float(output_scale or limit or 1.0)

    def __call__(
        self, observation: Float[Array, " f"], target: Float[Array, " f"]
    ) -> Float[Array, " m"]:
        scale = jnp.asarray(self.input_scale, observation.dtype)
        inputs = jnp.concatenate([(observation - target) / scale, target / scale])
        return saturate(self.output_scale * self.mlp(inputs), self.limit)


def policy_parameters(policy: eqx.Module) -> int:
    """The number of trained numbers in a policy."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(policy, eqx.is_inexact_array))
    return sum(int(x.size) for x in leaves)
