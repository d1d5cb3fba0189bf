"""Kuramoto–Sivashinsky equation on a periodic domain (Kassam & Trefethen 2005, eq. 5.1)."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .pde import AbstractSemilinearPDE


class KuramotoSivashinsky(AbstractSemilinearPDE):
    """u_t = −u u_x − u_xx − u_xxxx on [0, L), periodic.

    In Fourier space the linear symbol is k² − k⁴ and the nonlinear term is −(ik/2)·F[u²]
    (the Nyquist mode's first derivative is set to zero). The k = 0 mode of both is zero, so
    the spatial mean of u is conserved exactly by ETDRK4.
    """

    name: ClassVar[str] = "kuramoto-sivashinsky"
    description: ClassVar[str] = "spatio-temporal chaos of flame fronts, L = 22, 64 modes"
    dt: ClassVar[float] = 0.25
    max_step: ClassVar[float] = 0.05
    default_steps: ClassVar[int] = 4_000
    default_transient: ClassVar[float] = 200.0
    lyapunov_exponent: ClassVar[float] = 0.0492
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn: experiments/lyapunov_catalogue.py "
        "(Benettin QR, float64, T = 20000, ETDRK4 h = 0.05; "
        "compare 0.048 in Cvitanović, Davidchack & Siminos 2010)"
    )

    length: Float[Array, ""] = param(22.0)
    n: int = eqx.field(static=True, default=64)

    def __check_init__(self):
        if self.n < 8 or self.n % 2:
            raise ValueError(
                f"Kuramoto–Sivashinsky needs an even n >= 8 grid points; got {self.n}."
            )

    def initial_state(self):
        phase = 2 * jnp.pi * jnp.arange(self.n) / self.n
        return jnp.cos(phase) * (1 + jnp.sin(phase))

    def linear_symbol(self, k):
        return k**2 - k**4

    def nonlinear(self, u_hat, k):
        derivative = 1j * k.at[-1].set(0.0)
        u = jnp.fft.irfft(u_hat, n=self.n)
        return -0.5 * derivative * jnp.fft.rfft(u * u)
