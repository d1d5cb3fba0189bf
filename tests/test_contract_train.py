"""Issue 13's promise for `diffdyn train` and the model folders it writes: bad input gets one
`error:` line and exit 2, nothing half-written, no earlier result overwritten, no folder made
by a refused request; a killed run resumes with nothing lost or duplicated; loading a folder
validates what it reads."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest

from contract import assert_refused, run, snapshot
from test_train import LinearStep  # noqa: F401  (registers "test-linear")

HENON = ["--system", "henon", "--steps", "400"]
TRAIN = ["train", *HENON, "--model", "test-linear"]
# A budget-limited run (the same arguments every time, so that --resume matches).
UNFINISHED = [*TRAIN, "--epochs", "100000"]


def _leftovers(root: Path) -> list[str]:
    """Temporary files, locks and partial folders anywhere under (or beside) `root`."""
    paths = list(root.rglob("*")) + list(root.parent.glob(f".{root.name}*"))
    marks = (".tmp", ".lock", ".partial", ".replaced-")
    return sorted(str(p) for p in paths if any(mark in p.name for mark in marks))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A finished test-linear model and a budget-limited one (with a resume state), and the
    same Hénon trajectory as a CSV file."""
    root = tmp_path_factory.mktemp("contract")
    finished, unfinished, data = root / "finished", root / "unfinished", root / "henon.csv"
    assert run(*TRAIN, "-o", finished).exit_code == 0
    result = run(*UNFINISHED, "--budget", "0.3", "-o", unfinished)
    assert result.exit_code == 0, result.stderr
    assert (unfinished / "resume" / "state.json").exists()
    assert run("simulate", "henon", "--steps", "400", "-o", data).exit_code == 0
    return finished, unfinished, data


def _copy(folder: Path, tmp_path: Path, name: str = "m") -> Path:
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


# -- 1, 2: safe resume ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, fragments",
    [
        (["--seed", "1"], ["--seed 0", "--seed 1", "resume with the same --seed", "--force"]),
        (["-p", "blow_up=true"], ["-p blow_up=False", "-p blow_up=True", "--param"]),
        (["--learning-rate", "0.01"], ["--learning-rate 0.01", "training options"]),
        (["--option", "clip=0.5"], ["--option clip=1", "--option clip=0.5"]),
        (["--steps", "500"], ["--system henon (400 samples", "(500 samples", "same data"]),
        (["data"], ["trained on --system henon", "this --resume gives --data", "same data"]),
    ],
)
def test_resume_refuses_another_request(models, tmp_path, change, fragments):
    _, unfinished, data = models
    folder = _copy(unfinished, tmp_path)
    before = snapshot(tmp_path)
    if change == ["data"]:
        args = ["train", "--data", data, "--model", "test-linear", "--epochs", "100000"]
    elif change[0] == "--steps":
        args = ["train", "--system", "henon", *change, "--model", "test-linear", "--epochs",
                "100000"]  # fmt: skip
    else:
        args = [*UNFINISHED, *change]
    line = assert_refused(run(*args, "--budget", "0.2", "-o", folder, "--resume"), *fragments)
    assert "started by another request" in line and "truncated" not in line
    assert snapshot(tmp_path) == before


def test_resume_may_change_the_budget(models, tmp_path):
    _, unfinished, _ = models
    folder = _copy(unfinished, tmp_path)
    steps = json.loads((folder / "model.json").read_text())["steps"]
    result = run(*UNFINISHED, "--budget", "0.4", "-o", folder, "--resume")
    assert result.exit_code == 0, result.stderr
    assert json.loads((folder / "model.json").read_text())["steps"] > steps
    assert _leftovers(folder) == []


@pytest.mark.parametrize(
    "damage, fragments",
    [
        ("json-truncated", ["state.json is unreadable", "damaged or truncated", "--force"]),
        ("arrays-truncated", ["is damaged", "state.eqx", "truncated", "--force"]),
        ("format", ["state format 99", "diffdyn 9.9", "--force"]),
        ("meta", ["started by another request", "-p blow_up=True"]),
    ],
)
def test_a_damaged_resume_state_says_what_is_wrong(models, tmp_path, damage, fragments):
    _, unfinished, _ = models
    folder = _copy(unfinished, tmp_path)
    record, arrays = folder / "resume" / "state.json", folder / "resume" / "state.eqx"
    stored = json.loads(record.read_text())
    if damage == "json-truncated":
        record.write_text(record.read_text()[:100])
    elif damage == "arrays-truncated":
        arrays.write_bytes(arrays.read_bytes()[:-10])
    elif damage == "format":
        record.write_text(json.dumps({**stored, "format": 99, "diffdyn_version": "9.9"}))
    else:  # an intact state whose description names another request
        stored["meta"]["hyperparameters"]["blow_up"] = True
        record.write_text(json.dumps(stored))
    before = snapshot(tmp_path)
    line = assert_refused(run(*UNFINISHED, "--budget", "0.2", "-o", folder, "--resume"),
                          *fragments)  # fmt: skip
    if damage in ("format", "meta"):
        assert "truncated" not in line
    assert snapshot(tmp_path) == before


