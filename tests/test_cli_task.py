"""`diffdyn task`: a memory task trained and scored per size, and its one-line errors."""

import json

import pytest

from test_cli import assert_one_line_error, run


@pytest.fixture(scope="module")
def two_hop_json(tmp_path_factory):
    """One short memn2n run on two-hop through the CLI (shared: compiling is the cost)."""
    out = tmp_path_factory.mktemp("task") / "two-hop.json"
    result = run(
        "task", "two-hop", "-m", "memn2n", "--steps", "100", "-p", "dim=8",
        "-p", "linear_start_steps=50", "-o", out,
    )  # fmt: skip
    return result, out


def test_task_trains_and_reports_bit_error_per_length(tmp_path):
    out = tmp_path / "copy.json"
    result = run("task", "copy", "--budget", "1", "-p", "hidden=8", "-o", out)
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "bit error per length (trained on 1–8)" in text and "16 *" in text
    stored = json.loads(out.read_text())
    errors = {int(k): v for k, v in stored["bit_error_per_length"].items()}
    assert sorted(errors) == list(range(1, 17))
    assert all(0.0 <= e <= 1.0 for e in errors.values())
    assert stored["trained_sizes"] == [1, 8] and stored["steps"] > 0
    assert stored["hyperparameters"]["hidden"] == 8
    # The same output is not replaced without --force, and is left as it was.
    before = out.read_text()
    again = run("task", "copy", "--budget", "1", "-o", out)
    assert_one_line_error(again, "exists")
    assert out.read_text() == before


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_two_hop_reports_accuracy_per_number_of_chains(two_hop_json):
    result, out = two_hop_json
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "two-hop, memn2n: accuracy per number of chains (trained on 3)" in text
    assert "6 *" in text and "bit error" not in text
    stored = json.loads(out.read_text())
    accuracy = {int(k): v for k, v in stored["accuracy_per_chains"].items()}
    assert sorted(accuracy) == list(range(1, 7))
    assert all(0.0 <= a <= 1.0 for a in accuracy.values())
    assert stored["metric"] == "accuracy" and stored["size"] == "chains"
    # The memory was sized for the longest evaluated story: 6 chains of 2 sentences.
    assert stored["hyperparameters"]["max_sentences"] == 12
    assert stored["hyperparameters"]["dim"] == 8 and stored["steps"] == 100


def test_linear_start_reinserts_the_softmax_after_the_given_steps(two_hop_json):
    result, out = two_hop_json
    assert "softmax re-inserted at step 50" in " ".join(result.stdout.split())
    assert json.loads(out.read_text())["softmax_reinserted_at"] == 50


def test_task_bad_input_is_one_line(tmp_path):
    assert_one_line_error(run("task", "cpy"), "unknown task 'cpy'", "copy", "two-hop")
    assert_one_line_error(run("task", "copy", "--model", "lstn"), "unknown model 'lstn'")
    assert_one_line_error(run("task", "copy", "-p", "hiden=3"), "no hyperparameter 'hiden'")
    assert_one_line_error(run("task", "copy", "-p", "hidden"), "NAME=VALUE")
    assert_one_line_error(run("task", "copy", "-p", "hidden=abc"), "hidden", "whole number")
    assert_one_line_error(run("task", "copy", "-p", "hidden=0"), "hidden", "at least 1")
    assert_one_line_error(run("task", "copy", "--budget", "-1"), "--budget")
    assert_one_line_error(run("task", "copy", "--steps", "0"), "--steps")
    # memn2n answers questions about stories: not a bit task.
    line = assert_one_line_error(run("task", "copy", "-m", "memn2n"), "only the two-hop")
    assert "lstm or dnc" in line
    out = tmp_path / "never.json"
    assert_one_line_error(
        run("task", "two-hop", "-m", "memn2n", "-p", "hops=0", "-o", out), "hops"
    )
    assert not out.exists()


def test_zero_heads_is_one_line():
    assert_one_line_error(run("task", "copy", "-m", "dnc", "-p", "read_heads=0"), "read_heads")
    assert_one_line_error(run("task", "copy", "-m", "dnc", "-p", "write_heads=0"), "write_heads")
    assert_one_line_error(
        run("task", "copy", "-m", "dnc", "-p", "controller=cnn"), "unknown controller 'cnn'"
    )


def test_memory_too_small_names_the_minimum():
    assert_one_line_error(
        run("task", "copy", "--model", "dnc", "-p", "memory_size=8"), "at least memory_size=16"
    )
    assert_one_line_error(
        run("task", "two-hop", "-m", "memn2n", "-p", "max_sentences=8"),
        "at least max_sentences=12",
    )
    assert_one_line_error(
        run("task", "associative-recall", "-m", "dnc", "-p", "memory_size=32"),
        "at least memory_size=36",
    )
