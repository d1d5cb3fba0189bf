"""NARMA-10 (Atiya & Parlos 2000, IEEE TNN 11, eq. 47), driven by a random input."""

from typing import ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .base import param
from .map import AbstractMap

ORDER = 10


class Narma10(AbstractMap):
    """y_{t+1} = a y_t + b y_t Σ_{i=0}^{9} y_{t−i} + c u_{t−9} u_t + d, u_t ~ U[0, 0.5].

    The internal state holds the last ten outputs and the last nine inputs; the observed
    variable is `y`, and the input `u` is recorded as the exogenous series (row t of a
    simulated `Series` holds y_t and u_t).
    """

    name: ClassVar[str] = "narma10"
    description: ClassVar[str] = "10th-order nonlinear autoregressive moving average task"
    y0: ClassVar[tuple[float, ...]] = (0.0,)
    variable_names: ClassVar[tuple[str, ...]] = ("y",)
    exog_variables: ClassVar[tuple[str, ...]] = ("u",)
    autonomous: ClassVar[bool] = False
    default_steps: ClassVar[int] = 2_000
    default_transient: ClassVar[float] = 200
    lyapunov_exponent: ClassVar[float] = -0.1376
    lyapunov_source: ClassVar[str] = (
        "computed by diffdyn: experiments/lyapunov_catalogue.py "
        "(Benettin QR, float64, 2·10^4 iterations, seed 0; negative: NARMA-10 is not chaotic)"
    )

    a: Float[Array, ""] = param(0.3)
    b: Float[Array, ""] = param(0.05)
    c: Float[Array, ""] = param(1.5)
    d: Float[Array, ""] = param(0.1)
    input_max: Float[Array, ""] = param(0.5)

    @property
    def needs_key(self) -> bool:
        return True

    def exogenous(self, key, times):
        if key is None:
            raise ValueError("NARMA-10 is driven by a random input: pass a random key.")
        u = jax.random.uniform(key, (times.shape[0], 1), dtype=jnp.result_type(float))
        return u * self.input_max

    def prepare_state(self, y0, h):
        outputs = jnp.zeros(ORDER).at[0].set(jnp.asarray(y0)[0])
        return jnp.concatenate([outputs, jnp.zeros(ORDER - 1)])

    def observe(self, state):
        return state[:1]

    def step(self, state, exog):
        outputs, inputs = state[:ORDER], state[ORDER:]  # newest first
        if exog is None:
            raise ValueError("NARMA-10 steps need the driving input u_t (exog).")
        u = exog[0]
        y = outputs[0]
        y_next = self.a * y + self.b * y * jnp.sum(outputs) + self.c * inputs[-1] * u + self.d
        return jnp.concatenate([y_next[None], outputs[:-1], u[None], inputs[:-1]])
