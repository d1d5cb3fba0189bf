"""Cells on worker processes and on Ray: identical rows, a dead worker's cell reported `lost`
and retried by the next run, and the refusals of `--ray`."""

import os
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from diffdyn.cli import app
from diffdyn.compare import ResultsStore, run_compare
from diffdyn.compare.grid import LOST
from diffdyn.compare.store import STORE_FILE

MODELS = ["persistence", "ngrc"]


def _scores(path):
    with ResultsStore(path / STORE_FILE) as store:
        return {
            k: (v["status"], v.get("vpt_mean"), v.get("smape")) for k, v in store.cells().items()
        }


def _crashing_system(tmp_path):
    """A user's system file that kills the first worker process that loads it (not the
    driver, which checks it first): the worker dies mid-cell, as one killed by the kernel."""
    mark = tmp_path / "crashed-once"
    path = tmp_path / "crashing.py"
    path.write_text(
        textwrap.dedent(f"""
        import os
        from pathlib import Path
        from diffdyn.systems.henon import Henon

        MARK = Path({str(mark)!r})
        if os.getpid() != {os.getpid()} and not MARK.exists():
            MARK.touch()
            os._exit(1)

        class Crashing(Henon):
            name = "crashing"
    """)
    )
    return f"{path}:Crashing", mark


def _lost_then_retried(tmp_path, **parallel):
    system, mark = _crashing_system(tmp_path)
    out = tmp_path / "run"
    first = run_compare(out, [system], MODELS, budget_per_model=5, progress=False,
                        long_run=False, **parallel)  # fmt: skip
    assert mark.exists(), "no worker loaded the file"
    cells = ResultsStore(out / STORE_FILE).__enter__().cells()
    lost = [k for k, v in cells.items() if v["status"] == LOST]
    assert lost and first.failed == len(lost) and set(first.failed_cells) >= set(lost)
    assert all("retries it" in cells[k]["reason"] for k in lost)
    second = run_compare(out, [system], MODELS, budget_per_model=5, progress=False,
                         long_run=False, **parallel)  # fmt: skip
    assert second.ran == len(lost) and second.failed == 0 and not second.failed_cells
    assert {v[0] for v in _scores(out).values()} == {"ok"}


def test_a_dead_worker_process_makes_a_lost_cell_that_the_next_run_retries(tmp_path):
    _lost_then_retried(tmp_path, workers=2)


def test_worker_cpus_share_the_cores_without_overlap():
    from diffdyn.resources import worker_cpus

    assert [worker_cpus(i, 2, [0, 1]) for i in range(2)] == [{0}, {1}]
    assert worker_cpus(2, 2, [0, 1]) == {0}  # a restarted worker takes a slot again
    assert [worker_cpus(i, 3, [0, 1]) for i in range(3)] == [{0}, {1}, {0}]
    shares = [worker_cpus(i, 3, list(range(8))) for i in range(3)]
    assert shares == [{0, 1}, {2, 3, 4}, {5, 6, 7}]
    assert worker_cpus(0, 1, [4, 5]) == {4, 5}


def test_each_worker_process_runs_on_its_own_share_of_the_cpus(tmp_path, all_cpus, monkeypatch):
    if len(all_cpus) < 2:
        pytest.skip("needs a platform with CPU affinity and two CPUs")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)  # a grid started from Python
    record = tmp_path / "affinity"
    path = tmp_path / "recording.py"
    path.write_text(
        textwrap.dedent(f"""
        import os
        from diffdyn.systems.henon import Henon

        if os.getpid() != {os.getpid()}:
            with open({str(record)!r}, "a") as f:
                cpus = " ".join(map(str, sorted(os.sched_getaffinity(0))))
                blas = os.environ.get("OPENBLAS_NUM_THREADS")
                f.write(f"{{os.getpid()}}:{{cpus}}:{{blas}}\\n")

        class Recording(Henon):
            name = "recording"
    """)
    )
    summary = run_compare(tmp_path / "run", [f"{path}:Recording"], MODELS, budget_per_model=5,
                          progress=False, long_run=False, workers=2)  # fmt: skip
    assert summary.failed == 0
    from diffdyn.resources import worker_cpus

    expected = [worker_cpus(i, 2, all_cpus) for i in range(2)]
    lines = {
        pid: rest for pid, *rest in (line.split(":") for line in record.read_text().splitlines())
    }
    shares = [set(map(int, cpus.split())) for cpus, _ in lines.values()]
    assert shares and all(share in expected for share in shares), (shares, expected)
    assert len(shares) == 1 or not shares[0] & shares[1]
    # one BLAS thread each (two spinning on one pinned core are slow), the driver's left unset
    assert {blas for _, blas in lines.values()} == {"1"}
    assert "OPENBLAS_NUM_THREADS" not in os.environ


