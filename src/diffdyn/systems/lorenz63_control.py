"""Lorenz-63 with a control input on dy/dt: the classic chaos-control setting."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .controlled import AbstractControlledFlow


class Lorenz63Control(AbstractControlledFlow):
    """dx/dt = σ(y − x), dy/dt = x(ρ − z) − y + u, dz/dt = xy − βz (Lorenz 1963, eq. 25–27,
    with u added to the second equation).

    At u = 0 this is `lorenz63`. Its non-trivial fixed points C± = (±√(β(ρ−1)), ±√(β(ρ−1)),
    ρ − 1) are unstable saddle-foci at ρ = 28; stabilising one with bounded effort from states
    on the attractor is the task of chaos control (Ott, Grebogi & Yorke 1990, Phys. Rev. Lett.
    64, 1196, by small parameter changes; here by a feedback input on one equation).
    """

    name: ClassVar[str] = "lorenz63-control"
    description: ClassVar[str] = "Lorenz-63 with a control input u on dy/dt (chaos control)"
    y0: ClassVar[tuple[float, ...]] = (1.0, 1.0, 1.0)
    variable_names: ClassVar[tuple[str, ...]] = ("x", "y", "z")
    dt: ClassVar[float] = 0.01
    default_steps: ClassVar[int] = 10_000
    default_transient: ClassVar[float] = 20.0
    control_names: ClassVar[tuple[str, ...]] = ("u",)
    control_limit: ClassVar[float | None] = 10.0
    lyapunov_exponent: ClassVar[float] = 0.9056
    lyapunov_source: ClassVar[str] = (
        "Viswanath (1998), PhD thesis, Cornell: λ₁ = 0.9056 (at u = 0, as lorenz63)"
    )

    sigma: Float[Array, ""] = param(10.0)
    rho: Float[Array, ""] = param(28.0)
    beta: Float[Array, ""] = param(8.0 / 3.0)

    def fixed_point(self, sign: int = 1) -> Float[Array, " 3"]:
        """C+ (`sign=1`) or C− (`sign=-1`): (±√(β(ρ−1)), ±√(β(ρ−1)), ρ − 1)."""
        r = jnp.sqrt(self.beta * (self.rho - 1))
        return jnp.stack([sign * r, sign * r, self.rho - 1])

    def controlled_field(self, t, state, u):
        x, y, z = state
        return jnp.stack(
            [self.sigma * (y - x), x * (self.rho - z) - y + u[0], x * y - self.beta * z]
        )