# -- 3: --force keeps the old model until the new one is complete ---------------------------------
def test_force_that_fails_leaves_the_old_model(models, tmp_path):
    finished, _, _ = models
    folder = _copy(finished, tmp_path)
    before = snapshot(tmp_path)
    line = assert_refused(run(*TRAIN, "-p", "blow_up=true", "-o", folder, "--force"), "diverged")
    assert "--learning-rate" in line and "--option clip=" in line and "max_steps" not in line
    assert snapshot(tmp_path) == before


def test_force_replaces_the_folder_only_when_done(models, tmp_path):
    finished, _, _ = models
    folder = _copy(finished, tmp_path)
    (folder / "notes.txt").write_text("mine")  # anything of the old folder goes with it
    result = run(*TRAIN, "--epochs", "2", "-o", folder, "--force")
    assert result.exit_code == 0, result.stderr
    assert not (folder / "notes.txt").exists()
    assert "2 epochs done" in json.loads((folder / "model.json").read_text())["stop_reason"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"] and _leftovers(folder) == []


def test_an_interrupted_force_run_keeps_the_old_model_and_resumes(models, tmp_path, monkeypatch):
    from diffdyn.train import loop

    finished, _, _ = models
    folder = _copy(finished, tmp_path)
    before = snapshot(folder)
    save = loop._save_state

    def save_then_interrupt(place, state, meta):
        save(place, state, meta)
        if state.step >= 22:  # two epochs checkpointed
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save_state", save_then_interrupt)
    result = run(*TRAIN, "--epochs", "4", "-o", folder, "--force")
    assert result.exit_code == 130 and "--resume" in result.stderr
    assert snapshot(folder) == before  # the old model, untouched
    partial = tmp_path / ".m.partial"
    assert (partial / "resume" / "state.json").exists() and not (partial / ".lock").exists()
    line = assert_refused(run(*TRAIN, "--epochs", "4", "-o", tmp_path / "m"), "--resume")
    assert "already exists" in line
    monkeypatch.setattr(loop, "_save_state", save)
    # --resume continues the interrupted --force run, then puts it in place.
    result = run(*TRAIN, "--epochs", "4", "-o", folder, "--resume")
    assert result.exit_code == 0, result.stderr
    sidecar = json.loads((folder / "model.json").read_text())
    assert "4 epochs done" in sidecar["stop_reason"]
    steps = [r["step"] for r in sidecar["history"]]
    assert steps == sorted(set(steps)) and len(steps) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"] and _leftovers(folder) == []


# -- 4: a refused request leaves no folder --------------------------------------------------------
def test_refused_requests_make_no_folder(tmp_path, monkeypatch):
    afile = tmp_path / "a.csv"
    afile.write_text("not a folder")
    assert_refused(run(*TRAIN, "-o", afile), f"{afile} is a file")
    for inside in (afile / "m", afile / "x" / "m"):
        line = assert_refused(run(*TRAIN, "-o", inside), f"{afile} is a file")
        assert "does not exist" not in line
    assert_refused(run(*TRAIN, "-p", "blow_up=true", "-o", tmp_path / "m"), "diverged")
    assert_refused(run(*TRAIN, "--context", "500", "-o", tmp_path / "m"), "400 samples")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_refused(run(*TRAIN, "-p", "blow_up=true", "-o", empty), "diverged")
    assert list(empty.iterdir()) == []  # a folder given empty stays, empty
    # Interrupted before its first checkpoint: nothing worth keeping, so nothing kept.
    from diffdyn.train import loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save_state", interrupted)
    assert run(*TRAIN, "-o", tmp_path / "m").exit_code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "empty"]


# -- 5: one training per folder -------------------------------------------------------------------
def _lock(folder: Path, pid: int) -> None:
    folder.mkdir(exist_ok=True)
    holder = {"pid": pid, "host": socket.gethostname(), "what": "diffdyn train", "since": 0}
    (folder / ".lock").write_text(json.dumps(holder) + "\n")


