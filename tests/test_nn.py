"""Recurrent cells: the hoisted/fused path against the equations written out step by step."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tree_allclose
from diffdyn.nn import ElmanCell, GRUCell, LSTMCell, run_sequence

sigmoid = jax.nn.sigmoid


def naive_elman(cell, xs, h):
    hs = []
    for x in xs:
        h = jnp.tanh(cell.input_weight @ x + cell.recurrent_weight @ h + cell.bias)
        hs.append(h)
    return jnp.stack(hs), h


def naive_lstm(cell, xs, state):
    """Hochreiter & Schmidhuber 1997 / Gers et al. 2000, one gate at a time (order i, f, g, o)."""
    n = cell.hidden_size
    W, U, b = cell.input_weight, cell.recurrent_weight, cell.bias
    gate = {name: slice(k * n, (k + 1) * n) for k, name in enumerate("ifgo")}
    h, c = state
    hs = []
    for x in xs:
        pre = {k: W[s] @ x + U[s] @ h + b[s] for k, s in gate.items()}
        i, f, o = sigmoid(pre["i"]), sigmoid(pre["f"]), sigmoid(pre["o"])
        g = jnp.tanh(pre["g"])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        hs.append(h)
    return jnp.stack(hs), (h, c)


def naive_gru(cell, xs, h):
    """Cho et al. 2014 with the reset gate applied after the recurrent product (order r, z, n)."""
    n = cell.hidden_size
    W, U, b = cell.input_weight, cell.recurrent_weight, cell.bias
    r_, z_, n_ = slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n)
    hs = []
    for x in xs:
        r = sigmoid(W[r_] @ x + U[r_] @ h + b[r_])
        z = sigmoid(W[z_] @ x + U[z_] @ h + b[z_])
        candidate = jnp.tanh(W[n_] @ x + b[n_] + r * (U[n_] @ h))
        h = z * h + (1 - z) * candidate
        hs.append(h)
    return jnp.stack(hs), h


CELLS = [(ElmanCell, naive_elman), (LSTMCell, naive_lstm), (GRUCell, naive_gru)]
IDS = ["elman", "lstm", "gru"]


def random_like(tree, rng, scale=1.0):
    return jax.tree_util.tree_map(
        lambda leaf: jnp.asarray(scale * rng.standard_normal(leaf.shape), leaf.dtype), tree
    )


@pytest.mark.parametrize("cls, naive", CELLS, ids=IDS)
def test_hoisted_sequence_equals_step_by_step_equations(cls, naive, getkey):
    cell = cls(3, 5, key=getkey())
    rng = np.random.default_rng(0)
    xs = random_like(jnp.zeros((7, 3)), rng)
    state0 = random_like(cell.initial_state(), rng, 0.5)

    @jax.jit
    def three_ways(cell, xs, state0):
        state = state0
        stepped = []
        for x in xs:
            state = cell(state, x)
            stepped.append(cell.hidden(state))
        return run_sequence(cell, xs, state0), naive(cell, xs, state0), (jnp.stack(stepped), state)

    hoisted, equations, stepped = three_ways(cell, xs, state0)
    assert hoisted[0].shape == (7, 5)
    assert tree_allclose(hoisted, equations, rtol=1e-5, atol=1e-6)
    assert tree_allclose(stepped, equations, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [c for c, _ in CELLS], ids=IDS)
def test_gradient_matches_finite_differences(cls, getkey, x64):
    cell = cls(2, 3, key=getkey())
    rng = np.random.default_rng(0)
    xs = random_like(jnp.zeros((5, 2)), rng)
    params, static = eqx.partition(cell, eqx.is_array)

    @jax.jit
    def loss(params):
        hiddens, _ = run_sequence(eqx.combine(params, static), xs)
        return jnp.sum(jnp.sin(hiddens))

    grads = jax.jit(jax.grad(loss))(params)
    direction = random_like(params, rng)
    eps = 1e-6
    shifted = [
        loss(jax.tree_util.tree_map(lambda p, v, s=s: p + s * eps * v, params, direction))
        for s in (1, -1)
    ]
    numerical = (shifted[0] - shifted[1]) / (2 * eps)
    analytic = sum(
        jnp.vdot(g, v)
        for g, v in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(direction))
    )
    assert np.isclose(analytic, numerical, rtol=1e-6, atol=1e-9)


def test_lstm_forget_gate_bias_starts_at_one(getkey):
    cell = LSTMCell(2, 8, key=getkey())
    bound = 1 / np.sqrt(8)
    assert np.all(cell.bias[8:16] > 1 - bound - 1e-6)
    assert np.all(np.abs(cell.bias[:8]) <= bound + 1e-6)


def test_run_sequence_rejects_a_batch(getkey):
    cell = ElmanCell(3, 4, key=getkey())
    with pytest.raises(ValueError, match="jax.vmap"):
        run_sequence(cell, jnp.zeros((2, 5, 3)))


def test_forward_and_reverse_mode_agree(getkey):
    """Both autodiff modes work through run_sequence (jacfwd for Lyapunov spectra, jacrev)."""
    cell = LSTMCell(2, 3, key=getkey())
    xs = random_like(jnp.zeros((4, 2)), np.random.default_rng(0))

    def last_hidden(xs):
        return run_sequence(cell, xs)[0][-1]

    forward, reverse = jax.jit(lambda x: (jax.jacfwd(last_hidden)(x), jax.jacrev(last_hidden)(x)))(
        xs
    )
    assert forward.shape == (3, 4, 2)
    np.testing.assert_allclose(forward, reverse, rtol=1e-5, atol=1e-6)
