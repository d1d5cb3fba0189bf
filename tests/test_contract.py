"""The CLI contract under hostile input (issue 13): one table of bad inputs × commands.

Each case must end with exit status 2, exactly one `error: ...` line on stderr naming the
problem, no traceback, and the folder it ran in exactly as it was (no file changed, none
created, no folder left behind). Property-based tests generate malformed CSV files and
option values and check the same. `compare`/`results` and `train`'s resume, locks and signals
have their own files (test_contract_compare.py, test_contract_train.py).
"""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from contract import assert_refused, run, snapshot
from diffdyn.data import Series, read_series, write_series
from diffdyn.errors import DiffdynError, Terminated
from diffdyn.files import atomic_write
from diffdyn.options import MAX_INT, check_number
from diffdyn.train.config import TrainConfig


def _write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A folder with good and bad inputs, a trained model and existing outputs."""
    root = tmp_path_factory.mktemp("contract")
    t = np.arange(600) * 0.01
    good = Series(np.stack([np.sin(t), np.cos(3 * t)], 1), t, ("x", "y"), dt=0.01)
    write_series(good, root / "good.csv")
    _write(root / "empty.csv", "")
    _write(root / "header.csv", "time,x\n")
    _write(root / "garbage.csv", b"\x00\x01\xff garbage\nfoo")
    _write(root / "nonnum.csv", "time,x\n0,a\n1,b\n2,c\n")
    _write(root / "ragged.csv", "time,x,y\n0,1,2\n1,2\n2,3,4\n")
    rows = "\n".join(f"{k * 0.01:.2f},{math.sin(k * 0.01)}" for k in range(20))
    _write(root / "rows20.csv", "time,x\n" + rows + "\n")
    lines = [f"{k * 0.01:.2f},{math.sin(k * 0.01)}" for k in range(500)]
    _write(root / "nan.csv", "time,x\n" + "\n".join(lines[:100] + ["1.00,nan"] + lines[101:]))
    _write(root / "inf.csv", "time,x\n" + "\n".join(lines[:100] + ["1.00,inf"] + lines[101:]))
    _write(root / "dec.csv", "time,x\n" + "\n".join(reversed(lines)) + "\n")
    _write(root / "dup.csv", "time,x\n" + "\n".join(lines[:50] + lines[49:]) + "\n")
    big = [f"{k * 0.01:.2f},{1e308 * math.sin(k * 0.01)}" for k in range(500)]
    _write(root / "big.csv", "time,x\n" + "\n".join(big) + "\n")
    gap = [f"{k * 0.01 + (50 if k >= 250 else 0):.2f},{math.sin(k * 0.01)}" for k in range(500)]
    _write(root / "gap.csv", "time,x\n" + "\n".join(gap) + "\n")
    _write(root / "notes.txt", "not a series\n")
    sqlite3.connect(root / "foreign.sqlite").execute("create table t (a)").connection.commit()
    (root / "out").mkdir()
    _write(root / "out" / "existing.csv", "time,x\n0,1\n1,2\n")
    _write(root / "out" / "existing.json", "{}\n")
    result = run("train", "--data", root / "good.csv", "--model", "persistence", "-o", root / "m")
    assert result.exit_code == 0, result.stderr
    return root


# (id, arguments with {r} for the folder, fragments the one line must contain)
CASES = [
    # -- systems / simulate ---------------------------------------------------------------
    ("systems-unknown", "systems lorenz64", ["lorenz64", "lorenz63"]),
    ("sim-unknown", "simulate lorenz64 -o {r}/out/s.csv", ["lorenz64"]),
    ("sim-param-name", "simulate lorenz63 -p rhoo=3 -o {r}/out/s.csv", ["rhoo"]),
    ("sim-param-text", "simulate lorenz63 -p rho=abc -o {r}/out/s.csv", ["rho"]),
    ("sim-param-nan", "simulate lorenz63 -p rho=nan -o {r}/out/s.csv", ["rho"]),
    ("sim-steps-1", "simulate lorenz63 --steps 1 -o {r}/out/s.csv", ["--steps"]),
    ("sim-rtol-0", "simulate lorenz63 --rtol 0 -o {r}/out/s.csv", ["rtol", "positive"]),
    ("sim-atol-neg", "simulate lorenz63 --atol -1 -o {r}/out/s.csv", ["atol"]),
    ("sim-rtol-inf", "simulate lorenz63 --rtol inf -o {r}/out/s.csv", ["rtol"]),
    ("sim-dt-0", "simulate lorenz63 --dt 0 --steps 10 -o {r}/out/s.csv", ["dt"]),
    ("sim-dt-nan", "simulate lorenz63 --dt nan --steps 10 -o {r}/out/s.csv", ["dt"]),
    ("sim-t1-inf", "simulate lorenz63 --t1 inf -o {r}/out/s.csv", ["t1"]),
    ("sim-noise-neg", "simulate lorenz63 --noise -1 -o {r}/out/s.csv", ["--noise"]),
    ("sim-observe", "simulate lorenz63 --observe w -o {r}/out/s.csv", ["'w'"]),
    ("sim-suffix", "simulate lorenz63 -o {r}/out/s.xyz", [".xyz"]),
    ("sim-no-folder", "simulate lorenz63 -o {r}/nowhere/s.csv", ["does not exist"]),
    ("sim-parent-file", "simulate lorenz63 -o {r}/notes.txt/s.csv", ["is a file"]),
    ("sim-exists", "simulate lorenz63 -o {r}/out/existing.csv", ["already exists", "--force"]),
    ("sim-is-folder", "simulate lorenz63 -o {r}/out", ["no suffix"]),
    ("sim-huge", "simulate lorenz63 --steps 10000000000 -o {r}/out/s.csv", ["memory"]),
    ("sim-seed-neg", "simulate lorenz63 --seed -1 -o {r}/out/s.csv", ["--seed"]),
    ("sim-seed-huge", "simulate lorenz63 --seed 99999999999999999999 -o {r}/out/s.csv", ["seed"]),
    # -- train: options and hyperparameters ---------------------------------------------
    ("train-model", "train --data {r}/good.csv --model lstmm -o {r}/out/t", ["lstmm", "lstm"]),
    (
        "train-hidden-1e9",
        "train --data {r}/good.csv --model lstm -p hidden=1e9 -o {r}/out/t",
        ["hidden", "at most"],
    ),
    (
        "train-hidden-1e5",
        "train --data {r}/good.csv --model lstm -p hidden=100000 -o {r}/out/t",
        ["memory", "hidden"],
    ),
    (
        "train-hidden-text",
        "train --data {r}/good.csv --model lstm -p hidden=big -o {r}/out/t",
        ["hidden"],
    ),
    (
        "train-hidden-neg",
        "train --data {r}/good.csv --model lstm -p hidden=-4 -o {r}/out/t",
        ["hidden"],
    ),
    (
        "train-hidden-frac",
        "train --data {r}/good.csv --model lstm -p hidden=4.5 -o {r}/out/t",
        ["whole"],
    ),
    (
        "train-esn-size",
        "train --data {r}/good.csv --model esn -p size=1000000 -o {r}/out/t",
        ["memory", "size"],
    ),
    (
        "train-ngrc-features",
        "train --data {r}/good.csv --model ngrc -p delays=2000 -p order=3 -o {r}/out/t",
        ["memory"],
    ),
    (
        "train-param-name",
        "train --data {r}/good.csv --model lstm -p hiden=4 -o {r}/out/t",
        ["hiden", "hidden"],
    ),
    (
        "train-param-form",
        "train --data {r}/good.csv --model lstm -p hidden -o {r}/out/t",
        ["NAME=VALUE"],
    ),
    (
        "train-lr-inf",
        "train --data {r}/good.csv --model lstm --learning-rate inf -o {r}/out/t",
        ["learning_rate", "finite"],
    ),
    (
        "train-lr-nan",
        "train --data {r}/good.csv --model lstm --learning-rate nan -o {r}/out/t",
        ["learning_rate"],
    ),
    (
        "train-lr-neg",
        "train --data {r}/good.csv --model lstm --learning-rate -1 -o {r}/out/t",
        ["learning_rate", "positive"],
    ),
    (
        "train-clip-neg",
        "train --data {r}/good.csv --model lstm --option clip=-1 -o {r}/out/t",
        ["clip", "positive"],
    ),
    (
        "train-wd-neg",
        "train --data {r}/good.csv --model lstm --option weight_decay=-1 -o {r}/out/t",
        ["weight_decay"],
    ),
    (
        "train-patience-inf",
        "train --data {r}/good.csv --model lstm --option patience=inf -o {r}/out/t",
        ["patience", "whole"],
    ),
    (
        "train-patience-frac",
        "train --data {r}/good.csv --model lstm --option patience=1.5 -o {r}/out/t",
        ["patience", "whole"],
    ),
    (
        "train-validation",
        "train --data {r}/good.csv --model lstm --option validation=1 -o {r}/out/t",
        ["validation"],
    ),
    (
        "train-option-name",
        "train --data {r}/good.csv --model lstm --option clipp=1 -o {r}/out/t",
        ["clipp"],
    ),
    (
        "train-option-twice",
        "train --data {r}/good.csv --model lstm --epochs 2 --option epochs=3 -o {r}/out/t",
        ["twice"],
    ),
    (
        "train-strategy",
        "train --data {r}/good.csv --model lstm --strategy fre -o {r}/out/t",
        ["fre", "free"],
    ),
    (
        "train-epochs-0",
        "train --data {r}/good.csv --model lstm --epochs 0 -o {r}/out/t",
        ["--epochs"],
    ),
    (
        "train-context-huge",
        "train --data {r}/good.csv --model lstm --context 99999999999 -o {r}/out/t",
        ["context"],
    ),
    (
        "train-budget-0",
        "train --data {r}/good.csv --model lstm --budget 0 -o {r}/out/t",
        ["--budget"],
    ),
    (
        "train-budget-text",
        "train --data {r}/good.csv --model lstm --budget soon -o {r}/out/t",
        ["--budget"],
    ),
    (
        "train-seed-huge",
        "train --data {r}/good.csv --model persistence --seed 99999999999999999999 -o {r}/out/t",
        ["seed"],
    ),
    (
        "train-irregular-choice",
        "train --data {r}/good.csv --model persistence --irregular maybe -o {r}/out/t",
        ["--irregular"],
    ),
    (
        "train-data-and-system",
        "train --data {r}/good.csv --system lorenz63 --model persistence -o {r}/out/t",
        ["exactly one"],
    ),
    ("train-no-data", "train --model persistence -o {r}/out/t", ["exactly one"]),
    (
        "train-out-parent-file",
        "train --data {r}/good.csv --model persistence -o {r}/notes.txt/t",
        ["is a file"],
    ),
    (
        "train-out-exists",
        "train --data {r}/good.csv --model persistence -o {r}/m",
        ["already exists"],
    ),
    (
        "train-force-resume",
        "train --data {r}/good.csv --model persistence --force --resume -o {r}/m",
        ["not both"],
    ),
    # -- train: bad files ------------------------------------------------------------------
    (
        "train-missing-file",
        "train --data {r}/missing.csv --model persistence -o {r}/out/t",
        ["missing.csv"],
    ),
    ("train-folder-as-file", "train --data {r}/out --model persistence -o {r}/out/t", ["out"]),
    ("train-txt", "train --data {r}/notes.txt --model persistence -o {r}/out/t", [".txt"]),
    ("train-empty", "train --data {r}/empty.csv --model persistence -o {r}/out/t", ["empty.csv"]),
    (
        "train-header-only",
        "train --data {r}/header.csv --model persistence -o {r}/out/t",
        ["header.csv"],
    ),
    (
        "train-garbage",
        "train --data {r}/garbage.csv --model persistence -o {r}/out/t",
        ["garbage.csv"],
    ),
    (
        "train-nonnum",
        "train --data {r}/nonnum.csv --model persistence -o {r}/out/t",
        ["nonnum.csv", "'a'"],
    ),
    (
        "train-ragged",
        "train --data {r}/ragged.csv --model persistence -o {r}/out/t",
        ["ragged.csv"],
    ),
    ("train-nan", "train --data {r}/nan.csv --model persistence -o {r}/out/t", ["nan.csv", "NaN"]),
    (
        "train-inf",
        "train --data {r}/inf.csv --model persistence -o {r}/out/t",
        ["inf.csv", "infinite"],
    ),
    (
        "train-decreasing",
        "train --data {r}/dec.csv --model persistence -o {r}/out/t",
        ["dec.csv", "sort"],
    ),
    (
        "train-duplicate-time",
        "train --data {r}/dup.csv --model persistence -o {r}/out/t",
        ["dup.csv", "same time"],
    ),
    ("train-20-rows", "train --data {r}/rows20.csv --model lstm -o {r}/out/t", ["samples"]),
    (
        "train-float32-overflow",
        "train --data {r}/big.csv --model persistence -o {r}/out/t",
        ["big.csv", "float32", "line"],
    ),
    (
        "train-irregular",
        "train --data {r}/gap.csv --model persistence -o {r}/out/t",
        ["irregular sampling", "--irregular resample"],
    ),
    # -- evaluate / forecast / explain ----------------------------------------------------
    ("eval-missing-model", "evaluate {r}/nomodel --data {r}/good.csv", ["nomodel"]),
    ("eval-file-as-model", "evaluate {r}/notes.txt --data {r}/good.csv", ["notes.txt"]),
    ("eval-not-a-model", "evaluate {r}/out --data {r}/good.csv", ["out"]),
    (
        "eval-into-model",
        "evaluate {r}/m --data {r}/good.csv -o {r}/m/model.json",
        ["model folder"],
    ),
    (
        "eval-out-exists",
        "evaluate {r}/m --data {r}/good.csv -o {r}/out/existing.json",
        ["already exists", "--force"],
    ),
    ("eval-out-suffix", "evaluate {r}/m --data {r}/good.csv -o {r}/out/scores.csv", [".json"]),
    ("eval-threshold-neg", "evaluate {r}/m --data {r}/good.csv --threshold -1", ["threshold"]),
    ("eval-threshold-nan", "evaluate {r}/m --data {r}/good.csv --threshold nan", ["threshold"]),
    (
        "eval-lyapunov-inf",
        "evaluate {r}/m --data {r}/good.csv --lyapunov-exponent inf",
        ["lyapunov"],
    ),
    ("eval-starts-1", "evaluate {r}/m --data {r}/good.csv --starts 1", ["--starts"]),
    ("eval-bad-file", "evaluate {r}/m --data {r}/nan.csv", ["nan.csv"]),
    ("eval-irregular", "evaluate {r}/m --data {r}/gap.csv", ["irregular"]),
    ("eval-horizon-0", "evaluate {r}/m --data {r}/good.csv --horizon 0", ["--horizon"]),
    ("fc-steps-0", "forecast {r}/m --data {r}/good.csv --steps 0 -o {r}/out/f.csv", ["--steps"]),
    (
        "fc-huge",
        "forecast {r}/m --data {r}/good.csv --steps 10000000000 -o {r}/out/f.csv",
        ["memory"],
    ),
    (
        "fc-exists",
        "forecast {r}/m --data {r}/good.csv --steps 5 -o {r}/out/existing.csv",
        ["already exists"],
    ),
    (
        "fc-plot-suffix",
        "forecast {r}/m --data {r}/good.csv --steps 5 -o {r}/out/f.csv --plot {r}/out/f.txt",
        [".txt"],
    ),
    (
        "fc-missing-model",
        "forecast {r}/nomodel --data {r}/good.csv --steps 5 -o {r}/out/f.csv",
        ["nomodel"],
    ),
    (
        "fc-bad-file",
        "forecast {r}/m --data {r}/garbage.csv --steps 5 -o {r}/out/f.csv",
        ["garbage.csv"],
    ),
    ("explain-not-attention", "explain {r}/m --data {r}/good.csv -o {r}/out/a.png", ["attention"]),
    ("explain-suffix", "explain {r}/m --data {r}/good.csv -o {r}/out/a.csv", [".csv"]),
    # -- task --------------------------------------------------------------------------------
    ("task-unknown", "task copyy --steps 1", ["copyy", "copy"]),
    ("task-model", "task copy --model gpt --steps 1", ["gpt"]),
    ("task-param", "task copy --model lstm -p hidden=1e9 --steps 1", ["hidden"]),
    ("task-out-exists", "task copy --steps 1 -o {r}/out/existing.json", ["already exists"]),
    ("task-budget", "task copy --budget -5", ["--budget"]),
    # -- compare (more in test_contract_compare.py) ---------------------------------------
    (
        "compare-threshold-inf",
        "compare --systems henon --models persistence --threshold inf -o {r}/out/c",
        ["threshold"],
    ),
    (
        "compare-irregular",
        "compare --data {r}/gap.csv --models persistence -o {r}/out/c",
        ["irregular sampling"],
    ),
    (
        "compare-irregular-choice",
        "compare --data {r}/good.csv --models persistence --irregular maybe -o {r}/out/c",
        ["--irregular"],
    ),
    (
        "compare-lyapunov-nan",
        "compare --systems henon --models persistence --lyapunov-exponent nan -o {r}/out/c",
        ["lyapunov"],
    ),
    (
        "compare-float32-overflow",
        "compare --data {r}/big.csv --models persistence -o {r}/out/c",
        ["big.csv", "float32"],
    ),
    # -- results -----------------------------------------------------------------------------
    ("results-file", "results {r}/good.csv", ["good.csv"]),
    ("results-empty-folder", "results {r}/out", ["out"]),
    ("results-foreign-sqlite", "results {r}/foreign.sqlite", ["foreign.sqlite"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line_and_changes_nothing(place, case):
    _, command, fragments = case
    before = snapshot(place)
    result = run(*command.format(r=place).split())
    assert_refused(result, *fragments)
    assert snapshot(place) == before, "a refused request changed the folder"


def test_irregular_file_can_be_resampled_or_taken_as_it_is(place, tmp_path):
    for policy in ("resample", "proceed"):
        out = tmp_path / policy
        result = run("train", "--data", place / "gap.csv", "--model", "persistence",
                     "--irregular", policy, "-o", out)  # fmt: skip
        assert result.exit_code == 0, result.stderr
        scored = run("evaluate", out, "--data", place / "gap.csv", "--irregular", policy)
        assert scored.exit_code == 0, scored.stderr
        # The held-out end of the same (regularised) file is recognised.
        assert "held-out end" in scored.stdout


def test_compare_resamples_an_irregular_file_when_asked(place, tmp_path):
    out = tmp_path / "c"
    result = run("compare", "--data", place / "gap.csv", "--models", "persistence",
                 "--irregular", "resample", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert (out / "results.sqlite").exists()


def test_evaluate_replaces_its_own_default_file_and_an_explicit_one_with_force(place, tmp_path):
    target = tmp_path / "scores.json"
    target.write_text("{}")
    assert run("evaluate", place / "m", "--data", place / "good.csv", "-o", target,
               "--force").exit_code == 0  # fmt: skip
    assert "vpt" in target.read_text()


@pytest.mark.parametrize("stored", ["{not json", "[1, 2]", "null"])
def test_a_damaged_stored_run_configuration_is_one_line(place, tmp_path, stored):
    out = tmp_path / "c"
    assert (
        run("compare", "--systems", "henon", "--models", "persistence", "-o", out).exit_code == 0
    )
    with sqlite3.connect(out / "results.sqlite") as db:
        db.execute("UPDATE runs SET config = ?", (stored,))
    before = snapshot(out)
    again = run("compare", "--systems", "henon", "--models", "persistence", "-o", out)
    assert_refused(again, "damaged run configuration")
    assert snapshot(out) == before


@pytest.mark.parametrize(
    ("interrupt", "status", "words"),
    [(KeyboardInterrupt, 130, "interrupted"), (Terminated, 143, "SIGTERM")],
)
def test_an_interrupt_is_one_line_with_its_status(place, monkeypatch, interrupt, status, words):
    def stop(**_):
        raise interrupt()

    monkeypatch.setattr("diffdyn.cli.load_data", stop)
    before = snapshot(place)
    result = run("train", "--data", place / "good.csv", "--model", "persistence",
                 "-o", place / "out" / "t")  # fmt: skip
    assert result.exit_code == status
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert "--resume" in lines[0]
    assert snapshot(place) == before


_SIGNAL_WHILE_JAX_IMPORTS = """
import os, signal, sys