def test_a_folder_being_trained_is_refused_and_a_stale_lock_is_not(models, tmp_path):
    finished, unfinished, _ = models
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        fresh, forced, resumed = tmp_path / "new", _copy(finished, tmp_path, "f"), _copy(
            unfinished, tmp_path, "r")  # fmt: skip
        for folder in (fresh, forced, resumed):
            _lock(folder, alive.pid)
        before = snapshot(tmp_path)
        for folder, extra in ((fresh, []), (forced, ["--force"]), (resumed, ["--resume"])):
            args = UNFINISHED if extra == ["--resume"] else TRAIN
            result = run(*args, "--budget", "0.2", "-o", folder, *extra)
            assert_refused(result, "in use by another diffdyn train", f"pid {alive.pid}")
        assert snapshot(tmp_path) == before
    finally:
        alive.kill()
        alive.wait()
    # The same locks, their process gone: stale, taken over, and removed at the end.
    result = run(*TRAIN, "-o", fresh)
    assert result.exit_code == 0, result.stderr
    assert (fresh / "model.json").exists() and _leftovers(fresh) == []


# -- 6: the budget is wall-clock time -------------------------------------------------------------
def test_the_budget_counts_compiling_and_validation(tmp_path):
    folder = tmp_path / "m"
    # A batch size of its own: this run compiles its step afresh.
    args = [*UNFINISHED, "--batch-size", "29", "--budget", "2", "-o", folder]
    started = time.perf_counter()
    result = run(*args)
    took = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    sidecar = json.loads((folder / "model.json").read_text())
    # Compiling, every step and every validation within the budget (and a little over: the
    # last chunk of steps and the final validation are estimated; more on a loaded machine).
    assert 0 < sidecar["compile_seconds"] < sidecar["train_seconds"] <= 2 + 1.5
    assert took < 2 + 4  # data, compiling and saving included
    text = " ".join(result.stdout.split())
    assert f"{sidecar['train_seconds']:.3g} s, of which " in text and " s compiling;" in text
    assert "budget of 2 s reached" in text


def test_a_budget_spent_compiling_still_saves_a_model(tmp_path):
    folder = tmp_path / "m"
    result = run(*UNFINISHED, "--batch-size", "27", "--budget", "0.01", "-o", folder)
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "budget of 0.01 s reached while compiling" in text and "one step taken" in text
    sidecar = json.loads((folder / "model.json").read_text())
    assert sidecar["steps"] == 1 and (folder / "resume" / "state.json").exists()
    assert run("evaluate", folder, *HENON, "--starts", "5").exit_code == 0


# -- 7: loading validates what it reads -----------------------------------------------------------
def _edit(sidecar: dict, damage: str) -> dict:
    edited = json.loads(json.dumps(sidecar))
    if damage == "nan-scale":
        edited["scaler"]["scale"][0] = math.nan
    elif damage == "negative-dt":
        edited["dt"] = -1.0
    elif damage == "zero-dt":
        edited["dt"] = 0
    elif damage == "garbage-training":
        edited["training"] = "garbage"
    elif damage == "bad-option":
        edited["training"]["epochs"] = -3
    elif damage == "missing-scaler":
        del edited["scaler"]
    elif damage == "wrong-type":
        edited["hyperparameters"]["blow_up"] = "yes"
    elif damage == "dim-text":
        edited["dim"] = "two"
    elif damage == "variables":
        edited["variables"] = ["x"]
    elif damage == "data":
        edited["data"]["train_rows"] = "all"
    return edited


@pytest.mark.parametrize(
    "damage, fragment",
    [
        ("nan-scale", "scale"),
        ("negative-dt", "dt is -1.0"),
        ("zero-dt", "dt is 0"),
        ("garbage-training", "training is 'garbage'"),
        ("bad-option", "epochs"),
        ("missing-scaler", "'scaler' is missing"),
        ("wrong-type", "blow_up"),
        ("dim-text", "dim is 'two'"),
        ("variables", "variables"),
        ("data", "train_rows"),
    ],
)
def test_a_damaged_model_json_is_one_line(models, tmp_path, damage, fragment):
    finished, _, _ = models
    folder = _copy(finished, tmp_path)
    sidecar = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps(_edit(sidecar, damage)))
    before = snapshot(tmp_path)
    line = assert_refused(run("evaluate", folder, *HENON), "model.json is damaged", fragment,
                          "retrain the model")  # fmt: skip
    assert "Traceback" not in line
    out = tmp_path / "f.csv"
    assert_refused(run("forecast", folder, *HENON[:2], "--steps", "5", "-o", out), "damaged")
    assert snapshot(tmp_path) == before


