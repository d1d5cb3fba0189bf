"""The compare grid, its results store, the report and the `compare`/`results` commands."""

import sqlite3

import pytest
from typer.testing import CliRunner

from diffdyn.cli import app
from diffdyn.compare import ResultsStore, run_compare, write_report
from diffdyn.compare.store import STORE_FILE
from diffdyn.errors import DiffdynError
from diffdyn.models.persistence import Persistence
from diffdyn.models.registry import MODELS, ModelSpec, model_spec, register_model
from test_train import Diverging  # noqa: F401  (registers "test-diverging")

GRID = ["persistence", "ngrc", "broken"]


class Broken(Persistence):
    """A model whose fit always fails."""

    fit_kind = "closed_form"

    def fit_closed_form(self, values, exog=None):
        raise RuntimeError("deliberately broken")


@pytest.fixture
def broken_model():
    model_spec("persistence")  # load the built-in registry first
    register_model(ModelSpec("broken", Broken, {}, "always fails"))
    yield
    MODELS.pop("broken", None)


def _metric_counts(path):
    with sqlite3.connect(path) as db:
        return dict(
            db.execute(
                "SELECT model || '/' || seed, count(*) FROM results GROUP BY model, seed"
            ).fetchall()
        )


def test_grid_records_failure_and_resumes(tmp_path, broken_model):
    out = tmp_path / "run"
    seen = []
    summary = run_compare(
        out,
        ["henon"],
        GRID,
        seeds=1,
        budget_per_model=5,
        progress=False,
        long_run=False,
        on_cell=lambda *cell: seen.append(cell[1]),
    )
    assert seen == GRID
    assert summary.ran == 3 and summary.failed == 1 and summary.skipped == 0
    with ResultsStore(out / STORE_FILE) as store:
        cells = store.cells()
        total = store.count()
    assert cells[("henon", "broken", 0)]["status"] == "failed"
    assert "deliberately broken" in cells[("henon", "broken", 0)]["reason"]
    assert cells[("henon", "ngrc", 0)]["status"] == "ok"
    assert cells[("henon", "ngrc", 0)]["vpt_mean"] > cells[("henon", "persistence", 0)]["vpt_mean"]
    counts = _metric_counts(out / STORE_FILE)
    assert counts["broken/0"] == 2  # status + reason

    # Rerunning the same configuration trains nothing and writes nothing new.
    again = run_compare(
        out, ["henon"], GRID, seeds=1, budget_per_model=5, progress=False, long_run=False
    )
    assert again.ran == 0 and again.skipped == 3
    with ResultsStore(out / STORE_FILE) as store:
        assert store.count() == total


def test_interrupted_grid_resumes_without_duplicates(tmp_path):
    out = tmp_path / "run"
    models = ["persistence", "ngrc"]

    class Stop(BaseException):
        pass

    def stop_after_first(*cell):
        raise Stop  # like a SIGKILL right after the first cell's transaction

    with pytest.raises(Stop):
        run_compare(
            out,
            ["henon"],
            models,
            seeds=2,
            budget_per_model=5,
            progress=False,
            long_run=False,
            on_cell=stop_after_first,
        )
    with ResultsStore(out / STORE_FILE) as store:
        assert len(store.finished()) == 1
        first = store.count()
    summary = run_compare(
        out, ["henon"], models, seeds=2, budget_per_model=5, progress=False, long_run=False
    )
    assert summary.ran == 3 and summary.skipped == 1
    counts = _metric_counts(out / STORE_FILE)
    assert len(counts) == 4
    assert counts["persistence/0"] == counts["persistence/1"] == first
    with sqlite3.connect(out / STORE_FILE) as db:
        keys = db.execute("SELECT dataset, model, seed, metric FROM results").fetchall()
    assert len(keys) == len(set(keys))


