"""Chua's circuit, the double scroll (Chua, Komuro & Matsumoto 1986, IEEE Trans. Circuits Syst.
33(11), "The double scroll family", dimensionless eqs.)."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .flow import AbstractFlow


class Chua(AbstractFlow):
    """dx/dt = α(y − x − f(x)), dy/dt = x − y + z, dz/dt = −βy, f = Chua's diode.

    Chua's diode f(x) = m₁x + ½(m₀ − m₁)(|x + 1| − |x − 1|) is piecewise linear, slope m₀ for
    |x| ≤ 1 and m₁ outside, so the flow is linear in each of the three regions x < −1,
    |x| ≤ 1, x > 1.

    The defaults α = 15.6, β = 28, m₀ = −8/7 ≈ −1.143, m₁ = −5/7 ≈ −0.714 give the double
    scroll (the values of the dysts catalogue, Gilpin 2021, entry `Chua`).
    """

    name: ClassVar[str] = "chua"
    description: ClassVar[str] = (
        "Chua's circuit (Chua, Komuro & Matsumoto 1986), the piecewise-linear double scroll"
    )
    y0: ClassVar[tuple[float, ...]] = (0.1, 0.0, 0.0)
    variable_names: ClassVar[tuple[str, ...]] = ("x", "y", "z")
    dt: ClassVar[float] = 0.02
    default_steps: ClassVar[int] = 10_000
    default_transient: ClassVar[float] = 50.0
    lyapunov_exponent: ClassVar[float] = 0.4335
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn (experiments/lyapunov_catalogue.py, 50 000 time units); the dysts "
        "catalogue (Gilpin 2021) estimates 0.461"
    )

    alpha: Float[Array, ""] = param(15.6)
    beta: Float[Array, ""] = param(28.0)
    m0: Float[Array, ""] = param(-8.0 / 7.0)
    m1: Float[Array, ""] = param(-5.0 / 7.0)

    def diode(self, x: Float[Array, "..."]) -> Float[Array, "..."]:
        """f(x), the current through Chua's diode (piecewise linear, breakpoints at ±1)."""
        return self.m1 * x + 0.5 * (self.m0 - self.m1) * (jnp.abs(x + 1) - jnp.abs(x - 1))

    def vector_field(self, t, state):
        x, y, z = state
        return jnp.stack([self.alpha * (y - x - self.diode(x)), x - y + z, -self.beta * y])
