"""Soft control flow (`nn.control`: soft if, soft switch, the ACT halting loop), Chua's
circuit, the switching and ACT forecasters, and `diffdyn explain` of their gates."""

import functools
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_gradient_matches_fd, to_float64
from diffdyn.errors import DiffdynError
from diffdyn.models import ACTForecaster, SwitchingForecaster, build_model
from diffdyn.nn import SoftIf, SoftSwitch, halting_loop, soft_if, soft_switch
from diffdyn.plot import plot_gates
from diffdyn.systems import Chua, get_system, simulate
from diffdyn.train.fit import forecast_loss
from test_cli import assert_one_line_error, run


# -- soft if ---------------------------------------------------------------------------------
def test_soft_if_mixes_both_branches_and_tends_to_the_hard_if():
    y, z = jnp.array([1.0, 2.0]), jnp.array([-3.0, 5.0])
    a = jax.nn.sigmoid(0.4)
    np.testing.assert_allclose(soft_if(jnp.array(0.4), y, z), a * y + (1 - a) * z, rtol=1e-6)
    for condition in (-0.3, 0.02, 2.0):
        hard = y if condition > 0 else z
        np.testing.assert_allclose(
            soft_if(jnp.array(condition), y, z, temperature=1e-4), hard, atol=1e-6
        )
    with pytest.raises(DiffdynError, match="temperature must be positive"):
        soft_if(jnp.array(1.0), y, z, temperature=0.0)


def test_soft_if_module_learns_nothing_but_its_condition_gate(getkey):
    keys = jax.random.split(getkey(), 3)
    branch = SoftIf(
        eqx.nn.Linear(2, "scalar", key=keys[0]),
        eqx.nn.Linear(2, 3, key=keys[1]),
        eqx.nn.Linear(2, 3, key=keys[2]),
        temperature=1e-5,
    )
    for x in (jnp.array([0.3, -1.0]), jnp.array([-2.0, 0.5])):
        value, a = branch(x)
        hard = branch.then_branch(x) if branch.condition(x) > 0 else branch.else_branch(x)
        np.testing.assert_allclose(value, hard, atol=1e-5)
        assert float(a) in (0.0, 1.0) or abs(float(a) - round(float(a))) < 1e-5


# -- soft switch -----------------------------------------------------------------------------
def test_soft_switch_is_a_softmax_mixture_that_tends_to_the_argmax_branch():
    scores = jnp.array([0.5, 2.0, -1.0])
    values = jnp.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    value, weights = soft_switch(scores, values, temperature=2.0)
    expected = jax.nn.softmax(scores / 2.0)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    np.testing.assert_allclose(value, expected @ values, rtol=1e-6)
    assert float(weights.sum()) == pytest.approx(1.0)
    cold, cold_weights = soft_switch(scores, values, temperature=1e-3)
    np.testing.assert_allclose(cold, values[1], atol=1e-6)
    np.testing.assert_allclose(cold_weights, [0.0, 1.0, 0.0], atol=1e-6)
    # Pytree branches: every leaf has the branch axis first.
    mixed, _ = soft_switch(scores, {"a": values, "b": jnp.arange(3.0)}, temperature=1e-3)
    assert float(mixed["b"]) == pytest.approx(1.0)
    with pytest.raises(DiffdynError, match="at least 2 branches"):
        soft_switch(jnp.array([1.0]), jnp.ones((1, 2)))
    with pytest.raises(DiffdynError, match="leading axis of 3"):
        soft_switch(scores, jnp.ones((2, 2)))


def test_straight_through_takes_one_branch_forward_and_the_softmax_gradient_backward():
    values = jnp.array([[1.0], [3.0], [-2.0]])

    def hard(scores):
        return soft_switch(scores, values, straight_through=True)[0][0]

    def soft(scores):
        return soft_switch(scores, values)[0][0]

    scores = jnp.array([0.1, 0.7, -0.4])
    assert float(hard(scores)) == pytest.approx(3.0)  # the top-scoring branch alone
    # d/ds of Σ_k w̃_k v_k with w̃ = w + stop_gradient(onehot − w) is the softmax's gradient.
    np.testing.assert_allclose(jax.grad(hard)(scores), jax.grad(soft)(scores), rtol=1e-6)


