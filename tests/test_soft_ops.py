"""Soft sorting and ranking (`nn/soft.py`), perturbed optimisers (`nn/perturbed.py`), and the
runnable examples of docs/operators.md."""

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_gradient_matches_fd
from diffdyn.errors import DiffdynError
from diffdyn.nn import (
    fenchel_young_loss,
    isotonic_decreasing,
    permutahedron_projection,
    perturbed_argmax,
    perturbed_ranks,
    soft_quantile,
    soft_rank,
    soft_sort,
    soft_top_k,
)

ROOT = Path(__file__).parents[1]


def pav_stack(y):
    """Textbook sequential pool-adjacent-violators for argmin_{v decreasing} ‖v − y‖²."""
    sums, counts = [], []
    for value in y:
        sums.append(float(value))
        counts.append(1)
        while len(sums) > 1 and sums[-2] / counts[-2] <= sums[-1] / counts[-1]:
            s, c = sums.pop(), counts.pop()
            sums[-1] += s
            counts[-1] += c
    return np.repeat(np.array(sums) / np.array(counts), counts)


@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_isotonic_matches_sequential_pav(scale, x64):
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50):
        y = rng.normal(size=n) * scale + np.linspace(0, 3, n) * rng.choice([-1, 1])
        np.testing.assert_allclose(isotonic_decreasing(jnp.asarray(y)), pav_stack(y), atol=1e-10)


def test_isotonic_adversarial_cascade(x64):
    # A long decreasing run ending in a cluster: the pooled block absorbs one neighbour a round.
    y = np.concatenate([-0.1 * np.arange(60), 50.0 + np.arange(20)])
    np.testing.assert_allclose(isotonic_decreasing(jnp.asarray(y)), pav_stack(y), atol=1e-10)


def test_block_level_finish_is_the_exact_pooling(x64):
    # The min-max step alone, from the finest partition (every element its own block): the
    # solution's blocks and values in one step, for vectors up to FINISH_BLOCKS long.
    from diffdyn.nn.soft import FINISH_BLOCKS, _block_mean, _blocks_of, _finish_blocks

    rng = np.random.default_rng(3)
    for n in (1, 2, 9, FINISH_BLOCKS):
        y = jnp.asarray(rng.normal(size=n) + np.linspace(0, 4, n))  # mostly violating
        start = jnp.ones(n, bool)
        block, counts, _ = _blocks_of(y, start)
        start, block, counts, violates = _finish_blocks(y, start, block, counts)
        assert not bool(jnp.any(violates))
        np.testing.assert_allclose(_block_mean(y, block, counts), pav_stack(np.asarray(y)),
                                   atol=1e-12)  # fmt: skip


def test_isotonic_cascades_end_in_the_finish_step(x64):
    # Inputs whose rounds cascade (a pooled block absorbing one neighbour a round), long enough
    # to reach the block-level finish after the first rounds, alone and in one vmapped batch
    # with a row that needs one round only.
    rng = np.random.default_rng(5)
    n = 1000
    cascade = np.concatenate([-0.1 * np.arange(n - 200), 50.0 + np.arange(200)])
    z = np.sort(rng.normal(size=n) / 0.01)[::-1]  # soft rank at ε = 0.01: 31 rounds before
    soft_rank_case = z - np.arange(n, 0, -1.0)
    easy = rng.normal(size=n) - np.linspace(0, 50, n)
    rows = np.stack([cascade, soft_rank_case, easy])
    batched = np.asarray(jax.vmap(isotonic_decreasing)(jnp.asarray(rows)))
    for row, got in zip(rows, batched, strict=True):
        np.testing.assert_allclose(got, pav_stack(row), atol=1e-9)
        np.testing.assert_allclose(isotonic_decreasing(jnp.asarray(row)), pav_stack(row),
                                   atol=1e-9)  # fmt: skip


