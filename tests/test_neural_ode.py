"""The `neural-ode` forecaster: the model contract, real time, gradients, training, checkpoints."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from conftest import assert_gradient_matches_fd, to_float64
from diffdyn.data import Series
from diffdyn.errors import DiffdynError, UnknownNameError
from diffdyn.models import NeuralODE, build_model, model_spec
from diffdyn.train import checkpoint
from diffdyn.train.data_source import DataSource
from diffdyn.train.training import train_forecaster

SMALL = {"width": 8, "depth": 1, "augment": 0, "lags": 0}


def field_arrays(model):
    """The vector field's arrays: the MLP's weights, the encoder's and the rate."""
    return eqx.filter(model, eqx.is_inexact_array)


# In make test-slow: one of the longest of the default suite (make test stays under 8 min).
@pytest.mark.slow
def test_shapes_vmap_exog_and_gradients(getkey):
    rng = np.random.default_rng(0)
    model = build_model(
        "neural-ode", 3, 2, dt=0.1, key=getkey(), **SMALL | {"augment": 2, "lags": 3}
    )
    assert model.fit_kind == "gradient" and model.dt == 0.1
    # An untrained encoder is zero: a(0) = 0, as in Dupont et al.; give it weights to test it.
    model = eqx.tree_at(lambda m: m.encoder.weight, model, jnp.ones((2, 9)) * 0.3)
    context = jnp.asarray(rng.standard_normal((12, 3)), jnp.float32)
    exog = jnp.asarray(rng.standard_normal((12 + 150, 2)), jnp.float32)
    # One example and four changed copies: the inputs after the last observed row, the inputs
    # before it, the context rows the encoder reads (the last 3) and the rows before them.
    contexts = jnp.stack([context, context, context, context.at[-3].add(1.0),
                          context.at[:-3].add(1.0)])  # fmt: skip
    exogs = jnp.stack([exog[:17], exog[:17].at[12:].add(1.0), exog[:17].at[:11].add(1.0),
                       exog[:17], exog[:17]])  # fmt: skip
    target = jnp.asarray(rng.standard_normal((5, 5, 3)), jnp.float32)

    def loss(model):
        forecast = jax.vmap(lambda c, x: model(c, x, horizon=5)[0])(contexts, exogs)
        return jnp.mean((forecast - target) ** 2), forecast

    @eqx.filter_jit
    def run(model):
        forecasts = [model(context, exog[: 12 + h], horizon=h) for h in (1, 150)]
        one = model(contexts[0], exogs[0], horizon=5)[0]
        grads, batched = eqx.filter_grad(loss, has_aux=True)(model)
        return forecasts, one, batched, grads

    forecasts, one, batched, grads = run(model)
    for (forecast, aux), horizon in zip(forecasts, (1, 150)):
        assert forecast.shape == (horizon, 3) and aux == {}
        assert np.all(np.isfinite(forecast))
    # a batch through jax.vmap, as train.fit calls it: the same numbers as one at a time
    np.testing.assert_allclose(batched[0], one, rtol=1e-5, atol=1e-6)
    later, earlier, lag, old = batched[1:]
    assert not np.allclose(later, one) and np.allclose(earlier, one, rtol=1e-6, atol=1e-7)
    assert not np.allclose(lag, one) and np.allclose(old, one, rtol=1e-6, atol=1e-7)
    leaves = jax.tree_util.tree_leaves(grads)
    assert len(leaves) == len(jax.tree_util.tree_leaves(field_arrays(model)))
    for leaf in leaves:
        assert np.all(np.isfinite(leaf)) and np.any(leaf != 0)


def _mlp_field(model):
    """The model's vector field as a NumPy function of the state (no exogenous inputs)."""
    layers = [
        (np.asarray(layer.weight), np.asarray(layer.bias)) for layer in model.vector_field.layers
    ]
    rate = float(np.exp(model.log_rate))

    def f(t, z):
        for i, (w, b) in enumerate(layers):
            z = w @ z + b
            if i < len(layers) - 1:
                z = np.tanh(z)
        return rate * z

    return f


