"""The task runner: two-hop story cutting and memory scattering, linear start, every model on
every task it can do, resuming an interrupted training."""

import shutil

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffdyn.tasks.runner import (
    LSTMSequenceModel,
    _fewer_chains,
    _scatter,
    check_task,
    run_task,
    score_task,
    train_task,
)
from diffdyn.tasks.two_hop import HOLDS, IN, WHERE, two_hop_vocab_size
from diffdyn.train import TrainingError

V = two_hop_vocab_size()


def _answer(story, question):
    box = {int(x): int(y) for x, r, y in story if r == IN}[int(question[1])]
    return {int(y): int(x) for x, r, y in story if r == HOLDS}[box]


def _random_story(rng, chains):
    """A two-hop story built here, independently of the generator."""
    items = 4 + rng.choice(8, chains, replace=False)
    boxes = 12 + rng.choice(8, chains, replace=False)
    rooms = 20 + rng.integers(0, 4, chains)
    facts = [(i, IN, b) for i, b in zip(items, boxes)] + [
        (r, HOLDS, b) for r, b in zip(rooms, boxes)
    ]
    story = np.array(facts)[rng.permutation(2 * chains)]
    asked = rng.integers(chains)
    return story, np.array([WHERE, items[asked], 0]), rooms[asked]


def test_fewer_chains_keeps_the_asked_chain_and_whole_chains():
    rng = np.random.default_rng(0)
    stories, questions, answers = map(np.array, zip(*(_random_story(rng, 5) for _ in range(40))))
    cut = jax.jit(jax.vmap(_fewer_chains, (0, 0, 0, None, None)), static_argnums=(3, 4))
    keys = jax.random.split(jax.random.key(1), 40)
    kept = np.zeros(V)
    for chains in (1, 3):
        fewer = np.asarray(cut(keys, stories, questions, chains, V))
        assert fewer.shape == (40, 2 * chains, 3)
        for full, story, q, a in zip(stories, fewer, questions, answers):
            assert _answer(story, q) == a  # still answerable, with the same answer
            boxes = story[:, 2]
            assert all(np.sum(boxes == b) == 2 for b in boxes)  # whole chains only
            where = [next(i for i, f in enumerate(full) if (f == s).all()) for s in story]
            assert where == sorted(where)  # in the story's order
            kept[boxes] += chains == 3
    assert np.count_nonzero(kept) == 8  # the other chains are random: every box gets kept


def test_scatter_places_sentences_in_order_among_empty_slots():
    story = jnp.arange(1, 13).reshape(4, 3)
    memory = np.asarray(_scatter(jax.random.key(3), story, 10))
    full = memory[memory.any(axis=1)]
    np.testing.assert_array_equal(full, np.asarray(story))
    assert memory.shape == (10, 3) and (memory == 0).all(axis=1).sum() == 6


def test_check_task_types_and_sizes_the_memory():
    assert check_task("two-hop", "memn2n", {"hops": "3", "init_scale": "0.1"})["hops"] == 3
    # default memories grow to hold the largest evaluated example
    assert check_task("two-hop", "memn2n", task_options={"chains": 4})["max_sentences"] == 16
    assert check_task("associative-recall", "dnc")["memory_size"] == 36
    assert check_task("copy", "dnc")["memory_size"] == 32
    assert check_task("copy", "dnc", {"controller": "feedforward"})["controller"] == "feedforward"


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_lstm_answers_two_hop_read_as_a_token_sequence():
    result = run_task(
        "two-hop", "lstm", budget=1e9, max_steps=50, task_options={"chains": 1},
        hyperparameters={"hidden": 8}, progress=False,
    )  # fmt: skip
    accuracy = result["accuracy_per_chains"]
    assert sorted(accuracy) == [1, 2] and all(0 <= a <= 1 for a in accuracy.values())
    assert result["batch_size"] == 16 and result["learning_rate"] == 1e-3


def test_associative_recall_is_scored_per_number_of_items():
    options = {"item_length": 1, "max_items": 3}
    untrained = LSTMSequenceModel(6 + 2, 6, key=jax.random.key(0), hidden=4)  # bits + 2 flags
    errors = score_task(
        untrained, "associative-recall", key=jax.random.key(1), task_options=options
    )
    assert sorted(errors) == [2, 3, 4, 5, 6]
    assert all(0.2 < e < 0.8 for e in errors.values())  # an untrained net guesses


def test_interrupted_task_training_resumes_bit_for_bit(tmp_path):
    """Trained through the core, a copy-task LSTM resumed from the state it had written after a
    validation point (what Ctrl-C there leaves) ends with the parameters of the whole run."""
    settings = dict(
        key=jax.random.key(0), budget=None, max_steps=200, hyperparameters={"hidden": 8},
        task_options={"max_length": 4}, progress=False,
    )  # fmt: skip
    whole, at_100 = tmp_path / "whole", tmp_path / "at-100"

    def keep_state_at_step_100(state):
        if state.step == 100:
            shutil.copytree(whole, at_100)

    full, full_record = train_task("copy", "lstm", checkpoint=whole,
                                   on_validation=keep_state_at_step_100, **settings)  # fmt: skip
    with pytest.raises(TrainingError, match="other settings"):
        train_task("copy", "lstm", checkpoint=at_100, resume=True,
                   **{**settings, "hyperparameters": {"hidden": 9}})  # fmt: skip
    resumed, record = train_task("copy", "lstm", checkpoint=at_100, resume=True, **settings)
    arrays = [jax.tree_util.tree_leaves(eqx.filter(n, eqx.is_array)) for n in (full, resumed)]
    for a, b in zip(*arrays):
        np.testing.assert_array_equal(a, b)
    assert record["steps"] == full_record["steps"] == 200
    assert record["final_loss"] == full_record["final_loss"]


@pytest.mark.slow
def test_two_hops_learn_two_hop_and_one_hop_does_not():
    two = run_task("two-hop", "memn2n", budget=1e9, max_steps=1500)["accuracy_per_chains"]
    one = run_task("two-hop", "memn2n", budget=1e9, max_steps=1500, hyperparameters={"hops": 1})[
        "accuracy_per_chains"
    ]
    assert min(two.values()) >= 0.95  # also on stories twice as long as trained
    assert one[3] < 0.8


@pytest.mark.slow
def test_associative_recall_trains():
    result = run_task(
        "associative-recall", "lstm", budget=1e9, max_steps=50, hyperparameters={"hidden": 8}
    )
    assert sorted(result["bit_error_per_items"]) == list(range(2, 13))
