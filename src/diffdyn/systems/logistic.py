"""Logistic map (May 1976, Nature 261, eq. 3)."""

import math
from typing import ClassVar

from jaxtyping import Array, Float

from .base import param
from .map import AbstractMap


class Logistic(AbstractMap):
    """x_{n+1} = r x_n (1 − x_n)."""

    name: ClassVar[str] = "logistic"
    description: ClassVar[str] = "logistic map; fully chaotic at r = 4"
    y0: ClassVar[tuple[float, ...]] = (0.2,)
    variable_names: ClassVar[tuple[str, ...]] = ("x",)
    default_steps: ClassVar[int] = 2_000
    default_transient: ClassVar[float] = 100
    lyapunov_exponent: ClassVar[float] = math.log(2.0)
    lyapunov_source: ClassVar[str] = "exact at r = 4: λ = ln 2 (Ulam & von Neumann 1947)"

    r: Float[Array, ""] = param(4.0)

    def step(self, state, exog):
        return self.r * state * (1 - state)