class SignalOnJax:  # sends the signal as `import jax` begins, then lets the import go on
    def find_spec(self, name, path=None, target=None):
        if name == "jax":
            os.kill(os.getpid(), signal.{name})
        return None

sys.meta_path.insert(0, SignalOnJax())
from diffdyn.entry import main
main()
"""


@pytest.mark.parametrize(
    ("name", "status", "words"), [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "SIGTERM")]
)
def test_a_signal_while_jax_is_imported_is_one_line(tmp_path, name, status, words):
    # Raised inside the import, the interrupt became NumPy's ImportError traceback or an abort.
    code = _SIGNAL_WHILE_JAX_IMPORTS.format(name=name)
    done = subprocess.run(
        [sys.executable, "-c", code, "systems"], cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == status, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {'stopped by SIGTERM' if name == 'SIGTERM' else 'interrupted'} while diffdyn"
        " was starting; nothing was done."
    ]
    assert words in done.stderr and done.stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, Terminated])
def test_an_interrupted_write_leaves_no_temporary_file_and_the_old_file(tmp_path, interrupt):
    target = tmp_path / "kept.csv"
    target.write_text("old")

    def write(file):
        file.write(b"half of the new")
        raise interrupt()

    with pytest.raises(interrupt):
        atomic_write(target, write)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.csv"]


def test_a_very_long_simulation_does_not_overflow_the_solver_step_count(tmp_path):
    # 4096 + 256 × steps once overflowed int32 (max_steps) above 8.4 million samples; a tiny
    # dt keeps the solve short (6 s on 2 cores) while the count of saves is that large.
    args = ["--steps", "9000000", "--dt", "1e-6", "--transient", "0"]
    result = run("simulate", "lorenz63", *args, "-o", tmp_path / "s.npz")
    assert result.exit_code == 0, result.stderr
    assert len(read_series(tmp_path / "s.npz")) == 9_000_000


# -- property-based: malformed CSVs and option values ---------------------------------------
CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e999", "abc", "1,2", '"', "None"]),
    st.text(max_size=5),
)


@st.composite
def csv_text(draw):
    columns = draw(st.integers(1, 4))
    rows = draw(st.integers(0, 12))
    header = draw(st.sampled_from([["time"], []])) + [f"v{j}" for j in range(columns)]
    lines = [",".join(header)]
    for i in range(rows):
        cells = [str(i * 0.1)] if header[0] == "time" else []
        width = draw(st.integers(max(0, columns - 1), columns + 1))
        cells += [draw(CELLS) for _ in range(width)]
        lines.append(",".join(cells))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=csv_text())
def test_a_malformed_csv_is_read_or_refused_with_one_sentence(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    try:
        series = read_series(path)
    except DiffdynError as error:
        message = str(error)
        assert message and "\n" not in message.strip()
        return
    values = np.asarray(series.values)
    assert np.all(np.isfinite(values)) and np.all(np.abs(values) <= np.finfo(np.float32).max)
    assert np.all(np.diff(np.asarray(series.times)) > 0)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=csv_text())
def test_train_on_a_malformed_csv_succeeds_or_exits_2_with_one_line(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    out = tmp_path / "model"
    result = run("train", "--data", path, "--model", "persistence", "-o", out, "--force")
    if result.exit_code != 0:
        assert_refused(result)
        assert not out.exists()


TEXT = st.one_of(
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**25), 10**25).map(str),
)


@settings(max_examples=200, deadline=None)
@given(raw=TEXT, whole=st.booleans())
def test_check_number_returns_a_finite_number_in_range_or_one_sentence(raw, whole):
    try:
        value = check_number("option x", raw, whole=whole, low=0, high=1000)
    except DiffdynError as error:
        assert str(error).startswith("option x must be")
        return
    assert math.isfinite(value) and 0 <= value <= 1000
    assert not whole or (isinstance(value, int) and abs(value) <= MAX_INT)


def test_a_whole_number_below_its_lower_bound_is_not_told_the_machine_limit():
    # the implicit MAX_INT bound of whole numbers is named only when the value breaks it
    with pytest.raises(DiffdynError, match=r"^degree must be at least 1; got 0\.$"):
        check_number("degree", 0, whole=True, low=1)
    with pytest.raises(DiffdynError, match=f"at most {MAX_INT}"):
        check_number("degree", 10**12, whole=True, low=1)
    with pytest.raises(DiffdynError, match=r"^y must be at least 1 and at most 3; got 5\.$"):
        check_number("y", 5, whole=True, low=1, high=3)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(["clip", "patience", "learning_rate", "epochs", "validation",
                             "weight_decay", "warmup", "batch_size"]), raw=TEXT)  # fmt: skip
def test_a_training_option_is_valid_or_refused_in_one_sentence(name, raw):
    try:
        config = TrainConfig.from_options(**{name: raw})
    except DiffdynError as error:
        assert f"training option {name}" in str(error)
        return
    value = getattr(config, name)
    assert math.isfinite(value) and value >= 0
