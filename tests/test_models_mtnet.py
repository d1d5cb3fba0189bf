"""MTNet (Chang et al. 2018): memory blocks read by attention, the AR highway, the contract."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import assert_gradient_matches_fd, to_float64
from diffdyn.errors import DiffdynError
from diffdyn.models import build_model, model_spec
from diffdyn.models.mtnet import MTNet  # importing it registers "mtnet"
from diffdyn.train import train
from diffdyn.train.config import TrainConfig
from test_cli import assert_one_line_error, run

DIM, EXOG, WINDOW = 3, 2, 4
SMALL = {"window": WINDOW, "hidden": 6, "filters": 4, "kernel": 2, "ar_window": 3}
# (context, horizon): one block with no remainder; two blocks after a remainder of 1 and a
# long closed loop. Every context >= 2 * window.
CASES = [(8, 1), (13, 30)]


def small_model(key, exog_dim=EXOG):
    return build_model("mtnet", DIM, exog_dim, key=key, **SMALL)


def inputs(rng, context, horizon, batch=()):
    values = rng.standard_normal((*batch, context, DIM)).astype(np.float32)
    exog = rng.standard_normal((*batch, context + horizon, EXOG)).astype(np.float32)
    return jnp.asarray(values), jnp.asarray(exog)


@pytest.fixture(scope="module")
def model():
    return small_model(jax.random.key(0))


@pytest.fixture(scope="module")
def outputs(model):
    """Every case, a vmapped batch and the same window alone: one compilation."""
    rng = np.random.default_rng(0)
    singles = [inputs(rng, c, h) for c, h in CASES]
    batch = inputs(rng, 13, 30, batch=(3,))

    @eqx.filter_jit
    def go(model):
        cases = [model(c, x, horizon=h) for (c, x), (_, h) in zip(singles, CASES)]
        batched = jax.vmap(lambda c, x: model(c, x, horizon=30)[0])(*batch)
        one = model(batch[0][2], batch[1][2], horizon=30)[0]
        return cases, batched, one

    return go(model)


def test_shapes_for_any_context_and_horizon(outputs):
    cases, batched, one = outputs
    for (forecast, aux), (context, horizon) in zip(cases, CASES):
        blocks = (context - WINDOW) // WINDOW
        assert forecast.shape == (horizon, DIM) and np.all(np.isfinite(forecast))
        assert aux["memory_attention"].shape == (horizon, blocks)
        assert aux["attention"].shape == (horizon, context)
    assert batched.shape == (3, 30, DIM)
    np.testing.assert_allclose(batched[2], one, rtol=1e-5, atol=1e-6)


def test_attention_rows_sum_to_one_over_the_memory_blocks_only(outputs):
    for (_, aux), (context, horizon) in zip(outputs[0], CASES):
        memory = np.asarray(aux["memory_attention"])
        attention = np.asarray(aux["attention"])
        assert np.all(memory >= 0) and np.allclose(memory.sum(axis=1), 1, atol=1e-6)
        assert np.all(attention >= 0) and np.allclose(attention.sum(axis=1), 1, atol=1e-6)
        first = (context - WINDOW) % WINDOW
        assert np.all(attention[:, context - WINDOW :] == 0)  # the query window
        assert np.all(attention[:, :first] == 0)  # the dropped remainder
        spread = np.repeat(memory / WINDOW, WINDOW, axis=1)  # p_i / T on each step of block i
        np.testing.assert_allclose(attention[:, first : context - WINDOW], spread, rtol=1e-6)
    # Re-encoding the query as the forecast slides changes where the model looks.
    memory = np.asarray(outputs[0][1][1]["memory_attention"])
    assert not np.allclose(memory[0], memory[-1])


@eqx.filter_jit
def forecast_13_6(model, context, exog):
    """Context 13 (a remainder of 1 step, blocks at steps 1-4 and 5-8), horizon 6; shared by
    the tests below so that it compiles once."""
    return model(context, exog, horizon=6)[0]


def test_memory_and_inputs_are_used_causally(model):
    context, exog = inputs(np.random.default_rng(1), 13, 6)
    before = forecast_13_6(model, context, exog)
    # Changing the oldest memory block changes the forecast: the memory is read.
    assert not np.allclose(forecast_13_6(model, context.at[1:5].add(1.0), exog), before)
    # The dropped remainder is not read.
    np.testing.assert_array_equal(forecast_13_6(model, context.at[0].add(1.0), exog), before)
    # An exogenous input known in advance shapes the forecast from its own step on.
    after = forecast_13_6(model, context, exog.at[13 + 2 :].add(1.0))
    assert not np.allclose(after, before)
    np.testing.assert_array_equal(after[:2], before[:2])


def test_autoregressive_highway_alone_matches_a_hand_computation(model):
    """With y^D = 0 the forecast is ŷ_{t+1} = y_t + Σ_j w_j y_{t-s+1+j} + b per variable."""
    weights, bias = np.array([0.2, -0.5, 0.1]), 0.05
    highway_only = eqx.tree_at(
        lambda m: (m.readout.weight, m.readout.bias, m.ar_weight, m.ar_bias),
        model,
        (
            jnp.zeros_like(model.readout.weight),
            jnp.zeros_like(model.readout.bias),
            jnp.asarray(weights, jnp.float32),
            jnp.asarray(bias, jnp.float32),
        ),
    )
    context, exog = inputs(np.random.default_rng(2), 13, 6)
    forecast = forecast_13_6(highway_only, context, exog)
    history = [row for row in np.asarray(context, float)]
    for _ in range(6):
        recent = np.stack(history[-3:])
        history.append(history[-1] + weights @ recent + bias)
    np.testing.assert_allclose(forecast, np.stack(history[-6:]), rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_gradients_match_finite_differences(x64):
    model = to_float64(small_model(jax.random.key(2)))
    # Nonzero highway weights, so that every path carries gradient.
    model = eqx.tree_at(lambda m: m.ar_weight, model, jnp.array([0.1, -0.2, 0.3]))
    rng = np.random.default_rng(3)
    context, exog = to_float64(inputs(rng, 12, 3))  # two memory blocks

    def loss(model):
        forecast, aux = model(context, exog, horizon=3)
        return jnp.sum(jnp.sin(forecast)) + jnp.sum(aux["memory_attention"][:, 0] ** 2)

    assert_gradient_matches_fd(loss, model, np.random.default_rng(0), n=8)


def test_bad_configuration_and_short_context_raise(model):
    exog = jnp.zeros((7 + 2, EXOG))
    with pytest.raises(DiffdynError, match=r"at least 2 × window = 8 steps.*got 7"):
        model(jnp.zeros((7, DIM)), exog, horizon=2)
    with pytest.raises(DiffdynError, match="use kernel <= 4"):
        MTNet(DIM, key=jax.random.key(0), window=4, kernel=5)
    with pytest.raises(DiffdynError, match="ar_window <= 4"):
        MTNet(DIM, key=jax.random.key(0), window=4, ar_window=5)
    with pytest.raises(DiffdynError, match="hidden must be a positive"):
        MTNet(DIM, key=jax.random.key(0), hidden=0)
    with pytest.raises(DiffdynError, match="pass exog of shape"):
        model(jnp.zeros((8, DIM)), None, horizon=2)


def test_cli_refuses_a_context_shorter_than_two_windows(tmp_path):
    folder = tmp_path / "m"
    result = run(
        "train", "--system", "henon", "--steps", "200", "--model", "mtnet", "--context", "10",
        "-o", folder,
    )  # fmt: skip
    assert_one_line_error(result, "at least 2 × window = 16 steps", "--context 16")
    assert not folder.exists()


def test_registry_entry():
    spec = model_spec("mtnet")
    assert spec.cls is MTNet and MTNet.has_attention and MTNet.name == "mtnet"
    assert spec.description and "\n" not in spec.description
    config = TrainConfig.from_options(spec.training)
    assert config.context >= 2 * spec.defaults["window"]
    assert config.context == 8 * spec.defaults["window"]  # 7 memory blocks and the query


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_fits_a_sine_wave_next_step():
    """150 Adam steps fit the next step of a sine wave far better than at init."""
    t = 0.3 * np.arange(32 + 13)
    wave = np.stack([np.sin(t), np.cos(t)], axis=1) / np.sqrt(0.5)
    windows = np.stack([wave[i : i + 13] for i in range(32)]).astype(np.float32)
    context, target = jnp.asarray(windows[:, :12]), jnp.asarray(windows[:, 12:])
    model = build_model("mtnet", 2, key=jax.random.key(3), **SMALL)

    def loss(model, batch, key):
        context, target = batch
        forecast = jax.vmap(lambda c: model(c, horizon=1)[0])(context)
        return jnp.mean((forecast - target) ** 2)

    def whole_set(key, step, progress):
        return context, target

    trained = train(model, loss, whole_set, optax.adam(1e-2), key=jax.random.key(4), steps=150,
                    progress=False).module  # fmt: skip
    before = float(eqx.filter_jit(loss)(model, (context, target), None))
    after = float(eqx.filter_jit(loss)(trained, (context, target), None))
    assert after < before / 10, (before, after)
