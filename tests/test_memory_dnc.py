from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffdyn.errors import DiffdynError
from diffdyn.nn.memory import (
    DNCInterface,
    DNCMemory,
    DNCState,
    _outer as outer,
    allocation_weighting,
    content_weighting,
    dnc_initial_state,
    dnc_interface_size,
    dnc_step,
    oneplus,
    parse_dnc_interface,
)

TOL = 1e-5
step_jit = jax.jit(dnc_step)


def _quiet_interface(reads, writes, slots_word, **changes):
    """An interface that frees nothing, writes nothing and reads by content only."""
    word = slots_word
    parts = dict(
        read_keys=jnp.ones((reads, word)),
        read_strengths=jnp.ones(reads),
        write_keys=jnp.ones((writes, word)),
        write_strengths=jnp.ones(writes),
        erase_vectors=jnp.ones((writes, word)),
        write_vectors=jnp.ones((writes, word)),
        free_gates=jnp.zeros(reads),
        allocation_gates=jnp.ones(writes),
        write_gates=jnp.zeros(writes),
        read_modes=jnp.zeros((reads, 1 + 2 * writes)).at[:, writes].set(1.0),
    )
    parts.update(changes)
    return DNCInterface(**parts)


def test_oneplus_and_interface_size():
    assert np.allclose(oneplus(jnp.array([-30.0, 0.0])), [1.0, 1.0 + np.log(2.0)], atol=1e-6)
    # The paper's interface length for one write head: R·W + 3W + 5R + 3.
    assert dnc_interface_size(word_size=4, read_heads=2) == 2 * 4 + 3 * 4 + 5 * 2 + 3
    parts = parse_dnc_interface(jnp.linspace(-3, 3, dnc_interface_size(4, 2, 2)), 4, 2, 2)
    assert parts.read_modes.shape == (2, 5)
    assert np.allclose(parts.read_modes.sum(-1), 1.0)
    assert bool(jnp.all(parts.read_strengths >= 1.0))
    with pytest.raises(DiffdynError, match="shape"):
        parse_dnc_interface(jnp.zeros(5), 4, 2)


