import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import diffdyn
from diffdyn.cli import app
from diffdyn.data import read_series
from diffdyn.systems import SYSTEMS, Lorenz63

runner = CliRunner()
# Every simulation here has the same shape and settings, so Diffrax compiles once.
SHORT = ["--steps", "200", "--transient", "1"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert diffdyn.__version__ in result.stdout


@pytest.mark.parametrize("command", [[], ["systems"], ["simulate"]])
def test_help_shows_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    assert "Example: diffdyn" in " ".join(result.stdout.split())


def test_no_command_prints_help():
    result = run()
    assert result.exit_code == 0
    assert "simulate" in result.stdout and "systems" in result.stdout


def test_systems_lists_every_system():
    result = run("systems")
    assert result.exit_code == 0
    for name in SYSTEMS:
        assert name in result.stdout
    (row,) = [line for line in result.stdout.splitlines() if line.split()[:1] == ["lorenz63"]]
    assert "0.9056" in row
    assert "sigma=10 rho=28 beta=2.667" in row
    assert "1.104" in row  # Lyapunov time 1/0.9056


def test_systems_json():
    result = run("systems", "--json")
    assert result.exit_code == 0
    facts = {f["name"]: f for f in json.loads(result.stdout)}
    assert set(facts) == set(SYSTEMS)
    lorenz = facts["lorenz63"]
    assert lorenz["lyapunov_exponent"] == 0.9056
    assert lorenz["parameters"] == {"sigma": 10.0, "rho": 28.0, "beta": 2.666667}
    assert lorenz["dimension"] == 3
    for f in facts.values():
        lam = f["lyapunov_exponent"]
        if lam is None or lam <= 0:
            assert f["lyapunov_time"] is None


def test_systems_detail():
    result = run("systems", "lorenz63")
    assert result.exit_code == 0
    assert Lorenz63.lyapunov_source in result.stdout
    assert "0.9056" in result.stdout
    assert "sigma=10 rho=28 beta=2.667" in result.stdout


def test_systems_detail_unknown_name_suggests():
    assert_one_line_error(run("systems", "lorenz6"), "lorenz63")


def test_simulate_writes_series_and_plot(tmp_path):
    out, png = tmp_path / "l.csv", tmp_path / "l.png"
    result = run("simulate", "lorenz63", *SHORT, "-o", out, "--plot", png)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # the spinner draws only on a terminal
    series = read_series(out)
    assert series.values.shape == (200, 3)
    assert series.variables == ("x", "y", "z")
    assert png.stat().st_size > 1000
    assert "lorenz63" in result.stdout and "0.9056" in result.stdout and str(out) in result.stdout


def test_simulate_observe_and_param(tmp_path):
    default, changed = tmp_path / "default.csv", tmp_path / "rho35.npz"
    assert run("simulate", "lorenz63", *SHORT, "--observe", "x,z", "-o", default).exit_code == 0
    result = run("simulate", "lorenz63", *SHORT, "--observe", "x,z", "-p", "rho=35", "-o", changed)
    assert result.exit_code == 0, result.stderr
    a, b = read_series(default), read_series(changed)
    assert a.variables == b.variables == ("x", "z")
    assert b.metadata["parameters"]["rho"] == 35
    assert not np.allclose(a.values, b.values)
    # λ₁ is known only at the default parameters.
    assert "λ₁" not in result.stdout


def test_simulate_force_replaces(tmp_path):
    out = tmp_path / "l.csv"
    out.write_text("old")
    assert run("simulate", "lorenz63", *SHORT, "-o", out, "--force").exit_code == 0
    assert read_series(out).values.shape == (200, 3)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["nosuch"], ["unknown system 'nosuch'", "diffdyn systems"]),
        (["lorenz6"], ["Did you mean", "'lorenz63'"]),
        (["lorenz63", "-p", "rh=3"], ["no parameter 'rh'", "'rho'"]),
        (["lorenz63", "-p", "rho=abc"], ["must be a number"]),
        (["lorenz63", "-p", "rho"], ["NAME=VALUE"]),
        (["lorenz63", "--dt", "0"], ["dt must be a positive"]),
        (["lorenz63", "--dt", "-0.1"], ["dt must be a positive"]),
        (["lorenz63", "--steps", "0"], ["--steps"]),
        (["lorenz63", "--steps", "-5"], ["--steps"]),
        (["lorenz63", "--steps", "10", "--t1", "3"], ["not both"]),
        (["lorenz63", "--observe", "x,w"], ["no variable 'w'"]),
        (["lorenz63", "--stepz", "3"], ["--stepz"]),
        (["logistic", "--dt", "0.5"], ["map"]),
    ],
)
def test_simulate_bad_input_is_one_line(tmp_path, args, fragments):
    result = run("simulate", *args, "-o", tmp_path / "x.csv")
    assert_one_line_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_simulate_bad_output_paths(tmp_path):
    assert_one_line_error(
        run("simulate", "lorenz63", "-o", tmp_path / "missing" / "x.csv"), "does not exist"
    )
    assert_one_line_error(run("simulate", "lorenz63", "-o", tmp_path / "x.txt"), ".txt")
    assert_one_line_error(
        run("simulate", "lorenz63", "-o", tmp_path / "x.csv", "--plot", tmp_path / "no" / "p.png"),
        "does not exist",
    )
    assert list(tmp_path.iterdir()) == []


def test_existing_files_are_untouched_without_force(tmp_path):
    out, png = tmp_path / "l.csv", tmp_path / "l.png"
    out.write_bytes(b"time,x\n0,1\n1,2\n")
    line = assert_one_line_error(run("simulate", "lorenz63", *SHORT, "-o", out), "--force")
    assert "already exists" in line
    assert out.read_bytes() == b"time,x\n0,1\n1,2\n"

    fresh = tmp_path / "fresh.csv"
    png.write_bytes(b"not a png")
    assert_one_line_error(run("simulate", "lorenz63", *SHORT, "-o", fresh, "--plot", png))
    assert png.read_bytes() == b"not a png"
    assert not fresh.exists()  # nothing was computed or written


def _entry_point() -> str:
    script = Path(sys.executable).parent / "diffdyn"
    found = str(script) if script.exists() else shutil.which("diffdyn")
    if found is None:
        pytest.skip("the diffdyn console script is not installed")
    return found


def test_entry_point_subprocess(tmp_path):
    diffdyn_script = _entry_point()
    ok = subprocess.run(
        [diffdyn_script, "--version"], capture_output=True, text=True, cwd=tmp_path
    )
    assert ok.returncode == 0
    assert diffdyn.__version__ in ok.stdout

    bad = subprocess.run(
        [diffdyn_script, "simulate", "lorenz6", "-o", "x.csv"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1, bad.stderr
    assert lines[0].startswith("error: ") and "lorenz63" in lines[0]
    assert "Traceback" not in bad.stderr
    assert bad.stdout == ""

    usage = subprocess.run(
        [diffdyn_script, "simulate", "lorenz63"], capture_output=True, text=True, cwd=tmp_path
    )
    assert usage.returncode == 2
    assert usage.stderr.strip().count("\n") == 0 and "--output" in usage.stderr
    assert list(tmp_path.iterdir()) == []
