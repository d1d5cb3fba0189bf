"""The trained model as a dynamical system: closed-loop maps, Lyapunov spectra of models, long-run
statistics, sensitivity to lag, `diffdyn analyze` and the long-run columns of `compare`."""

import json
import math
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contract import assert_refused, run, snapshot
from diffdyn.analysis import (
    NotAMapError,
    closed_loop,
    long_run_statistics,
    lyapunov_spectrum,
    model_lyapunov_spectrum,
    sensitivity_to_lag,
)
from diffdyn.analysis.analyze import check_analyzable, exponent_pairs
from diffdyn.compare.report import attractor_verdict, recommendation
from diffdyn.errors import DiffdynError
from diffdyn.models import build_model
from diffdyn.models.base import AbstractForecaster
from diffdyn.models.registry import MODELS, model_spec
from diffdyn.systems import Henon, Lorenz63, simulate


class StepForecaster(AbstractForecaster):
    """A "model" whose forecast iterates a given one-step map f on the last value."""

    name: ClassVar[str] = "test-step"
    step: Callable

    def __call__(self, context, exog=None, *, horizon, key=None):
        def body(y, _):
            y = self.step(y)
            return y, y

        _, out = jax.lax.scan(body, context[-1], length=horizon)
        return out, {}


class TwoLagForecaster(AbstractForecaster):
    """y_{t+1} = a₁ y_t + a₂ y_{t−1}: a linear map of a window of two values."""

    name: ClassVar[str] = "test-ar2"
    a1: float
    a2: float

    def __call__(self, context, exog=None, *, horizon, key=None):
        def body(window, _):
            y = self.a1 * window[1] + self.a2 * window[0]
            return jnp.stack([window[1], y]), y

        _, out = jax.lax.scan(body, context[-2:], length=horizon)
        return out, {}


class HiddenCounter(AbstractForecaster):
    """Carries a hidden accumulator that its forecast depends on: not a map of its window."""

    name: ClassVar[str] = "test-hidden"

    def __call__(self, context, exog=None, *, horizon, key=None):
        def body(carry, _):
            y, total = carry
            y = 0.5 * y + 0.1 * jnp.tanh(total)
            return (y, total + y), y

        _, out = jax.lax.scan(body, (context[-1], jnp.sum(context, 0)), length=horizon)
        return out, {}


# -- the four tests of the issue ---------------------------------------------------------------
# In make test-slow: one of the longest of the default suite (make test stays under 8 min).
@pytest.mark.slow
def test_a_model_that_is_the_true_systems_map_reproduces_its_spectrum():
    # Hénon: the model's one step is the map itself; the same model in standardised
    # coordinates (an affine change of variables, as training sees the data) has the same
    # exponents.
    henon = Henon()
    mean, scale = jnp.asarray([0.25, 0.08]), jnp.asarray([0.72, 0.21])
    raw = StepForecaster(lambda y: henon.step(y, None))
    scaled = StepForecaster(lambda z: (henon.step(mean + scale * z, None) - mean) / scale)
    context = jnp.asarray([[0.1, 0.1]] * 4)
    spectrum = model_lyapunov_spectrum(raw, context, dt=1.0, duration=2e4)
    standardised = model_lyapunov_spectrum(
        scaled, (context - mean[None]) / scale[None], dt=1.0, duration=2e4
    )
    true = lyapunov_spectrum(henon, duration=2e4)
    assert spectrum.settings["state_size"] == 2  # the window is one value: it reads no more
    np.testing.assert_allclose(spectrum.exponents, true.exponents, rtol=0.02)
    # (float32 trajectories part after ~50 steps of chaos: the averages are of other samples)
    np.testing.assert_allclose(standardised.exponents, spectrum.exponents, rtol=0.02)
    assert abs(spectrum.largest - 0.419) / 0.419 < 0.03
    for exponents in (spectrum.exponents, standardised.exponents):
        assert exponents.sum() == pytest.approx(math.log(0.3), rel=1e-3)  # |det J| = b

    # Lorenz-63 sampled every dt = 0.01: the model's step is the system's RK4 step; its
    # exponents per step divided by dt are the system's per time unit.
    lorenz = Lorenz63()
    stepper = lorenz.make_stepper(0.01)
    context = jnp.asarray(simulate(lorenz, steps=8).values)
    model = StepForecaster(lambda y: stepper(y, 0.0, None))
    exponents = model_lyapunov_spectrum(model, context, dt=0.01, duration=100.0).exponents
    assert len(exponents) == 3  # d + 1 asked, but the state has 3 numbers
    assert abs(exponents[0] - 0.9056) / 0.9056 < 0.06
    assert abs(exponents[1]) < 0.05
    assert abs(exponents[2] + 14.57) / 14.57 < 0.03
    assert exponents.sum() == pytest.approx(-(10 + 1 + 8 / 3), rel=0.01)  # Σλ = trace J


