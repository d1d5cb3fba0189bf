"""Rössler (1976, Phys. Lett. A 57, eq. 2)."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .flow import AbstractFlow


class Rossler(AbstractFlow):
    """dx/dt = −y − z, dy/dt = x + a·y, dz/dt = b + z(x − c)."""

    name: ClassVar[str] = "rossler"
    description: ClassVar[str] = "Rössler (1976) spiral attractor"
    y0: ClassVar[tuple[float, ...]] = (1.0, 1.0, 0.0)
    variable_names: ClassVar[tuple[str, ...]] = ("x", "y", "z")
    dt: ClassVar[float] = 0.05
    default_steps: ClassVar[int] = 10_000
    default_transient: ClassVar[float] = 100.0
    lyapunov_exponent: ClassVar[float] = 0.0714
    lyapunov_source: ClassVar[str] = "Sprott (2003), Chaos and Time-Series Analysis, App. A"

    a: Float[Array, ""] = param(0.2)
    b: Float[Array, ""] = param(0.2)
    c: Float[Array, ""] = param(5.7)

    def vector_field(self, t, state):
        x, y, z = state
        return jnp.stack([-y - z, x + self.a * y, self.b + z * (x - self.c)])
