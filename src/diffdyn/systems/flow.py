"""`AbstractFlow`: a system of ordinary differential equations dy/dt = f(t, y)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

from jaxtyping import Array, ArrayLike, Float

from .base import AbstractSystem, substeps


def rk4_step(f: Callable, t: Array, y: Array, h: float) -> Array:
    """One classical Runge–Kutta step (Hairer, Nørsett & Wanner, eq. II.1.9) of `y' = f(t, y)`."""
    k1 = f(t, y)
    k2 = f(t + h / 2, y + h / 2 * k1)
    k3 = f(t + h / 2, y + h / 2 * k2)
    k4 = f(t + h, y + h * k3)
    return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


class AbstractFlow(AbstractSystem):
    """A flow dy/dt = f(t, y). Write `vector_field(t, state)`; set `y0` and `variable_names`.

    `simulate` integrates flows with Diffrax (adaptive step, tolerances exposed); the
    fixed-step RK4 map of step `max_step` is used only for tangent dynamics (Lyapunov spectra).
    A non-autonomous flow may also define `forcing(t)` and `exog_variables` so the forcing it
    feels is recorded as the exogenous input of the simulated `Series`.

    **Example:**

    ```python
    import jax.numpy as jnp
    from jaxtyping import Array, ArrayLike, Float
    from diffdyn.systems import AbstractFlow, param

    class Brusselator(AbstractFlow):
        name = "brusselator"
        y0 = (1.0, 1.0)
        variable_names = ("x", "y")
        dt = 0.05
        a: Float[Array, ""] = param(1.0)
        b: Float[Array, ""] = param(3.0)

        def vector_field(self, t, state):
            x, y = state
            return jnp.stack([self.a - (self.b + 1) * x + x**2 * y, self.b * x - x**2 * y])
    ```
    """

    kind: ClassVar[str] = "flow"
    max_step: ClassVar[float] = 0.01

    @abc.abstractmethod
    def vector_field(
        self, t: Float[ArrayLike, ""], state: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        """dy/dt at time `t` and state `state`."""

    def forcing(self, t: Float[ArrayLike, ""]) -> Float[Array, " m"] | None:
        """The external forcing felt at time `t` (recorded as `exog`); `None` if autonomous."""
        return None

    def exogenous(self, key, times):
        import jax

        if not self.exogenous_names():
            return None
        return jax.vmap(self.forcing)(times)

    def internal_step(self, dt: float) -> float:
        return dt / substeps(dt, self.max_step)

    def make_stepper(self, h: float):
        def step(state, t, exog):
            return rk4_step(self.vector_field, t, state, h)

        return step
