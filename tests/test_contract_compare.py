"""The command-line contract of `compare` and `results` (issue 13): every bad input is refused
in one line with exit status 2 before anything is run or written; a grid with failed cells ends
with status 3; cells are recognised by their data's content; `results` never writes; one
`compare` at a time per folder; an interrupted grid resumes with nothing lost or duplicated."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from contract import assert_refused, run, snapshot
from diffdyn.compare import ResultsStore, run_compare
from diffdyn.compare.grid import file_digest
from diffdyn.compare.store import STORE_FILE
from diffdyn.errors import DiffdynError
from diffdyn.files import LOCK_FILE, folder_lock
from diffdyn.models.persistence import Persistence
from diffdyn.models.registry import MODELS, ModelSpec, model_spec, register_model

BROKEN = "contract-broken"
GRID = ["--systems", "henon", "--models", f"persistence,{BROKEN}", "--budget-per-model", "1"]
GRID += ["--workers", "1"]


class _Broken(Persistence):
    """A model whose fit always fails."""

    fit_kind = "closed_form"

    def fit_closed_form(self, values, exog=None):
        raise RuntimeError("deliberately broken")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """One finished grid (henon × persistence and a model that always fails): the first run
    and its result, shared by the tests that only read it or are refused by it."""
    model_spec("persistence")  # the built-in registry first
    register_model(ModelSpec(BROKEN, _Broken, {}, "always fails"))
    out = tmp_path_factory.mktemp("grid") / "run"
    first = run("compare", *GRID, "-o", out)
    yield out, first
    MODELS.pop(BROKEN, None)


def _stamps(*roots: Path) -> dict[str, tuple[str, int]]:
    """`snapshot` with each file's modification time: what a read-only command must keep."""
    hashes = snapshot(*roots)
    return {p: (h, 0 if h == "dir" else os.stat(p).st_mtime_ns) for p, h in hashes.items()}


def _csv(path: Path, rows: int = 300, frequency: float = 1.0) -> Path:
    t = np.arange(rows) * 0.05
    body = "\n".join(f"{a:.4f},{np.sin(frequency * a):.6f},{np.cos(a):.6f}" for a in t)
    path.write_text("time,x,y\n" + body + "\n")
    return path


def _db(path: str | Path, uri: bool = False) -> contextlib.closing[sqlite3.Connection]:
    """A connection that commits each statement and is closed at the end of the block."""
    return contextlib.closing(sqlite3.connect(path, uri=uri, isolation_level=None))


def _status_rows(store: Path) -> list[tuple]:
    with _db(f"file:{store}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT dataset, model, seed FROM results WHERE metric = 'status' ORDER BY 1, 2, 3"
        ).fetchall()


# -- 1. every input checked before any cell runs or any folder is made ------------------------
_BAD_FILES = {
    "empty": b"",
    "non-numeric": b"time,x\n0,1\n1,abc\n2,3\n",
    "ragged": b"time,x,y\n0,1,2\n1,2\n2,3,4\n",
    "nan": b"time,x\n0,1\n1,nan\n2,3\n",
    "decreasing-time": b"time,x\n0,1\n2,2\n1,3\n",
    "20-rows": ("time,x\n" + "".join(f"{i},{i % 7}\n" for i in range(20))).encode(),
    "binary": bytes(range(256)) * 8,
}


@pytest.mark.parametrize("kind", list(_BAD_FILES))
def test_bad_data_file_is_refused_before_any_cell(tmp_path, grid, kind):
    data = tmp_path / f"{kind}.csv"
    data.write_bytes(_BAD_FILES[kind])
    out = tmp_path / "new-run"
    before = snapshot(tmp_path)
    assert_refused(run("compare", "--data", data, "--models", "persistence", "-o", out), data.name)
    assert snapshot(tmp_path) == before and not out.exists()
    # Given to a finished run's folder, it changes nothing there either.
    run_dir, _ = grid
    kept = snapshot(run_dir)
    result = run("compare", *GRID, "--data", data, "-o", run_dir)
    assert_refused(result, data.name)
    assert snapshot(run_dir) == kept


