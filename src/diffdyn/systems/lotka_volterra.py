"""Lotka–Volterra predator–prey model, parameters of Rackauckas et al. (2020), §2.1."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .flow import AbstractFlow


class LotkaVolterra(AbstractFlow):
    """dx/dt = αx − βxy, dy/dt = γxy − δy (prey x, predator y)."""

    name: ClassVar[str] = "lotka-volterra"
    description: ClassVar[str] = "predator–prey cycles (the UDE paper's example)"
    y0: ClassVar[tuple[float, ...]] = (0.44249296, 4.6280594)
    variable_names: ClassVar[tuple[str, ...]] = ("prey", "predator")
    dt: ClassVar[float] = 0.1
    default_steps: ClassVar[int] = 1_000
    lyapunov_exponent: ClassVar[float] = 0.0
    lyapunov_source: ClassVar[str] = (
        "closed periodic orbits (the system has a first integral): λ₁ = 0, not chaotic"
    )

    alpha: Float[Array, ""] = param(1.3)
    beta: Float[Array, ""] = param(0.9)
    gamma: Float[Array, ""] = param(0.8)
    delta: Float[Array, ""] = param(1.8)

    def vector_field(self, t, state):
        x, y = state
        return jnp.stack([self.alpha * x - self.beta * x * y, self.gamma * x * y - self.delta * y])
