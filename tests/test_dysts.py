"""The dysts catalogue as a data source and the dysts forecasting protocol (Gilpin 2021)."""

import importlib.util
import json
import sys

import numpy as np
import pytest

from diffdyn.data import Series, dysts_series
from diffdyn.data.dysts_source import (
    INSTALL_HINT,
    DystsNotInstalledError,
    check_dysts_name,
    dysts_names,
)
from diffdyn.dysts_protocol import (
    PUBLISHED_MEDIAN_SMAPE,
    dysts_split,
    dysts_task,
    published_scores,
    score_dysts,
)
from diffdyn.errors import DataError, DiffdynError, UnknownNameError
from diffdyn.metrics import smape

needs_dysts = pytest.mark.skipif(
    importlib.util.find_spec("dysts") is None, reason=f"dysts is not installed ({INSTALL_HINT})"
)


@needs_dysts
def test_names_are_the_continuous_systems_and_unknown_names_are_refused():
    names = dysts_names()
    assert len(names) >= 130 and list(names) == sorted(names)
    assert {"Lorenz", "Rossler", "MackeyGlass"} <= set(names)  # flows and delay systems
    assert "Henon" not in names  # the discrete maps are left out
    assert check_dysts_name("dysts:lorenz") == "Lorenz"
    assert check_dysts_name("Rossler") == "Rossler"
    with pytest.raises(UnknownNameError, match=r"no dysts system named 'Rosler'.*'Rossler'"):
        check_dysts_name("dysts:Rosler")
    with pytest.raises(UnknownNameError) as raised:
        check_dysts_name("nothing-like-it")
    assert "\n" not in str(raised.value)


@needs_dysts
@pytest.mark.parametrize("granularity, points", [("coarse", 15), ("fine", 100)])
def test_series_has_the_granularity_and_the_published_exponent(granularity, points):
    from dysts.flows import Lorenz

    series = dysts_series("Lorenz", granularity=granularity)
    published = Lorenz()
    assert len(series) == 12 * points and series.variables == ("x", "y", "z")
    assert series.metadata["period"] / series.dt == pytest.approx(points, rel=0.01)
    assert series.lyapunov_exponent == published.maximum_lyapunov_estimated
    assert series.metadata["system"] == "dysts:Lorenz"
    assert series.metadata["parameters"] == published.params
    np.testing.assert_allclose(series.metadata["y0"], published.ic)  # seed 0: the published start


@needs_dysts
def test_seeds_are_reproducible_and_leave_numpy_global_state_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    one = dysts_series("Lorenz", granularity="coarse", seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    again = dysts_series("Lorenz", granularity="coarse", seed=1)
    other = dysts_series("Lorenz", granularity="coarse", seed=0)
    np.testing.assert_array_equal(one.values, again.values)
    assert not np.allclose(one.values, other.values)
    with pytest.raises(DiffdynError, match="granularity"):
        dysts_series("Lorenz", granularity="medium")


@needs_dysts
@pytest.mark.parametrize("granularity, train_rows, test_rows", [("coarse", 150, 30)])
def test_split_has_the_protocol_lengths(granularity, train_rows, test_rows):
    series = dysts_series("Lorenz", granularity=granularity)
    train, test = dysts_split(series)
    assert (len(train), len(test)) == (train_rows, test_rows)
    np.testing.assert_array_equal(np.asarray(test.values), np.asarray(series.values)[train_rows:])
    assert float(test.times[0] - train.times[-1]) == pytest.approx(series.dt)
    fine = dysts_series("Lorenz", granularity="fine")
    assert [len(part) for part in dysts_split(fine)] == [1000, 200]


def test_split_refuses_a_series_without_points_per_period():
    plain = Series(np.zeros((100, 1)), np.arange(100.0), ("x",), dt=1.0)
    with pytest.raises(DataError, match="dysts_series"):
        dysts_split(plain)


def test_smape_is_zero_for_a_perfect_forecast_and_matches_a_hand_computation():
    truth = np.array([[1.0, -2.0], [2.0, 4.0]])
    assert smape(truth, truth) == 0.0
    forecast = np.array([[3.0, -2.0], [2.0, -4.0]])
    # 200 · mean(|3 − 1|/(3 + 1), 0, 0, |−4 − 4|/(4 + 4)) = 200 · (0.5 + 1) / 4
    assert smape(forecast, truth) == pytest.approx(75.0)


@needs_dysts
def test_train_and_score_end_to_end(tmp_path):
    """What `compare` does for a dataset dysts:NAME: task, train_model, score_dysts."""
    from diffdyn.train import train_model

    task = dysts_task("dysts:Lorenz", granularity="coarse", setting="multivariate")
    assert task.source.kind == "series" and task.name == "dysts:Lorenz"
    scores = {}
    for model in ("persistence", "ngrc"):
        folder = tmp_path / model
        train_model(task.train, task.source, model, folder, progress=False)
        scores[model] = score_dysts(folder, task.train, task.test)
    persistence = scores["persistence"]
    assert (persistence.horizon, persistence.horizon_periods) == (30, 2.0)
    assert persistence.variables == ("x", "y", "z") and persistence.granularity == "coarse"
    # persistence holds the last training value: sMAPE by hand over the test part
    last, truth = np.asarray(task.train.values)[-1], np.asarray(task.test.values)
    by_hand = 200 * np.mean(np.abs(last - truth) / (np.abs(last) + np.abs(truth)))
    assert persistence.smape == pytest.approx(by_hand, rel=1e-5)
    ngrc = scores["ngrc"]
    assert np.isfinite(ngrc.smape) and 0 <= ngrc.smape <= 200 and ngrc.diverged_at is None
    assert ngrc.vpt_unit == "Lyapunov times"
    stored = json.loads(json.dumps(ngrc.to_json()))
    assert stored["protocol"] == "dysts" and stored["model"] == "ngrc"
    assert json.loads(json.dumps(task.to_json()))["train_rows"] == 150


@needs_dysts
def test_univariate_setting_keeps_the_first_coordinate():
    task = dysts_task("Lorenz", granularity="coarse")
    assert task.setting == "univariate" and task.train.variables == ("x",)
    with pytest.raises(DiffdynError, match="setting"):
        dysts_task("Lorenz", setting="both")


def test_published_figures_are_those_of_the_anchors():
    by_key = {(s.model, s.setting, s.granularity): s.median_smape for s in PUBLISHED_MEDIAN_SMAPE}
    assert by_key[("NBEATS", "univariate", "fine")] == 67.7
    assert by_key[("LSTM", "univariate", "fine")] == 102.0
    assert by_key[("NVAR", "multivariate", "fine")] == 83.6
    assert by_key[("ESN", "multivariate", "fine")] == 102.4
    assert {s.model for s in published_scores(granularity="coarse")} == {
        "NBEATS",
        "Transformer",
        "LSTM",
    }


def test_missing_dysts_says_how_to_install_it(monkeypatch):
    for module in ("dysts", "dysts.flows", "dysts.systems"):
        monkeypatch.setitem(sys.modules, module, None)  # `import` now raises ImportError
    with pytest.raises(DystsNotInstalledError) as raised:
        dysts_series("Lorenz")
    assert isinstance(raised.value, DiffdynError)  # the CLI prints one line and exits 2
    message = str(raised.value)
    assert "pip install 'diffdyn[dysts]'" in message and "\n" not in message
    with pytest.raises(DystsNotInstalledError):
        check_dysts_name("Lorenz")
