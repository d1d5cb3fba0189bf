"""Torque-limited pendulum (the swing-up benchmark of Doya 2000, Neural Comput. 12, 219–245)."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .controlled import AbstractControlledFlow


class Pendulum(AbstractControlledFlow):
    """m l² θ'' = −b θ' − m g l sin θ + u, with θ = 0 hanging down and θ = π upright.

    Doya (2000), sec. 5.1, uses m = l = 1, g = 9.8, friction μ = 0.01 and a torque limit
    |u| ≤ 5 < m g l (his θ is measured from upright): the torque cannot lift the pendulum
    directly, so a swing-up controller must pump energy over several swings. A policy sees
    (cos θ, sin θ, ω), so it is periodic in the angle.
    """

    name: ClassVar[str] = "pendulum"
    description: ClassVar[str] = "torque-limited pendulum with friction (swing-up benchmark)"
    y0: ClassVar[tuple[float, ...]] = (1.0, 0.0)
    variable_names: ClassVar[tuple[str, ...]] = ("theta", "omega")
    dt: ClassVar[float] = 0.05
    max_step: ClassVar[float] = 0.025
    default_steps: ClassVar[int] = 2000
    control_names: ClassVar[tuple[str, ...]] = ("torque",)
    control_limit: ClassVar[float | None] = 5.0
    control_target: ClassVar[tuple[float, ...] | None] = (jnp.pi, 0.0)
    control_start: ClassVar[tuple[float, ...] | None] = (0.0, 0.0)
    lyapunov_exponent: ClassVar[float] = -0.00414
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn: experiments/lyapunov_catalogue.py (Benettin QR, float64, "
        "T = 5000, RK4 h = 0.025): the damped swing settles at the bottom"
    )

    mass: Float[Array, ""] = param(1.0)
    length: Float[Array, ""] = param(1.0)
    friction: Float[Array, ""] = param(0.01)
    g: Float[Array, ""] = param(9.8)

    def controlled_field(self, t, state, u):
        theta, omega = state
        inertia = self.mass * self.length**2
        torque = u[0] - self.friction * omega - self.mass * self.g * self.length * jnp.sin(theta)
        return jnp.stack([omega, torque / inertia])

    def observe_for_control(self, state):
        theta, omega = state
        return jnp.stack([jnp.cos(theta), jnp.sin(theta), omega])
