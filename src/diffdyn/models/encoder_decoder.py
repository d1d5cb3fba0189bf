"""Encoder–decoder (sequence-to-sequence) forecaster.

Tutorial (Hernández & Amigó) eqs. (4)–(5), after Cho et al. (2014) and Sutskever et al. (2014):
an encoder RNN reads the context, h_t = f(x_t, h_{t-1}), and summarises it in a context vector
c = q(h_1, …, h_T) = h_T; a decoder RNN starts from the encoder's last state and generates the
forecast, s_k = g(s_{k-1}, ŷ_{k-1}, c). Its input at each step is its own previous output (⊕ the
exogenous inputs of the step) ⊕ c, and its readout predicts the increment,
ŷ_k = ŷ_{k-1} + V s_k + b.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..nn import AbstractRecurrentCell, run_sequence
from .base import AbstractForecaster
from .inputs import check_inputs, step_exog
from .registry import ModelSpec, register_model
from .rnn import make_cell


class EncoderDecoder(AbstractForecaster):
    """An encoder RNN reads the context; a decoder RNN, started from its last state, rolls out.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key for the initial weights.
    - `cell`: `"gru"` or `"lstm"` (encoder and decoder alike; `"rnn"` works too).
    - `hidden`: width of the encoder's and the decoder's state.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models import EncoderDecoder

    model = EncoderDecoder(2, 1, key=jax.random.key(0), hidden=16)
    forecast, aux = model(jnp.zeros((20, 2)), jnp.zeros((30, 1)), horizon=10)  # [10, 2]
    ```
    """

    name: ClassVar[str] = "seq2seq"
    encoder: AbstractRecurrentCell
    decoder: AbstractRecurrentCell
    readout: eqx.nn.Linear
    cell: str = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)

    def __init__(self, dim: int, exog_dim: int = 0, *, key, cell: str = "gru", hidden: int = 64):
        k_enc, k_dec, k_out = jax.random.split(key, 3)
        self.encoder = make_cell(cell, dim + 2 * exog_dim, hidden, key=k_enc)
        self.decoder = make_cell(cell, dim + 2 * exog_dim + hidden, hidden, key=k_dec)
        self.readout = eqx.nn.Linear(hidden, dim, key=k_out)
        self.cell = cell
        self.dim = dim
        self.exog_dim = exog_dim

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        inputs_exog = step_exog(exog)  # row t: u_t ⊕ u_{t+1}
        n_context = context.shape[0]

        # eq. (4): encode the context; c = h_T.
        _, state = run_sequence(
            self.encoder, jnp.concatenate([context, inputs_exog[:n_context]], axis=1)
        )
        summary = self.encoder.hidden(state)

        # eq. (5): s_k = g(s_{k-1}, ŷ_{k-1}, c), from s_0 = the encoder's last state and
        # ŷ_{-1} = the last observation.
        def step(carry, exog_k):
            state, y = carry
            state = self.decoder(state, jnp.concatenate([y, exog_k, summary]))
            y = y + self.readout(self.decoder.hidden(state))
            return (state, y), y

        _, forecast = jax.lax.scan(
            step, (state, context[-1]), inputs_exog[n_context - 1 :], length=horizon
        )
        return forecast, {}


register_model(
    ModelSpec(
        "seq2seq",
        EncoderDecoder,
        {"cell": "gru", "hidden": 64},
        "encoder–decoder RNN (tutorial eqs. 4–5): context summarised in the decoder's start",
        training={"context": 32, "horizon": 20, "strategy": "curriculum", "learning_rate": 2e-3},
    )
)
