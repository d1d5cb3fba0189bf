"""Gradient-trained forecasters (rnn, lstm, gru, seq2seq, tdnn): the model contract."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffdyn.errors import DiffdynError, UnknownNameError
from diffdyn.models import build_model, model_spec, resolve_hyperparameters
from diffdyn.train import train
from diffdyn.train.config import TrainConfig

NAMES = ["rnn", "lstm", "gru", "seq2seq", "tdnn", "dnc"]
SMALL = {
    "rnn": {"hidden": 8},
    "lstm": {"hidden": 8},
    "gru": {"hidden": 8},
    "seq2seq": {"hidden": 8},
    "tdnn": {"delays": 4, "width": 8},
    "dnc": {"hidden": 8, "memory_size": 4, "word_size": 3},
}
DIM, CONTEXT = 3, 12


def small_model(name, exog_dim, key):
    return build_model(name, DIM, exog_dim, key=key, **SMALL[name])


def inputs(rng, exog_dim, horizon, batch=()):
    context = rng.standard_normal((*batch, CONTEXT, DIM)).astype(np.float32)
    exog = rng.standard_normal((*batch, CONTEXT + horizon, exog_dim)).astype(np.float32)
    return jnp.asarray(context), (jnp.asarray(exog) if exog_dim else None)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "dnc" else n for n in NAMES]
)  # dnc (20 s) in make test-slow; test_dnc.py checks it in make test
def test_shapes_vmap_and_gradients(name, getkey):
    """Forecast shapes, vmap and gradients (with exogenous inputs; without: next test)."""
    rng, exog_dim = np.random.default_rng(0), 2
    model = small_model(name, exog_dim, getkey())
    assert model.fit_kind == "gradient"
    horizons = (1, 7, 150)  # any horizon, including far longer than anything trained
    singles = [inputs(rng, exog_dim, h) for h in horizons]
    context, exog = inputs(rng, exog_dim, 5, batch=(4,))
    target = jnp.asarray(rng.standard_normal((4, 5, DIM)).astype(np.float32))

    def loss(model):
        forecast = jax.vmap(lambda c, x: model(c, x, horizon=5)[0])(context, exog)
        return jnp.mean((forecast - target) ** 2), forecast

    @eqx.filter_jit  # one compilation for every check below
    def run(model):
        forecasts = [model(c, x, horizon=h) for (c, x), h in zip(singles, horizons)]
        one = model(context[1], None if exog is None else exog[1], horizon=5)[0]
        grads, batched = eqx.filter_grad(loss, has_aux=True)(model)
        return forecasts, one, batched, grads

    forecasts, one, batched, grads = run(model)
    for (forecast, aux), horizon in zip(forecasts, horizons):
        assert forecast.shape == (horizon, DIM) and aux == {}
        assert np.all(np.isfinite(forecast))  # closed loop stays finite
    # A batch through jax.vmap, as train.fit calls it: the same numbers as one at a time.
    assert batched.shape == (4, 5, DIM)
    np.testing.assert_allclose(batched[1], one, rtol=1e-5, atol=1e-6)
    # Every parameter leaf receives a finite, nonzero gradient from a free-running loss.
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert len(leaves) == len(jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))
    for leaf in leaves:
        assert np.all(np.isfinite(leaf)) and np.any(leaf != 0)


@pytest.mark.parametrize("name", NAMES)
def test_exogenous_inputs_are_used_or_ignored(name, getkey):
    rng = np.random.default_rng(1)
    context, exog = inputs(rng, 2, 6)
    changed = exog.at[CONTEXT + 2 :].add(1.0)
    with_exog, without = small_model(name, 2, getkey()), small_model(name, 0, getkey())

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
    np.testing.assert_array_equal(before[:2], after[:2])  # causal: earlier steps unchanged
    np.testing.assert_array_equal(ignored, none)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_actionable_errors(name, getkey):
    model = small_model(name, 2, getkey())
    context = jnp.zeros((CONTEXT, DIM))
    with pytest.raises(DiffdynError, match="pass exog of shape"):
        model(context, None, horizon=3)
    with pytest.raises(DiffdynError, match=r"exog must have shape \[context \+ horizon, 2\]"):
        model(context, jnp.zeros((CONTEXT, 2)), horizon=3)
    with pytest.raises(DiffdynError, match="context must have shape"):
        model(jnp.zeros((CONTEXT, DIM + 1)), jnp.zeros((CONTEXT + 3, 2)), horizon=3)
    with pytest.raises(DiffdynError, match="horizon"):
        model(context, jnp.zeros((CONTEXT, 2)), horizon=0)


def test_tdnn_needs_a_context_as_long_as_its_delays(getkey):
    model = build_model("tdnn", 2, key=getkey(), delays=6)
    with pytest.raises(DiffdynError, match="at least 6 steps"):
        model(jnp.zeros((5, 2)), horizon=3)


def test_registry_entries(getkey):
    for name in NAMES:
        spec = model_spec(name)
        assert spec.description and "\n" not in spec.description
        config = TrainConfig.from_options(spec.training)  # the defaults are valid options
        assert config.context >= spec.defaults.get("delays", 1)
    assert model_spec("lstm").defaults == {"hidden": 64, "layers": 1}
    assert build_model("lstm", 2, key=getkey()).cell == "lstm"
    # The cell defines the entry: `--model lstm --param cell=gru` is refused, not a GRU.
    with pytest.raises(UnknownNameError, match="no hyperparameter 'cell'"):
        build_model("lstm", 2, key=getkey(), cell="gru")
    assert resolve_hyperparameters("gru", {"hidden": "16", "layers": "2"})["layers"] == 2
    stacked = build_model("gru", 2, key=getkey(), hidden=4, layers=3)
    assert len(stacked.cells) == 3
    with pytest.raises(UnknownNameError, match="Did you mean 'lstm'"):
        build_model("seq2seq", 2, key=getkey(), cell="lstn")


def sine_windows(context, n=64):
    t = 0.25 * np.arange(n + context + 1)
    wave = np.stack([np.sin(t), np.cos(t)], axis=1) / np.sqrt(0.5)  # standardised
    windows = np.stack([wave[i : i + context + 1] for i in range(n)]).astype(np.float32)
    return jnp.asarray(windows[:, :context]), jnp.asarray(windows[:, context:])


@pytest.mark.parametrize(  # one per class
    "name",
    [
        pytest.param("lstm", marks=pytest.mark.slow),
        pytest.param("seq2seq", marks=pytest.mark.slow),
        "tdnn",
    ],
)
def test_overfits_a_sine_wave_next_step(name, getkey):
    """A few hundred Adam steps fit the next step of a sine wave far better than at init."""
    context, target = sine_windows(16)
    model = build_model(name, 2, key=getkey(), **SMALL[name])

    def loss(model, batch, key):
        context, target = batch
        forecast = jax.vmap(lambda c: model(c, horizon=1)[0])(context)
        return jnp.mean((forecast - target) ** 2)

    def whole_set(key, step, progress):
        return context, target

    trained = train(model, loss, whole_set, optax.adam(1e-2), key=getkey(), steps=300,
                    progress=False).module  # fmt: skip
    before = float(eqx.filter_jit(loss)(model, (context, target), None))
    after = float(eqx.filter_jit(loss)(trained, (context, target), None))
    assert after < before / 10, (before, after)
