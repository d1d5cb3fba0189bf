"""Forced Van der Pol oscillator, chaotic parameters of Parlitz & Lauterborn (1987)."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .flow import AbstractFlow


class VanDerPol(AbstractFlow):
    """x'' − μ(1 − x²)x' + x = A cos(ωt), as the flow (x, v)."""

    name: ClassVar[str] = "van-der-pol"
    description: ClassVar[str] = "relaxation oscillator with periodic forcing"
    y0: ClassVar[tuple[float, ...]] = (1.0, 0.0)
    variable_names: ClassVar[tuple[str, ...]] = ("x", "v")
    exog_variables: ClassVar[tuple[str, ...]] = ("forcing",)
    autonomous: ClassVar[bool] = False
    dt: ClassVar[float] = 0.05
    default_steps: ClassVar[int] = 10_000
    default_transient: ClassVar[float] = 100.0
    max_step: ClassVar[float] = 0.005
    lyapunov_exponent: ClassVar[float] = 0.00829
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn: experiments/lyapunov_catalogue.py "
        "(Benettin QR, float64, T = 20000, RK4 h = 0.005)"
    )

    mu: Float[Array, ""] = param(8.53)
    amplitude: Float[Array, ""] = param(1.2)
    omega: Float[Array, ""] = param(2 * 3.141592653589793 / 10)

    def forcing(self, t):
        return (self.amplitude * jnp.cos(self.omega * t))[None]

    def vector_field(self, t, state):
        x, v = state
        return jnp.stack([v, self.mu * (1 - x**2) * v - x + self.forcing(t)[0]])
