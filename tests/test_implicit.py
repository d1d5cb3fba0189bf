"""Implicit layers (`nn/implicit.py`): gradients by the implicit function theorem equal those
of the unrolled iteration and finite differences (float64)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_gradient_matches_fd, to_float64
from diffdyn.errors import DiffdynError
from diffdyn.nn import DeepEquilibriumCell, fixed_point, root_find


def unrolled(f, z0, x, steps):
    """z ← f(z, x), `steps` times, differentiated by autodiff through every iteration."""
    return jax.lax.fori_loop(0, steps, lambda _, z: f(z, x), z0)


def test_fixed_point_solves_and_matches_unrolled_gradients(x64):
    cell = DeepEquilibriumCell(3, 6, rtol=1e-12, atol=1e-12, key=jax.random.key(0))
    tight = to_float64(cell)
    x = jnp.linspace(-1.0, 1.0, 3)
    h = jnp.full(6, 0.2)
    z = tight(h, x)
    drive = tight.input_weight @ x + tight.recurrent_weight @ h + tight.bias
    np.testing.assert_allclose(tight.equation(z, drive), z, atol=1e-10)

    def implicit_loss(c, x):
        return jnp.sum(jnp.sin(c(h, x)))

    def unrolled_loss(c, x):
        drive = c.input_weight @ x + c.recurrent_weight @ h + c.bias
        return jnp.sum(jnp.sin(unrolled(c.equation, h, drive, 200)))

    g_implicit = jax.grad(implicit_loss, argnums=(0, 1))(tight, x)
    g_unrolled = jax.grad(unrolled_loss, argnums=(0, 1))(tight, x)
    for a, b in zip(jax.tree_util.tree_leaves(g_implicit), jax.tree_util.tree_leaves(g_unrolled)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    rng = np.random.default_rng(0)
    params, static = eqx.partition(tight, eqx.is_inexact_array)
    assert_gradient_matches_fd(
        lambda px: implicit_loss(eqx.combine(px[0], static), px[1]), (params, x), rng, n=10
    )


def test_fixed_point_function_form(x64):
    # z = cos(a z): the Dottie number at a = 1; dz/da = −z sin(az) / (1 + a sin(az)).
    def solve(a):
        return fixed_point(lambda z, a: jnp.cos(a * z), jnp.zeros(1), a, rtol=1e-12,
                           atol=1e-12)[0]  # fmt: skip

    z = solve(1.0)
    np.testing.assert_allclose(z, 0.7390851332151607, rtol=1e-10)
    exact = -z * jnp.sin(z) / (1 + jnp.sin(z))
    np.testing.assert_allclose(jax.grad(solve)(1.0), exact, rtol=1e-8)
    np.testing.assert_allclose(
        jax.grad(solve)(1.0),
        jax.grad(lambda a: unrolled(lambda z, a: jnp.cos(a * z), jnp.zeros(1), a, 300)[0])(1.0),
        rtol=1e-8,
    )


@pytest.mark.slow  # make test-slow: the fixed point's implicit gradient is checked above (12 s)
def test_root_find_implicit_gradient(x64):
    # A cubic with parameters: y³ + p y − q = 0 (one real root for p > 0).
    def g(y, params):
        p, q = params
        return y**3 + p * y - q

    def loss(params):
        y = root_find(g, jnp.ones(2), params, rtol=1e-12, atol=1e-12)
        return y[0] ** 2 + y[1]

    params = (jnp.array([1.0, 2.0]), jnp.array([0.5, -1.0]))
    y = root_find(g, jnp.ones(2), params, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g(y, params), 0.0, atol=1e-10)
    # Implicit function theorem by hand: dy/dq = 1/(3y² + p), dy/dp = −y/(3y² + p).
    grad_p, grad_q = jax.grad(loss)(params)
    slope = 1 / (3 * y**2 + params[0])
    weights = jnp.array([2 * y[0], 1.0])
    np.testing.assert_allclose(grad_q, weights * slope, rtol=1e-8)
    np.testing.assert_allclose(grad_p, -weights * y * slope, rtol=1e-8)
    assert_gradient_matches_fd(loss, params, np.random.default_rng(1), n=4)


def test_deq_cell_runs_a_sequence_and_batches():
    cell = DeepEquilibriumCell(2, 5, key=jax.random.key(1))
    xs = jax.random.normal(jax.random.key(2), (4, 7, 2))

    def run(x):
        return jax.lax.scan(lambda h, x: (cell(h, x),) * 2, cell.initial_state(), x)[1]

    hs = jax.jit(jax.vmap(run))(xs)
    assert hs.shape == (4, 7, 5) and bool(jnp.all(jnp.isfinite(hs)))
    np.testing.assert_allclose(hs[1], run(xs[1]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: DeepEquilibriumCell(2, 3, contraction=1.5, key=jax.random.key(0)), "(0, 1)"),
        (lambda: fixed_point(lambda z, x: z, jnp.zeros(1), 0.0, rtol=0.0), "positive"),
        (lambda: root_find(lambda y, x: y, jnp.zeros(1), 0.0, max_steps=0), "max_steps"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(DiffdynError, match=match):
        call()