# In make test-slow: one of the longest of the default suite (make test stays under 8 min).
@pytest.mark.slow
def test_a_linear_map_gives_log_abs_eigenvalues():
    eigenvalues = np.array([0.9, -0.5, 0.2])
    basis = np.array([[1.0, 0.3, -0.2], [0.1, 1.0, 0.4], [0.5, -0.3, 1.0]])
    matrix = jnp.asarray(basis @ np.diag(eigenvalues) @ np.linalg.inv(basis), jnp.float32)
    dt = 0.5
    model = StepForecaster(lambda y: matrix @ y)
    spectrum = model_lyapunov_spectrum(model, jnp.ones((3, 3)), dt=dt, duration=1000.0)
    np.testing.assert_allclose(spectrum.exponents, np.log(np.abs(eigenvalues)) / dt, rtol=1e-3)

    assert exponent_pairs(spectrum.exponents) == []  # real, distinct eigenvalues

    # A rotation scaled by 0.8: a complex pair, two equal exponents, flagged as a pair.
    c, s = 0.8 * math.cos(0.7), 0.8 * math.sin(0.7)
    rotation = jnp.asarray([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 0.5]], jnp.float32)
    spectrum = model_lyapunov_spectrum(
        StepForecaster(lambda y: rotation @ y), jnp.ones((2, 3)), dt=1.0, duration=2000.0
    )
    np.testing.assert_allclose(spectrum.exponents, np.log([0.8, 0.8, 0.5]), rtol=1e-3)
    assert exponent_pairs(spectrum.exponents) == [(1, 2)]

    # A window of two values: y_{t+1} = a₁ y_t + a₂ y_{t−1}, the roots of z² = a₁ z + a₂.
    ar2 = TwoLagForecaster(0.3, 0.4)  # roots 0.8 and −0.5
    spectrum = model_lyapunov_spectrum(ar2, jnp.ones((6, 1)), dt=1.0, duration=2e4)
    assert spectrum.settings["state_size"] == 2
    np.testing.assert_allclose(spectrum.exponents, np.log([0.8, 0.5]), rtol=1e-3)


def test_a_model_whose_forecast_collapses_to_a_constant_is_reported_as_a_fixed_point():
    truth = np.asarray(simulate(Lorenz63(), steps=3000).values)
    truth = (truth - truth.mean(0)) / truth.std(0)
    centre = jnp.asarray([0.3, -0.2, 0.1])
    model = StepForecaster(lambda y: centre + 0.5 * (y - centre))
    run_ = np.asarray(model(jnp.asarray(truth[:5]), horizon=3000)[0])
    result = long_run_statistics(run_, truth, dt=0.01)
    assert result.behaviour.kind == "fixed point"
    assert "fixed point (0.3, -0.2, 0.1)" in result.behaviour.words
    assert result.correlation_dimension == 0.0
    assert result.power_spectrum_distance == (1.0, 1.0, 1.0)  # no spectrum to share