def test_soft_switch_gradient_matches_finite_differences(x64, getkey):
    keys = jax.random.split(getkey(), 2)
    experts = eqx.filter_vmap(lambda k: eqx.nn.MLP(3, 2, 4, 1, key=k))(
        jax.random.split(keys[0], 3)
    )
    switch = to_float64(SoftSwitch(eqx.nn.Linear(3, 3, key=keys[1]), experts, temperature=0.7))
    x = jnp.array([0.3, -0.8, 1.1])

    params, static = eqx.partition(switch, eqx.is_inexact_array)

    def loss(p):
        value, weights = eqx.combine(p, static)(x)
        return jnp.sum(value**2) + jnp.sum(weights * jnp.arange(3.0))

    assert_gradient_matches_fd(loss, params, np.random.default_rng(0), n=10)


# -- the halting loop (ACT) ------------------------------------------------------------------
def _cell(key, n=3):
    k1, k2 = jax.random.split(key)
    return 0.6 * jax.random.normal(k1, (n, n)), jax.random.normal(k2, (n,))


def test_halting_weights_sum_to_one_and_steps_stay_within_the_maximum(getkey):
    weight, halt_weight = _cell(getkey())

    @functools.partial(jax.jit, static_argnums=1)
    def loop(bias, max_steps):
        return halting_loop(
            lambda s, n: jnp.tanh(weight @ s + 0.1 * n),
            lambda s: halt_weight @ s + bias,
            jnp.array([0.5, -0.2, 0.1]),
            max_steps=max_steps,
        )

    for max_steps in (1, 2, 5):
        for bias in (-4.0, -1.0, 0.0, 1.0, 4.0):
            out = loop(bias, max_steps)
            weights = np.asarray(out.weights)
            assert weights.shape == (max_steps,)
            assert np.all(weights >= 0) and weights.sum() == pytest.approx(1.0, abs=1e-6)
            steps = int(out.steps)
            assert 1 <= steps <= max_steps
            assert np.all(weights[steps:] == 0) and weights[steps - 1] > 0
            assert float(out.remainder) == pytest.approx(weights[steps - 1], abs=1e-6)
            assert float(out.ponder_cost) == pytest.approx(steps + weights[steps - 1], abs=1e-6)
    # A halting probability that never reaches 1 - ε: the maximum ends the loop.
    capped = halting_loop(
        lambda s, n: s + 1.0, lambda s: jnp.array(-20.0), jnp.zeros(()), max_steps=4
    )
    assert int(capped.steps) == 4


def test_cold_halting_loop_is_a_hard_while_loop():
    def step(s, n):
        return s * 1.5 + 0.25

    def halt(s):
        return s - 3.0

    @functools.partial(jax.jit, static_argnums=1)
    def cold(start, max_steps):
        return halting_loop(step, halt, start, max_steps=max_steps, temperature=1e-5)

    for start, max_steps in ((0.0, 10), (2.9, 10), (3.5, 10), (0.0, 3)):
        s, n = start, 0
        while True:  # the hard loop: step, stop at the first state whose halt score > 0
            s, n = step(s, n), n + 1
            if halt(s) > 0 or n == max_steps:
                break
        out = cold(jnp.array(start), max_steps)
        assert int(out.steps) == n
        assert float(out.state) == pytest.approx(s, rel=1e-5)


