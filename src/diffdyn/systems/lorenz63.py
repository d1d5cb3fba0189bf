"""Lorenz-63 (Lorenz 1963, J. Atmos. Sci. 20, eq. 25–27)."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .flow import AbstractFlow


class Lorenz63(AbstractFlow):
    """dx/dt = σ(y − x), dy/dt = x(ρ − z) − y, dz/dt = xy − βz."""

    name: ClassVar[str] = "lorenz63"
    description: ClassVar[str] = "Lorenz (1963) convection model, the butterfly attractor"
    y0: ClassVar[tuple[float, ...]] = (1.0, 1.0, 1.0)
    variable_names: ClassVar[tuple[str, ...]] = ("x", "y", "z")
    dt: ClassVar[float] = 0.01
    default_steps: ClassVar[int] = 10_000
    default_transient: ClassVar[float] = 20.0
    lyapunov_exponent: ClassVar[float] = 0.9056
    lyapunov_source: ClassVar[str] = (
        "Viswanath (1998), PhD thesis, Cornell: λ₁ = 0.9056 (as in ANCHORS.md)"
    )

    sigma: Float[Array, ""] = param(10.0)
    rho: Float[Array, ""] = param(28.0)
    beta: Float[Array, ""] = param(8.0 / 3.0)

    def vector_field(self, t, state):
        x, y, z = state
        return jnp.stack([self.sigma * (y - x), x * (self.rho - z) - y, x * y - self.beta * z])
