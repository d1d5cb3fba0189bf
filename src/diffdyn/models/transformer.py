"""Self-attention (Transformer-encoder) forecaster, rolled out closed loop on a sliding window.

Vaswani et al. (2017), "Attention is all you need", encoder only, with a causal mask: each
time step t of the window is a token x_t = y_t ⊕ u_t ⊕ u_{t+1} (see `models.inputs`), embedded
linearly and summed with a positional encoding (sec. 3.5, sinusoidal, or a learned table).
Every block is in the pre-LayerNorm form of Xiong et al. (2020), which trains without a
learning-rate warm-up:

    x ← x + MHSA(LN(x))    (causal multi-head self-attention, sec. 3.2)
    x ← x + FFN(LN(x))     (FFN(x) = W₂ GELU(W₁ x + b₁) + b₂, sec. 3.3)

and a final LayerNorm gives z_t. The readout of the newest position predicts the increment,
ŷ_{t+1} = y_t + V z_t + b.

Closed loop: the window holds the last W tokens (W = the context length unless `window` says
otherwise), always at positions 0..W-1. At each forecast step the whole encoder runs on the
window; the prediction ŷ, with the next pair of exogenous inputs, becomes a new token that
enters at the newest end as the oldest one leaves.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from ..nn import LearnedPositionalEncoding, MultiHeadSelfAttention, sinusoidal_encoding
from .base import AbstractForecaster
from .inputs import check_inputs, step_exog
from .registry import ModelSpec, register_model

POSITIONAL = ("sinusoidal", "learned")


class PreLayerNormBlock(eqx.Module):
    """One pre-LayerNorm Transformer-encoder block (Xiong et al. 2020) on a sequence
    `[time, width]`: x + MHSA(LN(x)) with a causal mask, then x + FFN(LN(x)) with a GELU.

    Returns the new sequence and the block's alignment `[heads, time, time]`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models.transformer import PreLayerNormBlock

    block = PreLayerNormBlock(16, 4, 32, key=jax.random.key(0))
    out, weights = block(jnp.ones((10, 16)))  # [10, 16], [4, 10, 10]
    ```
    """

    attention_norm: eqx.nn.LayerNorm
    attention: MultiHeadSelfAttention
    ffn_norm: eqx.nn.LayerNorm
    ffn_in: eqx.nn.Linear
    ffn_out: eqx.nn.Linear

    def __init__(self, width: int, heads: int, ffn: int, *, key: PRNGKeyArray):
        k_att, k_in, k_out = jax.random.split(key, 3)
        self.attention_norm = eqx.nn.LayerNorm(width)
        self.attention = MultiHeadSelfAttention(width, heads, key=k_att, causal=True)
        self.ffn_norm = eqx.nn.LayerNorm(width)
        self.ffn_in = eqx.nn.Linear(width, ffn, key=k_in)
        self.ffn_out = eqx.nn.Linear(ffn, width, key=k_out)

    def __call__(
        self, x: Float[Array, "time width"]
    ) -> tuple[Float[Array, "time width"], Float[Array, "heads time time"]]:
        attended, weights = self.attention(jax.vmap(self.attention_norm)(x))
        x = x + attended
        hidden = jax.nn.gelu(jax.vmap(self.ffn_in)(jax.vmap(self.ffn_norm)(x)))
        return x + jax.vmap(self.ffn_out)(hidden), weights


class SelfAttentionForecaster(AbstractForecaster):
    """A causal Transformer encoder on a sliding window of tokens y_t ⊕ u_t ⊕ u_{t+1}, read
    out at the newest position as an increment, ŷ_{t+1} = y_t + V z_t + b.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key for the initial weights.
    - `width`: width of the tokens inside the encoder.
    - `heads`: attention heads per block (must divide `width`).
    - `layers`: number of encoder blocks.
    - `ffn`: hidden width of each block's feed-forward network.
    - `positional`: `"sinusoidal"` (fixed, Vaswani et al. 2017) or `"learned"` (a table of
      `max_length` positions; a longer window is refused).
    - `max_length`: size of the learned positional table (unused for sinusoidal).
    - `window`: W, how many of the newest tokens the encoder sees; 0 means the whole context
      given at call time (the context must be at least W steps long).

    **Returns** `(forecast [horizon, dim], {"attention": [horizon, W]})`. Row k of the
    alignment is the last layer's attention of the newest position over the window when
    forecasting step k, averaged over heads (non-negative, rows sum to 1). Column j is window
    position j, i.e. lag W - j from the newest token (column W - 1 is the newest). For step 0
    the window is exactly the observed context (its last W steps); later rows also cover
    tokens built from the model's own predictions.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models import SelfAttentionForecaster

    model = SelfAttentionForecaster(3, key=jax.random.key(0), width=16, heads=2)
    forecast, aux = model(jnp.zeros((20, 3)), horizon=10)
    forecast.shape, aux["attention"].shape  # (10, 3), (10, 20)
    ```
    """

    name: ClassVar[str] = "transformer"
    has_attention: ClassVar[bool] = True
    embedding: eqx.nn.Linear
    learned_positions: LearnedPositionalEncoding | None
    blocks: tuple[PreLayerNormBlock, ...]
    final_norm: eqx.nn.LayerNorm
    readout: eqx.nn.Linear
    positional: str = eqx.field(static=True)
    window: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key: PRNGKeyArray,
        width: int = 32,
        heads: int = 4,
        layers: int = 2,
        ffn: int = 64,
        positional: str = "sinusoidal",
        max_length: int = 256,
        window: int = 0,
    ):
        if positional not in POSITIONAL:
            raise UnknownNameError(
                f"unknown positional encoding {positional!r}; choose one of "
                f"{', '.join(POSITIONAL)}.{did_you_mean(positional, POSITIONAL)}"
            )
        for option, value in (("width", width), ("layers", layers), ("ffn", ffn)):
            if value < 1:
                raise DiffdynError(f"{option} must be a positive whole number; got {value}.")
        if positional == "learned" and max_length < 1:
            raise DiffdynError(f"max_length must be a positive whole number; got {max_length}.")
        if window < 0:
            raise DiffdynError(
                f"window must be 0 (the whole context) or a positive whole number; got {window}."
            )
        k_embed, k_pos, k_out, *k_blocks = jax.random.split(key, 3 + layers)
        self.embedding = eqx.nn.Linear(dim + 2 * exog_dim, width, key=k_embed)
        self.learned_positions = (
            LearnedPositionalEncoding(max_length, width, key=k_pos)
            if positional == "learned"
            else None
        )
        self.blocks = tuple(PreLayerNormBlock(width, heads, ffn, key=k) for k in k_blocks)
        self.final_norm = eqx.nn.LayerNorm(width)
        self.readout = eqx.nn.Linear(width, dim, key=k_out)
        self.positional = positional
        self.window = window
        self.dim = dim
        self.exog_dim = exog_dim

    def encode(
        self, tokens: Float[Array, "window token"]
    ) -> tuple[Float[Array, "window width"], Float[Array, "heads window window"]]:
        """The encoder on one window of tokens y_t ⊕ u_t ⊕ u_{t+1} (oldest first).

        Returns z `[window, width]`, the output at every position after the final LayerNorm
        (z at position t depends only on tokens 0..t: the mask is causal), and the last
        block's alignment `[heads, window, window]`.
        """
        x = jax.vmap(self.embedding)(tokens)
        length, width = x.shape
        if self.learned_positions is None:
            x = x + sinusoidal_encoding(length, width).astype(x.dtype)
        else:
            x = x + self.learned_positions(length)  # refuses windows beyond its table
        *early, last = self.blocks
        for block in early:
            x, _ = block(x)
        x, weights = last(x)
        return jax.vmap(self.final_norm)(x), weights

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        inputs_exog = step_exog(exog)  # row t: u_t ⊕ u_{t+1}
        n_context = context.shape[0]
        window = self.window or n_context
        if window > n_context:
            raise DiffdynError(
                f"the context ({n_context} steps) is shorter than the model's window "
                f"({window}): pass a context of at least {window} steps."
            )
        tokens = jnp.concatenate([context, inputs_exog[:n_context]], axis=1)[-window:]
        # Step k appends the token of time C + k: ŷ_{C+k} ⊕ u_{C+k} ⊕ u_{C+k+1}. The last
        # step's token is never read, so its exogenous pair is padding.
        next_exog = jnp.concatenate(
            [inputs_exog[n_context:], jnp.zeros((1, inputs_exog.shape[1]), inputs_exog.dtype)]
        )

        def step(tokens, exog_pair):
            z, weights = self.encode(tokens)
            y = tokens[-1, : self.dim] + self.readout(z[-1])
            new = jnp.concatenate([y, exog_pair])
            return jnp.concatenate([tokens[1:], new[None]]), (y, jnp.mean(weights[:, -1], 0))

        _, (forecast, attention) = jax.lax.scan(step, tokens, next_exog, length=horizon)
        return forecast, {"attention": attention}


register_model(
    ModelSpec(
        "transformer",
        SelfAttentionForecaster,
        {
            "width": 32,
            "heads": 4,
            "layers": 2,
            "ffn": 64,
            "positional": "sinusoidal",
            "max_length": 256,
            "window": 0,
        },
        "causal Transformer encoder (Vaswani et al. 2017, pre-LN) on a sliding window, "
        "predicts increments",
        # Batch 16 and horizon 5: a step costs ~300 ms at batch 64 and horizon 10, so make
        # run's 10 s budget gave ~30 steps (Lorenz-63 0.05-0.13 LT, below persistence);
        # measured with these, 0.69 (Lorenz-63) and 0.53 (Mackey-Glass).
        training={
            "context": 32,
            "horizon": 5,
            "batch_size": 16,
            "strategy": "curriculum",
            "learning_rate": 1e-3,
        },
    )
)
