"""DNC forecaster: the Differentiable Neural Computer as the recurrent cell of a closed-loop
forecaster.

The DNC (`diffdyn.nn.DNC`: an LSTM controller with the external memory of Graves et al. 2016)
reads the context step by step, x_t = y_t ⊕ u_t ⊕ u_{t+1} (see `models.inputs`), writing what
it chooses to its memory; its output is read as the increment, ŷ_{t+1} = y_t + DNC_t; then it
feeds back its own forecasts for as many steps as asked. The memory lets it store the history
of the system and retrieve what matters, the use the tutorial proposes for it.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..nn.dnc import DNC
from .base import AbstractForecaster
from .inputs import check_inputs, step_exog
from .registry import ModelSpec, register_model


class DNCForecaster(AbstractForecaster):
    """A DNC read out as increments and rolled out closed loop.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key.
    - `hidden`, `memory_size`, `word_size`, `read_heads`: the DNC's controller width and
      memory (one write head).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models import DNCForecaster

    model = DNCForecaster(3, key=jax.random.key(0), hidden=16, memory_size=8, word_size=4)
    forecast, aux = model(jnp.zeros((20, 3)), horizon=10)  # [10, 3]
    ```
    """

    name: ClassVar[str] = "dnc"
    dnc: DNC
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key,
        hidden: int = 32,
        memory_size: int = 16,
        word_size: int = 8,
        read_heads: int = 2,
    ):
        self.dnc = DNC(
            dim + 2 * exog_dim,
            dim,
            key=key,
            hidden=hidden,
            memory_size=memory_size,
            word_size=word_size,
            read_heads=read_heads,
        )
        self.dim = dim
        self.exog_dim = exog_dim

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        inputs_exog = step_exog(exog)  # row t: u_t ⊕ u_{t+1}
        n_context = context.shape[0]

        # One scan over the context and the forecast: step t reads the observed token while
        # t < n_context and its own forecast ŷ_t ⊕ u_t ⊕ u_{t+1} after, so the DNC step (and
        # its rematerialised backward) is compiled once, not once per phase (the training
        # step compiled in about half the time).
        total = n_context + horizon - 1
        observed = jnp.concatenate([context, inputs_exog[:n_context]], axis=1)
        observed = jnp.pad(observed, ((0, horizon - 1), (0, 0)))
        is_observed = jnp.arange(total) < n_context

        def step(carry, xs):
            state, y = carry  # y: the newest forecast, once there is one
            token, exog_t, from_data = xs
            x = jnp.where(from_data, token, jnp.concatenate([y, exog_t]))
            out, state = self.dnc.step(state, x)
            y = jnp.where(from_data, token[: self.dim], y) + out
            return (state, y), y

        start = (self.dnc.initial_state(), jnp.zeros(self.dim, context.dtype))
        _, ys = jax.lax.scan(step, start, (observed, inputs_exog[:total], is_observed))
        return ys[n_context - 1 :], {}


register_model(
    ModelSpec(
        "dnc",
        DNCForecaster,
        {"hidden": 32, "memory_size": 16, "word_size": 8, "read_heads": 2},
        "Differentiable Neural Computer (Graves et al. 2016) as a closed-loop recurrent cell",
        training={"context": 32, "horizon": 10, "strategy": "curriculum", "learning_rate": 2e-3},
    )
)
