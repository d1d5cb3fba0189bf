"""nn.attention: alignment weights, masks, scores, self-attention, positional encodings."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_gradient_matches_fd, to_float64
from diffdyn.errors import DiffdynError, UnknownNameError
from diffdyn.nn import (
    SCORES,
    LearnedPositionalEncoding,
    MultiHeadSelfAttention,
    attend,
    make_score,
    masked_softmax,
    sinusoidal_encoding,
)


def test_masked_softmax_weights_are_a_distribution_over_unmasked_positions():
    rng = np.random.default_rng(0)
    scores = jnp.asarray(rng.standard_normal((6, 9)) * 5)
    mask = jnp.asarray(rng.random((6, 9)) < 0.6).at[:, 0].set(True)
    weights = masked_softmax(scores, mask)
    assert np.all(np.asarray(weights) >= 0)
    np.testing.assert_allclose(np.sum(weights, axis=-1), 1.0, rtol=1e-6)
    assert np.all(np.asarray(weights)[~np.asarray(mask)] == 0.0)
    # On the unmasked positions it is the ordinary softmax of those scores.
    row = np.asarray(scores[2])[np.asarray(mask[2])]
    expected = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
    np.testing.assert_allclose(np.asarray(weights[2])[np.asarray(mask[2])], expected, rtol=1e-5)


def test_masked_softmax_fully_masked_row_is_zero_and_gradients_stay_finite():
    scores = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    mask = jnp.array([[True, False], [False, False]])
    weights = masked_softmax(scores, mask)
    np.testing.assert_array_equal(np.asarray(weights), [[1.0, 0.0], [0.0, 0.0]])
    grad = jax.grad(lambda s: jnp.sum(masked_softmax(s, mask) * jnp.arange(2.0)[None, :]))(scores)
    assert np.all(np.isfinite(grad))
    # Huge scores do not overflow.
    big = masked_softmax(jnp.array([1e4, 1e4 - 1.0, -1e4]))
    assert np.all(np.isfinite(big)) and abs(float(big.sum()) - 1) < 1e-6


def test_attend_is_the_weighted_sum_of_values():
    weights = jnp.array([[0.25, 0.75, 0.0]])
    values = jnp.array([[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    np.testing.assert_allclose(attend(weights, values), [[0.25, 1.5]])


@pytest.mark.parametrize("name", SCORES)
def test_every_score_gives_one_score_per_key_and_an_alignment(name, getkey):
    score = make_score(name, 6, 6, key=getkey())
    keys = jax.random.normal(getkey(), (11, 6))
    query = jax.random.normal(getkey(), (6,))
    scores = score.scores(query, keys)
    assert scores.shape == (11,) and np.all(np.isfinite(scores))
    weights = masked_softmax(scores)
    assert np.all(np.asarray(weights) >= 0) and abs(float(weights.sum()) - 1) < 1e-6


def test_scores_against_their_formulas(getkey):
    query, keys = jax.random.normal(getkey(), (4,)), jax.random.normal(getkey(), (5, 4))
    np.testing.assert_allclose(make_score("dot", 4, 4, key=getkey()).scores(query, keys),
                               keys @ query, rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(
        make_score("scaled-dot", 4, 4, key=getkey()).scores(query, keys), keys @ query / 2.0,
        rtol=1e-6,
    )  # fmt: skip
    general = make_score("general", 4, 3, key=getkey())
    keys3 = keys[:, :3]
    np.testing.assert_allclose(
        general.scores(query, keys3),
        keys3 @ general.weight.T @ query,
        rtol=1e-5,  # pyright: ignore
    )
    additive = make_score("additive", 4, 3, key=getkey(), attention_size=7)
    expected = (
        jnp.tanh(
            keys3 @ additive.key_weight.T
            + (additive.query_weight @ query + additive.bias)[None, :]
        )  # pyright: ignore
        @ additive.vector  # pyright: ignore
    )
    np.testing.assert_allclose(additive.scores(query, keys3), expected, rtol=1e-5)


def test_cosine_score_is_invariant_to_the_scale_of_each_key(getkey):
    score = make_score("cosine", 5, 5, key=getkey())
    query, keys = jax.random.normal(getkey(), (5,)), jax.random.normal(getkey(), (8, 5))
    scales = jnp.array([0.01, 0.5, 1.0, 3.0, 10.0, 100.0, 7.0, 0.2])[:, None]
    np.testing.assert_allclose(
        score.scores(query, keys * scales), score.scores(query, keys), rtol=1e-4, atol=1e-6
    )
    # The key strength β ≥ 1 multiplies a cosine in [-1, 1].
    strength = 1 + jax.nn.softplus(score.strength_weight @ query + score.strength_bias)  # pyright: ignore
    assert np.all(np.abs(np.asarray(score.scores(query, keys))) <= float(strength) + 1e-5)


def test_bad_score_names_and_widths_are_refused(getkey):
    with pytest.raises(UnknownNameError, match="additive"):
        make_score("addtive", 4, 4, key=getkey())
    with pytest.raises(DiffdynError, match="same width"):
        make_score("dot", 4, 6, key=getkey())


def test_self_attention_shapes_causality_and_weights(getkey):
    mhsa = MultiHeadSelfAttention(8, 2, key=getkey())
    x = jax.random.normal(getkey(), (7, 8))
    out, weights = mhsa(x)
    assert out.shape == (7, 8) and weights.shape == (2, 7, 7)
    np.testing.assert_allclose(np.sum(weights, axis=-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(np.asarray(weights), k=1) == 0.0)  # no weight on the future
    # Changing the last input leaves every earlier position's output unchanged.
    out2, _ = mhsa(x.at[-1].add(3.0))
    np.testing.assert_allclose(out2[:-1], out[:-1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out2[-1], out[-1])


def test_self_attention_without_positions_is_permutation_equivariant(getkey):
    mhsa = MultiHeadSelfAttention(12, 3, key=getkey(), causal=False)
    x = jax.random.normal(getkey(), (9, 12))
    perm = np.random.default_rng(1).permutation(9)
    out, weights = mhsa(x)
    out_p, weights_p = mhsa(x[perm])
    np.testing.assert_allclose(out_p, out[perm], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(weights_p, weights[:, perm][:, :, perm], rtol=1e-5, atol=1e-6)
    # With positional encodings added it is not.
    pos = sinusoidal_encoding(9, 12)
    out_pos, _ = mhsa(x + pos)
    out_pos_p, _ = mhsa(x[perm] + pos)
    assert not np.allclose(out_pos_p, out_pos[perm], atol=1e-3)


def test_heads_must_divide_the_width(getkey):
    with pytest.raises(DiffdynError, match=r"heads \(3\) must divide the width \(8\)"):
        MultiHeadSelfAttention(8, 3, key=getkey())


def test_positional_encodings(getkey):
    pe = np.asarray(sinusoidal_encoding(50, 7))
    assert pe.shape == (50, 7)
    np.testing.assert_allclose(pe[0, 0::2], 0.0, atol=1e-7)
    np.testing.assert_allclose(pe[0, 1::2], 1.0, atol=1e-7)
    np.testing.assert_allclose(pe[3, 0], np.sin(3.0), rtol=1e-6)
    np.testing.assert_allclose(pe[3, 2], np.sin(3.0 / 10000 ** (2 / 7)), rtol=1e-5)
    assert len({tuple(np.round(row, 5)) for row in pe}) == 50  # every position distinct
    table = LearnedPositionalEncoding(16, 4, key=getkey())
    assert table(10).shape == (10, 4)
    with pytest.raises(DiffdynError, match="longer than the learned positional table"):
        table(17)


@pytest.mark.parametrize("name", SCORES)
def test_score_gradients_match_finite_differences(name, x64, getkey):
    score = to_float64(make_score(name, 5, 5, key=getkey()))
    query = jax.random.normal(getkey(), (5,), jnp.float64)
    keys = jax.random.normal(getkey(), (6, 5), jnp.float64)
    values = jax.random.normal(getkey(), (6, 3), jnp.float64)
    mask = jnp.array([True, True, False, True, True, True])
    params, static = eqx.partition((score, query, keys, values), eqx.is_inexact_array)

    def loss(p):
        s, q, k, v = eqx.combine(p, static)
        context = attend(masked_softmax(s.scores(q, k), mask), v)
        return jnp.sum(jnp.sin(context))

    assert_gradient_matches_fd(loss, params, np.random.default_rng(0), n=10)


def test_self_attention_gradients_match_finite_differences(x64, getkey):
    mhsa = to_float64(MultiHeadSelfAttention(6, 2, key=getkey()))
    x = jax.random.normal(getkey(), (5, 6), jnp.float64)
    params, static = eqx.partition((mhsa, x), eqx.is_inexact_array)

    def loss(p):
        m, inputs = eqx.combine(p, static)
        out, _ = m(inputs)
        return jnp.sum(jnp.tanh(out))

    assert_gradient_matches_fd(loss, params, np.random.default_rng(1), n=10)