@pytest.mark.parametrize(
    "settings",
    [
        {"solver": "rk4", "substeps": 4},
        {"solver": "tsit5", "rtol": 1e-9, "atol": 1e-9, "max_steps": 64},
    ],
)
def test_forecasts_are_the_ode_solution_at_the_sampling_times(settings, x64, getkey):
    """Row k of a forecast is z((k + 1)·dt) of dz/dt = f(z), as SciPy solves it, for any dt."""
    dt, horizon = 0.3, 12
    model = to_float64(build_model("neural-ode", 2, dt=dt, key=getkey(), **SMALL, **settings))
    context = jnp.asarray([[0.0, 0.0], [0.4, -0.7]])
    forecast, _ = model(context, horizon=horizon)
    times = dt * np.arange(1, horizon + 1)
    exact = solve_ivp(
        _mlp_field(model), (0, times[-1]), [0.4, -0.7], t_eval=times, rtol=1e-11, atol=1e-11
    ).y.T
    assert np.abs(exact - exact[0]).max() > 0.5  # the state moves: the check means something
    tolerance = 1e-4 if settings["solver"] == "rk4" else 1e-7
    np.testing.assert_allclose(forecast, exact, atol=tolerance)


def test_a_model_built_for_another_dt_integrates_over_real_time(getkey):
    """The same vector field sampled every 0.05 instead of every 0.1: every second row of the
    finer forecast is the coarser one, and the rate starts at 1/dt either way."""
    coarse = build_model("neural-ode", 3, dt=0.1, key=getkey(), substeps=4, **SMALL)
    fine = build_model("neural-ode", 3, dt=0.05, key=getkey(), substeps=2, **SMALL)
    np.testing.assert_allclose(np.exp(coarse.log_rate), 10.0, rtol=1e-6)
    np.testing.assert_allclose(np.exp(fine.log_rate), 20.0, rtol=1e-6)
    fine = eqx.tree_at(
        lambda m: (m.vector_field, m.log_rate), fine, (coarse.vector_field, coarse.log_rate)
    )
    context = jnp.asarray(np.random.default_rng(2).standard_normal((5, 3)), jnp.float32)
    coarse_forecast, _ = eqx.filter_jit(coarse)(context, horizon=10)
    fine_forecast, _ = eqx.filter_jit(fine)(context, horizon=20)
    assert np.abs(np.diff(coarse_forecast, axis=0)).max() > 1e-2
    np.testing.assert_allclose(fine_forecast[1::2], coarse_forecast, rtol=1e-4, atol=1e-5)

    # The closed loop as a map on the ODE state, one sampling step at a time (the analysis's
    # view), reproduces the forecast.
    def advance(z, _):
        z = coarse.step(z)
        return z, z

    _, states = jax.lax.scan(advance, coarse.initial_state(context), length=10)
    np.testing.assert_allclose(states, coarse_forecast, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "settings",
    [
        {"solver": "rk4", "substeps": 2},
        # Diffrax's adaptive Dopri5 through RecursiveCheckpointAdjoint, tolerances tight enough
        # that the step sizes the controller picks do not move the finite differences; its
        # compiling takes 10-15 s on 2 busy cores (make test-slow)
        pytest.param(
            {"solver": "dopri5", "rtol": 1e-12, "atol": 1e-12, "max_steps": 256},
            marks=pytest.mark.slow,
        ),
    ],
    ids=["rk4", "dopri5-recursive-checkpoint"],
)
def test_rollout_gradient_matches_finite_differences(settings, x64, getkey):
    model = build_model(
        "neural-ode", 2, 1, dt=0.2, key=getkey(), **SMALL | {"augment": 1, "lags": 2}, **settings
    )
    model = eqx.tree_at(lambda m: m.encoder.weight, model, jnp.full((1, 4), 0.2))
    model = to_float64(model)
    rng = np.random.default_rng(3)
    context = jnp.asarray(rng.standard_normal((4, 2)))
    exog = jnp.asarray(rng.standard_normal((4 + 6, 1)))
    target = jnp.asarray(rng.standard_normal((6, 2)))
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss(params):
        forecast, _ = eqx.combine(params, static)(context, exog, horizon=6)
        return jnp.mean((forecast - target) ** 2)

    assert_gradient_matches_fd(loss, params, rng, n=10, rtol=1e-5, atol=1e-9)


