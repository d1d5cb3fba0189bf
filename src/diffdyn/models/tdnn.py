"""Time-delay neural network (NARX): an MLP on a window of past states.

Tutorial (Hernández & Amigó) eq. (1): y_{t+1} = f(y_t, y_{t-1}, …, y_{t-D+1}), with f a
feed-forward network; with exogenous inputs it is a NARX model (Leontaritis & Billings 1985),
whose f also sees u_{t-D+1}, …, u_t and u_{t+1}. Here f predicts the increment,
ŷ_{t+1} = y_t + MLP(window), and the forecast is rolled out closed loop by shifting each
prediction into the window.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..errors import DiffdynError
from .base import AbstractForecaster
from .inputs import check_inputs
from .registry import ModelSpec, register_model


class TimeDelayNetwork(AbstractForecaster):
    """ŷ_{t+1} = y_t + MLP(y_{t-D+1..t} ⊕ u_{t-D+1..t+1}), rolled out by shifting the window.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key for the initial weights.
    - `delays`: D, how many past states the network sees (the context must be at least this
      long).
    - `width`, `depth`: width and number of hidden layers of the MLP (tanh activations: a
      smooth map for smooth dynamics).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models import TimeDelayNetwork

    model = TimeDelayNetwork(3, key=jax.random.key(0), delays=4, width=32)
    forecast, aux = model(jnp.zeros((16, 3)), horizon=25)  # forecast: [25, 3]
    ```
    """

    name: ClassVar[str] = "tdnn"
    mlp: eqx.nn.MLP
    delays: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key,
        delays: int = 8,
        width: int = 64,
        depth: int = 2,
    ):
        for option, value in (("delays", delays), ("width", width), ("depth", depth)):
            if value < 1:
                raise DiffdynError(f"{option} must be a positive whole number; got {value}.")
        self.mlp = eqx.nn.MLP(
            delays * dim + (delays + 1) * exog_dim,
            dim,
            width_size=width,
            depth=depth,
            activation=jnp.tanh,
            key=key,
        )
        self.delays = delays
        self.dim = dim
        self.exog_dim = exog_dim

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        n_context = context.shape[0]
        if n_context < self.delays:
            raise DiffdynError(
                f"the context ({n_context} steps) is shorter than the model's delays "
                f"({self.delays}): pass a context of at least {self.delays} steps."
            )
        # Step k predicts time C + k from states C-D+k..C+k-1 and inputs C-D+k..C+k.
        lags = jnp.arange(self.delays + 1)[None, :]
        rows = n_context - self.delays + jnp.arange(horizon)[:, None] + lags
        exog_windows = exog[rows]  # [horizon, D + 1, m]

        def step(window, exog_window):
            features = jnp.concatenate([window.ravel(), exog_window.ravel()])
            y = window[-1] + self.mlp(features)
            return jnp.concatenate([window[1:], y[None]]), y

        _, forecast = jax.lax.scan(step, context[-self.delays :], exog_windows, length=horizon)
        return forecast, {}


register_model(
    ModelSpec(
        "tdnn",
        TimeDelayNetwork,
        {"delays": 8, "width": 64, "depth": 2},
        "time-delay feed-forward network / NARX (tutorial eq. 1), predicts increments",
        training={"context": 32, "horizon": 10, "strategy": "curriculum", "learning_rate": 1e-3},
    )
)