@pytest.mark.parametrize("write_heads", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_weightings_and_links_stay_in_range(getkey, write_heads):
    slots, word, reads, steps = 6, 3, 2, 40
    size = dnc_interface_size(word, reads, write_heads)
    vectors = 2.5 * jax.random.normal(getkey(), (steps, size))

    @jax.jit
    def run(vectors):
        def step(state, vector):
            _, state = dnc_step(state, parse_dnc_interface(vector, word, reads, write_heads))
            return state, state

        initial = dnc_initial_state(slots, word, reads, write_heads)
        return jax.lax.scan(step, initial, vectors)[1]

    states = run(vectors)
    for weights in (states.read_weights, states.write_weights, states.precedence):
        assert float(weights.min()) >= -TOL
        assert float(weights.sum(-1).max()) <= 1 + TOL
    links = states.links  # [steps, writes, slots, slots]
    assert float(links.min()) >= -TOL
    assert float(links.sum(-1).max()) <= 1 + TOL
    assert float(links.sum(-2).max()) <= 1 + TOL
    assert float(jnp.abs(jnp.diagonal(links, axis1=-2, axis2=-1)).max()) == 0.0
    assert float(states.usage.min()) >= -TOL and float(states.usage.max()) <= 1 + TOL
    # Not vacuous: the random interface really wrote and linked.
    assert float(states.write_weights.sum(-1).max()) > 0.5
    assert float(links.max()) > 0.1


def test_allocation_goes_to_least_used_slot():
    usage = jnp.array([0.9, 0.2, 0.05, 0.7])
    allocation = allocation_weighting(usage)
    # Free list φ = [2, 1, 3, 0]: a[φ_j] = (1 − u[φ_j]) Π_{i<j} u[φ_i].
    expected = [0.1 * 0.05 * 0.2 * 0.7, 0.8 * 0.05, 0.95, 0.3 * 0.05 * 0.2]
    assert np.allclose(allocation, expected, atol=1e-7)
    assert int(jnp.argmax(allocation)) == 2

    # Through a whole step: full write and allocation gates write into slot 2.
    state = dnc_initial_state(4, 3, 1)._replace(usage=usage)
    interface = _quiet_interface(1, 1, 3, write_gates=jnp.ones(1))
    _, new = step_jit(state, interface)
    assert int(jnp.argmax(new.write_weights[0])) == 2
    assert np.allclose(new.write_weights[0], expected, atol=1e-7)


def test_two_write_heads_allocate_different_slots():
    state = dnc_initial_state(4, 3, 1, 2)._replace(usage=jnp.array([0.9, 0.2, 0.05, 0.7]))
    interface = _quiet_interface(1, 2, 3, write_gates=jnp.ones(2))
    _, new = step_jit(state, interface)
    assert [int(i) for i in jnp.argmax(new.write_weights, axis=-1)] == [2, 1]


def test_memory_unchanged_when_write_gate_is_zero(getkey):
    memory = jax.random.normal(getkey(), (5, 3))
    state = dnc_initial_state(5, 3, 2)._replace(memory=memory)
    interface = _quiet_interface(
        2, 1, 3, write_keys=jax.random.normal(getkey(), (1, 3)), allocation_gates=jnp.zeros(1)
    )
    _, new = step_jit(state, interface)
    assert np.array_equal(new.memory, memory)
    assert float(jnp.abs(new.write_weights).max()) == 0.0


def test_forward_and_backward_modes_follow_links():
    # Slot 1 was written right after slot 0: L[1, 0] = 1.
    links = jnp.zeros((1, 3, 3)).at[0, 1, 0].set(1.0)
    read = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    state = dnc_initial_state(3, 2, 2)._replace(links=links, read_weights=read)
    modes = jnp.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # head 0 forward, head 1 backward
    _, new = step_jit(state, _quiet_interface(2, 1, 2, read_modes=modes))
    assert np.allclose(new.read_weights, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def test_content_weighting_depends_on_key_scale_only_through_strength(getkey):
    memory = jax.random.normal(getkey(), (6, 4))
    key = jax.random.normal(getkey(), (1, 4))
    weights = content_weighting(memory, key, jnp.array([2.0]))
    assert np.allclose(weights.sum(), 1.0)
    assert np.allclose(content_weighting(memory, 7.0 * key, jnp.array([2.0])), weights, atol=1e-5)
    sharper = content_weighting(memory, key, jnp.array([20.0]))
    assert not np.allclose(sharper, weights, atol=1e-3)
    assert float(sharper.max()) > float(weights.max())
    # The best match is the row most aligned with the key, whatever its length.
    cosine = (memory @ key[0]) / jnp.linalg.norm(memory, axis=-1)
    assert int(jnp.argmax(sharper)) == int(jnp.argmax(cosine))


@pytest.mark.parametrize(
    "sizes",
    [
        dict(memory_size=0, word_size=3, read_heads=1, write_heads=1),
        dict(memory_size=4, word_size=3, read_heads=0, write_heads=1),
        dict(memory_size=4, word_size=3, read_heads=1, write_heads=0),
    ],
)
def test_zero_heads_or_memory_is_an_error(sizes):
    name = next(k for k, v in sizes.items() if v == 0)
    with pytest.raises(DiffdynError, match=name):
        DNCMemory(5, **sizes, key=jax.random.key(0))


def test_module_call_shapes(getkey):
    access = DNCMemory(7, memory_size=5, word_size=3, read_heads=2, write_heads=2, key=getkey())
    state = access.initial_state()
    assert isinstance(state, DNCState)
    reads, state = eqx.filter_jit(access)(state, jnp.ones(7))
    assert reads.shape == (2, 3)
    assert state.links.shape == (2, 5, 5) and state.read_weights.shape == (2, 5)


@pytest.mark.parametrize("write_heads", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_gradients_through_steps_match_finite_differences(x64, getkey, write_heads):
    slots, word, reads, controller, steps = 5, 3, 2, 4, 4
    access = DNCMemory(
        controller,
        memory_size=slots,
        word_size=word,
        read_heads=reads,
        write_heads=write_heads,
        key=getkey(),
    )
    access = jax.tree_util.tree_map(lambda x: 1.5 * x, access)
    outputs = jax.random.normal(getkey(), (steps, controller))
    target = jax.random.normal(getkey(), (steps, reads, word))
    state = access.initial_state()._replace(
        memory=jax.random.normal(getkey(), (slots, word)),
        usage=jax.random.uniform(getkey(), (slots,), minval=0.1, maxval=0.9),
    )
    params = (access.interface.weight, access.interface.bias, state.memory)
    assert params[0].dtype == jnp.float64

    @jax.jit
    def loss(params):
        weight, bias, memory = params
        model = eqx.tree_at(
            lambda m: (m.interface.weight, m.interface.bias), access, (weight, bias)
        )

        def step(carry, output):
            read, carry = model(carry, output)
            return carry, read

        _, read = jax.lax.scan(step, state._replace(memory=memory), outputs)
        return jnp.sum(read * target)

    grads = jax.grad(loss)(params)
    assert all(float(jnp.abs(g).max()) > 1e-6 for g in grads)
    eps = 1e-6
    for _ in range(4):
        direction = [jax.random.normal(getkey(), p.shape) for p in params]
        plus = loss(tuple(p + eps * d for p, d in zip(params, direction)))
        minus = loss(tuple(p - eps * d for p, d in zip(params, direction)))
        numeric = (plus - minus) / (2 * eps)
        analytic = sum(jnp.sum(g * d) for g, d in zip(grads, direction))
        assert np.allclose(analytic, numeric, rtol=1e-5, atol=1e-8), (analytic, numeric)


def test_outer_is_the_broadcast_product(getkey):
    # The link update and the erase use `_outer` (a dot_general, for a faster gradient on CPU);
    # it must be the per-head outer product, values and gradients.
    a = jax.random.normal(getkey(), (2, 5))
    b = jax.random.normal(getkey(), (2, 3))
    np.testing.assert_array_equal(outer(a, b), a[:, :, None] * b[:, None, :])
    weights = jax.random.normal(getkey(), (2, 5, 3))

    @jax.jit
    def grads_of_both(a, b):
        grad = partial(jax.grad, argnums=(0, 1))
        by_dot = grad(lambda a, b: jnp.sum(outer(a, b) * weights))(a, b)
        by_broadcast = grad(lambda a, b: jnp.sum(a[:, :, None] * b[:, None, :] * weights))(a, b)
        return by_dot, by_broadcast

    grads, expected = grads_of_both(a, b)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)
