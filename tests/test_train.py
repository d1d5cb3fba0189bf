"""The training engine, checkpoints and the train/evaluate/forecast pipeline, on a tiny model."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffdyn.errors import DiffdynError
from diffdyn.models import AbstractForecaster, ModelSpec, register_model
from diffdyn.systems import get_system, simulate
from diffdyn.train import (
    CheckpointError,
    DataSource,
    Evaluation,
    Forecast,
    ForecastDivergedError,
    Forecaster,
    TrainConfig,
    TrainingError,
    TrainResult,
    evaluate_model,
    fit,
    forecast_model,
    load_data,
    load_model,
    train_model,
)


class LinearStep(AbstractForecaster):
    """y_{t+1} = y_t + A y_t + b: small enough to train in a blink, rich enough to learn."""

    name: ClassVar[str] = "test-linear"
    a: jax.Array
    b: jax.Array
    blow_up: bool = eqx.field(static=True, default=False)

    def __init__(self, dim, exog_dim=0, *, key, blow_up=False):
        self.a = 0.01 * jax.random.normal(key, (dim, dim))
        self.b = jnp.zeros(dim)
        self.blow_up = blow_up

    def __call__(self, context, exog=None, *, horizon, key=None):
        def step(y, _):
            y_next = y + self.a @ y + self.b
            if self.blow_up:
                y_next = y_next * jnp.inf * jnp.sum(self.a)
            return y_next, y_next

        _, out = jax.lax.scan(step, context[-1], None, length=horizon)
        return out, {}


register_model(
    ModelSpec(
        "test-linear",
        LinearStep,
        {"blow_up": False},
        "a linear one-step model for the tests",
        training={"context": 4, "horizon": 5, "epochs": 6, "batch_size": 32, "patience": 0},
    )
)


class Diverging(AbstractForecaster):
    """Persistence for `after` steps, then NaN: a closed-loop forecast that blows up."""

    name: ClassVar[str] = "test-diverging"
    fit_kind: ClassVar[str] = "none"
    after: int = eqx.field(static=True)

    def __init__(self, dim, exog_dim=0, *, key, after=5):
        self.after = after

    def __call__(self, context, exog=None, *, horizon, key=None):
        steps = jnp.arange(1, horizon + 1)[:, None]
        last = jnp.broadcast_to(context[-1], (horizon, context.shape[1]))
        return jnp.where(steps > self.after, jnp.nan, last), {}


register_model(
    ModelSpec(
        "test-diverging",
        Diverging,
        {"after": 5},
        "persistence that goes NaN after `after` steps, for the tests",
        training={"context": 4, "horizon": 5},
    )
)


def rotation_series(n=400):
    theta = 0.1
    t = np.arange(n)
    values = np.stack([np.cos(theta * t), np.sin(theta * t)], axis=1)
    return values


@pytest.mark.parametrize("strategy", ["teacher", "free", "curriculum"])
def test_fit_learns_a_rotation(strategy, getkey):
    values = jnp.asarray(rotation_series())
    model = LinearStep(2, key=getkey())
    config = TrainConfig(context=4, horizon=5, strategy=strategy, epochs=30, learning_rate=1e-2)
    outcome = fit(model, values, None, config, key=getkey(), progress=False)
    first, last = outcome.history[0].val_loss, outcome.best_val
    assert last < first / 10
    assert len(outcome.history) == 30 and outcome.finished


def test_resumed_training_matches_uninterrupted(getkey, tmp_path):
    values = jnp.asarray(rotation_series())
    config = TrainConfig(context=4, horizon=5, epochs=6, learning_rate=1e-2, patience=0)
    key, init = getkey(), getkey()
    full = fit(LinearStep(2, key=init), values, None, config, key=key, progress=False)

    class Interrupted(Exception):
        pass

    def interrupt_after_three(state):
        if len(state.history) == 3:
            raise Interrupted  # as Ctrl-C would, after the epoch's checkpoint was written

    with pytest.raises(Interrupted):
        fit(LinearStep(2, key=init), values, None, config, key=key, progress=False,
            checkpoint=tmp_path, on_validation=interrupt_after_three)  # fmt: skip
    resumed = fit(LinearStep(2, key=init), values, None, config, key=key, progress=False,
                  checkpoint=tmp_path, resume=True)  # fmt: skip
    np.testing.assert_array_equal(resumed.module.a, full.module.a)
    assert [h.val_loss for h in resumed.history] == [h.val_loss for h in full.history]


def test_nan_guard_stops_with_a_clear_error(getkey):
    values = jnp.asarray(rotation_series())
    model = LinearStep(2, key=getkey(), blow_up=True)
    config = TrainConfig(context=4, horizon=5, epochs=3, max_failures=3)
    with pytest.raises(TrainingError, match="diverged"):
        fit(model, values, None, config, key=getkey(), progress=False)


def test_budget_stops_training(getkey):
    values = jnp.asarray(rotation_series())
    config = TrainConfig(context=4, horizon=5, epochs=1000, patience=0)
    outcome = fit(
        LinearStep(2, key=getkey()), values, None, config, key=getkey(), budget=0.5, progress=False
    )
    assert "budget" in outcome.stop_reason and not outcome.finished
    assert outcome.steps < 1000


def test_pipeline_train_evaluate_forecast_and_resume(tmp_path):
    series, source = load_data(system="henon", steps=600)
    folder = tmp_path / "m"
    result = train_model(series, source, "test-linear", folder, progress=False)
    assert (folder / "model.json").exists() and not (folder / "resume").exists()
    model, sidecar = load_model(folder)
    assert sidecar["variables"] == ["x", "y"] and sidecar["model"] == "test-linear"
    assert result.parameters == 6
    assert isinstance(result, TrainResult) and result.folder == folder and result.finished
    assert result.sidecar["parameters"] == 6 and result.to_json()["parameters"] == 6
    fresh, fresh_source = load_data(system="henon", steps=400, fresh=True)
    assert not np.allclose(fresh.values[:10], series.values[:10])
    scores = evaluate_model(folder, fresh, fresh_source, threshold=0.5)
    assert isinstance(scores, Evaluation)
    assert scores.start_points >= 20 and scores.vpt.unit == "Lyapunov times"
    assert set(scores.to_json()) >= {"nrmse", "smape", "vpt"}
    assert scores.diverged_at == (None,) * scores.start_points and scores.note == ""
    assert scores.forecasts.shape == (scores.start_points, scores.horizon, 2)
    predicted = forecast_model(folder, fresh, 7)
    assert isinstance(predicted, Forecast)
    forecast, truth = predicted.forecast, predicted.truth
    assert forecast.values.shape == (7, 2) and truth is None
    assert forecast.times[0] == pytest.approx(float(fresh.times[-1]) + 1)
    # An existing folder is refused unless forced.
    with pytest.raises(DiffdynError, match="--force"):
        train_model(series, source, "test-linear", folder, progress=False)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train_model(series, source, "test-linear", folder, resume=True, progress=False)


def test_checkpoint_problems_are_clear(tmp_path):
    series, source = load_data(system="henon", steps=300)
    folder = tmp_path / "m"
    train_model(series, source, "test-linear", folder, progress=False)
    data = (folder / "model.eqx").read_bytes()
    (folder / "model.eqx").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(folder)
    text = (folder / "model.json").read_text().replace('"format": 1', '"format": 99')
    (folder / "model.json").write_text(text)
    with pytest.raises(CheckpointError, match="format"):
        load_model(folder)
    with pytest.raises(CheckpointError, match="no model folder"):
        load_model(tmp_path / "nowhere")


def test_schema_mismatch_names_the_variables(tmp_path):
    series, source = load_data(system="henon", steps=300)
    train_model(series, source, "test-linear", tmp_path / "m", progress=False)
    other = simulate(get_system("logistic"), steps=300)
    with pytest.raises(DiffdynError, match="lack variable"):
        evaluate_model(tmp_path / "m", other, DataSource.of_series(other))


def test_interrupted_training_resumes_to_the_same_model(tmp_path, monkeypatch):
    from diffdyn.train import loop

    series, source = load_data(system="henon", steps=400)
    train_model(series, source, "test-linear", tmp_path / "full", progress=False)

    original = loop._save_state

    def save_then_die(folder, state, meta):
        original(folder, state, meta)
        if len(state.history) == 3:
            raise KeyboardInterrupt  # killed right after the epoch-3 checkpoint

    monkeypatch.setattr(loop, "_save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_model(series, source, "test-linear", tmp_path / "cut", progress=False)
    assert not (tmp_path / "cut" / "model.json").exists()
    with pytest.raises(CheckpointError, match="--resume"):
        load_model(tmp_path / "cut")
    monkeypatch.setattr(loop, "_save_state", original)
    train_model(series, source, "test-linear", tmp_path / "cut", resume=True, progress=False)
    full, _ = load_model(tmp_path / "full")
    resumed, sidecar = load_model(tmp_path / "cut")
    np.testing.assert_array_equal(full.a, resumed.a)
    assert len(sidecar["history"]) == 6


DEVICES_SCRIPT = """
import sys
from diffdyn.train.devices import use_devices
use_devices(2)
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, {tests!r})
from test_train import rotation_series
from diffdyn.models import build_model
from diffdyn.train import TrainConfig, fit
values = jnp.asarray(rotation_series(300))
config = TrainConfig(context=8, horizon=5, epochs=2, batch_size=32, learning_rate=1e-2)
runs = []
for devices in (1, 2):
    model = build_model("lstm", 2, key=jax.random.key(0), hidden=8)
    runs.append(fit(model, values, None, config, key=jax.random.key(1), devices=devices,
                    progress=False))
