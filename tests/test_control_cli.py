"""`diffdyn control`: the folder it writes, and its one-line errors (nothing written)."""

import json
from pathlib import Path

import pytest

from diffdyn.control import load_controller
from test_cli import assert_one_line_error, run


def test_control_writes_the_folder(tmp_path):
    out = tmp_path / "pendulum"
    result = run("control", "pendulum", "--task", "stabilise", "--steps", "60", "--horizon",
                 "2", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "stabilise pendulum" in text and "linear" in text and "success" in text
    names = sorted(p.name for p in out.iterdir())
    assert names == ["animation.gif", "cost.png", "policy.eqx", "policy.json", "result.json",
                     "trajectory.png"]  # fmt: skip
    assert (out / "animation.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    stored = json.loads((out / "result.json").read_text())
    assert stored["request"]["task"] == "stabilise" and stored["result"]["iterations"] == 60
    assert stored["files"]["recipe"]["builder"] == "diffdyn.control.policy:LinearPolicy"
    policy = load_controller(out)
    assert policy.limit == 5.0
    # No temporary folder is left beside it, and an earlier result is not overwritten.
    assert [p.name for p in tmp_path.iterdir()] == ["pendulum"]
    again = run("control", "pendulum", "--task", "stabilise", "--steps", "2", "-o", out)
    assert_one_line_error(again, "not empty")


USER_SYSTEMS = Path(__file__).parent / "user_systems.py"  # Blowup, Free


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["cartpol", "--task", "swing-up"], ["unknown system 'cartpol'", "cartpole"]),
        (["lorenz63", "--task", "stabilise"], ["lorenz63 has no control input"]),
        (["lorenz63-control", "--task", "swing-up"], ["does not support lorenz63-control"]),
        (["cartpole", "--task", "juggle"], ["unknown task 'juggle'"]),
        (["cartpole", "--task", "swing-up", "--horizon", "0"], ["--horizon"]),
        (["cartpole", "--task", "swing-up", "--horizon", "-2"], ["--horizon"]),
        (["cartpole", "--task", "swing-up", "--limit", "0"], ["--limit"]),
        (["cartpole", "--task", "swing-up", "--limit", "-1"], ["--limit"]),
        (["cartpole", "--task", "swing-up", "--policy", "rnn"], ["unknown policy 'rnn'"]),
        (
            ["FILE:Blowup", "--task", "stabilise", "--steps", "2"],
            ["diverged at iteration 0", "smaller step"],
        ),
        (["FILE:Free", "--task", "track"], ["does not support free"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(args, fragments, tmp_path):
    args = [a.replace("FILE", str(USER_SYSTEMS)) for a in args]
    out = tmp_path / "out"
    result = run("control", *args, "-o", out)
    assert_one_line_error(result, *fragments)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