def test_other_configuration_in_same_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    run_compare(
        out, ["henon"], ["persistence"], budget_per_model=5, progress=False, long_run=False
    )
    with pytest.raises(DiffdynError, match="same options.*another output folder"):
        run_compare(
            out,
            ["henon"],
            ["persistence", "ngrc"],
            budget_per_model=5,
            progress=False,
            long_run=False,
        )


def test_corrupt_store_is_an_error(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / STORE_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(DiffdynError, match="corrupted"):
        run_compare(
            out, ["henon"], ["persistence"], budget_per_model=5, progress=False, long_run=False
        )
    result = CliRunner().invoke(app, ["results", str(out)])
    assert result.exit_code == 2


def test_unknown_names_are_errors(tmp_path):
    with pytest.raises(DiffdynError, match="unknown model"):
        run_compare(tmp_path / "a", ["henon"], ["nosuchmodel"], progress=False, long_run=False)
    with pytest.raises(DiffdynError, match="neither a built-in system nor a file"):
        run_compare(tmp_path / "b", ["lorenz36"], ["persistence"], progress=False, long_run=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_report_names_every_model(tmp_path, broken_model):
    out = tmp_path / "run"
    run_compare(out, ["henon"], GRID, budget_per_model=5, progress=False, long_run=False)
    paths = write_report(out)
    markdown = paths.markdown.read_text()
    page = paths.html.read_text()
    for name in GRID:
        assert name in markdown and name in page
    assert "data:image/png;base64," in page
    assert (out / "figures" / "nrmse-henon.png").stat().st_size > 1000
    assert "On henon, ngrc forecast longest" in markdown
    assert "failed: RuntimeError: deliberately broken" in markdown


def test_cli_compare_and_results(tmp_path):
    out = tmp_path / "run"
    runner = CliRunner()
    args = ["compare", "--systems", "henon", "--models", "persistence,ngrc"]
    args += ["--budget-per-model", "5s", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output and "ngrc" in result.output
    csv = tmp_path / "rows.csv"
    result = runner.invoke(app, ["results", str(out), "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    lines = csv.read_text().splitlines()
    assert lines[0] == "dataset,model,seed,metric,value,text"
    with ResultsStore(out / STORE_FILE) as store:
        assert len(lines) == 1 + store.count()
    # A different configuration, an unknown model and a missing folder: one line, status 2.
    for bad in (
        ["compare", "--systems", "henon", "--models", "persistence", "-o", str(out)],
        ["compare", "--systems", "henon", "--models", "nosuch", "-o", str(tmp_path / "x")],
        ["compare", "--systems", "henon", "-o", str(tmp_path / "no" / "such")],
        ["results", str(tmp_path / "missing")],
    ):
        result = runner.invoke(app, bad)
        assert result.exit_code == 2, (bad, result.output)
        assert len(result.output.strip().splitlines()) == 1


def test_compare_on_a_file(tmp_path):
    import numpy as np

    t = np.arange(1500) * 0.05
    values = np.stack([np.sin(t), np.cos(1.3 * t)], axis=1)
    path = tmp_path / "mine.csv"
    path.write_text("time,a,b\n" + "\n".join(f"{a},{b},{c}" for a, (b, c) in zip(t, values)))
    out = tmp_path / "run"
    run_compare(
        out,
        [str(path)],
        ["persistence", "ngrc"],
        budget_per_model=5,
        progress=False,
        long_run=False,
    )
    with ResultsStore(out / STORE_FILE) as store:
        cells = store.cells()
    assert cells[("mine.csv", "ngrc", 0)]["status"] == "ok", cells
    assert cells[("mine.csv", "ngrc", 0)]["vpt_unit"] == "time units"


_KILLED_RUN = """
import os, signal, sys
from diffdyn.compare import run_compare
from diffdyn.models.persistence import Persistence
from diffdyn.models.registry import ModelSpec, model_spec, register_model

class Killer(Persistence):
    fit_kind = "closed_form"

    def fit_closed_form(self, values, exog=None):
        os.kill(os.getpid(), signal.SIGKILL)  # dies in the middle of its cell

model_spec("persistence")
register_model(ModelSpec("killer", Killer, {}, "kills its own process"))
run_compare(sys.argv[1], ["henon"], ["persistence", "ngrc", "killer"], budget_per_model=5,
            progress=False, long_run=False)
"""


def test_sigkill_mid_grid_resumes_exactly(tmp_path):
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(out)], timeout=300)
    assert done.returncode == -signal.SIGKILL
    with ResultsStore(out / STORE_FILE) as store:
        assert store.finished() == {("henon", "persistence", 0), ("henon", "ngrc", 0)}
        before = _metric_counts(out / STORE_FILE)
    register_model(ModelSpec("killer", Persistence, {}, "harmless this time"))
    try:
        summary = run_compare(
            out,
            ["henon"],
            ["persistence", "ngrc", "killer"],
            budget_per_model=5,
            progress=False,
            long_run=False,
        )
    finally:
        MODELS.pop("killer", None)
    assert summary.ran == 1 and summary.skipped == 2
    after = _metric_counts(out / STORE_FILE)
    assert {k: after[k] for k in before} == before
    assert after["killer/0"] == before["persistence/0"]


def test_report_draws_forecasts_of_the_best_models(tmp_path):
    from diffdyn.compare import run_compare, write_report

    run_compare(
        tmp_path / "r",
        ["henon"],
        ["persistence", "ngrc"],
        budget_per_model=5,
        progress=False,
        long_run=False,
    )
    write_report(tmp_path / "r")
    names = sorted(p.name for p in (tmp_path / "r" / "figures").glob("forecast-*.png"))
    assert names == ["forecast-henon-ngrc.png", "forecast-henon-persistence.png"]
    html_text = (tmp_path / "r" / "report.html").read_text()
    assert html_text.count("data:image/png;base64") == 3  # NRMSE curves + two forecasts


def test_diverged_forecasts_are_recorded_and_the_report_reads_only_the_store(tmp_path):
    import shutil

    out = tmp_path / "run"
    models = ["persistence", "test-diverging"]
    run_compare(out, ["henon"], models, budget_per_model=5, progress=False, long_run=False)
    with ResultsStore(out / STORE_FILE) as store:
        cells = store.cells()
        kept = store.artifact("henon", "test-diverging", "forecast")
    diverging = cells[("henon", "test-diverging", 0)]
    assert diverging["status"] == "ok" and diverging["first_diverged_step"] == 6
    assert diverging["diverged_forecasts"] == diverging["start_points"]
    assert "forecasts went non-finite, the first at step 6" in diverging["note"]
    assert cells[("henon", "persistence", 0)]["diverged_forecasts"] == 0
    assert kept is not None and kept["diverged_at"] == 6
    shutil.rmtree(out / "models")  # the report draws from the store alone
    write_report(out)
    names = sorted(p.name for p in (out / "figures").glob("forecast-*.png"))
    assert names == ["forecast-henon-persistence.png", "forecast-henon-test-diverging.png"]
    assert "went non-finite" in (out / "report.md").read_text()


@pytest.mark.slow  # make test-slow: two spawned workers compile every model again (27 s)
def test_two_worker_processes_give_the_cells_of_one(tmp_path):
    models = ["persistence", "ngrc"]
    one = tmp_path / "one"
    two = tmp_path / "two"
    run_compare(
        one, ["henon", "logistic"], models, budget_per_model=5, progress=False, long_run=False
    )
    summary = run_compare(two, ["henon", "logistic"], models, budget_per_model=5,
                          progress=False, long_run=False, workers=2)  # fmt: skip
    assert summary.ran == 4 and summary.failed == 0

    def scores(path):
        with ResultsStore(path / STORE_FILE) as store:
            return {k: (v["status"], v["vpt_mean"], v["smape"]) for k, v in store.cells().items()}

    assert scores(two) == scores(one)
    with pytest.raises(DiffdynError, match="--workers"):
        run_compare(tmp_path / "w", ["henon"], models, progress=False, long_run=False, workers=0)
