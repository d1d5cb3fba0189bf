"""`diffdyn task`: an algorithmic memory task trained and scored per length."""

import json

from test_cli import assert_one_line_error, run


def test_task_trains_and_reports_bit_error_per_length(tmp_path):
    out = tmp_path / "copy.json"
    result = run("task", "copy", "--budget", "2", "-p", "hidden=16", "-o", out)
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "bit error per length" in text and "16 *" in text
    stored = json.loads(out.read_text())
    errors = {int(k): v for k, v in stored["bit_error_per_length"].items()}
    assert sorted(errors) == list(range(1, 17))
    assert all(0.0 <= e <= 1.0 for e in errors.values())
    assert stored["trained_lengths"] == [1, 8] and stored["steps"] > 0
    # The same output is not replaced without --force.
    again = run("task", "copy", "--budget", "1", "-o", out)
    assert_one_line_error(again, "exists")


def test_task_bad_input_is_one_line():
    assert_one_line_error(run("task", "cpy"), "unknown task 'cpy'", "copy")
    assert_one_line_error(run("task", "copy", "--model", "lstn"), "unknown model 'lstn'")
    assert_one_line_error(run("task", "copy", "-p", "hiden=3"), "no hyperparameter 'hiden'")
    assert_one_line_error(run("task", "copy", "-p", "hidden"), "NAME=VALUE")
    assert_one_line_error(run("task", "copy", "--budget", "-1"), "--budget")


def test_dnc_memory_too_small_names_the_minimum():
    assert_one_line_error(
        run("task", "copy", "--model", "dnc", "-p", "memory_size=8"), "at least memory_size=16"
    )
