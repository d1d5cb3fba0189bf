"""Memory Time-series Network (MTNet): long history in memory blocks, read by attention.

Chang, Sun, Wu & Lin (2018), "A Memory-Network Based Solution for Multivariate Time-Series
Forecasting" (arXiv:1809.02105); the bold names below follow the paper's names for its parts.
The long history before the recent window is cut into n blocks X_1 … X_n of T steps each, held
as memory; the recent T steps are the query Q. Three encoders of the same shape but separate
weights embed them:

- **Encoder architecture** (paper: convolutional, attention and recurrent components): a Conv1D
  over time whose filters span every input variable, h = ReLU(W_conv * X + b_conv), gives
  T - w + 1 feature vectors of `filters` channels; a GRU reads them and its final hidden state
  is the embedding. The paper also reweights the conv channels with a DA-RNN-style input
  attention before each GRU step; this implementation leaves it out (a plain GRU, whose input
  projection is one matmul outside the loop).
- **Input memory representation**: m_i = Encoder_m(X_i); the query u = Encoder_in(Q); the
  attention over blocks p_i = softmax_i(uᵀ m_i).
- **Output memory representation**: c_i = Encoder_c(X_i); the read o = Σ_i p_i c_i (the
  end-to-end memory network read, Sukhbaatar et al. 2015, eq. 2); the nonlinear part
  y^D = W^D [o; u] + b^D.
- **Autoregressive component** (the LSTNet highway): y^L = Σ_{k=0}^{s-1} w_k y_{t-k} + b,
  one set of s weights shared by every variable.

The prediction is ŷ = y^D + y^L in the paper; here it is read as an increment,
ŷ_{t+1} = y_t + y^D + y^L, as in the other gradient models of diffdyn (the AR part stays a
general linear AR over the last s values: the identity only shifts its lag-0 weight).

Departures from the paper (and from its reference code, github.com/Maple728/MTNet), so that the
parameters do not depend on the number of blocks and the model reads any context C ≥ 2T:

- the read sums the weighted output memories (o = Σ p_i c_i) instead of concatenating every
  p_i c_i into W^D's input, so n = ⌊(C − T) / T⌋ follows from the context (the leading
  C − T − nT steps are dropped);
- the target is the whole d-dimensional state, forecast closed loop for any horizon: the memory
  is encoded once from the context, and every forecast step re-encodes the query from the
  sliding window of the last T values, forecasts included;
- exogenous inputs join every step of every encoder as u_t ⊕ u_{t+1} (see `models.inputs`).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import DiffdynError
from ..nn import GRUCell, run_sequence
from .base import AbstractForecaster
from .inputs import check_inputs, step_exog
from .registry import ModelSpec, register_model


class BlockEncoder(eqx.Module):
    """MTNet's encoder: Conv1D over time (ReLU), then a GRU; the final hidden state.

    The convolution's filters span all `input_size` variables and `kernel` steps (valid
    padding), so a block of T steps gives T - kernel + 1 feature vectors of `filters` channels
    (paper's convolutional component); the GRU reads them in order (recurrent component).

    **Arguments:**

    - `input_size`: variables per step (state ⊕ u_t ⊕ u_{t+1}).
    - `filters`, `kernel`: number of convolution filters and their length in steps.
    - `hidden`: width of the GRU state, the embedding.
    - `key`: PRNG key for the initial weights.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models.mtnet import BlockEncoder

    encoder = BlockEncoder(3, 8, 3, 16, key=jax.random.key(0))
    embedding = encoder(jnp.ones((10, 3)))  # [16]
    ```
    """

    conv: eqx.nn.Conv1d
    gru: GRUCell

    def __init__(
        self, input_size: int, filters: int, kernel: int, hidden: int, *, key: PRNGKeyArray
    ):
        k_conv, k_gru = jax.random.split(key)
        self.conv = eqx.nn.Conv1d(input_size, filters, kernel, key=k_conv)
        self.gru = GRUCell(filters, hidden, key=k_gru)

    def __call__(self, block: Float[Array, "time input"]) -> Float[Array, " hidden"]:
        features = jax.nn.relu(self.conv(block.T)).T  # [time - kernel + 1, filters]
        _, state = run_sequence(self.gru, features)
        return state


class MTNet(AbstractForecaster):
    """MTNet (Chang et al. 2018): the context's past blocks as memory, the last `window` steps
    as the query, an attention read over blocks and a linear autoregressive highway.

    The context of C steps is laid out, oldest first, as a dropped remainder of
    (C − T) mod T steps, n = ⌊(C − T) / T⌋ memory blocks of T = `window` steps, and the query
    (the last T steps). Contexts shorter than 2T raise a `DiffdynError`.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key for the initial weights.
    - `window`: T, the length of the query and of every memory block.
    - `hidden`: width of the three encoders' GRU (the embeddings m_i, u, c_i).
    - `filters`, `kernel`: the encoders' Conv1D: number of filters and their length
      (`kernel` ≤ `window`).
    - `ar_window`: s, how many recent values the autoregressive highway reads
      (1 ≤ s ≤ `window`).

    **Returns** (`__call__`): the forecast `[horizon, dim]` and `aux` with

    - `aux["memory_attention"]`: `[horizon, n]`, p for every forecast step over the memory
      blocks, oldest block first (non-negative, rows sum to 1);
    - `aux["attention"]`: `[horizon, C]`, the same weights spread over the context steps:
      p_i / T on each step of block i, 0 on the dropped remainder and on the query window.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models.mtnet import MTNet

    model = MTNet(2, 1, key=jax.random.key(0), window=4, hidden=8, filters=4, kernel=2)
    forecast, aux = model(jnp.zeros((20, 2)), jnp.zeros((26, 1)), horizon=6)  # [6, 2]
    aux["memory_attention"].shape, aux["attention"].shape  # (6, 4), (6, 20)
    ```
    """

    name: ClassVar[str] = "mtnet"
    has_attention: ClassVar[bool] = True
    memory_encoder: BlockEncoder
    query_encoder: BlockEncoder
    output_encoder: BlockEncoder
    readout: eqx.nn.Linear
    ar_weight: Float[Array, " ar_window"]
    ar_bias: Float[Array, ""]
    window: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key: PRNGKeyArray,
        window: int = 8,
        hidden: int = 32,
        filters: int = 16,
        kernel: int = 3,
        ar_window: int = 4,
    ):
        for option, value in (
            ("window", window),
            ("hidden", hidden),
            ("filters", filters),
            ("kernel", kernel),
            ("ar_window", ar_window),
        ):
            if value < 1:
                raise DiffdynError(f"{option} must be a positive whole number; got {value}.")
        if kernel > window:
            raise DiffdynError(
                f"the convolution kernel ({kernel} steps) is longer than a block ({window} "
                f"steps); use kernel <= {window} or a larger window."
            )
        if ar_window > window:
            raise DiffdynError(
                f"ar_window ({ar_window}) must not exceed the query window ({window}); use "
                f"ar_window <= {window} or a larger window."
            )
        input_size = dim + 2 * exog_dim
        k_m, k_in, k_c, k_out = jax.random.split(key, 4)
        self.memory_encoder = BlockEncoder(input_size, filters, kernel, hidden, key=k_m)
        self.query_encoder = BlockEncoder(input_size, filters, kernel, hidden, key=k_in)
        self.output_encoder = BlockEncoder(input_size, filters, kernel, hidden, key=k_c)
        self.readout = eqx.nn.Linear(2 * hidden, dim, key=k_out)
        # The highway starts at zero: the untrained model is persistence plus y^D.
        self.ar_weight = jnp.zeros(ar_window)
        self.ar_bias = jnp.zeros(())
        self.window = window
        self.dim = dim
        self.exog_dim = exog_dim

    @property
    def block_length(self) -> int:
        """Steps per memory block (T), for labelling `aux["memory_attention"]`."""
        return self.window

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        n_context, window = context.shape[0], self.window
        if n_context < 2 * window:
            raise DiffdynError(
                f"MTNet needs a context of at least 2 × window = {2 * window} steps (one memory "
                f"block and the query); got {n_context}: pass --context {2 * window} or more, "
                "or a smaller window."
            )
        inputs_exog = step_exog(exog)  # row t: u_t ⊕ u_{t+1}
        n_blocks = (n_context - window) // window
        first = n_context - window - n_blocks * window  # the dropped remainder
        inputs = jnp.concatenate([context, inputs_exog[:n_context]], axis=1)
        blocks = inputs[first : n_context - window].reshape(n_blocks, window, -1)
        memory = jax.vmap(self.memory_encoder)(blocks)  # m_i, [n, hidden]
        outputs = jax.vmap(self.output_encoder)(blocks)  # c_i, [n, hidden]

        # Forecast step k reads values and inputs of times C - T + k … C + k - 1.
        rows = n_context - window + jnp.arange(horizon)[:, None] + jnp.arange(window)[None, :]
        query_exog = inputs_exog[rows]  # [horizon, T, 2m]
        s = self.ar_weight.shape[0]

        def step(recent, exog_window):
            u = self.query_encoder(jnp.concatenate([recent, exog_window], axis=1))
            weights = jax.nn.softmax(memory @ u)  # p_i = softmax(uᵀ m_i)
            read = weights @ outputs  # o = Σ p_i c_i
            nonlinear = self.readout(jnp.concatenate([read, u]))  # y^D = W^D [o; u] + b^D
            highway = self.ar_weight @ recent[window - s :] + self.ar_bias  # y^L
            y = recent[-1] + nonlinear + highway
            return jnp.concatenate([recent[1:], y[None]]), (y, weights)

        _, (forecast, weights) = jax.lax.scan(step, context[n_context - window :], query_exog)
        per_step = jnp.repeat(weights / window, window, axis=1)  # [horizon, n T]
        attention = jnp.concatenate(
            [
                jnp.zeros((horizon, first), weights.dtype),
                per_step,
                jnp.zeros((horizon, window), weights.dtype),
            ],
            axis=1,
        )
        return forecast, {"attention": attention, "memory_attention": weights}


register_model(
    ModelSpec(
        "mtnet",
        MTNet,
        {"window": 8, "hidden": 32, "filters": 16, "kernel": 3, "ar_window": 4},
        "memory-network forecaster (Chang et al. 2018, MTNet): attention over past blocks held "
        "as memory, plus an autoregressive highway",
        training={"context": 64, "horizon": 10, "strategy": "curriculum", "learning_rate": 2e-3},
    )
)
