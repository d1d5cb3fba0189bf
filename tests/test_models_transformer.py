"""The self-attention (Transformer-encoder) forecaster: contract, alignment, causality, errors,
gradients and a small fit."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffdyn.errors import DiffdynError, UnknownNameError
from diffdyn.models import build_model, model_spec
from diffdyn.models.transformer import SelfAttentionForecaster
from diffdyn.train import train
from diffdyn.train.config import TrainConfig

DIM, CONTEXT = 3, 12
SMALL = {"width": 8, "heads": 2, "layers": 2, "ffn": 16}


def small_model(exog_dim, key, **options):
    return build_model("transformer", DIM, exog_dim, key=key, **{**SMALL, **options})


def inputs(rng, exog_dim, horizon, batch=(), context=CONTEXT):
    values = rng.standard_normal((*batch, context, DIM)).astype(np.float32)
    exog = rng.standard_normal((*batch, context + horizon, exog_dim)).astype(np.float32)
    return jnp.asarray(values), (jnp.asarray(exog) if exog_dim else None)


@pytest.mark.parametrize(
    ("positional", "exog_dim"),
    [pytest.param("sinusoidal", 2, marks=pytest.mark.slow), ("learned", 0)],
)
def test_shapes_alignment_vmap_and_gradients(exog_dim, positional, getkey):
    rng = np.random.default_rng(0)
    model = small_model(exog_dim, getkey(), positional=positional, max_length=CONTEXT)
    assert isinstance(model, SelfAttentionForecaster) and model.fit_kind == "gradient"
    horizons = (1, 7, 150)  # any horizon, far beyond anything trained
    singles = [inputs(rng, exog_dim, h) for h in horizons]
    context, exog = inputs(rng, exog_dim, 5, batch=(4,))
    target = jnp.asarray(rng.standard_normal((4, 5, DIM)).astype(np.float32))

    def loss(model):
        forecast = jax.vmap(lambda c, x: model(c, x, horizon=5)[0])(context, exog)
        return jnp.mean((forecast - target) ** 2), forecast

    @eqx.filter_jit
    def run(model):
        forecasts = [model(c, x, horizon=h) for (c, x), h in zip(singles, horizons)]
        one = model(context[1], None if exog is None else exog[1], horizon=5)[0]
        grads, batched = eqx.filter_grad(loss, has_aux=True)(model)
        return forecasts, one, batched, grads

    forecasts, one, batched, grads = run(model)
    for (forecast, aux), horizon in zip(forecasts, horizons):
        assert forecast.shape == (horizon, DIM) and np.all(np.isfinite(forecast))
        attention = np.asarray(aux["attention"])
        assert set(aux) == {"attention"} and attention.shape == (horizon, CONTEXT)
        assert np.all(attention >= 0)
        np.testing.assert_allclose(attention.sum(axis=1), 1.0, rtol=1e-5)
    assert batched.shape == (4, 5, DIM)
    np.testing.assert_allclose(batched[1], one, rtol=1e-5, atol=1e-6)
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert len(leaves) == len(jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))
    for leaf in leaves:
        assert np.all(np.isfinite(leaf)) and np.any(leaf != 0)


def test_exogenous_inputs_are_used_or_ignored(getkey):
    rng = np.random.default_rng(1)
    context, exog = inputs(rng, 2, 6)
    assert exog is not None
    changed = exog.at[CONTEXT + 2 :].add(1.0)
    with_exog, without = small_model(2, getkey()), small_model(0, getkey())

    @eqx.filter_jit
    def run(with_exog, without):
        return (
            with_exog(context, exog, horizon=6)[0],
            with_exog(context, changed, horizon=6)[0],
            without(context, exog, horizon=6)[0],
            without(context, None, horizon=6)[0],
        )

    before, after, ignored, none = run(with_exog, without)
    assert not np.allclose(before, after)  # the forcing known in advance shapes the forecast
    # u_{C+2} first enters the token of time C + 1, which predicts step 2 (ŷ_{C+2}).
    np.testing.assert_array_equal(before[:2], after[:2])
    np.testing.assert_array_equal(ignored, none)


def test_encoder_is_causal_and_the_first_alignment_row_reads_the_context(getkey):
    rng = np.random.default_rng(2)
    model = small_model(0, getkey())
    assert isinstance(model, SelfAttentionForecaster)
    context, _ = inputs(rng, 0, 4)
    changed = context.at[5].add(1.0)
    encode = eqx.filter_jit(lambda m, c: m.encode(c))
    z, weights = encode(model, context)
    z_changed, _ = encode(model, changed)
    assert z.shape == (CONTEXT, SMALL["width"]) and weights.shape == (2, CONTEXT, CONTEXT)
    # Position t sees tokens 0..t only: a change at position 5 leaves positions 0..4 alone
    # and moves every later one.
    np.testing.assert_allclose(z_changed[:5], z[:5], rtol=1e-6, atol=1e-6)
    assert np.all(np.max(np.abs(z_changed[5:] - z[5:]), axis=1) > 1e-4)
    assert np.all(np.triu(np.asarray(weights), k=1) == 0)  # no weight on later positions

    forecast = eqx.filter_jit(lambda m, c: m(c, horizon=4))
    out, aux = forecast(model, context)
    # Step 0's window is exactly the observed context: its alignment row is the encoder's
    # newest row, averaged over heads.
    np.testing.assert_allclose(aux["attention"][0], weights[:, -1].mean(0), rtol=1e-5)
    # The oldest context value still reaches the forecast (through attention).
    out_oldest, _ = forecast(model, context.at[0].add(1.0))
    assert not np.allclose(out, out_oldest)


def test_sliding_window_shorter_than_the_context(getkey):
    rng = np.random.default_rng(3)
    model = small_model(0, getkey(), window=5)
    context, _ = inputs(rng, 0, 6)
    run = eqx.filter_jit(lambda m, c: m(c, horizon=6))
    out, aux = run(model, context)
    assert aux["attention"].shape == (6, 5)
    # Only the newest five steps are read; older ones do not matter.
    older, _ = run(model, context.at[: CONTEXT - 5].add(1.0))
    np.testing.assert_array_equal(out, older)
    newer, _ = run(model, context.at[CONTEXT - 5].add(1.0))
    assert not np.allclose(out, newer)
    with pytest.raises(DiffdynError, match="at least 5 steps"):
        model(context[:4], horizon=2)


def test_bad_inputs_raise_actionable_errors(getkey):
    with pytest.raises(DiffdynError, match="must divide the width"):
        build_model("transformer", DIM, key=getkey(), width=10, heads=4)
    with pytest.raises(UnknownNameError, match="Did you mean 'learned'"):
        build_model("transformer", DIM, key=getkey(), positional="learnt")
    with pytest.raises(DiffdynError, match="layers must be a positive"):
        build_model("transformer", DIM, key=getkey(), layers=0)
    with pytest.raises(DiffdynError, match="window"):
        build_model("transformer", DIM, key=getkey(), window=-1)
    short = small_model(0, getkey(), positional="learned", max_length=8)
    with pytest.raises(DiffdynError, match="longer than the learned positional table"):
        short(jnp.zeros((CONTEXT, DIM)), horizon=3)
    model = small_model(2, getkey())
    context = jnp.zeros((CONTEXT, DIM))
    with pytest.raises(DiffdynError, match="pass exog of shape"):
        model(context, None, horizon=3)
    with pytest.raises(DiffdynError, match="context must have shape"):
        model(jnp.zeros((CONTEXT, DIM + 1)), jnp.zeros((CONTEXT + 3, 2)), horizon=3)


def test_registry_entry(getkey):
    spec = model_spec("transformer")
    assert spec.description and "\n" not in spec.description
    assert spec.defaults == {
        "width": 32,
        "heads": 4,
        "layers": 2,
        "ffn": 64,
        "positional": "sinusoidal",
        "max_length": 256,
        "window": 0,
    }
    config = TrainConfig.from_options(spec.training)
    assert config.context <= spec.defaults["max_length"]
    options = {**SMALL, "layers": "3", "positional": "learned"}  # as typed on the command line
    model = build_model("transformer", DIM, key=getkey(), **options)
    assert isinstance(model, SelfAttentionForecaster) and len(model.blocks) == 3
    assert model.learned_positions is not None


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_gradient_matches_finite_differences(request, getkey):
    """Directional derivative of a free-running loss, against central differences (float64)."""
    # Built in float32 (the initialisers are already compiled), then run in float64.
    model = small_model(2, getkey(), positional="learned", max_length=CONTEXT)
    request.getfixturevalue("x64")
    params, static = eqx.partition(model, eqx.is_inexact_array)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
    rng = np.random.default_rng(4)
    context = jnp.asarray(rng.standard_normal((6, DIM)))
    exog = jnp.asarray(rng.standard_normal((9, 2)))
    target = jnp.asarray(rng.standard_normal((3, DIM)))
    direction = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), params)
    context_direction = jnp.asarray(rng.standard_normal(context.shape))

    def loss(params, context):
        forecast, aux = eqx.combine(params, static)(context, exog, horizon=3)
        assert forecast.dtype == jnp.float64
        return jnp.sum((forecast - target) ** 2) + jnp.sum(aux["attention"] ** 2)

    @jax.jit
    def check(params, context):
        grad_params, grad_context = jax.grad(loss, argnums=(0, 1))(params, context)
        analytic = jnp.vdot(grad_context, context_direction) + sum(
            jnp.vdot(g, d)
            for g, d in zip(
                jax.tree_util.tree_leaves(grad_params), jax.tree_util.tree_leaves(direction)
            )
        )

        def shifted(eps):
            moved = jax.tree_util.tree_map(lambda p, d: p + eps * d, params, direction)
            return loss(moved, context + eps * context_direction)

        eps = 1e-6
        return analytic, (shifted(eps) - shifted(-eps)) / (2 * eps)

    analytic, numeric = check(params, context)
    assert abs(float(analytic)) > 1e-3
    np.testing.assert_allclose(float(analytic), float(numeric), rtol=1e-6)


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_overfits_a_sine_wave_next_step(getkey):
    """150 Adam steps fit the next step of a sine wave far better than at init."""
    t = 0.25 * np.arange(64 + 17)
    wave = np.stack([np.sin(t), np.cos(t)], axis=1) / np.sqrt(0.5)
    windows = jnp.asarray(np.stack([wave[i : i + 17] for i in range(64)]).astype(np.float32))
    context, target = windows[:, :16], windows[:, 16:]
    model = build_model("transformer", 2, key=getkey(), **{**SMALL, "layers": 1})

    def loss(model, batch, key):
        context, target = batch
        forecast = jax.vmap(lambda c: model(c, horizon=1)[0])(context)
        return jnp.mean((forecast - target) ** 2)

    def whole_set(key, step, progress):
        return context, target

    trained = train(model, loss, whole_set, optax.adam(3e-3), key=getkey(), steps=150,
                    progress=False).module  # fmt: skip
    before = float(eqx.filter_jit(loss)(model, (context, target), None))
    after = float(eqx.filter_jit(loss)(trained, (context, target), None))
    assert after < before / 10, (before, after)