def test_a_damaged_model_file_is_one_line(models, tmp_path):
    finished, _, _ = models
    folder = _copy(finished, tmp_path)
    arrays = folder / "model.eqx"
    data = arrays.read_bytes()
    arrays.write_bytes(data[:-4])
    assert_refused(run("evaluate", folder, *HENON), "model.eqx is truncated or damaged", "retrain")
    arrays.write_bytes(data[:-4] + b"\x00\x00\x00\x01")  # as long, other bytes
    assert_refused(run("evaluate", folder, *HENON), "model.eqx is truncated or damaged")
    assert_refused(run("evaluate", arrays, *HENON), "is a file, not a model folder")
    (folder / "model.json").write_text("{garbage")
    assert_refused(run("evaluate", folder, *HENON), "model.json is damaged", "not readable JSON")


# -- 8: advice names what the command line has ----------------------------------------------------
def test_a_closed_form_fit_that_fails_is_not_told_to_lower_a_learning_rate(tmp_path, monkeypatch):
    from diffdyn.models.ngrc import NGRC

    def nan_fit(self, values, exog):
        return jax.tree_util.tree_map(lambda x: x * float("nan"), self)

    monkeypatch.setattr(NGRC, "fit_closed_form", nan_fit)
    result = run("train", *HENON, "--model", "ngrc", "-o", tmp_path / "m")
    line = assert_refused(result, "non-finite", "-p ridge=")
    assert "learning" not in line and "teacher" not in line
    assert list(tmp_path.iterdir()) == []


# -- 9: killed at any moment, resumed with nothing lost or counted twice --------------------------
KILLED = [*TRAIN, "--epochs", "60"]  # a checkpoint every ~30 ms: kills land in writes too
# `diffdyn` itself, with the tests' tiny model registered.
MAIN = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_train; " + (
    "from diffdyn.entry import main; main()"
)


def _killed_run(folder: Path, sig: int, delay: float, meanwhile=None):
    command = [sys.executable, "-c", MAIN]
    process = subprocess.Popen([*command, *map(str, KILLED), "-o", str(folder)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "JAX_PLATFORMS": "cpu"})  # fmt: skip
    deadline = time.monotonic() + 120
    while not (folder / "resume" / "state.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.005)
    if meanwhile is not None:
        meanwhile()
    time.sleep(delay)  # somewhere in the following epochs: in a step, a validation, a write
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.slow
def test_killed_training_resumes_with_nothing_lost_or_counted_twice(tmp_path):
    reference = tmp_path / "reference"
    assert run(*KILLED, "-o", reference).exit_code == 0
    expected = json.loads((reference / "model.json").read_text())
    rng = random.Random(13)
    for n, sig in enumerate([signal.SIGTERM, signal.SIGKILL, signal.SIGTERM]):
        folder = tmp_path / f"m{n}"

        def second_training():  # while the first one runs and holds the lock
            for extra in ([], ["--force"], ["--resume"]):
                result = run(*KILLED, "-o", folder, *extra)
                assert_refused(result, f"{folder} is in use by another diffdyn train (pid")

        done = _killed_run(folder, sig, rng.uniform(0.0, 0.4), second_training if n == 0 else None)
        if sig == signal.SIGTERM:
            assert done.returncode == 143, (done.returncode, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert lines[-1].startswith("error: stopped by SIGTERM") and "--resume" in lines[-1]
            assert sum(line.startswith("error:") for line in lines) == 1
            assert "Traceback" not in done.stderr
            assert _leftovers(folder) == []  # no temporary file, no lock
        else:
            assert done.returncode == -signal.SIGKILL
        result = run(*KILLED, "-o", folder, "--resume")
        assert result.exit_code == 0, result.stderr
        sidecar = json.loads((folder / "model.json").read_text())
        assert [r["step"] for r in sidecar["history"]] == [r["step"] for r in expected["history"]]
        assert sidecar["steps"] == expected["steps"]
        # Bit for bit the uninterrupted run: no step lost, none taken twice.
        assert (folder / "model.eqx").read_bytes() == (reference / "model.eqx").read_bytes()
        assert not (folder / "resume").exists() and _leftovers(folder) == []
