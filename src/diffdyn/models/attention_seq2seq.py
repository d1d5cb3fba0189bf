"""Encoder–decoder with attention: a bidirectional RNN encoder and an attention decoder.

Tutorial (Hernández & Amigó) eqs. (6)–(10), after Bahdanau, Cho & Bengio (2015):

- the encoder reads the context forwards and backwards; the annotation of step j is
  h_j = [→h_j ; ←h_j] (eq. 6), so it summarises the inputs around j from both sides;
- the decoder state follows s_i = f(s_{i-1}, ŷ_{i-1}, c_i) (eq. 7) from
  s_0 = tanh(W_s ←h_1) (Bahdanau et al., appendix A);
- the context vector of output step i is c_i = Σ_j α_ij h_j (eq. 8), with the alignment
  α_ij = softmax_j(e_ij) (eq. 9) and the score e_ij = score(s_{i-1}, h_j) — additive (eq. 10),
  dot, general, scaled-dot or cosine (eq. 11), see `diffdyn.nn.attention`;
- the readout predicts the increment from the state and the context,
  ŷ_i = ŷ_{i-1} + V [s_i ; c_i] + b.

Unlike the plain encoder–decoder (`models.encoder_decoder`), nothing has to squeeze the whole
context into one vector: every output step looks back at every input step, and the alignment
α (returned as `aux["attention"]`, `[horizon, context]`) shows where it looked.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import DiffdynError
from ..nn import AbstractRecurrentCell, AbstractScore, make_score, masked_softmax, run_sequence
from .base import AbstractForecaster
from .inputs import check_inputs, step_exog
from .registry import ModelSpec, register_model
from .rnn import make_cell

READOUT_SCALE = 0.01  # of the readout's initial weights (see `AttentionEncoderDecoder`)
UNROLL_MIN_BUDGET = 60.0  # seconds: the shortest budget that `unroll="auto"` unrolls for


def parse_unroll(unroll: str | bool) -> str:
    """The `unroll` hyperparameter as `"auto"`, `"on"` or `"off"` (`true`/`false` accepted)."""
    text = str(unroll).strip().lower()
    text = {"true": "on", "false": "off", "1": "on", "0": "off"}.get(text, text)
    if text not in ("auto", "on", "off"):
        raise DiffdynError(f"seq2seq-attention needs unroll=auto, on or off; got {unroll!r}.")
    return text


class AttentionEncoderDecoder(AbstractForecaster):
    """Bidirectional RNN encoder + attention decoder, rolled out closed loop.

    The decoder's state has the annotations' width, 2 × `hidden`, so that every score (the
    dot and cosine scores compare vectors of equal width) applies.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key for the initial weights.
    - `cell`: `"gru"`, `"lstm"` or `"rnn"` (encoder and decoder alike).
    - `hidden`: width of each encoder direction (annotations and decoder: 2 × `hidden`).
    - `score`: `"additive"`, `"dot"`, `"general"`, `"scaled-dot"` or `"cosine"`.
    - `attention`: width of the additive score's hidden layer (0: 2 × `hidden`).
    - `reencode`: re-encode the latest `context` values (observed or forecast) every this
      many forecast steps and start the decoder afresh (0: never, Bahdanau's original). The
      registry default, 10, is half the training horizon: a decoder trained on 20 steps does
      not extend far beyond them (on Lorenz-63, 120 s of training gave VPT 0.57 ± 0.21
      Lyapunov times without re-encoding, 2.93 ± 1.1 with it; docs/attention.md), while
      chunks it was trained on carry the forecast to any horizon.
    - `unroll`: `"auto"` (the default), `"on"` or `"off"` (also `true` / `false`): unroll the
      decoder's loop over a chunk (and the loop over ≤ 4 chunks) when it has at most 20 steps.
      Unrolled, a training step is faster (bench/attention_seq2seq_step.py, 2026-12-02:
      13.1 against 17.4 ms) but takes longer to compile, which a short budget pays out of its
      training (in `compare`'s 14 s cells, with two workers compiling at once, the unrolled
      model compiled for 11.7 s on Mackey–Glass and took one step). `"auto"` unrolls when
      `train.fit` trains without a budget or with at least `UNROLL_MIN_BUDGET` = 60 s
      (`for_training`), and forecasts (evaluation, a loaded model) run the loops rolled.

    **Returns** `(forecast [horizon, dim], {"attention": [horizon, context]})`; row i of the
    alignment is the weight each step of the encoded window gets when forecasting step i (rows
    sum to 1). Rows of the first chunk refer to the observed context; with re-encoding, later
    rows refer to the window re-encoded for their chunk (its newest values are forecasts).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models import AttentionEncoderDecoder

    model = AttentionEncoderDecoder(3, key=jax.random.key(0), hidden=8, score="general")
    forecast, aux = model(jnp.zeros((20, 3)), horizon=10)
    forecast.shape, aux["attention"].shape  # (10, 3), (10, 20)
    ```
    """

    name: ClassVar[str] = "seq2seq-attention"
    has_attention: ClassVar[bool] = True
    forward: AbstractRecurrentCell
    backward: AbstractRecurrentCell
    decoder: AbstractRecurrentCell
    init_weight: Float[Array, "decoder hidden"]
    init_bias: Float[Array, " decoder"]
    score: AbstractScore
    readout: eqx.nn.Linear
    cell: str = eqx.field(static=True)
    reencode: int = eqx.field(static=True)
    unroll: str = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key,
        cell: str = "gru",
        hidden: int = 32,
        score: str = "additive",
        attention: int = 0,
        reencode: int = 10,
        unroll: str | bool = "auto",
    ):
        if reencode < 0:
            raise DiffdynError(
                f"reencode must be 0 (never) or a positive step count; got {reencode}."
            )
        k_fw, k_bw, k_dec, k_init, k_score, k_out = jax.random.split(key, 6)
        n_in = dim + 2 * exog_dim
        width = 2 * hidden
        self.score = make_score(score, width, width, key=k_score, attention_size=attention or None)
        self.forward = make_cell(cell, n_in, hidden, key=k_fw)
        self.backward = make_cell(cell, n_in, hidden, key=k_bw)
        self.decoder = make_cell(cell, n_in + width, width, key=k_dec)
        bound = 1 / hidden**0.5
        self.init_weight = jax.random.uniform(k_init, (width, hidden), minval=-bound, maxval=bound)
        self.init_bias = jnp.zeros(width)
        # The readout starts small (its default weights × 0.01, bias 0), so the untrained
        # model forecasts nearly persistence (increments near 0) and training moves it from
        # there: with a short budget (the compare grid's 20 s, most of them compiling) a
        # default readout's increments compound over the closed loop, and the barely trained
        # model forecast worse than persistence (Lorenz-63: VPT 0.036 against persistence's
        # 0.084 Lyapunov times).
        readout = eqx.nn.Linear(2 * width, dim, key=k_out)
        assert readout.bias is not None  # `use_bias=True`, the default
        self.readout = eqx.tree_at(
            lambda r: (r.weight, r.bias), readout,
            (READOUT_SCALE * readout.weight, jnp.zeros_like(readout.bias)),
        )  # fmt: skip
        self.cell = cell
        self.reencode = reencode
        self.unroll = parse_unroll(unroll)
        self.dim = dim
        self.exog_dim = exog_dim

    def for_training(self, budget: float | None) -> AttentionEncoderDecoder:
        """With `unroll="auto"`: the loops unrolled for a run without a budget or with at
        least `UNROLL_MIN_BUDGET` seconds, rolled for a shorter one (see `unroll`)."""
        if self.unroll != "auto":
            return self
        chosen = "on" if budget is None or budget >= UNROLL_MIN_BUDGET else "off"
        model = copy.copy(self)
        object.__setattr__(model, "unroll", chosen)  # a static field: the same parameters
        return model

    def encode(self, inputs: Float[Array, "context input"]) -> Float[Array, "context annotation"]:
        """Annotations h_j = [→h_j ; ←h_j] of every context step (eq. 6)."""
        forwards, _ = run_sequence(self.forward, inputs)
        backwards, _ = run_sequence(self.backward, inputs[::-1])
        return jnp.concatenate([forwards, backwards[::-1]], axis=1)

    def _initial_state(self, annotations):
        # s_0 = tanh(W_s ←h_1 + b): the backward direction's summary of the whole context.
        backward_first = annotations[0, annotations.shape[1] // 2 :]
        first = jnp.tanh(self.init_weight @ backward_first + self.init_bias)
        state = self.decoder.initial_state()
        if isinstance(state, tuple):  # LSTM: (h, c)
            return (first, *state[1:])
        return first

    def _decode(self, window, exog_window, steps):
        """Encode `window` [C, d] (with its step inputs `exog_window` [C + steps - 1, 2m]) and
        decode `steps` values after it: `(forecast [steps, d], alignment [steps, C])`."""
        n_context = window.shape[0]
        annotations = self.encode(jnp.concatenate([window, exog_window[:n_context]], axis=1))
        prepared = self.score.prepare(annotations)  # key-side work, once

        def step(carry, exog_i):
            state, y = carry
            weights = masked_softmax(self.score(self.decoder.hidden(state), prepared))  # eq. 9
            summary = weights @ annotations  # eq. 8
            state = self.decoder(state, jnp.concatenate([y, exog_i, summary]))  # eq. 7
            y = y + self.readout(jnp.concatenate([self.decoder.hidden(state), summary]))
            return (state, y), (y, weights)

        start = (self._initial_state(annotations), window[-1])
        # Unrolled only when asked, or chosen for a long training (`for_training`): in
        # compare's 14 s budgets, with two workers compiling at once, the unrolled model
        # compiled for 11.7 s on Mackey-Glass and trained one step.
        unroll = steps if self.unroll == "on" and steps <= 20 else 1
        _, (forecast, weights) = jax.lax.scan(
            step, start, exog_window[n_context - 1 :], length=steps, unroll=unroll
        )
        return forecast, weights

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        inputs_exog = step_exog(exog)  # row t: u_t ⊕ u_{t+1}
        n_context = context.shape[0]
        every = self.reencode if 0 < self.reencode < horizon else horizon
        if every == horizon:
            forecast, weights = self._decode(context, inputs_exog, horizon)
            return forecast, {"attention": weights}

        # Re-encode the latest n_context values (observed or forecast) every `every` steps.
        chunks = -(-horizon // every)
        padded = jnp.pad(inputs_exog, ((0, chunks * every - horizon), (0, 0)))

        def chunk(window, index):
            exog_window = jax.lax.dynamic_slice_in_dim(
                padded, index * every, n_context + every - 1
            )
            forecast, weights = self._decode(window, exog_window, every)
            window = jnp.concatenate([window, forecast])[-n_context:]
            return window, (forecast, weights)

        unroll = chunks if self.unroll == "on" and chunks <= 4 else 1
        _, (forecast, weights) = jax.lax.scan(chunk, context, jnp.arange(chunks), unroll=unroll)
        forecast = forecast.reshape(chunks * every, self.dim)[:horizon]
        weights = weights.reshape(chunks * every, n_context)[:horizon]
        return forecast, {"attention": weights}


register_model(
    ModelSpec(
        "seq2seq-attention",
        AttentionEncoderDecoder,
        {
            "cell": "gru",
            "hidden": 32,
            "score": "additive",
            "attention": 0,
            "reencode": 10,
            "unroll": "auto",
        },
        "bidirectional RNN encoder + attention decoder (Bahdanau; tutorial eqs. 6–10)",
        training={"context": 32, "horizon": 20, "strategy": "curriculum", "learning_rate": 2e-3},
    )
)
