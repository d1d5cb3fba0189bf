"""`diffdyn models`, `train`, `evaluate` and `forecast` on small simulations and a tiny model."""

import json
import subprocess

import numpy as np
import pytest

from diffdyn.data import read_series
from diffdyn.options import parse_budget
from test_cli import _entry_point, assert_one_line_error, run
from test_train import LinearStep  # noqa: F401  (registers "test-linear", "test-diverging")

# One trajectory length everywhere: simulations and training compile once.
HENON = ["--system", "henon", "--steps", "400"]
TRAIN = ["train", *HENON, "--model", "test-linear"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A test-linear model trained on Hénon, shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("trained") / "m"
    result = run(*TRAIN, "-o", folder)
    assert result.exit_code == 0, result.stderr
    return folder, result


@pytest.mark.parametrize("command", ["models", "train", "evaluate", "forecast"])
def test_help_shows_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example: diffdyn " + command in " ".join(result.stdout.split())


def test_models_lists_the_registry():
    result = run("models")
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "none" in rows["persistence"] and "baseline" in rows["persistence"]
    assert "gradient" in rows["test-linear"]
    assert "blow_up=False" in rows["test-linear"] and "context=4" in rows["test-linear"]

    facts = {f["name"]: f for f in json.loads(run("models", "--json").stdout)}
    assert facts["persistence"]["fit_kind"] == "none"
    assert facts["test-linear"]["hyperparameters"] == {"blow_up": False}
    assert facts["test-linear"]["training"]["context"] == 4  # the model's own default
    assert facts["test-linear"]["training"]["strategy"] == "curriculum"  # the shared one


def test_train_evaluate_forecast_with_a_system(trained, tmp_path):
    folder, result = trained
    assert "test-linear (6 parameters)" in result.stdout
    assert "6 epochs done" in result.stdout and "best validation loss" in result.stdout
    assert f"diffdyn evaluate {folder} --system henon" in result.stdout
    sidecar = json.loads((folder / "model.json").read_text())
    assert sidecar["best_val_loss"] == min(h["val_loss"] for h in sidecar["history"])

    scores = tmp_path / "scores.json"
    result = run("evaluate", folder, *HENON, "--threshold", "0.4", "-o", scores)
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "Lyapunov times, ε = 0.4" in text and "sMAPE" in text and "RMSE" in text
    assert "fresh initial condition" in text and str(scores) in text
    written = json.loads(scores.read_text())
    assert written["threshold"] == 0.4 and written["start_points"] >= 20
    assert written["held_out_end_of_training_file"] is False
    for lead, value in written["nrmse"].items():
        assert f"NRMSE at t = {lead} {value:.4g}" in text
    # The default goes into the model folder, replaced on each run.
    assert run("evaluate", folder, *HENON).exit_code == 0
    assert run("evaluate", folder, *HENON, "--starts", "10").exit_code == 0
    assert json.loads((folder / "evaluation.json").read_text())["start_points"] == 10

    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    result = run(
        "forecast", folder, "--system", "henon", "--steps", "30", "-o", out, "--plot", png
    )
    assert result.exit_code == 0, result.stderr
    forecast = read_series(out)
    assert forecast.values.shape == (30, 2) and forecast.variables == ("x", "y")
    assert png.stat().st_size > 1000 and "truth dashed" in result.stdout


def test_train_evaluate_forecast_with_a_file(tmp_path):
    data, folder = tmp_path / "data.csv", tmp_path / "m"
    assert run("simulate", "henon", "--steps", "400", "-o", data).exit_code == 0
    result = run("train", "--data", data, "--model", "test-linear", "-o", folder)
    assert result.exit_code == 0, result.stderr
    assert "trained on the first 320, the last 80 held out" in result.stdout
    result = run("evaluate", folder, "--data", data)
    assert result.exit_code == 0, result.stderr
    assert "its held-out end" in result.stdout
    scores = json.loads((folder / "evaluation.json").read_text())
    assert scores["held_out_end_of_training_file"] is True
    assert scores["data"]["kind"] == "file"

    out = tmp_path / "f.npz"
    result = run("forecast", folder, "--data", data, "--steps", "12", "-o", out)
    assert result.exit_code == 0, result.stderr
    forecast = read_series(out)
    assert forecast.values.shape == (12, 2)
    assert forecast.times[0] == pytest.approx(read_series(data).times[-1] + 1)


def test_parse_budget():
    assert parse_budget("90") == 90 and parse_budget("60s") == 60 and parse_budget("1.5m") == 90
    assert (
        parse_budget("1h") == 3600 and parse_budget(" 5M ") == 300 and parse_budget(None) is None
    )
    for bad in ["", "5x", "-3", "0", "m", "1h30m"]:
        with pytest.raises(ValueError, match="--budget"):
            parse_budget(bad)


def test_budget_stops_training_and_resume_continues(tmp_path):
    folder = tmp_path / "m"
    result = run(*TRAIN, "--epochs", "100000", "--budget", "0.5s", "-o", folder)
    assert result.exit_code == 0, result.stderr
    assert "budget of 0.5 s reached" in result.stdout and "--resume" in result.stdout
    assert (folder / "resume").is_dir() and (folder / "model.json").exists()
    epochs = len(json.loads((folder / "model.json").read_text())["history"])
    result = run(*TRAIN, "--epochs", "100000", "--budget", "0.5", "-o", folder, "--resume")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads((folder / "model.json").read_text())["history"]) > epochs


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--model", "nosuch"], ["unknown model 'nosuch'", "diffdyn models"]),
        (["--model", "persistance"], ["Did you mean 'persistence'"]),
        (["--model", "test-linear", "-p", "blowup=1"], ["no hyperparameter 'blowup'", "blow_up"]),
        (["--model", "test-linear", "-p", "blow_up=maybe"], ["blow_up", "must be true or false"]),
        (["--model", "test-linear", "--option", "patiense=3"], ["no training option 'patiense'"]),
        (["--model", "test-linear", "--option", "epochs=3", "--epochs", "4"], ["twice"]),
        (["--model", "test-linear", "--strategy", "fre"], ["unknown training strategy"]),
        (["--model", "test-linear", "--learning-rate", "0"], ["learning_rate must be positive"]),
        (["--model", "test-linear", "--context", "0"], ["--context"]),
        (["--model", "test-linear", "--budget", "5x"], ["--budget"]),
        (["--model", "test-linear", "--force", "--resume"], ["not both"]),
        (["--model", "test-linear", "--resume"], ["nothing to resume"]),
        (["--model", "test-linear", "--epoch", "3"], ["--epoch"]),
    ],
)
def test_train_bad_input_is_one_line_and_trains_nothing(tmp_path, args, fragments):
    result = run("train", *HENON, *args, "-o", tmp_path / "m")
    assert_one_line_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_train_needs_one_source_and_an_existing_parent(tmp_path):
    assert_one_line_error(run("train", "--model", "persistence", "-o", tmp_path / "m"), "--data")
    data = tmp_path / "d.csv"
    data.write_text("time,x\n0,1\n1,2\n2,3\n")
    both = ["--data", data, "--system", "henon"]
    assert_one_line_error(run("train", *both, "--model", "persistence", "-o", tmp_path / "m"))
    with_steps = ["--data", data, "--steps", "9"]
    assert_one_line_error(
        run("train", *with_steps, "--model", "persistence", "-o", tmp_path / "m"), "--system"
    )
    assert_one_line_error(run(*TRAIN, "-o", tmp_path / "no" / "m"), "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_existing_model_is_untouched_without_force(trained):
    folder, _ = trained
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    line = assert_one_line_error(run(*TRAIN, "-o", folder), "--force", "--resume")
    assert "already exists" in line
    # Nor with --force when the rest of the input is bad: checks come before any change.
    assert_one_line_error(run(*TRAIN, "-o", folder, "--force", "-p", "nosuch=1"))
    assert_one_line_error(run(*TRAIN, "-o", folder, "--force", "--context", "500"), "context")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_longer_than_the_data_is_one_line(trained, tmp_path):
    folder, _ = trained
    line = assert_one_line_error(run(*TRAIN, "--context", "500", "-o", tmp_path / "m"))
    assert "400 samples" in line and "--context" in line
    assert_one_line_error(run("evaluate", folder, *HENON, "--horizon", "1000"), "--horizon")
    assert_one_line_error(
        run("evaluate", folder, "--system", "henon", "--steps", "4"), "fewer than context"
    )
    tiny, out = _tiny_csv(tmp_path), tmp_path / "f.csv"
    result = run("forecast", folder, "--data", tiny, "--steps", "5", "-o", out)
    assert_one_line_error(result, "reads 4 before forecasting", "longer series")
    assert not out.exists()


def _tiny_csv(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("time,x,y\n0,0.1,0.2\n1,0.3,0.1\n")
    return path


def test_evaluate_on_other_variables_names_them(trained):
    folder, _ = trained
    line = assert_one_line_error(run("evaluate", folder, "--system", "logistic"), "lack variable")
    assert "x, y" in line and "y" in line


def test_nan_in_a_csv_names_line_and_column(tmp_path):
    values = np.random.default_rng(0).normal(size=(60, 2))
    rows = [f"{t},{a},{b}" for t, (a, b) in enumerate(values)]
    rows[17] = "17,0.5,nan"
    data = tmp_path / "bad.csv"
    data.write_text("time,x,y\n" + "\n".join(rows) + "\n")
    line = assert_one_line_error(
        run("train", "--data", data, "--model", "test-linear", "-o", tmp_path / "m")
    )
    assert "line 19" in line and "'y'" in line
    assert not (tmp_path / "m").exists()


def test_truncated_model_file_is_one_line(tmp_path):
    folder = tmp_path / "m"
    assert run(*TRAIN, "-o", folder).exit_code == 0
    data = (folder / "model.eqx").read_bytes()
    (folder / "model.eqx").write_bytes(data[: len(data) // 2])
    assert_one_line_error(run("evaluate", folder, *HENON), "truncated", "retrain")
    out = tmp_path / "f.csv"
    assert_one_line_error(run("forecast", folder, *HENON[:2], "--steps", "5", "-o", out))
    assert not out.exists()


def test_model_folder_problems(tmp_path):
    assert_one_line_error(run("evaluate", tmp_path / "nowhere", *HENON), "no model folder")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("evaluate", tmp_path / "empty", *HENON), "model.json is missing")


def test_forecast_checks_outputs_before_computing(trained, tmp_path):
    folder, _ = trained
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    out.write_bytes(b"old")
    args = ["forecast", folder, "--system", "henon", "--steps", "5"]
    assert_one_line_error(run(*args, "-o", out), "already exists", "--force")
    assert out.read_bytes() == b"old"
    assert_one_line_error(run(*args, "-o", tmp_path / "f.txt"), ".txt")
    missing = tmp_path / "no" / "p.png"
    assert_one_line_error(run(*args, "-o", tmp_path / "g.csv", "--plot", missing), "not exist")
    assert_one_line_error(run(*args[:-2], "-o", tmp_path / "g.csv"), "--steps")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]
    assert run(*args, "-o", out, "--plot", png, "--force").exit_code == 0
    assert read_series(out).values.shape == (5, 2)


def test_evaluate_bad_options(trained, tmp_path):
    folder, _ = trained
    assert_one_line_error(run("evaluate", folder, *HENON, "--threshold", "0"), "positive")
    assert_one_line_error(run("evaluate", folder, *HENON, "--starts", "1"), "--starts")
    assert_one_line_error(run("evaluate", folder, *HENON, "--lyapunov-exponent", "-1"), "positive")
    assert_one_line_error(run("evaluate", folder, *HENON, "-o", tmp_path / "s.txt"), ".json")


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_subprocess_train_then_evaluate(tmp_path):
    diffdyn_script = _entry_point()
    command = (
        f"{diffdyn_script} train --system henon --steps 400 --model persistence -o m && "
        f"{diffdyn_script} evaluate m --system henon --steps 400"
    )
    done = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "diffdyn evaluate m --system henon" in done.stdout and "VPT" in done.stdout
    assert json.loads((tmp_path / "m" / "evaluation.json").read_text())["model"] == "persistence"

    again = subprocess.run(
        [diffdyn_script, "train", "--system", "henon", "--model", "persistence", "-o", "m"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.strip().count("\n") == 0 and "already exists" in again.stderr


@pytest.mark.slow  # 20 s; test_train.py checks two devices against one in `make test`
def test_train_on_two_host_devices(tmp_path):
    diffdyn_script = _entry_point()
    done = subprocess.run(
        [diffdyn_script, "train", "--system", "henon", "--steps", "400", "--model", "lstm",
         "-p", "hidden=8", "--epochs", "1", "--batch-size", "16", "--devices", "2", "-o", "m"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 epochs done" in done.stdout and (tmp_path / "m" / "model.json").exists()
    odd = subprocess.run(
        [diffdyn_script, "train", "--system", "henon", "--steps", "400", "--model", "lstm",
         "--batch-size", "15", "--devices", "2", "-o", "odd"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert odd.returncode == 2 and "Traceback" not in odd.stderr
    assert "multiple of 2" in odd.stderr and odd.stderr.strip().count("\n") == 0


def test_plot_forecast_panels(tmp_path):
    from diffdyn.data import Series
    from diffdyn.plot import plot_forecast

    names = tuple(f"u{i}" for i in range(8))
    history = Series(np.ones((100, 8)), np.arange(100.0), names, dt=1.0)
    forecast = Series(np.zeros((20, 8)), 100.0 + np.arange(20.0), names, dt=1.0)
    figure = plot_forecast(history, forecast, None, tmp_path / "f.png")
    assert len(figure.axes) == 6  # one panel per variable, at most 6
    assert (tmp_path / "f.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="already exists"):
        plot_forecast(history, forecast, forecast, tmp_path / "f.png")


def test_a_diverging_forecast_writes_nothing_and_evaluate_names_the_step(tmp_path):
    folder, out, png = tmp_path / "m", tmp_path / "f.csv", tmp_path / "f.png"
    assert run("train", *HENON, "--model", "test-diverging", "-o", folder).exit_code == 0
    result = run("forecast", folder, *HENON[:2], "--steps", "30", "-o", out, "--plot", png)
    line = assert_one_line_error(result, "non-finite at step 6 of 30", "fewer --steps")
    assert "lead time 6" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]

    result = run("evaluate", folder, *HENON, "--starts", "10")
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "10 of 10 forecasts went non-finite, the first at step 6" in text
    written = json.loads((folder / "evaluation.json").read_text())
    assert written["diverged_at"] == [6] * 10 and "non-finite" in written["note"]
