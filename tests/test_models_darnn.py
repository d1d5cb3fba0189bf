"""DA-RNN (Qin et al. 2017): shapes, alignments, exogenous inputs, gradients, training."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffdyn.errors import DiffdynError
from diffdyn.models import build_model, model_spec, resolve_hyperparameters
from diffdyn.models.darnn import DARNN
from diffdyn.train import train
from diffdyn.train.config import TrainConfig

DIM, CONTEXT = 3, 12
SMALL = {"encoder_hidden": 8, "decoder_hidden": 8, "context": CONTEXT}


def small_model(exog_dim, key, **overrides):
    return build_model("darnn", DIM, exog_dim, key=key, **{**SMALL, **overrides})


def inputs(rng, exog_dim, horizon, batch=(), dtype: type = np.float32):
    context = rng.standard_normal((*batch, CONTEXT, DIM)).astype(dtype)
    exog = rng.standard_normal((*batch, CONTEXT + horizon, exog_dim)).astype(dtype)
    return jnp.asarray(context), (jnp.asarray(exog) if exog_dim else None)


def assert_alignment(weights, shape):
    weights = np.asarray(weights)
    assert weights.shape == shape
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("exog_dim", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_shapes_alignments_and_vmap(exog_dim, getkey):
    rng = np.random.default_rng(0)
    model = small_model(exog_dim, getkey())
    assert model.fit_kind == "gradient" and model.has_attention
    horizons = (1, 7, 150)  # any horizon, including far longer than anything trained
    context, long_exog = inputs(rng, exog_dim, max(horizons))
    batch_context, batch_exog = inputs(rng, exog_dim, 5, batch=(4,))

    def exog_for(horizon):
        return None if long_exog is None else long_exog[: CONTEXT + horizon]

    @eqx.filter_jit  # one compilation for every check below
    def run(model):
        outputs = [model(context, exog_for(h), horizon=h) for h in horizons]
        one = model(batch_context[1], None if batch_exog is None else batch_exog[1], horizon=5)
        batched = jax.vmap(lambda c, x: model(c, x, horizon=5)[0])(batch_context, batch_exog)
        return outputs, one[0], batched

    outputs, one, batched = run(model)
    for (forecast, aux), horizon in zip(outputs, horizons):
        assert forecast.shape == (horizon, DIM)
        assert np.all(np.isfinite(forecast))  # closed loop stays finite
        assert set(aux) == {"attention", "input_attention"}
        assert_alignment(aux["attention"], (horizon, CONTEXT))
        assert_alignment(aux["input_attention"], (CONTEXT, DIM + exog_dim))
    # Closed loop is causal and horizon-independent: a longer rollout extends a shorter one.
    np.testing.assert_allclose(outputs[1][0], outputs[2][0][:7], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs[1][1]["attention"], outputs[2][1]["attention"][:7])
    # The alignments depend on the decoder state and the data, not a constant.
    assert np.ptp(np.asarray(outputs[2][1]["attention"]), axis=0).max() > 1e-4
    assert np.ptp(np.asarray(outputs[2][1]["input_attention"]), axis=0).max() > 1e-4
    # A batch through jax.vmap, as train.fit calls it: the same numbers as one at a time.
    assert batched.shape == (4, 5, DIM)
    np.testing.assert_allclose(batched[1], one, rtol=1e-5, atol=1e-6)


def test_gradients_reach_every_parameter(getkey):
    """A free-running loss over a batch gives every parameter a finite, nonzero gradient."""
    rng = np.random.default_rng(3)
    model = small_model(2, getkey())  # with exog: every parameter array exists
    context, exog = inputs(rng, 2, 5, batch=(4,))
    target = jnp.asarray(rng.standard_normal((4, 5, DIM)).astype(np.float32))

    @eqx.filter_jit
    @eqx.filter_grad
    def grads(model):
        forecast = jax.vmap(lambda c, x: model(c, x, horizon=5)[0])(context, exog)
        return jnp.mean((forecast - target) ** 2)

    leaves = jax.tree_util.tree_leaves(eqx.filter(grads(model), eqx.is_inexact_array))
    assert len(leaves) == len(jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))
    for leaf in leaves:
        assert np.all(np.isfinite(leaf)) and np.any(leaf != 0)


def test_exogenous_inputs_are_used_or_ignored(getkey):
    rng = np.random.default_rng(1)
    context, exog = inputs(rng, 2, 6)
    assert exog is not None
    later = exog.at[CONTEXT + 2 :].add(1.0)  # inputs of the horizon from step 2 on
    earlier = exog.at[: CONTEXT // 2, 1].add(1.0)  # a driving series of the encoder
    with_exog, without = small_model(2, getkey()), small_model(0, getkey())

    @eqx.filter_jit
    def run(with_exog, without):
        return (
            with_exog(context, exog, horizon=6),
            with_exog(context, later, horizon=6),
            with_exog(context, earlier, horizon=6),
            without(context, exog, horizon=6)[0],
            without(context, None, horizon=6)[0],
        )

    (before, aux), (after, _), (encoded, aux_encoded), ignored, none = run(with_exog, without)
    assert not np.allclose(before, after)  # the forcing known in advance shapes the forecast
    np.testing.assert_array_equal(before[:2], after[:2])  # causal: earlier steps unchanged
    # Exogenous series drive the encoder through the input attention.
    assert not np.allclose(before, encoded)
    assert not np.allclose(aux["input_attention"], aux_encoded["input_attention"])
    np.testing.assert_array_equal(ignored, none)


def test_bad_inputs_raise_actionable_errors(getkey):
    model = small_model(2, getkey())
    with pytest.raises(
        DiffdynError, match=r"built for a context of 12 steps; got 20;.*context=20"
    ):
        model(jnp.zeros((20, DIM)), jnp.zeros((23, 2)), horizon=3)
    with pytest.raises(DiffdynError, match="pass exog of shape"):
        model(jnp.zeros((CONTEXT, DIM)), None, horizon=3)
    with pytest.raises(DiffdynError, match="context must have shape"):
        model(jnp.zeros((CONTEXT, DIM + 1)), jnp.zeros((CONTEXT + 3, 2)), horizon=3)
    for option in ("encoder_hidden", "decoder_hidden", "context"):
        with pytest.raises(DiffdynError, match=f"{option} must be a positive"):
            small_model(0, getkey(), **{option: 0})


def test_registry_entry():
    spec = model_spec("darnn")
    assert spec.cls is DARNN and spec.description and "\n" not in spec.description
    assert spec.defaults == {"encoder_hidden": 32, "decoder_hidden": 32, "context": 32}
    # The default training window is the one the default model is built for.
    assert TrainConfig.from_options(spec.training).context == spec.defaults["context"]
    assert resolve_hyperparameters("darnn", {"context": "20"})["context"] == 20  # --param


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_gradient_matches_finite_differences(x64, getkey):
    """Reverse-mode gradient of a free-running loss against central differences (float64)."""
    rng = np.random.default_rng(2)
    params, static = eqx.partition(small_model(2, getkey()), eqx.is_inexact_array)
    # Every parameter in one float64 vector (built in NumPy: no per-shape JAX kernels).
    leaves, treedef = jax.tree_util.tree_flatten(params)
    flat = np.concatenate([np.asarray(leaf, np.float64).ravel() for leaf in leaves])
    sizes = [leaf.size for leaf in leaves]
    starts = np.cumsum([0, *sizes[:-1]])
    context, exog = inputs(rng, 2, 4, dtype=np.float64)
    target = jnp.asarray(rng.standard_normal((4, DIM)))

    def loss(flat):
        pieces = [flat[s : s + leaf.size].reshape(leaf.shape) for s, leaf in zip(starts, leaves)]
        model = eqx.combine(jax.tree_util.tree_unflatten(treedef, pieces), static)
        forecast, aux = model(context, exog, horizon=4)
        assert forecast.dtype == jnp.float64
        # The alignments enter too, so their gradient paths are checked on their own.
        shaped = jnp.sum(aux["attention"][:, ::3]) + jnp.sum(aux["input_attention"][::2, 0])
        return jnp.sum((forecast - target) ** 2) + 0.1 * shaped

    # One entry of every parameter array (attention scores, both LSTMs, both linear layers).
    indices = np.array([s + rng.integers(n) for s, n in zip(starts, sizes)])
    eps = 1e-6
    steps = np.zeros((len(indices), flat.size))
    steps[np.arange(len(indices)), indices] = eps
    perturbed = np.concatenate([flat[None, :] + steps, flat[None, :] - steps])
    grad, values = jax.jit(lambda f, p: (jax.grad(loss)(f), jax.vmap(loss)(p)))(
        jnp.asarray(flat), jnp.asarray(perturbed)
    )
    numeric = (values[: len(indices)] - values[len(indices) :]) / (2 * eps)
    np.testing.assert_allclose(np.asarray(grad)[indices], numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_overfits_a_sine_wave_next_step(getkey):
    """A few hundred Adam steps fit the next step of a sine wave far better than at init."""
    t = 0.25 * np.arange(64 + CONTEXT + 1)
    wave = np.stack([np.sin(t), np.cos(t), np.sin(2 * t)], axis=1) / np.sqrt(0.5)  # standardised
    windows = np.stack([wave[i : i + CONTEXT + 1] for i in range(64)]).astype(np.float32)
    context, target = jnp.asarray(windows[:, :CONTEXT]), jnp.asarray(windows[:, CONTEXT:])
    model = small_model(0, getkey())

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


def test_training_context_and_model_context_follow_each_other(tmp_path):
    """`--context N` alone sets DA-RNN's context; `--param context=N` alone sets the training
    window; both must agree."""
    from diffdyn.train import check_train_request

    hyper, config = check_train_request("darnn", tmp_path / "a", options={"context": 50})
    assert hyper["context"] == 50 and config.context == 50
    hyper, config = check_train_request("darnn", tmp_path / "b", hyperparameters={"context": "20"})
    assert hyper["context"] == 20 and config.context == 20
    hyper, config = check_train_request("darnn", tmp_path / "c")
    assert hyper["context"] == config.context == 32
    with pytest.raises(DiffdynError, match="disagree"):
        check_train_request(
            "darnn", tmp_path / "d", hyperparameters={"context": 20}, options={"context": 50}
        )