def test_files_are_read_by_the_reader_training_uses(tmp_path, monkeypatch):
    """Whatever `diffdyn train`'s reader refuses (e.g. values that overflow float32), compare
    refuses too, before any folder is made."""
    import diffdyn.train.data_source as data_source
    from diffdyn.errors import DataError

    def refuse(path, **_):
        raise DataError(f"{path}, line 2, column 'x': 1e308 overflows float32; rescale it.")

    monkeypatch.setattr(data_source, "read_series", refuse)
    data = _csv(tmp_path / "huge.csv", rows=100)
    out = tmp_path / "run"
    assert_refused(run("compare", "--data", data, "-o", out), "huge.csv", "overflows float32")
    assert not out.exists()


def test_short_file_names_the_models_it_is_too_short_for(tmp_path):
    data = _csv(tmp_path / "short.csv", rows=70)  # 56 training rows: ngrc needs 43, lstm 59
    out = tmp_path / "run"
    line = assert_refused(
        run("compare", "--data", data, "--models", "ngrc,lstm", "-o", out), "short.csv", "lstm"
    )
    assert "ngrc" not in line and not out.exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--systems", "henon", "--models", ""], "no model names given"),
        (["--systems", "henon", "--models", ","], "no model names given"),
        (["--systems", "lorenz36", "--models", "persistence"], "unknown system 'lorenz36'"),
        (["--systems", "", "--models", "persistence"], "no system names given"),
        (["--systems", "henon", "--models", "persistence,nosuch"], "nosuch"),
    ],
)
def test_bad_names_are_refused(tmp_path, args, fragment):
    out = tmp_path / "run"
    assert_refused(run("compare", *args, "-o", out), fragment)
    assert not out.exists()


# -- 2. exit status 3 when cells failed ------------------------------------------------------
def test_failed_cells_end_with_status_3_and_the_report(grid):
    run_dir, first = grid
    assert first.exit_code == 3, (first.stdout, first.stderr)
    assert "1 of 2 cell(s) failed (henon · contract-broken · seed 0)" in first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    assert "report.html" in first.stdout
    assert "deliberately broken" in (run_dir / "report.md").read_text()
    again = run("compare", *GRID, "-o", run_dir)  # the failure stays recorded: still 3
    assert again.exit_code == 3 and "0 cell(s) run" in again.stdout
    assert "1 of 2 cell(s) failed" in again.stderr


# -- 3. cells are recognised by their data's content ----------------------------------------
def test_changed_file_reruns_its_cells_and_old_stores_migrate(tmp_path):
    data = _csv(tmp_path / "mine.csv")
    out = tmp_path / "run"
    args = ["compare", "--data", data, "--models", "persistence", "--budget-per-model", "1"]
    args += ["--workers", "1", "-o", out]
    assert run(*args).exit_code == 0
    store = out / STORE_FILE
    with ResultsStore(store, create=False) as results:
        first = results.cells()[("mine.csv", "persistence", 0)]["smape"]

    again = run(*args)  # same content: nothing to run
    assert again.exit_code == 0 and "0 cell(s) run" in again.stdout

    _csv(data, frequency=2.0)  # the user changes the file: its cell runs again
    changed = run(*args)
    assert changed.exit_code == 0 and "1 cell(s) run" in changed.stdout
    assert _status_rows(store) == [("mine.csv", "persistence", 0)]
    with ResultsStore(store, create=False) as results:
        assert results.cells()[("mine.csv", "persistence", 0)]["smape"] != first
    with _db(store) as db:
        (request,) = db.execute("SELECT request FROM cells").fetchone()
    assert json.loads(request)["content"] == file_digest(data)

    # A store from before the cells table: read as it is, migrated on resume (a file's cells
    # run again: their content was never recorded).
    with _db(store) as db:
        db.execute("DROP TABLE cells")
        db.execute("PRAGMA user_version = 0")
    kept = _stamps(out)
    assert run("results", out).exit_code == 0
    assert _stamps(out) == kept
    migrated = run(*args)
    assert migrated.exit_code == 0 and "1 cell(s) run" in migrated.stdout
    assert _status_rows(store) == [("mine.csv", "persistence", 0)]
    with _db(store) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM cells").fetchone()[0] == 1


