"""Systems written the way a user would write them, shared by several test files."""

import jax.numpy as jnp
from jaxtyping import Array, Float

from diffdyn.systems import AbstractControlledFlow, AbstractFlow, AbstractMap, param


class Brusselator(AbstractFlow):
    y0 = (1.0, 1.0)
    dt = 0.05
    a: Float[Array, ""] = param(1.0)
    b: Float[Array, ""] = param(3.0)

    def vector_field(self, t, state):
        x, y = state
        return jnp.stack([self.a - (self.b + 1) * x + x**2 * y, self.b * x - x**2 * y])


class Tent(AbstractMap):
    y0 = (0.1234,)
    mu: Float[Array, ""] = param(1.9)

    def step(self, state, exog):
        return self.mu * jnp.minimum(state, 1 - state)


# Controlled systems for `diffdyn control`: one that blows up, one no task supports.
class Blowup(AbstractControlledFlow):
    name = "blowup"
    y0 = (10.0,)
    variable_names = ("x",)
    control_target = (10.0,)
    dt = 0.25

    def controlled_field(self, t, state, u):
        return state**2 + u


class Free(AbstractControlledFlow):
    name = "free"
    y0 = (1.0,)
    control_target = (1.0,)

    def controlled_field(self, t, state, u):
        return -state + u
