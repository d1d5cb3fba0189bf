"""`identify` with network fields: over-parametrised networks (more weights than observed
values, as Rackauckas et al. 2020 fit them), and `diffdyn identify --refine-steps`,
`--no-refine` and `--learning-rate`."""

import json
from pathlib import Path

import pytest

from contract import assert_refused, run, snapshot
from diffdyn.errors import DataError
from diffdyn.identify import folder as identify_folder, identify, prepare
from diffdyn.systems import Henon, get_system, simulate
from test_identify import drift_data, henon_data, user, write_csv


# -- over-parametrised networks --------------------------------------------------------------
def test_a_network_with_more_weights_than_observed_values_is_fitted_with_a_note():
    hybrid = get_system(user("HybridHenon"))  # its net: 2 -> 3 -> 1, 13 weights
    data = henon_data().slice(0, 5)  # 5 samples of x, y: 10 observed values for 13 + 2 unknowns
    start = prepare(hybrid, data, fit=["net"])
    start_loss = float(start.objective(start.unknowns, start.problem))
    assert start.notes and "over-parametrised" in start.notes[0]
    adam = identify(hybrid, data, fit=["net"], steps=30, refine=False)
    refined = identify(hybrid, data, fit=["net"], steps=30, refine_steps=20)
    assert adam.loss < start_loss
    # Levenberg–Marquardt's damped steps are well-posed with 15 unknowns for 10 residuals: it
    # runs, and what it keeps is never worse than Adam's result.
    assert refined.refine_steps > 0 and refined.loss <= adam.loss * (1 + 1e-6)
    assert refined.standard_errors is None and "network" in refined.uncertainty_note
    assert "15 unknowns (13 network weights) for 10 observed values" in refined.notes[0]
    assert refined.to_json()["notes"] == list(refined.notes)
    # With at least as many observed values as unknowns there is no note.
    assert identify(hybrid, henon_data().slice(0, 9), fit=["net"], steps=5).notes == ()


def test_plain_parameters_are_still_refused_when_they_outnumber_the_observed_values():
    hybrid = get_system(user("HybridHenon"))
    few = henon_data().slice(0, 3).select(["x"])  # 3 values; a, b and the 2 states are 4
    with pytest.raises(DataError, match="3 observed values for 4 unknowns .* besides the network"):
        identify(hybrid, few, fit=["a", "b", "net"])
    with pytest.raises(DataError, match="too few observations"):
        identify(Henon(), few, fit=["a", "b"])


# -- diffdyn identify --refine-steps / --no-refine -------------------------------------------
@pytest.fixture
def calls(monkeypatch):
    """The keyword arguments of every `identify` call that `identify_to_folder` makes."""
    seen = []
    real = identify_folder.identify

    def recording(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(identify_folder, "identify", recording)
    return seen


def fit_drift(tmp_path: Path, *options: str):
    data = write_csv(drift_data(), tmp_path / "line.csv")
    out = tmp_path / "fit"
    result = run("identify", user("Drift"), "--data", data, "--fit", "c", "-p", "c=0.2",
                 "--steps", "5", "-o", out, *options)  # fmt: skip
    return result, out


def test_refine_steps_reach_identify_and_the_request(tmp_path, calls):
    result, out = fit_drift(tmp_path, "--refine-steps", "7", "--learning-rate", "0.02")
    assert result.exit_code == 0, result.stderr
    assert calls[-1]["refine"] is True and calls[-1]["refine_steps"] == 7
    assert calls[-1]["learning_rate"] == 0.02
    stored = json.loads((out / "result.json").read_text())
    assert stored["request"]["refine"] is True and stored["request"]["refine_steps"] == 7
    assert stored["request"]["learning_rate"] == 0.02
    assert 0 < stored["identification"]["refine_steps"] <= 7


def test_no_refine_reaches_identify_and_skips_levenberg_marquardt(tmp_path, calls):
    result, out = fit_drift(tmp_path, "--no-refine")
    assert result.exit_code == 0, result.stderr
    assert calls[-1]["refine"] is False
    stored = json.loads((out / "result.json").read_text())
    assert stored["request"]["refine"] is False and stored["request"]["refine_steps"] == 0
    assert stored["identification"]["refine_steps"] == 0
    assert stored["identification"]["refined"] is False
    assert "+ 0 Levenberg–Marquardt steps" in result.stdout


@pytest.mark.parametrize(
    "options, fragment",
    [
        (["--refine-steps", "0"], "--refine-steps"),
        (["--refine-steps", "-1"], "--refine-steps"),
        (["--refine-steps", "many"], "--refine-steps"),
        (["--no-refine", "--refine-steps", "5"], "--no-refine turns off"),
        (["--learning-rate", "0"], "--learning-rate"),
        (["--learning-rate", "-0.1"], "--learning-rate"),
    ],
)
def test_bad_refine_options_are_refused_in_one_line_and_write_nothing(
    tmp_path, calls, options, fragment
):
    before = snapshot(tmp_path)
    data = tmp_path / "missing.csv"  # refused before the data are read
    result = run("identify", user("Drift"), "--data", data, "--fit", "c", "-o", tmp_path / "o",
                 *options)  # fmt: skip
    assert_refused(result, fragment)
    assert snapshot(tmp_path) == before and calls == []


@pytest.mark.slow  # make test-slow: a second over-parametrised fit; the note's test fits one (9 s)
def test_a_flow_with_more_network_weights_than_data_is_not_refused():
    """The study's case in small: the paper's 87-weight network on 31 samples of 2 variables is
    prepared (and not refused as too few observations)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "experiments"))
    from lv_hybrid import PaperHybridLotkaVolterra

    data = simulate(get_system("lotka-volterra"), t1=3.0, dt=0.1, transient=0.0)
    setup = prepare(PaperHybridLotkaVolterra(), data, fit=["net"])
    assert "89 unknowns (87 network weights) for 62 observed values" in setup.notes[0]