def test_isotonic_custom_vjp_matches_finite_differences(x64):
    rng = np.random.default_rng(7)
    y = jnp.asarray(0.5 * rng.normal(size=12) - np.linspace(0, 3, 12))  # noise pools locally
    weights = jnp.asarray(rng.normal(size=12))
    blocks = len(np.unique(np.round(np.asarray(isotonic_decreasing(y)), 12)))
    assert 1 < blocks < 12  # some pooling, not all: the VJP's averaging is exercised
    assert_gradient_matches_fd(lambda v: jnp.dot(isotonic_decreasing(v), weights), y, rng, n=12)


def test_hard_limits_small_strength():
    rng = np.random.default_rng(1)
    theta = rng.normal(size=20)
    ranks = np.argsort(np.argsort(theta)) + 1
    np.testing.assert_allclose(soft_rank(theta, strength=1e-4), ranks, atol=1e-4)
    np.testing.assert_allclose(soft_rank(theta, strength=1e-4, descending=True), 21 - ranks,
                               atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(soft_sort(theta, strength=1e-4), np.sort(theta), atol=1e-5)
    np.testing.assert_allclose(
        soft_sort(theta, strength=1e-4, descending=True), np.sort(theta)[::-1], atol=1e-5
    )
    mask = np.zeros(20)
    mask[np.argsort(theta)[-5:]] = 1
    np.testing.assert_allclose(soft_top_k(theta, 5, strength=1e-4), mask, atol=1e-4)
    for q in (0.0, 0.3, 0.5, 1.0):
        np.testing.assert_allclose(soft_quantile(theta, q, strength=1e-4), np.quantile(theta, q),
                                   atol=1e-4)  # fmt: skip


def test_soft_ops_converge_as_strength_shrinks():
    theta = np.random.default_rng(2).normal(size=30)
    ranks = np.argsort(np.argsort(theta)) + 1
    gaps = [np.abs(soft_rank(theta, strength=e) - ranks).max() for e in (1.0, 0.1, 0.01, 1e-3)]
    assert all(a >= b for a, b in zip(gaps, gaps[1:])) and gaps[0] > 1 and gaps[-1] < 1e-3


def test_large_strength_tends_to_the_mean():
    theta = np.random.default_rng(3).normal(size=10)
    np.testing.assert_allclose(soft_rank(theta, strength=1e4), np.full(10, 5.5), atol=1e-2)
    np.testing.assert_allclose(soft_sort(theta, strength=1e4), np.full(10, theta.mean()),
                               atol=1e-3)  # fmt: skip
    np.testing.assert_allclose(soft_top_k(theta, 3, strength=1e4), np.full(10, 0.3), atol=1e-3)
    # Intermediate strength: strictly between, and sums are preserved.
    r = soft_rank(theta, strength=1.0)
    assert np.isclose(r.sum(), 55.0, atol=1e-4) and not np.allclose(r, np.round(r))
    assert np.isclose(soft_sort(theta, strength=1.0).sum(), theta.sum(), atol=1e-4)


def test_projection_is_in_the_permutahedron_and_optimal(x64):
    # Optimality of P(z, w): the projection μ is a convex combination of permutations of w
    # (its sorted partial sums are bounded by w's, equal in total) and ⟨z − μ, π(w) − μ⟩ ≤ 0
    # for every permutation π(w) (checked on all 120 of them).
    import itertools

    rng = np.random.default_rng(4)
    z, w = rng.normal(size=5) * 3, rng.normal(size=5)
    mu = np.asarray(permutahedron_projection(jnp.asarray(z), jnp.asarray(w)))
    ms, ws = np.cumsum(np.sort(mu)[::-1]), np.cumsum(np.sort(w)[::-1])
    assert np.all(ms <= ws + 1e-9) and np.isclose(ms[-1], ws[-1])
    for perm in itertools.permutations(w):
        assert np.dot(z - mu, np.array(perm) - mu) <= 1e-9


@pytest.mark.parametrize("strength", [0.3, pytest.param(3.0, marks=pytest.mark.slow)])
def test_vjp_matches_finite_differences(strength, x64):
    rng = np.random.default_rng(5)
    theta = jnp.asarray(rng.normal(size=8))
    weights = jnp.asarray(rng.normal(size=8))
    for op in (
        lambda t: soft_rank(t, strength=strength),
        lambda t: soft_rank(t, strength=strength, descending=True),
        lambda t: soft_sort(t, strength=strength),
        lambda t: soft_top_k(t, 3, strength=strength),
        lambda t: soft_quantile(t, 0.4, strength=strength)[None],
    ):
        assert_gradient_matches_fd(lambda t: jnp.dot(op(t), weights[: op(t).shape[0]]),
                                   theta, rng, n=4)  # fmt: skip
    # The projection in both arguments.
    assert_gradient_matches_fd(
        lambda zw: jnp.dot(permutahedron_projection(*zw), weights), (theta * 2, theta[::-1]), rng
    )


def test_jit_and_vmap():
    theta = jax.random.normal(jax.random.key(0), (4, 16))
    batched = jax.jit(jax.vmap(lambda t: soft_rank(t, strength=0.1)))(theta)
    for row, out in zip(theta, batched):
        np.testing.assert_allclose(out, soft_rank(row, strength=0.1), rtol=1e-5)


@pytest.mark.parametrize("n", [1, 2, 7, 64, 1000])
def test_bitonic_order_is_the_stable_descending_argsort(n):
    """The sorting network behind every soft op gives `argsort(-z, stable=True)`: one vector,
    under vmap (its batch-last rule), under nested vmap, with ties and infinities, for lengths
    that are and are not powers of two."""
    from diffdyn.nn.soft import _descending_order

    rng = np.random.default_rng(n)
    z = rng.integers(-3, 4, size=(3, 2, n)).astype(np.float32)  # many ties
    z[0, 0, : min(n, 3)] = -np.inf
    z[1, 1, -1] = np.inf
    expected = np.argsort(-z, axis=-1, kind="stable")
    np.testing.assert_array_equal(_descending_order(jnp.asarray(z[0, 0])), expected[0, 0])
    np.testing.assert_array_equal(jax.vmap(_descending_order)(jnp.asarray(z[0])), expected[0])
    nested = jax.jit(jax.vmap(jax.vmap(_descending_order)))(jnp.asarray(z))
    np.testing.assert_array_equal(nested, expected)
    # the batch in the other axis: in_axes=1
    swapped = jax.vmap(_descending_order, in_axes=1, out_axes=1)(jnp.asarray(z[2].T))
    np.testing.assert_array_equal(swapped, expected[2].T)


def test_gradient_under_vmap_equals_the_per_vector_gradient():
    theta = jax.random.normal(jax.random.key(1), (5, 33))
    weights = jax.random.normal(jax.random.key(2), (5, 33))

    def total(t, w):
        return jnp.sum(w * soft_rank(t, strength=0.5))

    batched = jax.jit(jax.vmap(jax.grad(total)))(theta, weights)
    single = jax.grad(lambda t: jnp.sum(jax.vmap(total)(t, weights)))(theta)
    for row, w, out, out2 in zip(theta, weights, batched, single):
        np.testing.assert_allclose(out, jax.grad(total)(row, w), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out2, out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: soft_rank(jnp.ones((2, 3))), "one non-empty vector"),
        (lambda: soft_sort(jnp.ones(0)), "one non-empty vector"),
        (lambda: soft_rank(jnp.ones(3), strength=0.0), "positive"),
        (lambda: soft_sort(jnp.ones(3), strength=-1.0), "positive"),
        (lambda: soft_top_k(jnp.ones(3), 4), "between 1 and 3"),
        (lambda: soft_quantile(jnp.ones(3), 1.5), "between 0 and 1"),
        (lambda: permutahedron_projection(jnp.ones(3), jnp.ones(4)), "one length"),
        (lambda: perturbed_argmax(jnp.ones(3), key=jax.random.key(0), sigma=0.0), "sigma"),
        (lambda: perturbed_argmax(jnp.ones(3), key=jax.random.key(0), num_samples=0),
         "num_samples"),
    ],
)  # fmt: skip
def test_bad_input(call, match):
    with pytest.raises(DiffdynError, match=match):
        call()


