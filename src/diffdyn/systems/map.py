"""`AbstractMap`: a discrete-time system y_{n+1} = F(y_n, u_n)."""

from __future__ import annotations

import abc
from typing import ClassVar

from jaxtyping import Array, Float

from .base import AbstractSystem


class AbstractMap(AbstractSystem):
    """A map y_{n+1} = F(y_n, u_n). Write `step(state, exog)`; set `y0`.

    Time is the iteration count: the sampling step is 1 and `transient` counts iterations.
    `exog` is the driving input `u_n` at that iteration (`None` for an undriven map).

    **Example:**

    ```python
    from diffdyn.systems import AbstractMap, param

    class Tent(AbstractMap):
        name = "tent"
        y0 = (0.1234,)
        mu: Float[Array, ""] = param(1.9)

        def step(self, state, exog):
            return self.mu * jnp.minimum(state, 1 - state)
    ```
    """

    kind: ClassVar[str] = "map"
    dt: ClassVar[float] = 1.0

    @abc.abstractmethod
    def step(self, state: Float[Array, " n"], exog: Array | None) -> Float[Array, " n"]:
        """The next state."""

    def internal_step(self, dt: float) -> float:
        return 1.0

    def make_stepper(self, h: float):
        def stepper(state, t, exog):
            return self.step(state, exog)

        return stepper
