"""Hénon map (Hénon 1976, Commun. Math. Phys. 50, eq. 2)."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .map import AbstractMap


class Henon(AbstractMap):
    """x_{n+1} = 1 − a x_n² + y_n, y_{n+1} = b x_n."""

    name: ClassVar[str] = "henon"
    description: ClassVar[str] = "Hénon map, the classic strange attractor of a 2-D map"
    y0: ClassVar[tuple[float, ...]] = (0.1, 0.1)
    variable_names: ClassVar[tuple[str, ...]] = ("x", "y")
    default_steps: ClassVar[int] = 2_000
    default_transient: ClassVar[float] = 100
    lyapunov_exponent: ClassVar[float] = 0.419
    lyapunov_source: ClassVar[str] = "Sprott (2003), Chaos and Time-Series Analysis, App. A"

    a: Float[Array, ""] = param(1.4)
    b: Float[Array, ""] = param(0.3)

    def step(self, state, exog):
        x, y = state
        return jnp.stack([1 - self.a * x * x + y, self.b * x])