# -- perturbed optimisers ---------------------------------------------------------------------


def test_perturbed_argmax_gumbel_is_softmax():
    theta = jnp.array([0.5, -0.2, 1.0, 0.0])
    for sigma in (0.5, 1.0, 2.0):
        estimate = perturbed_argmax(theta, key=jax.random.key(1), sigma=sigma, num_samples=20000)
        # Gumbel-max trick: argmax(θ + σG) is distributed as softmax(θ/σ); MC error ~ 0.004.
        np.testing.assert_allclose(estimate, jax.nn.softmax(theta / sigma), atol=0.015)


def test_perturbed_argmax_gradient_estimates_softmax_jacobian():
    theta = jnp.array([0.5, -0.2, 1.0, 0.0])
    jacobian = jax.jit(jax.jacobian(
        lambda t: perturbed_argmax(t, key=jax.random.key(2), sigma=1.0, num_samples=20000)
    ))(theta)  # fmt: skip
    p = jax.nn.softmax(theta)
    np.testing.assert_allclose(jacobian, jnp.diag(p) - jnp.outer(p, p), atol=0.04)


def test_perturbed_ranks_tend_to_hard_ranks_and_mean():
    theta = jnp.array([0.3, -1.0, 2.0, 0.9])
    key = jax.random.key(3)
    np.testing.assert_allclose(perturbed_ranks(theta, key=key, sigma=1e-3), [2, 1, 4, 3])
    far = perturbed_ranks(theta, key=key, sigma=1e3, num_samples=4000)
    np.testing.assert_allclose(far, np.full(4, 2.5), atol=0.1)


