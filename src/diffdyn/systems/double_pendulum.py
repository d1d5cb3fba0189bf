"""Double pendulum: two point masses on massless rigid rods, from its Lagrangian."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .flow import AbstractFlow


class DoublePendulum(AbstractFlow):
    """Angles θ₁, θ₂ from the vertical and angular velocities ω₁, ω₂.

    The Euler–Lagrange equations, with Δ = θ₁ − θ₂, are linear in the accelerations:

        (m₁+m₂) l₁ θ₁'' + m₂ l₂ cos Δ θ₂'' = −m₂ l₂ ω₂² sin Δ − (m₁+m₂) g sin θ₁
        l₁ cos Δ θ₁''   + l₂ θ₂''           =  l₁ ω₁² sin Δ − g sin θ₂

    and are solved for (θ₁'', θ₂'') by Cramer's rule.
    """

    name: ClassVar[str] = "double-pendulum"
    description: ClassVar[str] = "double pendulum released from both rods horizontal"
    y0: ClassVar[tuple[float, ...]] = (jnp.pi / 2, jnp.pi / 2, 0.0, 0.0)
    variable_names: ClassVar[tuple[str, ...]] = ("theta1", "theta2", "omega1", "omega2")
    dt: ClassVar[float] = 0.01
    default_steps: ClassVar[int] = 5_000
    lyapunov_exponent: ClassVar[float] = 0.9216
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn: experiments/lyapunov_catalogue.py "
        "(Benettin QR, float64, T = 5000, RK4 h = 0.01)"
    )

    m1: Float[Array, ""] = param(1.0)
    m2: Float[Array, ""] = param(1.0)
    l1: Float[Array, ""] = param(1.0)
    l2: Float[Array, ""] = param(1.0)
    g: Float[Array, ""] = param(9.81)

    def vector_field(self, t, state):
        theta1, theta2, omega1, omega2 = state
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.g
        delta = theta1 - theta2
        c, s = jnp.cos(delta), jnp.sin(delta)
        a11, a12 = (m1 + m2) * l1, m2 * l2 * c
        a21, a22 = l1 * c, l2
        b1 = -m2 * l2 * omega2**2 * s - (m1 + m2) * g * jnp.sin(theta1)
        b2 = l1 * omega1**2 * s - g * jnp.sin(theta2)
        det = a11 * a22 - a12 * a21
        return jnp.stack(
            [omega1, omega2, (b1 * a22 - a12 * b2) / det, (a11 * b2 - a21 * b1) / det]
        )
