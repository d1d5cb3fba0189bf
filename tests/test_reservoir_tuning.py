"""The ridge readout differentiated implicitly, and reservoirs tuned by gradient through it."""

import io
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_gradient_matches_fd
from diffdyn.data import Series
from diffdyn.errors import DiffdynError
from diffdyn.models import ESN, NGRC, build_model
from diffdyn.nn.ridge import cross_validated_forecasts, held_out_forecasts, ridge_regression
from diffdyn.train import DataSource, ReservoirTuning, checkpoint, tune_reservoir
from diffdyn.train.reservoir_tuning import (
    TUNING_RANGES,
    ReservoirHyperparameters,
    fit_reservoir,
    start_points,
    tunes_by_default,
    tuning_loss,
)
from diffdyn.train.training import train_forecaster


def _regression_problem(seed=0, n=30, p=5, d=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    x[:, 0] = 1.0  # the unpenalised constant
    y = x @ rng.normal(size=(p, d)) + 0.3 * rng.normal(size=(n, d))
    weights = rng.normal(size=(p, d))
    return jnp.asarray(x), jnp.asarray(y), jnp.asarray(weights)


def _normal_equations(x, y, alpha):
    # the directly differentiated computation: solve (XᵀX + αP) W = XᵀY, autodiff through it
    penalty = jnp.eye(x.shape[1]).at[0, 0].set(0.0)
    return jnp.linalg.solve(x.T @ x + alpha * penalty, x.T @ y)


@pytest.mark.parametrize("alpha", [1e-3, 0.7])
def test_implicit_ridge_gradients_equal_direct_autodiff(x64, alpha):
    x, y, probe = _regression_problem()

    def loss(solve, x, y, a):
        return jnp.sum(probe * solve(x, y, a)) + jnp.sum(solve(x, y, a) ** 2)

    implicit = jax.grad(
        lambda x, y, a: loss(lambda *args: ridge_regression(*args, unpenalised=[0]), x, y, a),
        argnums=(0, 1, 2),
    )(x, y, alpha)
    through_qr = jax.grad(
        lambda x, y, a: loss(
            lambda *args: ridge_regression(*args, unpenalised=[0], implicit=False), x, y, a
        ),
        argnums=(0, 1, 2),
    )(x, y, alpha)
    direct = jax.grad(lambda x, y, a: loss(_normal_equations, x, y, a), argnums=(0, 1, 2))(
        x, y, alpha
    )
    for ours, qr, reference in zip(implicit, through_qr, direct):
        assert np.all(np.isfinite(ours))
        np.testing.assert_allclose(ours, reference, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(qr, reference, rtol=1e-8, atol=1e-10)


def test_implicit_ridge_gradients_match_finite_differences(x64):
    x, y, probe = _regression_problem(seed=1)
    params = {"x": x, "y": y, "log_alpha": jnp.log(0.05)}

    def loss(params):
        weights = ridge_regression(
            params["x"], params["y"], jnp.exp(params["log_alpha"]), unpenalised=[0]
        )
        return jnp.sum(probe * weights) + 0.5 * jnp.sum(weights**2)

    assert_gradient_matches_fd(loss, params, np.random.default_rng(0), n=12)
    # α alone, where every entry counts
    assert_gradient_matches_fd(
        lambda a: loss({"x": x, "y": y, "log_alpha": a}), jnp.log(0.05), np.random.default_rng(1)
    )


def test_implicit_ridge_forward_is_unchanged():
    x, y, _ = _regression_problem(seed=2)
    np.testing.assert_array_equal(
        ridge_regression(x, y, 0.1, unpenalised=[0]),
        ridge_regression(x, y, 0.1, unpenalised=[0], implicit=False),
    )


def _series(steps=260, seed=0):
    t = np.arange(steps) * 0.1
    rng = np.random.default_rng(seed)
    values = np.stack([np.sin(t) + 0.3 * np.sin(2.3 * t), np.cos(1.3 * t)], axis=1)
    return jnp.asarray(values + 0.01 * rng.normal(size=values.shape), jnp.float32)


def test_cross_validated_forecasts_leave_each_fold_out():
    # a readout fitted on rows that include a fold's forecast window would forecast it with the
    # rows it saw; here each fold's rows are zeroed in its fit, so perturbing those rows'
    # targets does not change that fold's forecasts
    model = NGRC(2, ridge=1e-4)
    values = _series()
    design, targets, next_values, closed_loop = model.regression(values)
    forecasts, truths, spread = cross_validated_forecasts(
        design, targets, next_values, closed_loop, 1e-4, folds=3, starts=9
    )
    assert forecasts.shape == truths.shape and forecasts.shape[0] == 9
    assert spread.shape == (2,) and np.all(np.asarray(spread) > 0)
    horizon = forecasts.shape[1]
    points = np.linspace(0, design.shape[0] - horizon, 9).round().astype(int)
    np.testing.assert_array_equal(truths, next_values[points[:, None] + np.arange(horizon)])
    first_fold = slice(points[0], points[2] + horizon)
    changed = targets.at[first_fold].add(5.0)
    again, _, _ = cross_validated_forecasts(
        design, changed, next_values, closed_loop, 1e-4, folds=3, starts=9
    )
    np.testing.assert_allclose(again[:3], forecasts[:3], rtol=1e-4, atol=1e-5)
    assert not np.allclose(again[3:], forecasts[3:], atol=1e-3)  # the others fitted those rows
    with pytest.raises(DiffdynError, match="needs at least 40 regression rows"):
        cross_validated_forecasts(
            design[:20], targets[:20], next_values[:20], closed_loop, 1e-4, folds=10
        )


def test_held_out_forecasts_fit_only_the_rows_before_the_held_out_ones():
    model = NGRC(2, ridge=1e-4)
    design, targets, next_values, closed_loop = model.regression(_series())
    fit_rows = 180
    forecasts, truths, spread = held_out_forecasts(
        design, targets, next_values, closed_loop, 1e-4, fit_rows=fit_rows
    )
    rows, horizon = design.shape[0], forecasts.shape[1]
    assert horizon == min(100, (rows - fit_rows) // 2) and forecasts.shape == truths.shape
    np.testing.assert_allclose(spread, next_values[:fit_rows].std(axis=0), rtol=1e-6)
    # the held-out rows' targets are not fitted; the fitted rows' are
    later, _, _ = held_out_forecasts(
        design, targets.at[fit_rows:].add(5.0), next_values, closed_loop, 1e-4, fit_rows=fit_rows
    )
    np.testing.assert_array_equal(later, forecasts)
    earlier, _, _ = held_out_forecasts(
        design, targets.at[:fit_rows].add(0.5), next_values, closed_loop, 1e-4, fit_rows=fit_rows
    )
    assert not np.allclose(earlier, forecasts, atol=1e-3)
    with pytest.raises(DiffdynError, match="two held-out regression rows"):
        held_out_forecasts(design, targets, next_values, closed_loop, 1e-4, fit_rows=rows - 1)


def test_held_out_tuning_loss_gradient_matches_finite_differences(x64):
    # the validation-series path: reservoir run over training + validation rows, the readout
    # fitted (implicitly differentiated) on the training rows, closed loops over the others
    values = jnp.asarray(_series(160), jnp.float64)
    model = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, NGRC(2, ridge=1e-3)
    )
    start = ReservoirHyperparameters(model.tunable_values())
    fit_rows = model.regression(values[:120])[0].shape[0]

    def loss(coordinates):
        tuned = model.with_values(
            eqx.tree_at(lambda h: h.coordinates, start, coordinates).values()
        )
        return tuning_loss(
            *held_out_forecasts(
                *tuned.regression(values), tuned.ridge, fit_rows=fit_rows, unpenalised=[0]
            )
        )

    gradient = jax.grad(loss)(start.coordinates)
    assert all(np.isfinite(float(g)) and float(g) != 0.0 for g in gradient.values())
    assert_gradient_matches_fd(
        loss, start.coordinates, np.random.default_rng(0), eps=1e-6, rtol=1e-4, atol=1e-9
    )


def test_tuning_on_a_validation_series_scores_it_with_one_solve_an_evaluation():
    series = _series(400)
    train, validation = series[:260], series[260:]
    model = NGRC(2, ridge=1e-4)
    tuned, report = tune_reservoir(
        model, train, key=jax.random.key(1), validation=validation, steps=10, progress=False
    )
    assert report.tuned_loss < report.initial_loss and report.steps == 10
    # one solve for each of the 4 + 16 starts, the ten steps and the two validations
    assert report.readout_solves == 4 + 16 + 10 + 2
    # tuned in float64, the model keeps its own dtype
    assert tuned.ridge.dtype == jnp.float32 and tuned.feature_scaling.dtype == jnp.float32
    # its loss is the validation rows' (not the training series' cross-validation)
    _, cross_validated = tune_reservoir(
        model, train, key=jax.random.key(1), steps=1, budget=1e-9, progress=False
    )
    assert report.initial_loss != pytest.approx(cross_validated.initial_loss, rel=1e-3)
    for key, value in report.tuned.items():
        assert float(getattr(tuned, key)) == pytest.approx(value, rel=1e-6)


def test_start_points_fill_the_tuning_ranges_the_same_way_every_time():
    names = ["spectral_radius", "leak", "ridge"]
    points = start_points(names)
    assert len(points) == 16 and points == start_points(names)
    for name in names:
        scale, low, high = TUNING_RANGES[name]
        drawn = np.array([p[name] for p in points])
        assert np.all((drawn >= low) & (drawn <= high))
        unit = (
            (drawn - low) / (high - low)
            if scale == "linear"
            else np.log(drawn / low) / np.log(high / low)
        )
        # a Sobol sequence: every sixteenth of the range holds exactly one point
        assert sorted(np.floor(unit * 16).astype(int)) == list(range(16))


@pytest.mark.parametrize(
    ("validation", "exog", "match"),
    [
        (np.zeros((50, 3)), None, "training series' 2 variable"),
        (np.full((50, 2), np.nan), None, "NaN or infinite"),
        (np.zeros((2, 2)), None, "at least 3 rows"),
        (np.zeros((50, 2)), np.zeros((50, 1)), "for both the training and the validation"),
    ],
)
def test_bad_validation_series_are_refused(validation, exog, match):
    with pytest.raises(DiffdynError, match=match):
        tune_reservoir(
            NGRC(2, ridge=1e-4), _series(200), key=jax.random.key(0),
            validation=validation, validation_exog=exog, progress=False,
        )  # fmt: skip


# make test-slow: autodiff through the reservoir run and the readout, whose implicit VJP has
# its own finite-difference check in the default suite (test_implicit_ridge_*; 9 s)
@pytest.mark.slow
@pytest.mark.parametrize("name", ["esn", "ngrc"])
def test_tuning_loss_gradient_matches_finite_differences(x64, name):
    # the whole chain — reservoir run, implicit readout, closed-loop forecasts, loss — in the
    # unconstrained coordinates that Adam moves
    values = jnp.asarray(_series(140), jnp.float64)
    extra = {"size": 20, "washout": 10, "ridge": 1e-3} if name == "esn" else {"ridge": 1e-3}
    model = build_model(name, 2, key=jax.random.key(0), **extra)
    model = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, model
    )
    start = ReservoirHyperparameters(model.tunable_values())

    def loss(coordinates):
        hyperparameters = eqx.tree_at(lambda h: h.coordinates, start, coordinates)
        tuned = model.with_values(hyperparameters.values())
        return tuning_loss(
            *cross_validated_forecasts(
                *tuned.regression(values), tuned.ridge, folds=3, unpenalised=[0], horizon=10,
                starts=6,
            )
        )  # fmt: skip

    gradient = jax.grad(loss)(start.coordinates)
    assert all(np.isfinite(float(g)) and float(g) != 0.0 for g in gradient.values())
    assert_gradient_matches_fd(
        loss, start.coordinates, np.random.default_rng(0), eps=1e-6, rtol=1e-4, atol=1e-9
    )


def test_tuning_loss_saturates_and_ignores_non_finite_steps():
    truths = jnp.zeros((2, 3, 1))
    assert float(tuning_loss(truths, truths, jnp.ones(1))) == 0.0
    far = jnp.full((2, 3, 1), 10.0)  # e² = 100: 100 / 101
    assert float(tuning_loss(far, truths, jnp.ones(1))) == pytest.approx(100 / 101)
    broken = truths.at[0, 1:].set(jnp.nan)
    value, gradient = jax.value_and_grad(tuning_loss)(broken, truths, jnp.ones(1))
    assert float(value) == pytest.approx(2 / 6)  # two non-finite steps count 1 each
    assert np.all(np.isfinite(gradient))


# The ESN case tunes a 500-unit reservoir (10 s): make test-slow; NG-RC stays.
@pytest.mark.parametrize("name", [pytest.param("esn", marks=pytest.mark.slow), "ngrc"])
def test_tuning_lowers_the_validation_loss_and_keeps_the_draw(name):
    values = _series(300)
    extra = {"size": 40, "washout": 20} if name == "esn" else {}
    model = build_model(name, 2, key=jax.random.key(0), **extra)
    tuned, report = tune_reservoir(model, values, key=jax.random.key(1), steps=10, progress=False)
    assert isinstance(report, ReservoirTuning) and report.model == name
    assert set(report.tuned) == set(model.tunable) == set(report.initial)
    assert report.tuned_loss < report.initial_loss
    assert report.steps == 10 and report.readout_solves > 10
    for key, value in report.tuned.items():
        assert float(getattr(tuned, key)) == pytest.approx(value, rel=1e-6)
    assert report.tuned != report.initial
    if name == "esn":  # only the scales change, not the random draw
        np.testing.assert_array_equal(tuned.recurrent_unit, model.recurrent_unit)
        np.testing.assert_array_equal(tuned.input_unit, model.input_unit)
        assert 0 < report.tuned["leak"] < 1
    assert json.loads(json.dumps(report.to_json())) == report.to_json()
    assert ReservoirTuning.from_json(report.to_json()) == report


def test_tuning_keeps_its_best_start_when_the_gradient_steps_diverge(monkeypatch):
    # Seen on Lorenz-63 with two OpenBLAS threads: a float32 readout solve at a tiny ridge went
    # non-finite in the gradient steps; the fit then goes on from the validated start.
    import diffdyn.train.reservoir_tuning as tuning
    from diffdyn.train.loop import TrainingError

    def diverging(*args, **kwargs):
        raise TrainingError("training diverged at step 3: the loss went non-finite.")

    monkeypatch.setattr(tuning, "train", diverging)
    values = _series(300)
    model = build_model("ngrc", 2, key=jax.random.key(0))
    tuned, report = tune_reservoir(model, values, key=jax.random.key(1), steps=10, progress=False)
    assert report.steps == 0 and "diverged" in report.stop_reason
    assert report.tuned_loss <= report.initial_loss and np.isfinite(report.tuned_loss)
    for key, value in report.tuned.items():
        assert float(getattr(tuned, key)) == pytest.approx(value, rel=1e-6)


def test_esn_scales_are_array_fields_that_shape_the_reservoir():
    model = ESN(2, key=jax.random.key(3), size=30, spectral_radius=0.5, input_scaling=0.2)
    radius = np.max(np.abs(np.linalg.eigvals(np.asarray(model.recurrent_matrix()))))
    assert radius == pytest.approx(0.5, rel=1e-4)
    assert float(np.abs(model.input_weight).max()) <= 0.2
    assert float(np.abs(model.bias).max()) <= 0.2  # bias_scaling follows input_scaling
    doubled = model.with_values({"spectral_radius": 1.0, "bias_scaling": 0.4})
    radius = np.max(np.abs(np.linalg.eigvals(np.asarray(doubled.recurrent_matrix()))))
    assert radius == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_allclose(doubled.bias, 2 * model.bias, rtol=1e-6)
    with pytest.raises(DiffdynError, match="esn tunes"):
        model.with_values({"size": 3.0})


@pytest.mark.parametrize("bad", ["maybe", "1"])
@pytest.mark.parametrize("name", ["esn", "ngrc"])
def test_bad_tune_and_scaling_values_are_refused(name, bad):
    extra = {"size": 20, "washout": 5} if name == "esn" else {}
    with pytest.raises(DiffdynError, match="tune=auto, on or off"):
        build_model(name, 2, key=jax.random.key(0), tune=bad, **extra)


def test_bad_scalings_are_refused():
    with pytest.raises(DiffdynError, match="feature_scaling > 0"):
        NGRC(2, feature_scaling=0.0)
    with pytest.raises(DiffdynError, match="bias_scaling ≥ 0"):
        ESN(2, key=jax.random.key(0), size=20, bias_scaling=-1.0)
    with pytest.raises(DiffdynError, match="bias_scaling ≥ 0 or 'input_scaling'"):
        build_model("esn", 2, key=jax.random.key(0), size=20, bias_scaling="wide")


def test_every_tuned_value_can_be_given_back_as_command_line_text():
    # what `diffdyn train` prints after tuning, passed back with -p, builds the same values
    tuned = {"spectral_radius": "0.11", "leak": "0.45", "input_scaling": "0.11",
             "bias_scaling": "1.7", "ridge": "5.8e-12"}  # fmt: skip
    esn = build_model("esn", 2, key=jax.random.key(0), size=20, **tuned)
    assert {k: float(v) for k, v in esn.tunable_values().items()} == pytest.approx(
        {k: float(v) for k, v in tuned.items()}, rel=1e-6
    )
    ngrc = build_model("ngrc", 2, key=jax.random.key(0), ridge="1e-9", feature_scaling="0.6")
    assert float(ngrc.feature_scaling) == pytest.approx(0.6)
    # the default bias range is the input scaling's, as before
    assert float(build_model("esn", 2, key=jax.random.key(0), size=20, input_scaling="0.2")
                 .bias_scaling) == pytest.approx(0.2)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "tune"),
    [("esn", "auto"), pytest.param("ngrc", "on", marks=pytest.mark.slow), ("esn", "off")],
)
def test_the_pipeline_tunes_stores_and_reports(name, tune, tmp_path):
    values = np.asarray(_series(260))
    series = Series(values, np.arange(260.0) * 0.1, ("a", "b"), dt=0.1)
    extra = {"size": 30, "washout": 20} if name == "esn" else {}
    fitted, result = train_forecaster(
        series, DataSource.of_series(series), name, tmp_path / "m",
        hyperparameters={**extra, "tune": tune}, progress=False,
    )  # fmt: skip
    if tune == "off":
        assert result.tuning is None and "tuning" not in result.sidecar
        assert result.stop_reason == "fitted in closed form"
        return
    assert result.tuning is not None and result.tuning.steps >= 1
    assert result.stop_reason.startswith("tuned (")
    assert result.to_json()["tuning"] == result.tuning.to_json()
    for key, value in result.tuning.tuned.items():  # the fitted model carries the tuned values
        assert float(getattr(fitted, key)) == pytest.approx(value, rel=1e-6)
    loaded, stored = checkpoint.load_model(tmp_path / "m")
    assert stored["tuning"] == result.tuning.to_json()
    for key in fitted.tunable:
        assert float(getattr(loaded, key)) == float(getattr(fitted, key))
    np.testing.assert_array_equal(
        loaded(jnp.asarray(values[:40]), horizon=8)[0],
        fitted(jnp.asarray(values[:40]), horizon=8)[0],
    )
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, fitted)
    assert buffer.getvalue()


