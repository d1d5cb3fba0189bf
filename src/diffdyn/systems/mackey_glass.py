"""Mackey–Glass delay equation (Mackey & Glass 1977, Science 197, eq. 2)."""

from typing import ClassVar

import equinox as eqx
from jaxtyping import Array, Float

from .base import param
from .delay import AbstractDelayFlow


class MackeyGlass(AbstractDelayFlow):
    """dx/dt = β x(t−τ) / (1 + x(t−τ)^n) − γ x(t), history x(t ≤ 0) = 1.2."""

    name: ClassVar[str] = "mackey-glass"
    description: ClassVar[str] = "blood-cell production with a delay; chaotic at τ = 17"
    y0: ClassVar[tuple[float, ...]] = (1.2,)
    variable_names: ClassVar[tuple[str, ...]] = ("x",)
    dt: ClassVar[float] = 1.0
    max_step: ClassVar[float] = 0.05
    default_steps: ClassVar[int] = 5_000
    default_transient: ClassVar[float] = 500.0
    lyapunov_exponent: ClassVar[float] = 0.00499
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn: experiments/lyapunov_catalogue.py "
        "(Benettin QR, float64, T = 50000, RK4 h = 0.05 on the history buffer)"
    )

    beta: Float[Array, ""] = param(0.2)
    gamma: Float[Array, ""] = param(0.1)
    n: Float[Array, ""] = param(10.0)
    tau: float = eqx.field(static=True, default=17.0)

    def vector_field(self, t, state, delayed):
        return self.beta * delayed / (1 + delayed**self.n) - self.gamma * state
