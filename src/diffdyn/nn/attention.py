"""Attention on one example: score functions, masked softmax alignment, context vectors,
multi-head self-attention and positional encodings.

Notation of the tutorial (Hernández & Amigó), after Bahdanau et al. (2015) and Luong et al.
(2015): a query q (the decoder state s_{i-1}) is compared with every key k_j (the encoder's
annotations h_j) by a score e_ij = score(q, k_j); the alignment is the softmax over the
unmasked positions (eq. 9), α_ij = exp(e_ij) / Σ_l exp(e_il); the context vector is the
α-weighted sum of the values (eq. 8), c_i = Σ_j α_ij v_j.

Scores (`make_score(name, ...)`, names in `SCORES`):

- `"additive"` — Bahdanau et al. (2015), tutorial eq. (10): vᵀ tanh(W q + U k_j);
- `"dot"` — Luong et al. (2015): qᵀ k_j (query and key of the same width);
- `"general"` — Luong et al. (2015): qᵀ W k_j;
- `"scaled-dot"` — Vaswani et al. (2017): qᵀ k_j / √width;
- `"cosine"` — Graves et al. (2014), tutorial eq. (11): β · cos(q, k_j), with the key strength
  β = 1 + softplus(w_βᵀ q + b_β) ≥ 1 emitted from the query (the NTM/DNC "oneplus").

Every score works in two phases so that a decoder loop does the key-side work once:
`score.prepare(keys)` before the loop, `score(query, prepared)` inside it.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ..errors import DiffdynError, UnknownNameError, did_you_mean


def masked_softmax(
    scores: Float[Array, "... n"], mask: Bool[Array, "... n"] | None = None
) -> Float[Array, "... n"]:
    """Alignment weights (tutorial eq. 9): softmax over the last axis, masked positions 0.

    Weights are non-negative and sum to 1 over the unmasked positions; a row with every
    position masked gets all zeros (not NaN).

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import masked_softmax

    masked_softmax(jnp.array([1.0, 2.0, 3.0]), jnp.array([True, True, False]))
    # [0.269, 0.731, 0.0]
    ```
    """
    if mask is None:
        return jax.nn.softmax(scores, axis=-1)
    mask = jnp.broadcast_to(mask, scores.shape)
    safe = jnp.where(mask, scores, -jnp.inf)
    top = jnp.max(safe, axis=-1, keepdims=True)
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    top = jax.lax.stop_gradient(top)
    weights = jnp.where(mask, jnp.exp(jnp.where(mask, scores, 0.0) - top), 0.0)
    total = jnp.sum(weights, axis=-1, keepdims=True)
    return weights / jnp.where(total > 0, total, 1.0)


def attend(
    weights: Float[Array, "*queries n"], values: Float[Array, "n value"]
) -> Float[Array, "*queries value"]:
    """Context vector(s) (tutorial eq. 8): c = Σ_j α_j v_j."""
    return weights @ values


class AbstractScore(eqx.Module):
    """A score function e_j = score(q, k_j), split into `prepare(keys)` and `__call__`."""

    def prepare(self, keys: Float[Array, "n key"]) -> Float[Array, "n prepared"]:
        """Key-side work done once per sequence (e.g. U k_j of the additive score)."""
        return keys

    @abc.abstractmethod
    def __call__(
        self, query: Float[Array, " query"], prepared: Float[Array, "n prepared"]
    ) -> Float[Array, " n"]:
        """Scores of one query against every prepared key."""

    def scores(
        self, query: Float[Array, " query"], keys: Float[Array, "n key"]
    ) -> Float[Array, " n"]:
        """`prepare` and score in one call."""
        return self(query, self.prepare(keys))


class AdditiveScore(AbstractScore):
    """Bahdanau et al. (2015), tutorial eq. (10): e_j = vᵀ tanh(W q + U k_j + b)."""

    query_weight: Float[Array, "attention query"]
    key_weight: Float[Array, "attention key"]
    bias: Float[Array, " attention"]
    vector: Float[Array, " attention"]

    def __init__(self, query_size: int, key_size: int, attention_size: int, *, key):
        kq, kk, kv = jax.random.split(key, 3)
        self.query_weight = _glorot(kq, (attention_size, query_size))
        self.key_weight = _glorot(kk, (attention_size, key_size))
        self.bias = jnp.zeros(attention_size)
        self.vector = _glorot(kv, (attention_size,), fan=(attention_size, 1))

    def prepare(self, keys):
        return keys @ self.key_weight.T + self.bias[None, :]

    def __call__(self, query, prepared):
        return jnp.tanh(prepared + (self.query_weight @ query)[None, :]) @ self.vector


class DotScore(AbstractScore):
    """Luong et al. (2015): e_j = qᵀ k_j. Query and keys must have the same width."""

    def __call__(self, query, prepared):
        return prepared @ query


class ScaledDotScore(AbstractScore):
    """Vaswani et al. (2017): e_j = qᵀ k_j / √width."""

    def prepare(self, keys):
        return keys / math.sqrt(keys.shape[-1])

    def __call__(self, query, prepared):
        return prepared @ query


class GeneralScore(AbstractScore):
    """Luong et al. (2015): e_j = qᵀ W k_j."""

    weight: Float[Array, "query key"]

    def __init__(self, query_size: int, key_size: int, *, key):
        self.weight = _glorot(key, (query_size, key_size))

    def prepare(self, keys):
        return keys @ self.weight.T

    def __call__(self, query, prepared):
        return prepared @ query


class CosineScore(AbstractScore):
    """Content score of the Neural Turing Machine (Graves et al. 2014), tutorial eq. (11):
    e_j = β · qᵀk_j / (‖q‖ ‖k_j‖), with key strength β = 1 + softplus(w_βᵀ q + b_β).

    Invariant to the scale of each key (and of the query); β sharpens or flattens the
    alignment. Query and keys must have the same width.
    """

    strength_weight: Float[Array, " query"]
    strength_bias: Float[Array, ""]
    eps: float = eqx.field(static=True)

    def __init__(self, query_size: int, *, key, eps: float = 1e-6):
        self.strength_weight = _glorot(key, (query_size,), fan=(query_size, 1))
        self.strength_bias = jnp.array(0.0)
        self.eps = eps

    def prepare(self, keys):
        return keys / (jnp.linalg.norm(keys, axis=-1, keepdims=True) + self.eps)

    def __call__(self, query, prepared):
        strength = 1.0 + jax.nn.softplus(self.strength_weight @ query + self.strength_bias)
        unit = query / (jnp.linalg.norm(query) + self.eps)
        return strength * (prepared @ unit)


SCORES = ("additive", "dot", "general", "scaled-dot", "cosine")
_SAME_WIDTH = ("dot", "scaled-dot", "cosine")


def make_score(
    name: str,
    query_size: int,
    key_size: int,
    *,
    key: PRNGKeyArray,
    attention_size: int | None = None,
) -> AbstractScore:
    """The score function `name` (one of `SCORES`) for queries and keys of the given widths.

    `attention_size` is the width of the additive score's hidden layer (default: the query
    width). `dot`, `scaled-dot` and `cosine` need `query_size == key_size`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import make_score, masked_softmax

    score = make_score("additive", 8, 16, key=jax.random.key(0))
    weights = masked_softmax(score.scores(jnp.ones(8), jnp.ones((5, 16))))  # [5]
    ```
    """
    if name not in SCORES:
        raise UnknownNameError(
            f"unknown attention score {name!r}; choose one of {', '.join(SCORES)}."
            f"{did_you_mean(name, list(SCORES))}"
        )
    if name in _SAME_WIDTH and query_size != key_size:
        raise DiffdynError(
            f"the {name} score compares vectors of the same width; got a query of "
            f"{query_size} and keys of {key_size} (use 'general' or 'additive')."
        )
    if name == "additive":
        return AdditiveScore(query_size, key_size, attention_size or query_size, key=key)
    if name == "general":
        return GeneralScore(query_size, key_size, key=key)
    if name == "cosine":
        return CosineScore(query_size, key=key)
    if name == "dot":
        return DotScore()
    return ScaledDotScore()


def sinusoidal_encoding(length: int, width: int) -> Float[Array, "length width"]:
    """Fixed positional encoding of Vaswani et al. (2017), sec. 3.5:
    PE[p, 2i] = sin(p / 10000^{2i/width}), PE[p, 2i+1] = cos(p / 10000^{2i/width})."""
    position = jnp.arange(length)[:, None]
    frequency = jnp.exp(-math.log(10000.0) * jnp.arange(0, width, 2) / width)
    angles = position * frequency[None, :]
    out = jnp.zeros((length, width))
    out = out.at[:, 0::2].set(jnp.sin(angles))
    return out.at[:, 1::2].set(jnp.cos(angles[:, : width // 2]))


class LearnedPositionalEncoding(eqx.Module):
    """A learned table of `max_length` position vectors; `encoding(length)` returns its first
    `length` rows, and refuses lengths beyond the table."""

    table: Float[Array, "max_length width"]

    def __init__(self, max_length: int, width: int, *, key):
        self.table = 0.02 * jax.random.normal(key, (max_length, width))

    def __call__(self, length: int) -> Float[Array, "length width"]:
        if length > self.table.shape[0]:
            raise DiffdynError(
                f"a context of {length} steps is longer than the learned positional table "
                f"({self.table.shape[0]} positions); use a context of at most "
                f"{self.table.shape[0]} or rebuild the model with max_length >= {length}."
            )
        return self.table[:length]


class MultiHeadSelfAttention(eqx.Module):
    """Multi-head scaled dot-product self-attention (Vaswani et al. 2017, sec. 3.2) on one
    sequence `[T, width]`, with an optional causal mask (position t sees positions ≤ t).

    Returns the output `[T, width]` and the alignment of every head, `[heads, T, T]` (rows:
    query positions; columns: key positions). Without positional encodings it is
    permutation-equivariant (without the causal mask): permuting the inputs permutes the
    outputs.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import MultiHeadSelfAttention

    mhsa = MultiHeadSelfAttention(16, 4, key=jax.random.key(0))
    out, weights = mhsa(jnp.ones((10, 16)))  # [10, 16], [4, 10, 10]
    ```
    """

    qkv: Float[Array, "3*width width"]
    qkv_bias: Float[Array, " 3*width"]
    output: Float[Array, "width width"]
    output_bias: Float[Array, " width"]
    heads: int = eqx.field(static=True)
    causal: bool = eqx.field(static=True)

    def __init__(self, width: int, heads: int, *, key, causal: bool = True):
        if heads < 1 or width % heads != 0:
            raise DiffdynError(
                f"the number of heads ({heads}) must divide the width ({width}); "
                f"choose heads among {', '.join(str(h) for h in _divisors(width))}."
            )
        k1, k2 = jax.random.split(key)
        self.qkv = _glorot(k1, (3 * width, width), fan=(width, width))
        self.qkv_bias = jnp.zeros(3 * width)
        self.output = _glorot(k2, (width, width))
        self.output_bias = jnp.zeros(width)
        self.heads = heads
        self.causal = causal

    def __call__(
        self, x: Float[Array, "time width"], mask: Bool[Array, "time time"] | None = None
    ) -> tuple[Float[Array, "time width"], Float[Array, "heads time time"]]:
        length, width = x.shape
        size = width // self.heads
        q, k, v = jnp.split(x @ self.qkv.T + self.qkv_bias[None, :], 3, axis=-1)
        q, k, v = (a.reshape(length, self.heads, size).transpose(1, 0, 2) for a in (q, k, v))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(size)  # [heads, T, T]
        if self.causal:
            causal = jnp.tril(jnp.ones((length, length), bool))
            mask = causal if mask is None else (mask & causal)
        weights = masked_softmax(scores, mask)
        out = (weights @ v).transpose(1, 0, 2).reshape(length, width)
        return out @ self.output.T + self.output_bias[None, :], weights


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _glorot(key, shape, fan: tuple[int, int] | None = None) -> Array:
    fan_out, fan_in = fan if fan is not None else (shape[0], shape[-1])
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, minval=-bound, maxval=bound)