@pytest.mark.parametrize("kind", ["argmax", "ranks"])
def test_fenchel_young_gradient_matches_finite_differences(kind, x64):
    # With the noise drawn once, F̂(θ) = mean_i max_y ⟨y, θ + σZ_i⟩ is piecewise linear and
    # its derivative is the mean maximiser: the loss's gradient ŷ_σ(θ) − y is exact for it.
    rng = np.random.default_rng(6)
    theta = jnp.asarray(rng.normal(size=5))
    target = jax.nn.one_hot(2, 5) if kind == "argmax" else jnp.array([3.0, 1, 5, 2, 4])
    key = jax.random.key(4)

    def loss(t):
        return fenchel_young_loss(t, target, key=key, kind=kind, sigma=0.5, num_samples=200)

    assert_gradient_matches_fd(loss, theta, rng, n=5, eps=1e-7)
    mean = perturbed_argmax if kind == "argmax" else perturbed_ranks
    np.testing.assert_allclose(
        jax.grad(loss)(theta), mean(theta, key=key, sigma=0.5, num_samples=200) - target,
        atol=1e-12,
    )  # fmt: skip
    assert loss(theta) >= -1e-12  # a Fenchel–Young loss is non-negative (Jensen)


def test_fenchel_young_training_recovers_the_target():
    target = jax.nn.one_hot(1, 4)
    theta = jnp.zeros(4)
    grad = jax.jit(jax.grad(lambda t, k: fenchel_young_loss(t, target, key=k, sigma=0.5)))
    for step in range(100):
        theta = theta - 0.5 * grad(theta, jax.random.key(step))
    assert int(jnp.argmax(theta)) == 1


# -- the documentation runs --------------------------------------------------------------------


@pytest.mark.slow  # make test-slow: runs every example of docs/operators.md (10 s)
def test_operators_doc_examples_run(tmp_path, monkeypatch):
    path = ROOT / "docs" / "operators.md"
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(path), "exec"), {"__name__": "__docs__"})