def test_halting_loop_gradient_matches_finite_differences(x64, getkey):
    weight, halt_weight = _cell(getkey())
    params = {"w": weight, "h": halt_weight, "b": jnp.array(-0.3)}
    x = jnp.array([0.4, -0.7, 0.2])

    def loss(p):
        out = halting_loop(
            lambda s, n: jnp.tanh(p["w"] @ s + x * (n == 0)),
            lambda s: p["h"] @ s + p["b"],
            jnp.zeros(3),
            max_steps=4,
        )
        return jnp.sum(out.state**2) + 0.1 * out.ponder_cost

    out = halting_loop(
        lambda s, n: jnp.tanh(weight @ s + x * (n == 0)),
        lambda s: halt_weight @ s - 0.3,
        jnp.zeros(3),
        max_steps=4,
    )
    assert 1 < int(out.steps)  # a point where more than one step is weighted
    assert_gradient_matches_fd(loss, to_float64(params), np.random.default_rng(1), n=10)


def test_bad_halting_settings_are_one_sentence():
    with pytest.raises(DiffdynError, match="at least 1"):
        halting_loop(lambda s, n: s, lambda s: s, jnp.zeros(()), max_steps=0)
    with pytest.raises(DiffdynError, match="epsilon"):
        halting_loop(lambda s, n: s, lambda s: s, jnp.zeros(()), max_steps=2, epsilon=1.0)


# -- Chua's circuit --------------------------------------------------------------------------
def test_chua_visits_its_three_linear_regions():
    chua = Chua()
    assert type(get_system("chua")) is Chua
    assert float(chua.diode(jnp.array(0.5))) == pytest.approx(-8 / 7 * 0.5, rel=1e-6)
    assert float(chua.diode(jnp.array(2.0))) == pytest.approx(-5 / 7 * 2 - 3 / 7, rel=1e-6)
    x = np.asarray(simulate(chua, steps=3000).values)[:, 0]
    assert (x < -1).mean() > 0.1 and (x > 1).mean() > 0.1 and (abs(x) <= 1).mean() > 0.1


# -- the forecasters -------------------------------------------------------------------------
@eqx.filter_jit
def forecast(model, context, horizon):
    return model(context, horizon=horizon)


def test_switching_forecaster_gates_rows_sum_to_one_and_a_cold_gate_picks_one_expert(getkey):
    model = SwitchingForecaster(3, key=getkey(), experts=4, delays=3, width=8)
    context = jax.random.normal(getkey(), (10, 3))
    values, aux = forecast(model, context, 7)
    assert values.shape == (7, 3) and aux["gates"].shape == (7, 4)
    np.testing.assert_allclose(aux["gates"].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.weights(context[-1]), aux["gates"][0], rtol=1e-5)
    cold = SwitchingForecaster(3, key=getkey(), experts=3, temperature=1e-4)
    hard = SwitchingForecaster(3, key=getkey(), experts=3, straight_through=True)
    for m in (cold, hard):
        _, aux = forecast(m, context, 5)
        np.testing.assert_allclose(np.sort(aux["gates"], axis=1)[:, -1], 1.0, atol=1e-4)
    # One step by hand: y + Σ_k w_k f_k(window).
    window = context[-3:]
    increments = jnp.stack([_expert(model, k)(window.ravel()) for k in range(4)])
    expected = context[-1] + model.weights(context[-1]) @ increments
    np.testing.assert_allclose(values[0], expected, rtol=1e-5, atol=1e-6)