def test_sensitivity_of_a_model_that_ignores_old_inputs_is_exactly_zero_beyond_its_memory():
    contexts = jax.random.normal(jax.random.key(0), (5, 12, 3))
    tdnn = build_model("tdnn", 3, key=jax.random.key(1), delays=4, width=8, depth=1)
    result = sensitivity_to_lag(tdnn, contexts)
    assert np.all(result.norms[:4] > 0)
    assert np.all(result.norms[4:] == 0.0)  # exactly: lags 4 … 11 never reach the network
    assert result.memory is not None and result.memory <= 4

    # NG-RC with 3 delays spaced 2 apart reads lags 0, 2 and 4, nothing else.
    series = np.asarray(simulate(Lorenz63(), steps=600).values)
    series = (series - series.mean(0)) / series.std(0)
    ngrc = build_model("ngrc", 3, key=jax.random.key(0), delays=3, spacing=2, ridge=1e-6)
    ngrc = ngrc.fit_closed_form(series)
    result = sensitivity_to_lag(ngrc, jnp.asarray(np.stack([series[i : i + 12] for i in (0, 50)])))
    read = np.nonzero(result.norms)[0]
    assert read.tolist() == [0, 2, 4]


# -- closed-loop maps ----------------------------------------------------------------------------
SMALL = {
    "esn": {"size": 40, "washout": 5},
    "rnn": {"hidden": 8},
    "lstm": {"hidden": 8},
    "gru": {"hidden": 8, "layers": 2},
    "seq2seq": {"hidden": 8},
    "seq2seq-attention": {"hidden": 4},
    "transformer": {"width": 8, "heads": 2, "layers": 1, "ffn": 8},
    "darnn": {"encoder_hidden": 4, "decoder_hidden": 4, "context": 16},
    "dnc": {"hidden": 8, "memory_size": 4, "word_size": 3, "read_heads": 1},
    "mtnet": {"window": 4, "hidden": 4, "filters": 2, "kernel": 2, "ar_window": 2},
    "tdnn": {"delays": 3, "width": 8},
    "neural-ode": {"width": 8, "lags": 8},
}
QUICK = ("lstm",)  # the others in make test-slow


# Known gap: esn-ensemble's closed loop is its members' side by side, a product system whose
# block-diagonal Jacobian Benettin's identity start would not explore; until the analysis has
# a form for it, it refuses the ensemble in one line (test below).
NOT_MAPS = ("esn-ensemble",)


def _registered():
    model_spec("persistence")  # loads the built-in registry
    return sorted(
        n
        for n, s in MODELS.items()
        if s.cls.__module__.startswith("diffdyn.") and n not in NOT_MAPS
    )


def test_the_esn_ensemble_is_refused_as_a_map_in_one_line():
    series = jnp.tile(jnp.sin(0.1 * jnp.arange(300.0))[:, None], 2)
    model = build_model("esn-ensemble", 2, key=jax.random.key(0), size=8, washout=5, members=2)
    with pytest.raises(NotAMapError) as error:
        closed_loop(model.fit_closed_form(series), series[-16:], name="esn-ensemble")
    message = str(error.value)
    assert "esn-ensemble cannot be written as a map" in message and "\n" not in message


@pytest.mark.parametrize(
    "name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in _registered()]
)
def test_every_registered_model_is_a_map_that_reproduces_its_forecast(name):
    model = build_model(name, 2, key=jax.random.key(3), dt=0.05, **SMALL.get(name, {}))
    context = 0.5 * jax.random.normal(jax.random.key(4), (16, 2))
    if model.fit_kind == "closed_form":
        model = model.fit_closed_form(jnp.tile(jnp.sin(0.1 * jnp.arange(300.0))[:, None], 2))
    try:
        loop, state = closed_loop(model, context, name=name)
    except NotAMapError as error:  # a model this module cannot write as a map says why
        message = str(error)
        assert "\n" not in message and name in message
        pytest.fail(f"{name} is not a map: {message}")
    step = eqx.filter_jit(lambda loop, state: loop.step(state))
    states = [state]
    for _ in range(3):
        states.append(step(loop, states[-1]))
    emitted = np.concatenate([np.asarray(loop.observe(s)) for s in states[1:]])
    forecast = np.asarray(model(context, horizon=len(emitted))[0])
    np.testing.assert_allclose(emitted, forecast, rtol=1e-4, atol=1e-5)


