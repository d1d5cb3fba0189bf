"""`AbstractDelayFlow`: a delay differential equation dy/dt = f(t, y(t), y(t − τ))."""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import DiffdynError
from .base import AbstractSystem, substeps


class AbstractDelayFlow(AbstractSystem):
    """A delay flow dy/dt = f(t, y(t), y(t − τ)) with constant history y(t ≤ t0) = y0.

    Write `vector_field(t, state, delayed)` and declare the delay `tau` as a static field
    (it sets the length of the history buffer, so it is structural, not differentiable).

    The internal state is a history buffer of the last `ceil(τ/h) + 3` states, newest first,
    at spacing `h` (the internal step). It advances with classical RK4; the delayed values at
    the RK4 stages, `y(t − τ)`, `y(t + h/2 − τ)`, `y(t + h − τ)`, are read from the buffer by
    cubic Lagrange interpolation through the four nearest entries, fourth-order accurate
    where the solution is smooth. The jump in dy/dt at t0 of a constant history (and its
    echoes at t0 + τ, t0 + 2τ, ...) limits the measured global order to about two, as for any
    fixed-step scheme that does not step onto these breaking points. The observed state is
    the newest entry.
    """

    kind: ClassVar[str] = "delay"
    max_step: ClassVar[float] = 0.05
    tau: eqx.AbstractVar[float]

    @abc.abstractmethod
    def vector_field(
        self, t: Float[Array, ""], state: Float[Array, " d"], delayed: Float[Array, " d"]
    ) -> Float[Array, " d"]:
        """dy/dt given the current state and the state τ time units ago."""

    def internal_step(self, dt: float) -> float:
        h = dt / substeps(dt, self.max_step)
        if h > self.tau:
            raise DiffdynError(
                f"the internal step {h:g} exceeds the delay tau={self.tau:g}; choose a smaller dt."
            )
        return h

    def _buffer_length(self, h: float) -> int:
        return int(math.ceil(self.tau / h - 1e-9)) + 3

    def prepare_state(self, y0, h):
        y0 = jnp.asarray(y0)
        return jnp.tile(y0, (self._buffer_length(h), 1)).reshape(-1)

    def observe(self, state):
        d = len(self.variables)
        return state[:d]

    def make_stepper(self, h: float):
        d = len(self.variables)
        length = self._buffer_length(h)
        lag = self.tau / h

        def delayed(buffer, steps_back):
            i = int(math.floor(steps_back + 1e-12))
            w = steps_back - i
            if w < 1e-9:
                return buffer[i]
            if i == 0:  # a delay shorter than 1.5 steps: no entry on the newer side
                return (1 - w) * buffer[0] + w * buffer[1]
            # Cubic Lagrange weights for nodes at offsets −1, 0, 1, 2 from entry i.
            return (
                -w * (w - 1) * (w - 2) / 6 * buffer[i - 1]
                + (w + 1) * (w - 1) * (w - 2) / 2 * buffer[i]
                - (w + 1) * w * (w - 2) / 2 * buffer[i + 1]
                + (w + 1) * w * (w - 1) / 6 * buffer[i + 2]
            )

        def step(state, t, exog):
            buffer = state.reshape(length, d)
            y = buffer[0]
            k1 = self.vector_field(t, y, delayed(buffer, lag))
            mid = delayed(buffer, lag - 0.5)
            k2 = self.vector_field(t + h / 2, y + h / 2 * k1, mid)
            k3 = self.vector_field(t + h / 2, y + h / 2 * k2, mid)
            k4 = self.vector_field(t + h, y + h * k3, delayed(buffer, lag - 1))
            y_next = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            return jnp.concatenate([y_next[None], buffer[:-1]]).reshape(-1)

        return step
