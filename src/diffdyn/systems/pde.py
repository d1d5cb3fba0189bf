"""`AbstractSemilinearPDE`: u_t = L u + N(u) on a periodic 1-D domain, stepped by ETDRK4."""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Complex, Float

from .base import AbstractSystem, substeps


def etdrk4_coefficients(hl: Array, contour_points: int = 32):
    """ETDRK4 coefficients for the diagonal linear part `h·L` (Cox & Matthews 2002).

    The φ-functions are evaluated by averaging over a circle of radius 1 around each `h·L`
    in the complex plane (Kassam & Trefethen 2005, eq. 2.5 and §4), which avoids the
    cancellation error of the direct formulas near `h·L = 0`.
    """
    r = jnp.exp(1j * jnp.pi * (jnp.arange(1, contour_points + 1) - 0.5) / contour_points)
    lr = hl[:, None] + r[None, :]
    e = jnp.exp(lr)
    q = jnp.real(jnp.mean((jnp.exp(lr / 2) - 1) / lr, axis=1))
    f1 = jnp.real(jnp.mean((-4 - lr + e * (4 - 3 * lr + lr**2)) / lr**3, axis=1))
    f2 = jnp.real(jnp.mean((2 + lr + e * (lr - 2)) / lr**3, axis=1))
    f3 = jnp.real(jnp.mean((-4 - 3 * lr - lr**2 + e * (4 - lr)) / lr**3, axis=1))
    return jnp.exp(hl), jnp.exp(hl / 2), q, f1, f2, f3


class AbstractSemilinearPDE(AbstractSystem):
    """u_t = L u + N(u) with L diagonal in Fourier space, periodic on [0, length).

    Write `linear_symbol(k)` (the Fourier symbol of L at wavenumbers `k`) and
    `nonlinear(u_hat, k)` (the Fourier transform of N(u)); declare `length` (a parameter)
    and the number of grid points `n` (static). The state is `u` on the grid
    `x_j = j·length/n`; time stepping is ETDRK4 (Cox & Matthews 2002) with the contour-integral
    coefficients of Kassam & Trefethen (2005).
    """

    kind: ClassVar[str] = "pde"
    max_step: ClassVar[float] = 0.05
    length: eqx.AbstractVar[Array]
    n: eqx.AbstractVar[int]

    @abc.abstractmethod
    def linear_symbol(self, k: Float[Array, " modes"]) -> Float[Array, " modes"]:
        """The Fourier symbol of the linear operator."""

    @abc.abstractmethod
    def nonlinear(
        self, u_hat: Complex[Array, " modes"], k: Float[Array, " modes"]
    ) -> Complex[Array, " modes"]:
        """The Fourier transform (`rfft`) of the nonlinear term N(u)."""

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(f"u{j}" for j in range(self.n))

    def grid(self) -> Float[Array, " n"]:
        """The collocation points x_j = j·length/n."""
        return jnp.arange(self.n) * self.length / self.n

    def wavenumbers(self) -> Float[Array, " modes"]:
        """Wavenumbers 2πj/length of the `rfft` modes j = 0..n/2."""
        return 2 * jnp.pi * jnp.arange(self.n // 2 + 1) / self.length

    def internal_step(self, dt: float) -> float:
        return dt / substeps(dt, self.max_step)

    def make_stepper(self, h: float):
        k = self.wavenumbers()
        e, e2, q, f1, f2, f3 = etdrk4_coefficients(h * self.linear_symbol(k))
        q, f1, f2, f3 = h * q, h * f1, h * f2, h * f3

        def nonlinear(v):
            return self.nonlinear(v, k)

        def step(state, t, exog):
            # Cox & Matthews 2002, eqs. (26)–(29)
            v = jnp.fft.rfft(state)
            nv = nonlinear(v)
            a = e2 * v + q * nv
            na = nonlinear(a)
            b = e2 * v + q * na
            nb = nonlinear(b)
            c = e2 * a + q * (2 * nb - nv)
            nc = nonlinear(c)
            v = e * v + nv * f1 + 2 * (na + nb) * f2 + nc * f3
            return jnp.fft.irfft(v, n=self.n)

        return step