def test_a_hidden_state_the_analysis_cannot_see_is_refused_in_one_line():
    with pytest.raises(NotAMapError) as error:
        closed_loop(HiddenCounter(), jnp.ones((6, 2)), name="test-hidden")
    message = str(error.value)
    assert "test-hidden cannot be written as a map" in message and "\n" not in message

    # A model with exogenous inputs is driven, not autonomous: refused before any data.
    driven = build_model("tdnn", 2, 1, key=jax.random.key(0), delays=2, width=4)
    with pytest.raises(NotAMapError, match="reads 1 exogenous input"):
        closed_loop(driven, jnp.ones((6, 2)), name="tdnn")
    with pytest.raises(DiffdynError, match="exogenous inputs"):
        check_analyzable({"model": "tdnn", "exog_variables": ["u"]})


# -- diffdyn analyze -----------------------------------------------------------------------------
HENON = ["--system", "henon"]


@pytest.fixture(scope="module")
def henon_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analyze") / "ngrc"
    result = run("train", *HENON, "--steps", "1000", "-m", "ngrc", "-o", folder)
    assert result.exit_code == 0, result.stderr
    return folder


def test_analyze_prints_spectra_beside_the_systems_and_writes_json_and_figures(
    henon_model, tmp_path
):
    out = tmp_path / "analysis"
    result = run("analyze", henon_model, *HENON, "-o", out, "--duration", "3000", "--windows", "4")
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "Lyapunov spectrum" in text and "henon" in text and "λ1" in text
    assert "stays bounded and aperiodic" in text
    assert sorted(p.name for p in out.iterdir()) == [
        "analysis.json", "attractor.png", "power_spectra.png", "sensitivity.png", "spectrum.png",
    ]  # fmt: skip
    stored = json.loads((out / "analysis.json").read_text())
    model, true = stored["spectrum"]["exponents"], stored["system_spectrum"]["exponents"]
    assert abs(model[0] - 0.419) / 0.419 < 0.05 and abs(true[0] - 0.419) / 0.419 < 0.05
    assert stored["compared_exponents"] == 2 and stored["spectrum_error"] is not None
    assert stored["long_run"]["behaviour"]["kind"] == "bounded aperiodic"
    assert stored["long_run"]["mean_power_spectrum_distance"] < 0.3
    assert stored["sensitivity"]["windows"] == 4
    assert stored["sensitivity"]["norms"][2] == 0.0  # NG-RC's default reads two lags

    # An earlier analysis is kept unless --force.
    before = snapshot(out)
    refused = run("analyze", henon_model, *HENON, "-o", out)
    assert_refused(refused, "already holds an analysis", "--force")
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["--duration", "0"], "--duration"),
        (["--duration", "nan"], "--duration"),
        (["--horizon", "10"], "--horizon"),
        (["--windows", "-1"], "--windows"),
        (["--data", "x.csv"], "exactly one of --data FILE or --system NAME"),
    ],
)
def test_analyze_refuses_bad_numbers_before_any_work(henon_model, tmp_path, arguments, fragment):
    out = tmp_path / "analysis"
    before = snapshot(tmp_path, henon_model)
    result = run("analyze", henon_model, *HENON, "-o", out, *arguments)
    assert_refused(result, fragment)
    assert snapshot(tmp_path, henon_model) == before


