"""seq2seq-attention: the model contract, its alignment, and what attention learns."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import assert_gradient_matches_fd, to_float64
from diffdyn.errors import DiffdynError, UnknownNameError
from diffdyn.models import build_model, model_spec
from diffdyn.train import train

DIM, CONTEXT = 3, 12


def _model(key, exog_dim=0, **kw):
    return build_model("seq2seq-attention", DIM, exog_dim, key=key, **{"hidden": 8, **kw})


@pytest.mark.parametrize(
    "params",
    [{}, pytest.param({"cell": "lstm", "score": "cosine"}, marks=pytest.mark.slow),
     pytest.param({"cell": "rnn", "score": "dot"}, marks=pytest.mark.slow)],
)  # fmt: skip
def test_shapes_alignment_vmap_and_gradients(params, getkey):
    model = _model(getkey(), exog_dim=2, **params)
    assert model.fit_kind == "gradient" and model.has_attention
    context = jax.random.normal(getkey(), (4, CONTEXT, DIM))
    exog = jax.random.normal(getkey(), (4, CONTEXT + 150, 2))

    @eqx.filter_jit
    def run(model):
        outs = [model(context[0], exog[0, : CONTEXT + h], horizon=h) for h in (1, 7, 150)]

        def loss(m):
            f, _ = jax.vmap(lambda c, u: m(c, u, horizon=5))(context, exog[:, : CONTEXT + 5])
            return jnp.mean(f**2)

        return outs, eqx.filter_grad(loss)(model)

    outs, grads = run(model)
    for (forecast, aux), horizon in zip(outs, (1, 7, 150)):
        assert forecast.shape == (horizon, DIM) and np.all(np.isfinite(forecast))
        weights = np.asarray(aux["attention"])
        assert weights.shape == (horizon, CONTEXT) and np.all(weights >= 0)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_array))
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert sum(float(jnp.abs(g).sum()) > 0 for g in leaves) >= len(leaves) - 1


def test_exogenous_inputs_change_the_forecast(getkey):
    model = _model(getkey(), exog_dim=1)
    context = jax.random.normal(getkey(), (CONTEXT, DIM))
    exog = jax.random.normal(getkey(), (CONTEXT + 6, 1))
    a, _ = model(context, exog, horizon=6)
    b, _ = model(context, exog.at[CONTEXT + 2].add(1.0), horizon=6)
    np.testing.assert_allclose(a[:2], b[:2], rtol=1e-6)  # the future input acts from its step
    assert not np.allclose(a[2:], b[2:])


def test_bad_hyperparameters_are_refused(getkey):
    with pytest.raises(UnknownNameError, match="unknown attention score 'bahdanau'"):
        _model(getkey(), score="bahdanau")
    with pytest.raises(UnknownNameError, match="unknown cell"):
        _model(getkey(), cell="transformer")
    assert model_spec("seq2seq-attention").defaults["score"] == "additive"
    with pytest.raises(DiffdynError, match="context must have shape"):
        _model(getkey())(jnp.zeros((CONTEXT, DIM + 1)), horizon=3)


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_gradient_matches_finite_differences(x64, getkey):
    model = _model(getkey(), exog_dim=1, hidden=4, score="general")
    model = to_float64(model)
    context = jax.random.normal(getkey(), (6, DIM), jnp.float64)
    exog = jax.random.normal(getkey(), (10, 1), jnp.float64)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss(p):
        forecast, aux = eqx.combine(p, static)(context, exog, horizon=4)
        return jnp.sum(jnp.sin(forecast)) + jnp.sum(aux["attention"] * jnp.arange(6.0)[None, :])

    assert_gradient_matches_fd(loss, params, np.random.default_rng(0), n=12)


def _recall_task(key, context, slots):
    """Delayed recall: random values; K positions marked 1/K, 2/K, ... by an exogenous input;
    the forecast must give the marked values in slot order after the whole context."""
    k_values, k_positions = jax.random.split(key)
    values = jax.random.normal(k_values, (context, 1))
    positions = jnp.sort(jax.random.choice(k_positions, context, (slots,), replace=False))
    marker = jnp.zeros((context + slots, 1)).at[positions, 0].set(jnp.arange(1, slots + 1) / slots)
    return values, marker, values[positions], positions


@pytest.mark.parametrize("score", ["additive", "general", "cosine"])
@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_alignment_finds_the_recalled_step(score, getkey):
    """Issue 5 target: on a delayed-recall task the decoder puts >= 0.9 of its alignment mass
    on the correct source step."""
    context, slots, batch = 16, 3, 32
    model = build_model("seq2seq-attention", 1, 1, key=getkey(), hidden=16, score=score)

    def recall_batch(key, step, progress):
        return jax.vmap(lambda k: _recall_task(k, context, slots))(jax.random.split(key, batch))

    @eqx.filter_jit
    def error_and_mass(model, batch):
        values, marker, target, positions = batch
        forecast, aux = jax.vmap(lambda c, u: model(c, u, horizon=slots))(values, marker)
        mass = jnp.take_along_axis(aux["attention"], positions[:, :, None], axis=2)
        return jnp.mean((forecast - target) ** 2), jnp.mean(mass)

    def loss(model, batch, key):
        return error_and_mass(model, batch)[0]

    model = train(model, loss, recall_batch, optax.adam(1e-2), key=getkey(), steps=500,
                  progress=False).module  # fmt: skip
    error, mass = error_and_mass(model, recall_batch(jax.random.key(123), 0, 0.0))
    assert float(error) < 0.05
    assert float(mass) >= 0.9, f"alignment mass on the recalled step: {float(mass):.3f}"


def test_reencode_restarts_the_encoder_on_the_latest_values(getkey):
    """With reencode=K the forecast is K-step chunks, each decoded from an encoding of the
    latest `context` values (observed or forecast)."""
    key = getkey()
    model = _model(key, exog_dim=1, reencode=5)
    plain = _model(key, exog_dim=1)  # same weights, never re-encodes
    context = jax.random.normal(getkey(), (CONTEXT, DIM))
    exog = jax.random.normal(getkey(), (CONTEXT + 23, 1))
    forecast, aux = model(context, exog, horizon=23)
    assert forecast.shape == (23, DIM) and aux["attention"].shape == (23, CONTEXT)
    first, _ = plain(context, exog[: CONTEXT + 5], horizon=5)
    np.testing.assert_allclose(forecast[:5], first, rtol=1e-5, atol=1e-6)
    window = jnp.concatenate([context, forecast[:5]])[-CONTEXT:]
    second, _ = plain(window, exog[5 : CONTEXT + 10], horizon=5)
    np.testing.assert_allclose(forecast[5:10], second, rtol=1e-5, atol=1e-5)
    with pytest.raises(DiffdynError, match="reencode"):
        _model(getkey(), reencode=-1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "seq2seq-attention", "-p", "score=bahdanau"], "unknown attention score"),
        (["--model", "transformer", "-p", "heads=3"], "heads (3) must divide the width"),
        (
            ["--model", "transformer", "-p", "positional=learned", "-p", "max_length=16"],
            "longer than the learned positional table",
        ),
        (["--model", "darnn", "-p", "context=20", "--context", "30"], "disagree"),
    ],
)
def test_cli_refuses_bad_attention_settings_before_anything_is_made(args, message, tmp_path):
    from test_cli import assert_one_line_error, run

    folder = tmp_path / "m"
    result = run("train", "--system", "henon", "--steps", "400", *args, "-o", folder)
    assert_one_line_error(result, message)
    assert not folder.exists()


def test_unrolling_changes_neither_forecast_nor_gradient(getkey):
    """`unroll=True` compiles the same computation unrolled: same forecast, same gradient."""
    key, data = getkey(), getkey()
    looped, unrolled = _model(key, unroll="off"), _model(key, unroll=True)
    assert (looped.unroll, unrolled.unroll) == ("off", "on")
    context = jax.random.normal(data, (CONTEXT, DIM))

    def loss(m):  # 25 steps: 3 re-encoding chunks of 10, the last one padded
        forecast, aux = m(context, horizon=25)
        return jnp.sum(jnp.sin(forecast)), (forecast, aux["attention"])

    outs = [eqx.filter_jit(eqx.filter_value_and_grad(loss, has_aux=True))(m)
            for m in (looped, unrolled)]  # fmt: skip
    (value_a, (forecast_a, weights_a)), grad_a = outs[0]
    (value_b, (forecast_b, weights_b)), grad_b = outs[1]
    np.testing.assert_allclose(forecast_a, forecast_b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights_a, weights_b, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(grad_a), jax.tree_util.tree_leaves(grad_b)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_unroll_auto_unrolls_for_long_trainings_only(getkey):
    """`unroll="auto"` (the default) is chosen by `for_training` from the budget; `fit` hands the
    trained parameters back in the model as it was given."""
    from diffdyn.models.attention_seq2seq import UNROLL_MIN_BUDGET
    from diffdyn.train import TrainConfig, fit

    model = _model(getkey())
    assert model.unroll == "auto"
    assert model.for_training(None).unroll == "on"
    assert model.for_training(UNROLL_MIN_BUDGET).unroll == "on"
    assert model.for_training(14.0).unroll == "off"
    chosen = model.for_training(None)
    leaves = [jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_array)) for m in (chosen, model)]
    assert len(leaves[0]) == len(leaves[1])
    assert all(a is b for a, b in zip(*leaves))  # the same parameters, not copies
    for fixed in ("on", "off"):
        assert _model(getkey(), unroll=fixed).for_training(None).unroll == fixed
    with pytest.raises(DiffdynError, match="unroll=auto, on or off"):
        _model(getkey(), unroll="sometimes")

    values = jnp.sin(jnp.linspace(0, 30, 300))[:, None] * jnp.ones((1, DIM))
    config = TrainConfig(context=CONTEXT, horizon=5, batch_size=8, epochs=1)
    outcome = fit(model, values, None, config, key=getkey(), progress=False)
    assert outcome.module.unroll == outcome.last_module.unroll == "auto"
    assert outcome.steps > 0
