"""Systems a user would write in their own file, for `tests/test_identify.py`: loaded there as
`tests/identify_systems.py:CLASS` (the FILE.py:CLASS syntax), never imported by name."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from diffdyn.systems import AbstractFlow, AbstractMap, param


class Drift(AbstractMap):
    """x_{n+1} = x_n + c: x_n = x_0 + c·n, a straight line whose least squares are ordinary."""

    y0 = (1.0,)
    variable_names = ("x",)
    c: Float[Array, ""] = param(0.5)

    def step(self, state, exog):
        return state + self.c


class Root(AbstractMap):
    """x_{n+1} = a·√max(x_n, 0) + b: from x_0 < 0 every gradient is NaN, so a fit diverges."""

    y0 = (0.0,)
    variable_names = ("x",)
    a: Float[Array, ""] = param(1.0)
    b: Float[Array, ""] = param(0.5)

    def step(self, state, exog):
        # √max(x, 0): 0 for x ≤ 0, with a gradient 0 · ∞ = NaN there.
        return self.a * jnp.sqrt(jnp.maximum(state, 0.0)) + self.b


class Blowup(AbstractFlow):
    """dx/dt = a·x²: from x = 1 it blows up at t = 1/a when a > 0."""

    y0 = (1.0,)
    variable_names = ("x",)
    dt = 0.05
    a: Float[Array, ""] = param(-1.0)
    label: str = eqx.field(static=True, default="not an array")
    rate: float = 2.0  # a plain float field: not an array, so not fittable

    def vector_field(self, t, state):
        return self.a * state**2


def _small_network():
    return eqx.nn.MLP(2, 1, 3, 1, activation=jax.nn.tanh, key=jax.random.key(1))


class HybridHenon(AbstractMap):
    """The Hénon map's known part and a small MLP correction: a hybrid map."""

    y0 = (0.1, 0.1)
    variable_names = ("x", "y")
    a: Float[Array, ""] = param(1.4)
    b: Float[Array, ""] = param(0.3)
    net: eqx.nn.MLP = eqx.field(default_factory=_small_network)

    def step(self, state, exog):
        x, y = state
        return jnp.stack([1 - self.a * x * x + y + 0.01 * self.net(state)[0], self.b * x])


def _network():
    return eqx.nn.MLP(2, 2, 4, 1, activation=jax.nn.tanh, key=jax.random.key(0))


class HybridLotkaVolterra(AbstractFlow):
    """A universal differential equation (Rackauckas et al. 2020): the known terms αx and −δy
    of Lotka–Volterra, and an MLP for the rest."""

    y0 = (0.44249296, 4.6280594)
    variable_names = ("prey", "predator")
    dt = 0.1
    alpha: Float[Array, ""] = param(1.3)
    delta: Float[Array, ""] = param(1.8)
    net: eqx.nn.MLP = eqx.field(default_factory=_network)

    def vector_field(self, t, state):
        x, y = state
        return jnp.stack([self.alpha * x, -self.delta * y]) + self.net(state)


class NotASystem(eqx.Module):
    rate: float = 1.0