def test_system_cells_of_an_old_store_are_kept(tmp_path, grid):
    run_dir, _ = grid
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    with _db(old / STORE_FILE) as db:
        db.execute("DROP TABLE cells")
        db.execute("PRAGMA user_version = 0")
    result = run("compare", *GRID, "-o", old)
    assert result.exit_code == 3 and "0 cell(s) run in" in result.stdout, result.stdout
    with _db(old / STORE_FILE) as db:
        assert db.execute("SELECT count(*) FROM cells").fetchone()[0] == 2


def test_store_from_a_newer_diffdyn_is_refused(tmp_path, grid):
    run_dir, _ = grid
    newer = tmp_path / "newer"
    shutil.copytree(run_dir, newer)
    with _db(newer / STORE_FILE) as db:
        db.execute("PRAGMA user_version = 99")
    kept = snapshot(newer)
    assert_refused(run("compare", *GRID, "-o", newer), "newer diffdyn")
    assert snapshot(newer) == kept


# -- 4. results only reads ---------------------------------------------------------------------
def _foreign(folder: Path, name: str = STORE_FILE) -> Path:
    with _db(folder / name) as db:
        db.execute("CREATE TABLE songs (title TEXT)")
        db.execute("INSERT INTO songs VALUES ('la')")
    return folder / name


def _wal(folder: Path) -> Path:
    with _db(folder / STORE_FILE) as db:
        db.execute("PRAGMA journal_mode = wal")
        db.execute("CREATE TABLE results (dataset TEXT)")
    return folder


def _bytes(content: bytes):
    def make(folder: Path) -> Path:
        (folder / STORE_FILE).write_bytes(content)
        return folder

    return make


# (what `results` is given, the refusal, whether `compare -o` there is refused too)
_NOT_DIFFDYNS = {
    "foreign-file": (lambda d: _foreign(d, "music.sqlite"), "not a diffdyn results database"),
    "foreign-store": (lambda d: _foreign(d).parent, "lacks the table(s) runs"),
    "empty-store": (_bytes(b""), "the file is empty"),
    "garbage-store": (_bytes(b"not a database" * 400), "corrupted"),
    "wal-store": (_wal, "WAL mode"),
    "no-store": (lambda d: d, "results.sqlite is missing"),
}


@pytest.mark.parametrize("kind", list(_NOT_DIFFDYNS))
def test_results_refuses_what_is_not_diffdyns_and_writes_nothing(tmp_path, kind):
    make, fragment = _NOT_DIFFDYNS[kind]
    folder = tmp_path / "given"
    folder.mkdir()
    target = make(folder)
    kept = _stamps(folder)
    assert_refused(run("results", target), fragment)
    assert _stamps(folder) == kept
    assert_refused(run("results", target, "--csv", tmp_path / "out.csv"), fragment)
    assert _stamps(folder) == kept and not (tmp_path / "out.csv").exists()
    if kind in ("foreign-store", "garbage-store", "wal-store"):  # compare writes none of them
        assert_refused(run("compare", *GRID, "-o", folder), fragment)
        assert _stamps(folder) == kept


def test_results_on_a_run_changes_nothing(tmp_path, grid):
    run_dir, _ = grid
    kept = _stamps(run_dir)
    shown = run("results", run_dir)
    assert shown.exit_code == 0 and "persistence" in shown.stdout
    assert run("results", run_dir / STORE_FILE).exit_code == 0  # the store file itself
    rows = tmp_path / "rows.csv"
    assert run("results", run_dir, "--csv", rows).exit_code == 0
    assert rows.read_text().startswith("dataset,model,seed,metric,value,text")
    assert _stamps(run_dir) == kept
    assert_refused(run("results", tmp_path / "missing"), "does not exist")


# -- 5. one compare at a time per folder -------------------------------------------------------
def _write_lock(folder: Path, pid: int, host: str | None = None) -> Path:
    lock = folder / LOCK_FILE
    host = host or socket.gethostname()
    lock.write_text(json.dumps({"pid": pid, "host": host, "what": "compare run"}) + "\n")
    return lock


def test_second_writer_is_refused_naming_the_pid(grid):
    run_dir, _ = grid
    lock = _write_lock(run_dir, os.getpid())  # a live process holds it
    try:
        kept = snapshot(run_dir)
        assert_refused(run("compare", *GRID, "-o", run_dir), f"pid {os.getpid()}", str(lock))
        assert snapshot(run_dir) == kept
        lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.invalid"}))
        assert_refused(run("compare", *GRID, "-o", run_dir), "pid 1 on elsewhere.invalid")
    finally:
        lock.unlink()