def test_competitive_penalty_is_the_mixture_likelihood_of_the_context_transitions(getkey):
    """`competition=λ`: λ · mean_t −log Σ_k w_k(y_t) exp(−‖Δy_t − f_k‖² / 2σ²) over the
    context's one-step transitions (Jacobs et al. 1991), σ² the mixture's mean squared error;
    computed here by hand, transition by transition."""
    key, depth, lam = getkey(), 2, 0.5
    model = SwitchingForecaster(2, 1, key=key, experts=3, delays=depth, width=4,
                                competition=lam)  # fmt: skip
    plain = SwitchingForecaster(2, 1, key=key, experts=3, delays=depth, width=4)
    context = jax.random.normal(getkey(), (9, 2))
    exog = jax.random.normal(getkey(), (9 + 5, 1))
    values, aux = eqx.filter_jit(lambda m: m(context, exog, horizon=5))(model)
    plain_values, plain_aux = eqx.filter_jit(lambda m: m(context, exog, horizon=5))(plain)
    assert "penalty" not in plain_aux
    np.testing.assert_allclose(values, plain_values, rtol=1e-6)  # the forecast is unchanged
    predicted, increments, weights = [], [], []
    for t in range(depth - 1, 8):
        features = jnp.concatenate([context[t - depth + 1 : t + 1].ravel(),
                                    exog[t - depth + 1 : t + 2].ravel()])  # fmt: skip
        predicted.append(np.stack([_expert(model, k)(features) for k in range(3)]))
        increments.append(np.asarray(context[t + 1] - context[t]))
        weights.append(np.asarray(model.weights(context[t])))
    f, d, w = np.array(predicted), np.array(increments), np.array(weights)
    errors = ((f - d[:, None]) ** 2).sum(-1)
    scale = (((w[..., None] * f).sum(1) - d) ** 2).sum(-1).mean()
    expected = -lam * np.mean(np.log((w * np.exp(-errors / (2 * scale))).sum(1)))
    assert float(aux["penalty"]) == pytest.approx(expected, rel=1e-4)


def _expert(model, k):
    return jax.tree.map(lambda a: a[k] if eqx.is_array(a) else a, model.experts)


def test_act_forecaster_never_exceeds_its_maximum_and_its_weights_sum_to_one(getkey):
    for max_steps in (1, 2, 4):
        model = ACTForecaster(2, key=getkey(), hidden=8, max_steps=max_steps)
        model = eqx.tree_at(lambda m: m.halting.bias, model, jnp.array(-2.0))  # ponder longer
        values, aux = forecast(model, jax.random.normal(getkey(), (12, 2)), 6)
        assert values.shape == (6, 2)
        ponder = np.asarray(aux["ponder"])
        assert ponder.shape == (6,) and np.all((ponder >= 1) & (ponder <= max_steps))
        gates = np.asarray(aux["gates"])
        assert gates.shape == (6, max_steps)
        np.testing.assert_allclose(gates.sum(axis=1), 1.0, rtol=1e-5)
        assert float(aux["penalty"]) > 0
    assert int(ponder.max()) > 1  # a low halting bias makes the model ponder


def test_act_forecaster_with_one_step_is_its_plain_cell(getkey):
    model = ACTForecaster(2, key=getkey(), hidden=8, max_steps=1)
    context = jax.random.normal(getkey(), (9, 2))
    values, aux = forecast(model, context, 4)
    state = model.cell.initial_state()
    for y in context:  # one ponder step: the cell on y ⊕ flag 1
        state = model.cell(state, jnp.concatenate([y, jnp.ones(1)]))
    y = context[-1] + model.readout(state)
    np.testing.assert_allclose(values[0], y, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(aux["ponder"]) == 1)


def test_the_ponder_cost_enters_the_training_loss(getkey):
    key = getkey()
    model = ACTForecaster(2, key=key, hidden=4, max_steps=3, ponder_cost=0.5)
    free = ACTForecaster(2, key=key, hidden=4, max_steps=3, ponder_cost=0.0)
    context = jax.random.normal(getkey(), (3, 6, 2))
    target = jax.random.normal(getkey(), (3, 4, 2))
    batch = (context, target, None, jnp.asarray(4.0))
    key = getkey()
    loss = eqx.filter_jit(functools.partial(forecast_loss, rollout=4))
    penalty = jnp.mean(jax.vmap(lambda c: forecast(model, c, 4)[1]["penalty"])(context))
    difference = loss(model, batch, key) - loss(free, batch, key)
    assert float(difference) == pytest.approx(float(penalty), rel=1e-5)


