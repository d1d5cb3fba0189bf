"""Dual-stage attention-based recurrent network (DA-RNN) forecaster.

Qin et al. (2017), "A dual-stage attention-based recurrent neural network for time series
prediction" (IJCAI). Two attentions, one per stage:

1. **Input attention** (encoder, eqs. 8–11). The driving series are every state variable and
   every exogenous input, n = d + m series; x^k ∈ R^C is the k-th series over the whole context
   window and x_t ∈ R^n the n values at step t. At each encoder step the LSTM state
   [h_{t-1}; s_{t-1}] scores every series,
   e_t^k = v_eᵀ tanh(W_e [h_{t-1}; s_{t-1}] + U_e x^k),  α_t = softmax_k e_t^k,
   and the encoder reads the reweighted input x̃_t = α_t ⊙ x_t: h_t = LSTM(h_{t-1}, x̃_t).
2. **Temporal attention** (decoder, eqs. 12–16). The decoder LSTM state [d_{t-1}; s'_{t-1}]
   scores every encoder hidden state,
   l_t^i = v_dᵀ tanh(W_d [d_{t-1}; s'_{t-1}] + U_d h_i),  β_t = softmax_i l_t^i,
   c_t = Σ_i β_t^i h_i; the decoder input is ỹ = W̃ [y ⊕ u ⊕ c_t] + b̃ and d_t = LSTM(d_{t-1}, ỹ).

The output (eq. 22), ŷ = v_yᵀ(W_y [d_t; c_t] + b_w) + b_v, is linear in [d_t; c_t], so it is
one linear layer here, read out as an increment: ŷ_k = ŷ_{k-1} + V [d_k; c_k] + b. The
context vector computed from d_{t-1} feeds both the decoder input and the readout of step t
(the paper's eq. 15 feeds the previous step's, c_{t-1}, to the input).

Departures from the paper, which predicts one scalar target one step ahead from the history of
the target and the driving series: the target here is the whole d-dimensional state, so ỹ has
width d; the decoder reads the context teacher forced, then rolls out closed loop for any
horizon, feeding back its own forecast (with the exogenous inputs of the step, u_t ⊕ u_{t+1},
see `models.inputs`); and the attention score U_e x^k compares whole context windows, so the
model is built for one context length (`context`).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import DiffdynError
from ..nn import AbstractScore, AdditiveScore, LSTMCell, attend, make_score, masked_softmax
from .base import AbstractForecaster
from .inputs import check_inputs, step_exog
from .registry import ModelSpec, register_model


class DARNN(AbstractForecaster):
    """DA-RNN (Qin et al. 2017): input attention over the driving series in the encoder,
    temporal attention over the encoder's states in the decoder, closed-loop rollout.

    The driving series are the d state variables followed by the m exogenous inputs (u_t at
    encoder step t). The input attention compares whole context windows (U_e x^k with x^k of
    length `context`), so the model takes contexts of exactly `context` steps and raises a
    `DiffdynError` for any other length.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key for the initial weights.
    - `encoder_hidden`: width of the encoder LSTM (m in the paper); also the width of the
      temporal attention's hidden layer.
    - `decoder_hidden`: width of the decoder LSTM (p in the paper).
    - `context`: the context length C the model reads (T in the paper); also the width of the
      input attention's hidden layer, as in the paper (v_e ∈ R^T).

    **Returns** (`__call__`): the forecast `[horizon, dim]` and `aux` with

    - `aux["attention"]`: `[horizon, context]`, the temporal attention β: row k is the
      alignment of forecast step k over the encoder steps (non-negative, sums to 1);
    - `aux["input_attention"]`: `[context, dim + exog_dim]`, the input attention α: row t holds
      the weights of encoder step t over the driving series, state variables first, then the
      exogenous inputs (non-negative, sums to 1).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models import DARNN

    model = DARNN(2, 1, key=jax.random.key(0), encoder_hidden=16, decoder_hidden=16, context=20)
    forecast, aux = model(jnp.zeros((20, 2)), jnp.zeros((30, 1)), horizon=10)  # [10, 2]
    aux["attention"].shape, aux["input_attention"].shape  # (10, 20), (20, 3)
    ```
    """

    name: ClassVar[str] = "darnn"
    has_attention: ClassVar[bool] = True
    input_attention: AdditiveScore
    encoder: LSTMCell
    temporal_attention: AbstractScore
    decoder_input: eqx.nn.Linear
    decoder: LSTMCell
    readout: eqx.nn.Linear
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)
    context: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key,
        encoder_hidden: int = 32,
        decoder_hidden: int = 32,
        context: int = 32,
    ):
        for option, value in (
            ("encoder_hidden", encoder_hidden),
            ("decoder_hidden", decoder_hidden),
            ("context", context),
        ):
            if value < 1:
                raise DiffdynError(f"{option} must be a positive whole number; got {value}.")
        series = dim + exog_dim
        k_in, k_enc, k_temp, k_comb, k_dec, k_out = jax.random.split(key, 6)
        # eq. (8): W_e [2m → T], U_e [T → T], v_e ∈ R^T.
        self.input_attention = AdditiveScore(2 * encoder_hidden, context, context, key=k_in)
        self.encoder = LSTMCell(series, encoder_hidden, key=k_enc)
        # eq. (12): W_d [2p → m], U_d [m → m], v_d ∈ R^m.
        self.temporal_attention = make_score(
            "additive",
            2 * decoder_hidden,
            encoder_hidden,
            key=k_temp,
            attention_size=encoder_hidden,
        )
        self.decoder_input = eqx.nn.Linear(dim + 2 * exog_dim + encoder_hidden, dim, key=k_comb)
        self.decoder = LSTMCell(dim, decoder_hidden, key=k_dec)
        self.readout = eqx.nn.Linear(decoder_hidden + encoder_hidden, dim, key=k_out)
        self.dim = dim
        self.exog_dim = exog_dim
        self.context = context

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        n_context = context.shape[0]
        if n_context != self.context:
            raise DiffdynError(
                f"DA-RNN was built for a context of {self.context} steps; got {n_context}; "
                f"rebuild it with --param context={n_context} or use --context {self.context}."
            )
        hiddens, input_weights = self._encode(jnp.concatenate([context, exog[:n_context]], axis=1))
        keys = self.temporal_attention.prepare(hiddens)  # U_d h_i, once for every step
        inputs_exog = step_exog(exog)  # row t: u_t ⊕ u_{t+1}

        # The decoder reads the observed y_0 … y_{C-1} (teacher forced), then its own forecast:
        # one scan over C - 1 + horizon steps, of which the step reading y_{C-1} emits ŷ_0.
        steps = n_context - 1 + horizon
        observed = jnp.arange(steps) < n_context
        padded = jnp.concatenate([context, jnp.zeros((horizon - 1, self.dim), context.dtype)])

        def step(carry, inputs):
            state, y = carry
            is_observed, y_observed, exog_step = inputs
            y = jnp.where(is_observed, y_observed, y)
            # eqs. (12)–(14): temporal attention of [d_{t-1}; s'_{t-1}] over h_1 … h_C.
            d, s = state
            weights = masked_softmax(self.temporal_attention(jnp.concatenate([d, s]), keys))
            summary = attend(weights, hiddens)
            # eqs. (15)–(16): ỹ = W̃ [y ⊕ u_t ⊕ u_{t+1} ⊕ c] + b̃, d_t = LSTM(d_{t-1}, ỹ).
            state = self.decoder(
                state, self.decoder_input(jnp.concatenate([y, exog_step, summary]))
            )
            # eq. (22), as an increment: ŷ = y + V [d_t; c] + b.
            y = y + self.readout(jnp.concatenate([self.decoder.hidden(state), summary]))
            return (state, y), (y, weights)

        _, (outputs, weights) = jax.lax.scan(
            step, (self.decoder.initial_state(), context[0]), (observed, padded, inputs_exog)
        )
        forecast, attention = outputs[n_context - 1 :], weights[n_context - 1 :]
        return forecast, {"attention": attention, "input_attention": input_weights}

    def _encode(
        self, driving: Float[Array, "context series"]
    ) -> tuple[Float[Array, "context hidden"], Float[Array, "context series"]]:
        """Encoder with input attention (eqs. 8–11): every hidden state h_t and every α_t."""
        prepared = self.input_attention.prepare(driving.T)  # U_e x^k + b, once per window

        def step(state, x_t):
            h, s = state
            weights = masked_softmax(self.input_attention(jnp.concatenate([h, s]), prepared))
            state = self.encoder(state, weights * x_t)  # eq. (10): x̃_t = α_t ⊙ x_t
            return state, (self.encoder.hidden(state), weights)

        _, (hiddens, weights) = jax.lax.scan(step, self.encoder.initial_state(), driving)
        return hiddens, weights


register_model(
    ModelSpec(
        "darnn",
        DARNN,
        {"encoder_hidden": 32, "decoder_hidden": 32, "context": 32},
        "dual-stage attention RNN (Qin et al. 2017): input attention over the driving series, "
        "then temporal attention",
        training={"context": 32, "horizon": 20, "strategy": "curriculum", "learning_rate": 2e-3},
    )
)