def test_stale_lock_is_taken_over_and_released(grid):
    run_dir, _ = grid
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is no longer running
    _write_lock(run_dir, gone.pid)
    result = run("compare", *GRID, "-o", run_dir)
    assert result.exit_code == 3 and "0 cell(s) run" in result.stdout, result.stderr
    assert not (run_dir / LOCK_FILE).exists()
    (run_dir / LOCK_FILE).write_text("")  # left by a kill while it was being written
    os.utime(run_dir / LOCK_FILE, (time.time() - 60, time.time() - 60))
    assert run("compare", *GRID, "-o", run_dir).exit_code == 3
    assert not (run_dir / LOCK_FILE).exists()


def test_folder_lock_is_released_on_error_and_interrupt(tmp_path):
    lock = tmp_path / LOCK_FILE
    with folder_lock(tmp_path, "test") as held:
        assert held == lock and json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(DiffdynError, match=f"in use by another test \\(pid {os.getpid()}"):
            with folder_lock(tmp_path, "test"):
                pass
    assert not lock.exists()
    for error in (DiffdynError("bad"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with folder_lock(tmp_path, "test"):
                raise error
        assert not lock.exists()


# -- 6. interrupted grids ---------------------------------------------------------------------
def test_keyboard_interrupt_leaves_the_store_and_folder_consistent(tmp_path):
    out = tmp_path / "run"

    def interrupt(*cell):
        raise KeyboardInterrupt

    def grid(**more):
        return run_compare(
            out, ["henon"], ["persistence"], budget_per_model=1, progress=False, seeds=2, **more
        )

    with pytest.raises(KeyboardInterrupt):
        grid(on_cell=interrupt)
    assert not (out / LOCK_FILE).exists()
    assert _status_rows(out / STORE_FILE) == [("henon", "persistence", 0)]
    assert sorted(p.name for p in (out / "models" / "henon").iterdir()) == ["persistence-seed0"]
    summary = grid()
    assert summary.ran == 1 and summary.skipped == 1
    assert _status_rows(out / STORE_FILE) == [("henon", "persistence", s) for s in (0, 1)]


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _running(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not text[text.rindex(")") + 2 :].startswith("Z")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_with_two_workers_resumes_exactly(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-c", "from diffdyn.entry import main; main()", "compare"]
    command += ["--systems", "logistic", "--models", "persistence,ngrc", "--seeds", "3"]
    command += ["--budget-per-model", "1", "--workers", "2", "-o", str(out)]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = out / STORE_FILE
    deadline = time.monotonic() + 240
    while driver.poll() is None and time.monotonic() < deadline:
        try:
            if _status_rows(store):  # a cell is recorded: others are in flight
                break
        except sqlite3.Error:
            pass
        time.sleep(0.1)
    workers = _children(driver.pid)
    assert driver.poll() is None and len(workers) >= 2, workers
    driver.send_signal(signal.SIGTERM)
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 143, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: stopped by SIGTERM; nothing half-written was left; the same command again "
        "resumes the grid."
    ], stderr
    assert "Traceback" not in stderr
    end = time.monotonic() + 15  # no orphan: every worker (and helper) process ends
    while any(_running(p) for p in workers) and time.monotonic() < end:
        time.sleep(0.2)
    assert not [p for p in workers if _running(p)]
    recorded = set(_status_rows(store))
    assert 0 < len(recorded) < 6
    leftovers = [p for p in out.rglob("*") if p.name.endswith((".tmp", "-journal", LOCK_FILE))]
    assert not leftovers
    models = {("logistic", *p.name.rsplit("-seed", 1)) for p in out.glob("models/*/*")}
    assert {(d, m, int(s)) for d, m, s in models} <= recorded  # no half-trained cell left

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    rows = _status_rows(store)
    cells = [("logistic", m, s) for m in ("ngrc", "persistence") for s in range(3)]
    assert rows == cells  # every cell exactly once
    with _db(store) as db:
        assert db.execute("SELECT count(*) FROM cells").fetchone()[0] == 6
        keys = db.execute("SELECT dataset, model, seed, metric FROM results").fetchall()
    assert len(keys) == len(set(keys))