one, two = runs
assert len(jax.local_devices()) == 2
assert one.steps == two.steps > 0
np.testing.assert_allclose([h.val_loss for h in one.history],
                           [h.val_loss for h in two.history], rtol=1e-5)
for a, b in zip(jax.tree_util.tree_leaves(one.module), jax.tree_util.tree_leaves(two.module)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
print("agree")
"""


def test_two_host_devices_give_the_same_training_as_one():
    import subprocess
    import sys
    from pathlib import Path

    script = DEVICES_SCRIPT.format(tests=str(Path(__file__).parent))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "agree" in done.stdout


def test_more_devices_than_there_are_is_refused():
    from diffdyn.train.loop import _mesh_shardings

    with pytest.raises(DiffdynError, match="local device"):
        _mesh_shardings(64)


def test_a_diverging_forecast_is_an_error_and_evaluation_names_its_step(tmp_path):
    series, source = load_data(system="henon", steps=300)
    train_model(series, source, "test-diverging", tmp_path / "m", progress=False)
    with pytest.raises(ForecastDivergedError, match="non-finite at step 6 of 20") as caught:
        forecast_model(tmp_path / "m", series, 20)
    assert caught.value.step == 6 and "--steps" in str(caught.value)
    assert forecast_model(tmp_path / "m", series, 5).forecast.values.shape == (5, 2)
    fresh, fresh_source = load_data(system="henon", steps=300, fresh=True)
    scores = evaluate_model(tmp_path / "m", fresh, fresh_source, horizon=10, starts=8)
    assert scores.diverged_at == (6,) * 8 and scores.first_divergence == 6
    assert scores.note == "8 of 8 forecasts went non-finite, the first at step 6 (t = 6)"
    assert scores.to_json()["diverged_at"] == [6] * 8
    assert np.isfinite(scores.vpt.mean) and scores.example(0).diverged_at == 6


def test_forecaster_fits_forecasts_evaluates_saves_and_loads(tmp_path):
    series = simulate(get_system("henon"), steps=600)
    train, test = series.slice(0, 400), series.slice(400, None)
    model = Forecaster("test-linear")
    with pytest.raises(DiffdynError, match="not fitted"):
        model.forecast(test, 5)
    fitted = model.fit(train, epochs=2)
    assert isinstance(fitted, TrainResult) and fitted.folder is None
    assert fitted.parameters == 6 and len(fitted.history) == 2 and fitted.data.kind == "series"
    predicted = model.forecast(test, 7)
    assert predicted.forecast.values.shape == (7, 2) and predicted.context.values.shape == (4, 2)
    assert predicted.forecast.times[0] == pytest.approx(float(test.times[-1]) + 1)
    scores = model.evaluate(test, starts=10)
    assert scores.start_points == 10 and not scores.in_sample
    assert model.evaluate(train, starts=10).in_sample  # the training data: noted as in-sample
    assert "in-sample" in model.evaluate(train, starts=10).note
    folder = model.save(tmp_path / "m")
    assert model.result is not None and model.result.folder == folder
    again = Forecaster.load(folder)
    np.testing.assert_allclose(again.forecast(test, 7).forecast.values, predicted.forecast.values)
    # The saved folder is what the commands read.
    assert evaluate_model(folder, *load_data(system="henon", steps=300, fresh=True)).horizon > 0
    with pytest.raises(DiffdynError, match="no hyperparameter"):
        Forecaster("test-linear", blowup=True)
    with pytest.raises(DiffdynError, match="--force"):
        model.save(folder)
