"""Tests for the end-to-end memory network layer and the two-hop task generator."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from diffdyn.errors import DiffdynError
from diffdyn.nn.memn2n import MemN2N, position_encoding
from diffdyn.tasks.two_hop import HOLDS, IN, WHERE, two_hop_batch, two_hop_vocab_size

V = two_hop_vocab_size()


def _net(hops=2, dim=8, key=0, **kw):
    return MemN2N(V, dim, 6, 3, hops, key=jax.random.key(key), **kw)


def test_shapes_and_attention_rows():
    stories, questions, _ = two_hop_batch(jax.random.key(1), 5)
    logits, att = jax.vmap(_net(hops=3))(stories, questions)
    assert logits.shape == (5, V) and att.shape == (5, 3, 6)
    assert bool(jnp.all(att >= 0))
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_weight_tying():
    hops, dim = 3, 8
    net = _net(hops=hops, dim=dim)
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array)))
    assert n_params == (hops + 1) * (V * dim + 6 * dim)  # untied would be 2 * hops + 2 tables
    # A_{k+1} is C_k: perturbing embeddings[1] changes both hop 1's values and hop 2's keys,
    # so the hop-2 attention moves while hop 1's attention does not.
    s, q, _ = two_hop_batch(jax.random.key(2), 1)
    s, q = s[0], q[0]
    bumped = eqx.tree_at(lambda m: m.embeddings[1], net, net.embeddings[1] * 3.0)
    _, a0 = net(s, q)
    _, a1 = bumped(s, q)
    np.testing.assert_allclose(a0[0], a1[0], rtol=1e-6)
    assert not np.allclose(a0[1], a1[1])


def test_position_encoding_formula():
    J, d = 4, 5
    pe = np.asarray(position_encoding(J, d))
    for j in range(1, J + 1):
        for k in range(1, d + 1):
            assert pe[j - 1, k - 1] == pytest.approx((1 - j / J) - (k / d) * (1 - 2 * j / J))


def test_temporal_encoding_makes_order_matter():
    s, q, _ = two_hop_batch(jax.random.key(3), 1)
    s, q = s[0], q[0]
    net = _net()
    reversed_story = s[::-1]
    assert not np.allclose(net(s, q)[0], net(reversed_story, q)[0])
    # without temporal encoding the bag of memories is order-invariant
    flat = eqx.tree_at(lambda m: m.temporal, net, [jnp.zeros_like(t) for t in net.temporal])
    np.testing.assert_allclose(flat(s, q)[0], flat(reversed_story, q)[0], rtol=1e-5, atol=1e-6)


def test_linear_start_removes_softmax():
    s, q, _ = two_hop_batch(jax.random.key(4), 1)
    net = _net(linear=True)
    _, att = net(s[0], q[0])
    assert not np.allclose(att.sum(-1), 1.0)
    soft = eqx.tree_at(lambda m: m.linear, net, False)
    np.testing.assert_allclose(soft(s[0], q[0])[1].sum(-1), 1.0, rtol=1e-5)


def test_bad_sizes():
    with pytest.raises(DiffdynError, match="hops"):
        MemN2N(V, 8, 6, 3, 0, key=jax.random.key(0))
    with pytest.raises(DiffdynError, match="dim"):
        MemN2N(V, 0, 6, 3, 1, key=jax.random.key(0))
    with pytest.raises(DiffdynError, match="max_sentences"):
        _net()(jnp.ones((7, 3), int), jnp.ones(3, int))
    with pytest.raises(DiffdynError, match="chains"):
        two_hop_batch(jax.random.key(0), 2, chains=9)


def test_two_hop_data_is_consistent():
    stories, questions, answers = two_hop_batch(jax.random.key(5), 50)
    for s, q, a in zip(np.asarray(stories), np.asarray(questions), np.asarray(answers)):
        assert q[0] == WHERE and set(s[:, 1]) == {IN, HOLDS}
        box = {int(x): int(y) for x, r, y in s if r == IN}[int(q[1])]
        assert {int(y): int(x) for x, r, y in s if r == HOLDS}[box] == a


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_gradient_matches_finite_differences(x64):
    s, q, a = two_hop_batch(jax.random.key(6), 2)
    net = MemN2N(V, 4, 6, 3, 2, key=jax.random.key(0))
    params, static = eqx.partition(net, eqx.is_array)
    flat, unravel = ravel_pytree(params)
    flat = flat.astype(jnp.float64)

    @jax.jit
    def loss(v):
        m = eqx.combine(unravel(v), static)
        logits, _ = jax.vmap(m)(s, q)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(2), a])

    g = jax.grad(loss)(flat)
    rng = np.random.default_rng(0)
    idx = np.concatenate(
        [rng.choice(flat.size, 12, replace=False), np.nonzero(np.asarray(g))[0][:12]]
    )
    eps = 1e-6
    for i in idx:
        e = jnp.zeros_like(flat).at[i].set(eps)
        fd = (loss(flat + e) - loss(flat - e)) / (2 * eps)
        assert float(g[i]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


def _train_accuracy(hops, steps=1500, batch=32):
    import optax

    from diffdyn.train import train

    net = MemN2N(V, 32, 6, 3, hops, init_scale=0.5, key=jax.random.key(0))

    def loss(net, b, key):
        s, q, a = b
        logits, _ = jax.vmap(net)(s, q)
        return optax.softmax_cross_entropy_with_integer_labels(logits, a).mean()

    def batches(key, step, progress):
        return two_hop_batch(key, batch)

    net = train(
        net, loss, batches, optax.adam(1e-2), key=jax.random.key(1), steps=steps, progress=False
    ).module
    s, q, a = two_hop_batch(jax.random.key(99), 1000)
    logits, _ = jax.vmap(net)(s, q)
    return float(jnp.mean(logits.argmax(-1) == a))


@pytest.mark.slow
def test_two_hops_solve_the_task_one_hop_cannot():
    assert _train_accuracy(2) >= 0.95
    assert _train_accuracy(1) < 0.8
