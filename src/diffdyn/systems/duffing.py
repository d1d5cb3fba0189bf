"""Duffing oscillator with periodic forcing (Guckenheimer & Holmes 1983, §2.2)."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .flow import AbstractFlow


class Duffing(AbstractFlow):
    """x'' + δx' + αx + βx³ = γ cos(ωt), as the flow (x, v)."""

    name: ClassVar[str] = "duffing"
    description: ClassVar[str] = "double-well Duffing oscillator, periodically forced"
    y0: ClassVar[tuple[float, ...]] = (1.0, 0.0)
    variable_names: ClassVar[tuple[str, ...]] = ("x", "v")
    exog_variables: ClassVar[tuple[str, ...]] = ("forcing",)
    autonomous: ClassVar[bool] = False
    dt: ClassVar[float] = 0.05
    default_steps: ClassVar[int] = 10_000
    default_transient: ClassVar[float] = 100.0
    lyapunov_exponent: ClassVar[float] = 0.1097
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn: experiments/lyapunov_catalogue.py "
        "(Benettin QR, float64, T = 20000, RK4 h = 0.01)"
    )

    delta: Float[Array, ""] = param(0.3)
    alpha: Float[Array, ""] = param(-1.0)
    beta: Float[Array, ""] = param(1.0)
    gamma: Float[Array, ""] = param(0.5)
    omega: Float[Array, ""] = param(1.2)

    def forcing(self, t):
        return (self.gamma * jnp.cos(self.omega * t))[None]

    def vector_field(self, t, state):
        x, v = state
        accel = -self.delta * v - self.alpha * x - self.beta * x**3 + self.forcing(t)[0]
        return jnp.stack([v, accel])
