"""Ikeda map (Ikeda 1979; the real form of Hammel, Jones & Moloney 1985)."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .map import AbstractMap


class Ikeda(AbstractMap):
    """x' = 1 + μ(x cos s − y sin s), y' = μ(x sin s + y cos s), s = 0.4 − 6/(1 + x² + y²)."""

    name: ClassVar[str] = "ikeda"
    description: ClassVar[str] = "Ikeda map of light in a nonlinear optical ring cavity"
    y0: ClassVar[tuple[float, ...]] = (0.1, 0.1)
    variable_names: ClassVar[tuple[str, ...]] = ("x", "y")
    default_steps: ClassVar[int] = 2_000
    default_transient: ClassVar[float] = 100
    lyapunov_exponent: ClassVar[float] = 0.5079
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn: experiments/lyapunov_catalogue.py "
        "(Benettin QR, float64, 10^6 iterations)"
    )

    mu: Float[Array, ""] = param(0.9)

    def step(self, state, exog):
        x, y = state
        s = 0.4 - 6.0 / (1 + x * x + y * y)
        c, sn = jnp.cos(s), jnp.sin(s)
        return jnp.stack([1 + self.mu * (x * c - y * sn), self.mu * (x * sn + y * c)])