ray = pytest.importorskip("ray", reason="the ray extra (pip install 'diffdyn[ray]')")


@pytest.fixture
def local_ray():
    """A local Ray instance for a test's grids (`--ray local` starts its own; a grid given an
    instance already running uses it and leaves it running)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024**2)  # fmt: skip
    yield
    ray.shutdown()


def test_ray_tasks_give_the_rows_of_one_process_and_retry_a_lost_cell(tmp_path, local_ray):
    datasets = ["henon", "logistic"]
    one, two = tmp_path / "one", tmp_path / "ray"
    run_compare(one, datasets, MODELS, budget_per_model=5, progress=False, long_run=False)
    summary = run_compare(two, datasets, MODELS, budget_per_model=5, progress=False,
                          long_run=False, ray="auto")  # fmt: skip
    assert summary.ran == 4 and summary.failed == 0
    assert _scores(two) == _scores(one)
    assert ray.is_initialized()  # a running instance is left as it was
    (tmp_path / "crash").mkdir()
    _lost_then_retried(tmp_path / "crash", ray="auto")


def test_ray_refusals_are_one_line(tmp_path, monkeypatch):
    runner = CliRunner()
    out = tmp_path / "x"
    result = runner.invoke(app, ["compare", "--systems", "henon", "--models", "persistence",
                                 "--ray", "127.0.0.1:9", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "cannot start or reach Ray" in result.output and "--ray local" in result.output
    assert "Traceback" not in result.output and not out.exists()
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    result = runner.invoke(app, ["compare", "--systems", "henon", "--models", "persistence",
                                 "--ray", "local", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 2 and "pip install 'diffdyn[ray]'" in result.output
    assert not out.exists()


def test_halving_plan_spends_the_total_in_equal_rounds():
    from diffdyn.compare.grid import halving_rounds

    plan = halving_rounds(14, 280.0)
    assert [arms for arms, _ in plan] == [14, 7, 4, 2]
    assert [arms * seconds for arms, seconds in plan] == pytest.approx([70.0] * 4)
    assert halving_rounds(1, 10.0) == [(1, 10.0)]


@pytest.mark.slow  # make test-slow: six trainings, each evaluated twice (about 60 s quiet)
def test_successive_halving_drops_half_and_reports_the_rounds(tmp_path):
    from diffdyn.compare import write_report

    out = tmp_path / "run"
    models = ["persistence", "tdnn", "rnn", "gru", "lstm"]
    summary = run_compare(out, ["henon"], models, budget_per_model=3, progress=False,
                          long_run=False, allocate="halving")  # fmt: skip
    assert summary.ran == 5 and summary.failed == 0
    with ResultsStore(out / STORE_FILE) as store:
        cells = {k[1]: v for k, v in store.cells().items()}
    assert "halving_round" not in cells["persistence"]  # closed form: no budget to share
    rounds = sorted(int(cells[m]["halving_round"]) for m in models[1:])
    assert rounds == [0, 0, 1, 1]
    dropped = [m for m in models[1:] if cells[m]["halving_round"] == 0]
    kept = [m for m in models[1:] if cells[m]["halving_round"] == 1]
    assert all("dropped by successive halving" in cells[m]["note"] for m in dropped)
    assert all(cells[m]["halving_budget_s"] == pytest.approx(1.5) for m in dropped)
    assert all(cells[m]["train_seconds"] < 30 for m in kept)
    assert all("validation_vpt" in cells[m] for m in models[1:])
    write_report(out)
    assert "Successive halving" in (out / "report.md").read_text()
    again = run_compare(out, ["henon"], models, budget_per_model=3, progress=False,
                        long_run=False, allocate="halving")  # fmt: skip
    assert again.ran == 0