def test_auto_tunes_the_esn_unless_a_short_budget_is_given_on_a_long_series():
    esn = ESN(2, key=jax.random.key(0), size=20, washout=5)
    ngrc = NGRC(2)
    assert tunes_by_default(esn) and tunes_by_default(esn, 600.0)
    assert not tunes_by_default(esn, 20.0)  # a compare cell: compiling alone would spend it
    assert not tunes_by_default(ngrc) and not tunes_by_default(ngrc, 600.0)
    assert tunes_by_default(NGRC(2, tune="on"), 20.0)
    # a short series is tuned under a budget of 10 s or more (dysts' 1000-row cells)
    assert tunes_by_default(esn, 10.0, rows=1000)
    assert not tunes_by_default(esn, 10.0, rows=1001)
    assert not tunes_by_default(esn, 9.0, rows=400)
    assert not tunes_by_default(ngrc, 20.0, rows=400)
    assert not tunes_by_default(ESN(2, key=jax.random.key(0), size=20, tune="off"))


def test_the_pipeline_tunes_a_short_series_under_a_budget_and_not_a_long_one():
    # fit_reservoir hands the series' length to the rule: 260 rows are tuned in 10 s,
    # 1200 rows are fitted at the model's own values
    esn = ESN(2, key=jax.random.key(0), size=20, washout=5)
    key = jax.random.key(1)
    _, report = fit_reservoir(esn, _series(260), key=key, budget=10.0, progress=False)
    assert report is not None and report.steps > 0 and np.isfinite(report.tuned_loss)
    long, none = fit_reservoir(esn, _series(1200), key=key, budget=10.0, progress=False)
    assert none is None
    assert float(long.spectral_radius) == float(esn.spectral_radius)


def test_a_spent_budget_keeps_the_best_start_and_takes_no_step():
    values = _series(200)
    model = NGRC(2, ridge=1e-4)
    tuned, report = tune_reservoir(
        model, values, key=jax.random.key(0), budget=1e-9, progress=False
    )
    assert report.steps == 0 and "budget was spent" in report.stop_reason
    assert report.tuned_loss <= report.initial_loss
    assert report.readout_solves == 3 * 4  # three folds at each of the four starts
    for key, value in report.tuned.items():
        assert float(getattr(tuned, key)) == pytest.approx(value, rel=1e-6)
