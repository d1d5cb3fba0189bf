"""End-to-end memory network layer (Sukhbaatar et al. 2015, "End-To-End Memory Networks").

One example is a story of ``S`` sentences, each a bag of token ids padded with 0 (shape
``[S, L]``), and a question ``[L]``. Each hop ``k`` embeds the sentences twice, as memory keys
``m_i = Σ_j l_j ⊙ A_k x_ij + T_A^k(i)`` and values ``c_i = Σ_j l_j ⊙ C_k x_ij + T_C^k(i)``,
attends with ``p = softmax(uᵀ m_i)``, reads ``o = Σ_i p_i c_i`` and updates ``u_{k+1} = u_k + o``
(eqs. 1-2, sec. 2.2). The answer logits are ``W u_{K+1}``.

Weight tying is the paper's "Adjacent" scheme (sec. 2.2): ``A_{k+1} = C_k``, ``B = A_1`` and
``W = C_Kᵀ``, so only ``K + 1`` embedding matrices exist; the temporal matrices are tied the
same way (``T_A^{k+1} = T_C^k``). Position encoding is sec. 4.1's
``l_kj = (1 − j/J) − (k/d)(1 − 2j/J)`` with ``J = L`` (the padded sentence length, padding
tokens embed to zero). Linear start (sec. 4.2) is the ``linear`` flag: when set, the softmax in
every hop is removed (``p = uᵀ m_i``); training starts linear and switches it off later with
``eqx.tree_at(lambda m: m.linear, model, False)``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from diffdyn.errors import DiffdynError

__all__ = ["MemN2N", "position_encoding"]


def position_encoding(sentence_length: int, dim: int) -> Float[Array, "L d"]:
    """Position-encoding weights ``l_kj = (1 − j/J) − (k/d)(1 − 2j/J)`` (sec. 4.1), as ``[J, d]``.

    Row ``j-1`` (word ``j = 1..J``), column ``k-1`` (embedding index ``k = 1..d``).

    **Example:**

    >>> position_encoding(3, 4).shape
    (3, 4)
    """
    if sentence_length < 1 or dim < 1:
        raise DiffdynError(
            f"position_encoding needs sentence_length >= 1 and dim >= 1, got {sentence_length} "
            f"and {dim}; pass positive sizes."
        )
    j = jnp.arange(1, sentence_length + 1, dtype=float)[:, None]
    k = jnp.arange(1, dim + 1, dtype=float)[None, :]
    big_j, d = float(sentence_length), float(dim)
    return (1.0 - j / big_j) - (k / d) * (1.0 - 2.0 * j / big_j)


class MemN2N(eqx.Module):
    """End-to-end memory network with adjacent weight tying (Sukhbaatar et al. 2015).

    ``embeddings[k]`` is ``[vocab, dim]``: ``A_1 = B = embeddings[0]``, ``C_k = A_{k+1} =
    embeddings[k]`` and ``W = embeddings[hops]ᵀ``; ``temporal[k]`` (``[max_sentences, dim]``) is
    tied the same way. Token 0 is padding and embeds to zero.

    **Example:**

    >>> import jax, jax.numpy as jnp
    >>> net = MemN2N(vocab=10, dim=8, max_sentences=4, sentence_length=3, hops=2,
    ...              key=jax.random.key(0))
    >>> story = jnp.array([[1, 2, 3], [4, 5, 0], [0, 0, 0], [6, 7, 8]])
    >>> logits, attention = net(story, jnp.array([9, 1, 0]))
    >>> logits.shape, attention.shape
    ((10,), (2, 4))
    """

    embeddings: list[Float[Array, "V d"]]
    temporal: list[Float[Array, "S d"]]
    vocab: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    max_sentences: int = eqx.field(static=True)
    sentence_length: int = eqx.field(static=True)
    hops: int = eqx.field(static=True)
    linear: bool

    def __init__(
        self,
        vocab: int,
        dim: int,
        max_sentences: int,
        sentence_length: int,
        hops: int = 3,
        *,
        linear: bool = False,
        init_scale: float = 0.1,
        key: PRNGKeyArray,
    ):
        for name, value, low in (
            ("vocab", vocab, 2),
            ("dim", dim, 1),
            ("max_sentences", max_sentences, 1),
            ("sentence_length", sentence_length, 1),
            ("hops", hops, 1),
        ):
            if int(value) < low:
                raise DiffdynError(
                    f"MemN2N needs {name} >= {low}, got {value}; pass a larger {name}."
                )
        self.vocab, self.dim, self.hops = int(vocab), int(dim), int(hops)
        self.max_sentences, self.sentence_length = int(max_sentences), int(sentence_length)
        self.linear = bool(linear)
        keys = jax.random.split(key, 2 * (hops + 1))
        self.embeddings = [
            init_scale * jax.random.normal(k, (self.vocab, self.dim)) for k in keys[: hops + 1]
        ]
        self.temporal = [
            init_scale * jax.random.normal(k, (self.max_sentences, self.dim))
            for k in keys[hops + 1 :]
        ]

    def _embed(
        self, table: Float[Array, "V d"], tokens: Int[Array, "*b L"]
    ) -> Float[Array, "*b d"]:
        weights = position_encoding(self.sentence_length, self.dim).astype(table.dtype)
        vectors = table[tokens] * (tokens != 0)[..., None]  # padding embeds to zero
        weights = weights.reshape((1,) * (tokens.ndim - 1) + weights.shape)
        return jnp.sum(vectors * weights, axis=-2)

    def __call__(
        self, story: Int[Array, "S L"], question: Int[Array, " L"]
    ) -> tuple[Float[Array, " V"], Float[Array, "hops S"]]:
        """Answer logits ``[vocab]`` and per-hop attention over the sentences ``[hops, S]``."""
        if story.ndim != 2 or story.shape[1] != self.sentence_length:
            raise DiffdynError(
                f"MemN2N expects a story of shape [S, {self.sentence_length}], got "
                f"{tuple(story.shape)}; pad or cut sentences to {self.sentence_length} tokens."
            )
        if story.shape[0] > self.max_sentences:
            raise DiffdynError(
                f"the story has {story.shape[0]} sentences but this MemN2N holds at most "
                f"{self.max_sentences}; build it with max_sentences >= {story.shape[0]}."
            )
        if question.shape != (self.sentence_length,):
            raise DiffdynError(
                f"MemN2N expects a question of shape [{self.sentence_length}], got "
                f"{tuple(question.shape)}; pad or cut it to {self.sentence_length} tokens."
            )
        s = story.shape[0]
        u = self._embed(self.embeddings[0], question)  # B = A_1
        attentions = []
        for k in range(self.hops):
            m = self._embed(self.embeddings[k], story) + self.temporal[k][:s]
            c = self._embed(self.embeddings[k + 1], story) + self.temporal[k + 1][:s]
            scores = m @ u
            p = scores if self.linear else jax.nn.softmax(scores)
            u = u + p @ c
            attentions.append(p)
        logits = u @ self.embeddings[self.hops].T  # W = C_K^T
        return logits, jnp.stack(attentions)