def test_act_forecaster_gradient_matches_finite_differences(x64, getkey):
    model = to_float64(ACTForecaster(2, key=getkey(), hidden=3, max_steps=3))
    model = eqx.tree_at(lambda m: m.halting.bias, model, jnp.array(-0.5))
    context = jax.random.normal(getkey(), (5, 2), jnp.float64)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss(p):
        values, aux = eqx.combine(p, static)(context, horizon=3)
        return jnp.sum(values**2) + aux["penalty"]

    assert_gradient_matches_fd(loss, params, np.random.default_rng(2), n=12)


@pytest.mark.parametrize(
    "name, params, words",
    [
        ("switching", {"experts": 1}, ["at least 2 experts", "experts=1"]),
        ("switching", {"temperature": 0.0}, ["temperature must be positive"]),
        ("switching", {"competition": -1.0}, ["competition", "at least 0"]),
        ("act-rnn", {"max_steps": 0}, ["max_steps must be at least 1"]),
        ("act-rnn", {"epsilon": 1.0}, ["epsilon"]),
    ],
)
def test_bad_hyperparameters_are_one_sentence(name, params, words):
    with pytest.raises(DiffdynError) as error:
        build_model(name, 3, key=jax.random.key(0), **params)
    message = str(error.value)
    assert "\n" not in message and message.endswith(".")
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    "model, param, fragment",
    [("switching", "experts=1", "at least 2 experts"), ("act-rnn", "max_steps=0", "at least 1")],
)
def test_cli_refuses_bad_sizes_in_one_line_and_writes_nothing(tmp_path, model, param, fragment):
    folder = tmp_path / "m"
    result = run("train", "--system", "chua", "-m", model, "-p", param, "-o", folder)
    assert_one_line_error(result, fragment)
    assert not folder.exists()


# -- explain ---------------------------------------------------------------------------------
def test_plot_gates_draws_and_refuses_bad_shapes(tmp_path):
    gates = jax.nn.softmax(jax.random.normal(jax.random.key(0), (12, 3)), axis=1)
    figure = plot_gates(
        np.asarray(gates), tmp_path / "g.png", label="expert", ponder=np.ones(12),
        forecast=np.zeros((12, 2)),
    )  # fmt: skip
    assert (tmp_path / "g.png").stat().st_size > 0 and len(figure.axes) == 3
    with pytest.raises(DiffdynError, match="ponder"):
        plot_gates(np.asarray(gates), ponder=np.ones(5))
    with pytest.raises(DiffdynError, match="branches"):
        plot_gates(np.ones(4))


@pytest.mark.parametrize("model", ["switching", pytest.param("act-rnn", marks=pytest.mark.slow)])
def test_explain_draws_the_gates_of_a_trained_model(tmp_path, model):
    folder = tmp_path / model
    common = ["--system", "chua", "--steps", "600"]
    size = ["-p", "hidden=4"] if model == "act-rnn" else ["-p", "width=4", "-p", "gate_width=4"]
    result = run(
        "train", *common, "-m", model, *size, "--epochs", "1", "--context", "8", "--horizon",
        "4", "-o", folder,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    png, out = tmp_path / "gates.png", tmp_path / "gates.json"
    result = run("explain", folder, *common, "-o", png, "--json", out, "--horizon", "6")
    assert result.exit_code == 0, result.stderr
    assert png.stat().st_size > 0 and "gates drawn to" in result.stdout
    stored = json.loads(out.read_text())
    gates = np.asarray(stored["gates"])
    label = "expert" if model == "switching" else "ponder step"
    assert stored["gate_label"] == label and f"{label} " in result.stdout
    assert gates.shape == (6, 3) and np.allclose(gates.sum(axis=1), 1, atol=1e-5)
    assert stored["attention"] is None and np.asarray(stored["forecast"]).shape == (6, 3)
    if model == "act-rnn":
        ponder = np.asarray(stored["ponder"])
        assert ponder.shape == (6,) and np.all((ponder >= 1) & (ponder <= 3))
        assert "ponder steps" in result.stdout