def test_analyze_refuses_bad_folders_and_data(henon_model, tmp_path):
    before = snapshot(tmp_path, henon_model)
    assert_refused(run("analyze", tmp_path / "none", *HENON, "-o", tmp_path / "a"), "no model")
    assert_refused(run("analyze", henon_model, *HENON, "-o", henon_model), "model folder")
    assert_refused(run("analyze", henon_model, *HENON, "-o", tmp_path / "x" / "a"), "create it")
    assert snapshot(tmp_path, henon_model) == before
    (tmp_path / "file").write_text("")
    assert_refused(run("analyze", henon_model, *HENON, "-o", tmp_path / "file"), "is a file")
    # Data sampled at another step than the model's: refused after reading, nothing written.
    series = simulate(Henon(), steps=3000).numpy()
    coarse = series.replace(times=np.asarray(series.times) * 2, dt=2.0)
    from diffdyn.data import write_series

    write_series(coarse, tmp_path / "coarse.csv")
    refused = run("analyze", henon_model, "--data", tmp_path / "coarse.csv", "-o", tmp_path / "b")
    assert_refused(refused, "sampled every 2")
    assert not (tmp_path / "b").exists()


# -- compare: the long-run columns -------------------------------------------------------------
def test_the_recommendation_says_which_models_reproduce_the_attractor():
    base = {"status": "ok", "vpt_unit": "Lyapunov times", "vpt_std": 0.1, "train_seconds": 1.0}
    rows = [
        {**base, "model": "esn", "vpt_mean": 5.0, "long_run": "bounded aperiodic",
         "power_spectrum_distance": 0.08, "model_lyapunov_exponent": 0.88,
         "system_lyapunov_exponent": 0.894},
        {**base, "model": "lstm", "vpt_mean": 3.0, "long_run": "cycle",
         "power_spectrum_distance": 0.5, "model_lyapunov_exponent": 0.0,
         "system_lyapunov_exponent": 0.894},
        {**base, "model": "tdnn", "vpt_mean": 2.0, "long_run": "bounded aperiodic",
         "power_spectrum_distance": 0.35, "model_lyapunov_exponent": 0.7,
         "system_lyapunov_exponent": 0.894},
        {**base, "model": "dnc", "vpt_mean": 1.5, "long_run": "diverges",
         "model_lyapunov_exponent": -0.1, "system_lyapunov_exponent": 0.894},
        {**base, "model": "gru", "vpt_mean": 1.0},
    ]  # fmt: skip
    assert attractor_verdict(rows[0]) == (True, "")
    assert attractor_verdict(rows[1]) == (False, "cycle")
    assert attractor_verdict(rows[2]) == (False, "power-spectrum distance 0.35")
    assert attractor_verdict(rows[3]) == (False, "diverges")  # no spectrum to compare
    assert attractor_verdict(rows[4]) is None  # a cell from before the long-run columns
    text = recommendation("lorenz63", rows)
    assert "esn (λ₁ 0.88) also reproduces the attractor" in text
    assert "lstm (cycle), tdnn (power-spectrum distance 0.35), dnc (diverges) do not" in text


@pytest.mark.slow  # a whole grid cell: make test-slow
def test_compare_stores_and_reports_the_long_run_columns(tmp_path):
    from diffdyn.compare import ResultsStore, run_compare, write_report
    from diffdyn.compare.store import STORE_FILE

    run_compare(tmp_path / "r", ["henon"], ["ngrc"], budget_per_model=5, progress=False)
    with ResultsStore(tmp_path / "r" / STORE_FILE) as store:
        cell = store.cells()[("henon", "ngrc", 0)]
    assert cell["long_run"] == "bounded aperiodic"
    assert abs(cell["model_lyapunov_exponent"] - 0.419) / 0.419 < 0.1
    assert 0 <= cell["power_spectrum_distance"] < 0.3 and cell["spectrum_error"] >= 0
    write_report(tmp_path / "r")
    report = (tmp_path / "r" / "report.md").read_text()
    assert "| λ₁ model | spectrum err | PSD dist | long run |" in report
    assert "ngrc (λ₁ 0." in report and "reproduces the attractor" in report
