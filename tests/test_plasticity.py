"""Differentiable plasticity (tutorial §3.3, eqs. 12–13): the rules, the plastic blocks, the
pattern-completion task, the `plastic-rnn` forecaster, and their one-line errors."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_gradient_matches_fd, to_float64
from diffdyn.errors import DiffdynError
from diffdyn.models import build_model
from diffdyn.models.registry import MODELS, model_spec
from diffdyn.nn import (
    ElmanCell,
    PlasticCell,
    PlasticLinear,
    PlasticNetwork,
    hebbian_update,
    neuromodulated_update,
    oja_update,
    plastic_episode,
    run_plastic_sequence,
    run_sequence,
)
from diffdyn.nn.plasticity import _step, _zero_state
from diffdyn.tasks import pattern_completion_task
from diffdyn.tasks.runner import check_task, run_task
from test_cli import assert_one_line_error, run


# -- the rules ---------------------------------------------------------------------------------
def test_eqs_12_13_match_a_hand_computed_two_neuron_update():
    # Two presynaptic neurons y_1 = 0.5, y_2 = -1 into two postsynaptic ones; matrices are
    # [post, pre], so entry [j, i] is the connection i -> j of the equations.
    layer = PlasticLinear(2, 2, key=jax.random.key(0), eta=0.1)
    w = jnp.array([[0.2, -0.4], [0.1, 0.3]])
    alpha = jnp.array([[1.0, 0.5], [-0.5, 2.0]])
    layer = eqx.tree_at(lambda m: (m.weight, m.alpha), layer, (w, alpha))
    trace = jnp.array([[0.3, -0.2], [0.0, 0.4]])
    y_pre = jnp.array([0.5, -1.0])
    y, new_trace = layer(trace, y_pre)
    # eq. (12) by hand: y_j = tanh(Σ_i (w_ij + α_ij H_ij) y_i)
    y1 = math.tanh((0.2 + 1.0 * 0.3) * 0.5 + (-0.4 + 0.5 * -0.2) * -1.0)  # tanh(0.75)
    y2 = math.tanh((0.1 + -0.5 * 0.0) * 0.5 + (0.3 + 2.0 * 0.4) * -1.0)  # tanh(-1.05)
    np.testing.assert_allclose(y, [y1, y2], rtol=1e-6)
    # eq. (13) by hand: H_ij ← η y_i y_j + (1 − η) H_ij
    expected = [
        [0.1 * 0.5 * y1 + 0.9 * 0.3, 0.1 * -1.0 * y1 + 0.9 * -0.2],
        [0.1 * 0.5 * y2 + 0.9 * 0.0, 0.1 * -1.0 * y2 + 0.9 * 0.4],
    ]
    np.testing.assert_allclose(new_trace, expected, rtol=1e-6)
    np.testing.assert_allclose(hebbian_update(trace, y_pre, y, 0.1), expected, rtol=1e-6)


def test_oja_keeps_the_trace_bounded_where_plain_hebbian_growth_does_not():
    key = jax.random.key(1)
    mixing = jnp.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.3, -0.2, 0.9]])
    inputs = jax.random.normal(key, (3000, 3)) @ mixing.T  # correlated presynaptic activity

    def run_rule(update):
        def step(trace, x):
            post = trace @ x  # a linear neuron, the setting of Oja's proof
            return update(trace, x, post, 0.01), jnp.linalg.norm(trace)

        return jax.lax.scan(step, jnp.full((1, 3), 0.1), inputs)[1]

    oja = np.asarray(run_rule(oja_update))
    hebb = np.asarray(run_rule(lambda h, x, y, eta: h + eta * jnp.outer(y, x)))
    assert np.all(np.isfinite(oja)) and oja.max() < 1.5
    assert abs(oja[-500:].mean() - 1.0) < 0.1  # Oja's fixed point: a unit-norm trace
    assert not np.all(np.isfinite(hebb)) or hebb.max() > 1e3


def test_neuromodulation_sets_sign_and_size_of_the_change_and_clips():
    trace = jnp.full((2, 2), 0.5)
    pre, post = jnp.array([1.0, -1.0]), jnp.array([1.0, 1.0])
    up = neuromodulated_update(trace, pre, post, 0.25)
    down = neuromodulated_update(trace, pre, post, -0.25)
    np.testing.assert_allclose(up, [[0.75, 0.25], [0.75, 0.25]])
    np.testing.assert_allclose(down, [[0.25, 0.75], [0.25, 0.75]])
    assert float(jnp.max(jnp.abs(neuromodulated_update(trace, pre, post, 10.0)))) == 1.0


# -- the blocks --------------------------------------------------------------------------------
def test_the_fused_episode_equals_eqs_12_13_step_by_step(getkey):
    n, steps = 6, 11  # 11 steps: segments of 3, one padded step at the front
    w, alpha = 0.5 * jax.random.normal(getkey(), (2, n, n))
    inputs = jax.random.normal(getkey(), (steps, n))
    eta = jnp.array(0.2)
    reference = jax.lax.scan(_step(w, alpha, eta), _zero_state(w), inputs)[1]
    y, trace = jnp.zeros(n), jnp.zeros((n, n))
    by_hand = []
    for x in inputs:
        z = (w + alpha * trace) @ y + x
        trace = hebbian_update(trace, y, jnp.tanh(z), eta)
        y = jnp.tanh(z)
        by_hand.append(z)
    np.testing.assert_allclose(plastic_episode(w, alpha, eta, inputs), reference, rtol=1e-5)
    np.testing.assert_allclose(reference, jnp.stack(by_hand), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 11, 17])  # segments of 1; of 3 after one padded step; of 4
def test_the_hand_written_episode_gradient_matches_finite_differences(x64, steps):
    key = jax.random.split(jax.random.key(2), 4)
    n = 5
    params = (
        0.5 * jax.random.normal(key[0], (n, n), jnp.float64),
        0.5 * jax.random.normal(key[1], (n, n), jnp.float64),
        jnp.array(0.3, jnp.float64),
        jax.random.normal(key[2], (steps, n), jnp.float64),
    )
    weights = jax.random.normal(key[3], (steps, n), jnp.float64)

    def loss(p):
        return jnp.sum(jnp.sin(plastic_episode(*p)) * weights)

    assert_gradient_matches_fd(loss, params, np.random.default_rng(0), n=16)
    reference = jax.grad(lambda p: jnp.sum(jnp.sin(jax.lax.scan(
        _step(*p[:3]), _zero_state(p[0]), p[3])[1]) * weights))(params)  # fmt: skip
    for a, b in zip(jax.grad(loss)(params), reference):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rule", ["hebbian", "oja", "neuromodulated"])
def test_gradients_through_a_plastic_episode_match_finite_differences(x64, getkey, rule):
    cell = to_float64(PlasticCell(2, 4, key=getkey(), rule=rule, eta=0.3))
    cell = eqx.tree_at(lambda c: c.modulator, cell, 0.3 * jnp.ones(5, jnp.float64))
    inputs = jax.random.normal(getkey(), (12, 2), jnp.float64)
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def loss(p):
        hiddens, (_, trace) = run_plastic_sequence(eqx.combine(p, static), inputs)
        return jnp.sum(jnp.sin(hiddens)) + jnp.sum(trace**2)

    assert_gradient_matches_fd(loss, params, np.random.default_rng(1), n=12)
    grads = jax.grad(loss)(params)
    assert float(jnp.max(jnp.abs(grads.alpha))) > 0  # α learns through the episode
    if rule != "neuromodulated":
        assert float(jnp.abs(grads.eta)) > 0
    else:
        assert float(jnp.max(jnp.abs(grads.modulator))) > 0  # the network's own η(t)


def test_the_plastic_network_gradient_matches_finite_differences(x64, getkey):
    net = to_float64(PlasticNetwork(4, 3, key=getkey(), neurons=6, eta=0.2, input_gain=2.0))
    net = eqx.tree_at(lambda m: (m.weight, m.alpha), net, tuple(
        0.5 * jax.random.normal(getkey(), (2, 6, 6), jnp.float64)))  # fmt: skip
    inputs = jax.random.normal(getkey(), (10, 4), jnp.float64)
    params, static = eqx.partition(net, eqx.is_inexact_array)

    def loss(p):
        return jnp.sum(jnp.tanh(eqx.combine(p, static)(inputs)))

    assert_gradient_matches_fd(loss, params, np.random.default_rng(2), n=12)


def test_the_non_plastic_twin_is_an_elman_cell_and_its_trace_stays_zero(getkey):
    key = getkey()
    twin = PlasticCell(3, 5, key=key, plastic=False)
    elman = ElmanCell(3, 5, key=getkey())
    elman = eqx.tree_at(lambda c: (c.input_weight, c.recurrent_weight, c.bias), elman,
                        (twin.input_weight, twin.recurrent_weight, twin.bias))  # fmt: skip
    inputs = jax.random.normal(getkey(), (7, 3))
    hiddens, (_, trace) = run_plastic_sequence(twin, inputs)
    np.testing.assert_allclose(hiddens, run_sequence(elman, inputs)[0], rtol=1e-5, atol=1e-6)
    assert float(jnp.max(jnp.abs(trace))) == 0.0
    plastic_hiddens, (_, plastic_trace) = run_plastic_sequence(PlasticCell(3, 5, key=key), inputs)
    assert float(jnp.max(jnp.abs(plastic_trace))) > 0  # the trace learns from the sequence
    assert not np.allclose(plastic_hiddens, hiddens)  # and changes what the cell computes


@pytest.mark.parametrize("eta", [0.0, -0.1, 1.5, float("nan")])
def test_a_plasticity_rate_outside_0_1_is_refused(getkey, eta):
    for build in (PlasticCell, PlasticLinear, PlasticNetwork):
        with pytest.raises(DiffdynError, match=r"eta must lie in \(0, 1\]"):
            build(4, 4, key=getkey(), eta=eta)


# -- the task ----------------------------------------------------------------------------------
def test_pattern_completion_shows_patterns_then_one_half_erased():
    @jax.jit
    def make(key):
        task = pattern_completion_task(key, 4, pattern_size=10)
        return task.inputs, task.targets, task.mask, task.lengths

    inputs, targets, mask, lengths = (np.asarray(a) for a in make(jax.random.key(3)))
    steps = 2 * 5 * (6 + 4) + 6  # Miconi et al.'s presentation: 6 steps shown, 4 of gap
    assert inputs.shape == (4, steps, 10) and np.all(mask.sum(axis=1) == 1)
    assert np.all(mask[:, -1] == 1) and np.all(lengths == 5)
    for episode in range(4):
        shown = inputs[episode, : steps - 6]
        blocks = shown.reshape(2, 5, 10, 10)  # presentations, patterns, steps, bits
        assert np.all(blocks[:, :, 6:] == 0)  # zero-input gaps
        assert np.all(blocks[:, :, :6] == blocks[:, :, :1])  # each shown for 6 steps
        first = {tuple(p) for p in blocks[0, :, 0]}
        assert first == {tuple(p) for p in blocks[1, :, 0]} and len(first) == 5
        assert np.all(inputs[episode, steps - 6 :] == inputs[episode, -1])  # 6 test steps
        degraded, target = inputs[episode, -1], 2 * targets[episode, -1] - 1
        assert tuple(target) in first  # one of the shown patterns
        assert np.sum(degraded == 0) == 5  # half its bits erased, the others kept
        assert np.all(degraded[degraded != 0] == target[degraded != 0])


def test_pattern_completion_trains_on_the_squared_error_of_the_activity():
    # Miconi et al.'s loss: Σ (tanh z − target)² at the scored step, target ±1; logits are 2z.
    from diffdyn.tasks.runner import TASKS, _bits_loss

    assert TASKS["pattern-completion"].squared and not TASKS["copy"].squared
    task = pattern_completion_task(jax.random.key(0), 2, pattern_size=6)
    net = PlasticNetwork(6, 6, key=jax.random.key(1))
    z = jax.vmap(net)(task.inputs) / 2
    target = 2 * task.targets - 1
    expected = np.sum(((np.tanh(z) - target) ** 2).sum(-1) * task.mask) / 2
    np.testing.assert_allclose(_bits_loss(net, task, squared=True), expected, rtol=1e-5)


def test_pattern_completion_refuses_bad_models_and_rates_in_one_sentence():
    with pytest.raises(DiffdynError, match="must be positive"):
        check_task("pattern-completion", "plastic", {"eta": "0"})
    with pytest.raises(DiffdynError, match="eta of model plastic must be at least 0"):
        check_task("pattern-completion", "plastic", {"eta": "-1"})
    with pytest.raises(DiffdynError, match=r"must lie in \(0, 1\]"):
        check_task("pattern-completion", "plastic", {"eta": "1.5"})
    with pytest.raises(DiffdynError, match="cannot hold patterns of 1000 bits"):
        check_task("pattern-completion", "rnn", {"neurons": "500"})
    with pytest.raises(DiffdynError, match="cannot hold patterns of 40 bits"):
        check_task("pattern-completion", "plastic", {"neurons": 30}, {"pattern_size": 40})
    with pytest.raises(DiffdynError, match="does only the pattern-completion task"):
        check_task("copy", "plastic")
    with pytest.raises(DiffdynError, match="pattern_size must be at least 2"):
        check_task("pattern-completion", "lstm", None, {"pattern_size": 1})
    assert check_task("pattern-completion", "plastic", {"neurons": "1200"})["neurons"] == 1200
    assert check_task("pattern-completion", "dnc")["memory_size"] >= 10  # dnc and lstm work


def test_cli_task_refuses_bad_plasticity_rates_and_sizes_in_one_line(tmp_path):
    out = tmp_path / "r.json"
    for args, fragment in [
        (["-p", "eta=0"], "must be positive"),
        (["-p", "eta=1.5"], "eta must lie in (0, 1]"),
        (["-p", "neurons=10"], "cannot hold patterns of 1000 bits"),
    ]:
        result = run("task", "pattern-completion", "-m", "plastic", *args, "-o", out)
        assert_one_line_error(result, fragment)
        assert not out.exists()
    assert_one_line_error(run("task", "copy", "-m", "plastic"), "pattern-completion")


@pytest.mark.slow  # about 2 minutes on a loaded 2-core machine
def test_the_plastic_network_learns_what_its_twin_cannot():
    options = {"pattern_size": 24, "min_patterns": 2, "max_patterns": 2}
    scores = {
        model: run_task("pattern-completion", model, budget=None, max_steps=300,
                        learning_rate=3e-3, task_options=options, progress=False)
        for model in ("plastic", "rnn")
    }  # fmt: skip
    plastic = scores["plastic"]["bit_error_per_patterns"][2]
    rnn = scores["rnn"]["bit_error_per_patterns"][2]
    assert plastic < 0.08 and rnn > 0.15, (plastic, rnn)


# -- the forecaster ----------------------------------------------------------------------------
def test_plastic_rnn_is_registered_and_forecasts_any_horizon_adapting_its_trace(getkey):
    model_spec("persistence")
    assert "plastic-rnn" in MODELS
    model = build_model("plastic-rnn", 2, key=getkey(), hidden=8)
    context = jax.random.normal(getkey(), (20, 2))
    forecast = eqx.filter_jit(lambda m, c: m(c, horizon=30))(model, context)[0]
    assert forecast.shape == (30, 2)
    first, aux = model(context, horizon=1)  # any horizon: the same first step
    np.testing.assert_allclose(first[0], forecast[0], rtol=1e-5)
    assert aux == {}
    state, _ = model.read_context(context, jnp.zeros((20, 0)))
    assert float(jnp.max(jnp.abs(state[1]))) > 0  # the trace adapted to the context
    twin = build_model("plastic-rnn", 2, key=getkey(), hidden=8, plastic="false")
    assert float(jnp.max(jnp.abs(twin.read_context(context, jnp.zeros((20, 0)))[0][1]))) == 0
    driven = build_model("plastic-rnn", 2, 1, key=getkey(), hidden=8)
    assert driven(context, jnp.ones((25, 1)), horizon=5)[0].shape == (5, 2)


def test_cli_train_refuses_a_bad_plasticity_rate_in_one_line(tmp_path):
    for eta in ("0", "2"):
        result = run("train", "-m", "plastic-rnn", "--system", "lorenz63", "-p", f"eta={eta}",
                     "-o", tmp_path / "m")  # fmt: skip
        assert_one_line_error(result, "eta must lie in (0, 1]")
        assert not (tmp_path / "m").exists()