@pytest.mark.slow  # another adaptive solve to compile (5-10 s)
def test_an_adaptive_solve_that_runs_out_of_steps_is_not_finite(getkey):
    model = build_model(
        "neural-ode",
        2,
        dt=1.0,
        key=getkey(),
        **SMALL,
        solver="dopri5",
        rtol=1e-9,
        atol=1e-9,
        max_steps=1,
    )
    forecast, _ = model(jnp.ones((3, 2)), horizon=5)
    assert not np.any(np.isfinite(forecast))


# In make test-slow: one of the longest of the default suite (make test stays under 8 min).
@pytest.mark.slow
def test_training_through_the_core_lowers_the_loss_and_survives_a_checkpoint(tmp_path, getkey):
    """A damped oscillator: `train` (the one core, through the pipeline) learns its field, and
    the saved model is rebuilt with the same settings, `dt` included, and the same weights."""
    t = 0.1 * np.arange(400)
    values = np.stack([np.exp(-0.05 * t) * np.cos(t), -np.exp(-0.05 * t) * np.sin(t)], axis=1)
    series = Series(values.astype(np.float32), t, ("a", "b"), dt=0.1)
    hyperparameters = {"width": 16, "depth": 1, "augment": 1, "lags": 2, "substeps": 2}
    options = {"context": 4, "horizon": 8, "strategy": "free", "epochs": 12, "batch_size": 32,
               "learning_rate": 1e-2}  # fmt: skip
    trained, result = train_forecaster(
        series, DataSource.of_series(series), "neural-ode", tmp_path / "m",
        hyperparameters=hyperparameters, options=options, progress=False,
    )  # fmt: skip
    history = result.history
    assert result.steps >= 100 and history[-1].loss < 0.1 * history[0].loss
    assert min(h.val_loss for h in history) < 0.1 * history[0].val_loss

    loaded, sidecar = checkpoint.load_model(tmp_path / "m")
    assert sidecar["model"] == "neural-ode" and sidecar["dt"] == 0.1
    assert isinstance(loaded, NeuralODE)
    assert (loaded.dt, loaded.augment, loaded.lags, loaded.substeps) == (0.1, 1, 2, 2)
    context = jnp.asarray(values[:10], jnp.float32)
    np.testing.assert_array_equal(loaded(context, horizon=9)[0], trained(context, horizon=9)[0])


@pytest.mark.parametrize(
    "hyperparameters, error, words",
    [
        ({"solver": "euler"}, UnknownNameError, "choose one of rk4, tsit5, dopri5"),
        ({"augment": 0, "lags": 4}, DiffdynError, "augment is 0"),
        ({"width": 0}, DiffdynError, "width must be a positive"),
        ({"substeps": 0}, DiffdynError, "substeps must be a positive"),
        ({"solver": "dopri5", "rtol": 0.0}, DiffdynError, "must be positive"),
    ],
)
def test_bad_hyperparameters_are_one_sentence(hyperparameters, error, words):
    with pytest.raises(error, match=words):
        build_model("neural-ode", 2, key=jax.random.key(0), **hyperparameters)


def test_a_context_shorter_than_the_lags_is_refused(getkey):
    model = build_model("neural-ode", 2, key=getkey(), **SMALL | {"augment": 2, "lags": 5})
    with pytest.raises(DiffdynError, match="at least 5 steps"):
        model(jnp.zeros((4, 2)), horizon=3)


def test_registry_entry():
    spec = model_spec("neural-ode")
    assert spec.cls is NeuralODE and "Chen et al. 2018" in spec.description
    assert set(spec.defaults) == {
        "width", "depth", "augment", "lags", "solver", "substeps", "rtol", "atol", "max_steps"
    }  # fmt: skip
