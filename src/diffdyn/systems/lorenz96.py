"""Lorenz-96 (Lorenz 1996, Proc. ECMWF Seminar on Predictability, eq. 1)."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .flow import AbstractFlow


class Lorenz96(AbstractFlow):
    """dx_i/dt = (x_{i+1} − x_{i−2}) x_{i−1} − x_i + F, indices modulo n."""

    name: ClassVar[str] = "lorenz96"
    description: ClassVar[str] = "Lorenz (1996) ring of n sites with forcing F"
    dt: ClassVar[float] = 0.01
    default_steps: ClassVar[int] = 10_000
    default_transient: ClassVar[float] = 20.0
    lyapunov_exponent: ClassVar[float] = 1.7043
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn: experiments/lyapunov_catalogue.py "
        "(Benettin QR, float64, T = 2000, RK4 h = 0.01)"
    )

    F: Float[Array, ""] = param(8.0)
    n: int = eqx.field(static=True, default=40)

    def __check_init__(self):
        if self.n < 4:
            raise ValueError(f"Lorenz-96 needs n >= 4 sites; got n={self.n}.")

    def initial_state(self):
        # The equilibrium x_i = F, perturbed at one site (Lorenz & Emanuel 1998).
        return (jnp.ones(self.n) * self.F).at[0].add(0.01)

    def vector_field(self, t, state):
        x = state
        return (jnp.roll(x, -1) - jnp.roll(x, 2)) * jnp.roll(x, 1) - x + self.F
