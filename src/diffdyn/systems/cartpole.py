"""Cart-pole (Barto, Sutton & Anderson 1983, IEEE Trans. SMC 13, 834–846), frictionless."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .controlled import AbstractControlledFlow


class CartPole(AbstractControlledFlow):
    """A pole hinged on a cart pushed by a horizontal force F; θ = 0 upright, θ = π hanging.

    Florian (2007), "Correct equations for the dynamics of the cart-pole system", eq. (23)
    and (24) without friction, l the pole's half-length:

        θ'' = (g sin θ + cos θ (−F − m_p l θ'² sin θ)/(m_c + m_p))
              / (l (4/3 − m_p cos² θ / (m_c + m_p)))
        x'' = (F + m_p l (θ'² sin θ − θ'' cos θ)) / (m_c + m_p)

    Parameters are Barto et al.'s: cart 1.0 kg, pole 0.1 kg, half-length 0.5 m, g = 9.8 m/s²,
    force |F| ≤ 10 N (their bang-bang ±10 N as the limit). Their friction terms are left out,
    as in most later uses. A policy sees (x, x', cos θ, sin θ, θ').
    """

    name: ClassVar[str] = "cartpole"
    description: ClassVar[str] = "cart-pole of Barto, Sutton & Anderson (1983), force-limited"
    y0: ClassVar[tuple[float, ...]] = (0.0, 0.0, 0.2, 0.0)
    variable_names: ClassVar[tuple[str, ...]] = ("x", "x_dot", "theta", "theta_dot")
    dt: ClassVar[float] = 0.02
    max_step: ClassVar[float] = 0.01
    default_steps: ClassVar[int] = 2000
    control_names: ClassVar[tuple[str, ...]] = ("force",)
    control_limit: ClassVar[float | None] = 10.0
    control_target: ClassVar[tuple[float, ...] | None] = (0.0, 0.0, 0.0, 0.0)
    control_start: ClassVar[tuple[float, ...] | None] = (0.0, 0.0, jnp.pi, 0.0)
    lyapunov_exponent: ClassVar[float] = 0.0
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn: experiments/lyapunov_catalogue.py (Benettin QR, float64, "
        "T = 5000, RK4 h = 0.01); the free frictionless cart-pole is not chaotic"
    )

    cart_mass: Float[Array, ""] = param(1.0)
    pole_mass: Float[Array, ""] = param(0.1)
    half_length: Float[Array, ""] = param(0.5)
    g: Float[Array, ""] = param(9.8)

    def controlled_field(self, t, state, u):
        x, x_dot, theta, theta_dot = state
        total = self.cart_mass + self.pole_mass
        sin, cos = jnp.sin(theta), jnp.cos(theta)
        # Florian (2007), eq. (23)-(24) with μ_c = μ_p = 0
        push = (-u[0] - self.pole_mass * self.half_length * theta_dot**2 * sin) / total
        theta_acc = (self.g * sin + cos * push) / (
            self.half_length * (4.0 / 3.0 - self.pole_mass * cos**2 / total)
        )
        x_acc = (
            u[0] + self.pole_mass * self.half_length * (theta_dot**2 * sin - theta_acc * cos)
        ) / total
        return jnp.stack([x_dot, x_acc, theta_dot, theta_acc])

    def observe_for_control(self, state):
        x, x_dot, theta, theta_dot = state
        return jnp.stack([x, x_dot, jnp.cos(theta), jnp.sin(theta), theta_dot])
