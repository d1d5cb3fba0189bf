"""Algorithmic memory tasks: copy, repeat-copy, associative recall, bit error."""

import jax
import numpy as np
import pytest

from diffdyn.errors import DiffdynError
from diffdyn.tasks.algorithmic import (
    associative_recall_task,
    bit_error,
    copy_task,
    repeat_copy_task,
)


def test_copy_targets_are_the_pattern_after_the_delimiter():
    task = copy_task(jax.random.key(0), 32, num_bits=5, min_length=1, max_length=6)
    inputs, targets, mask = map(np.asarray, (task.inputs, task.targets, task.mask))
    assert inputs.shape == (32, 13, 6) and targets.shape == (32, 13, 5)
    for b, length in enumerate(np.asarray(task.lengths)):
        assert 1 <= length <= 6
        np.testing.assert_array_equal(inputs[b, length, -1], 1.0)  # the delimiter
        assert inputs[b, :, -1].sum() == 1
        np.testing.assert_array_equal(
            targets[b, length + 1 : 2 * length + 1], inputs[b, :length, :5]
        )
        assert mask[b].sum() == length and mask[b, length + 1 : 2 * length + 1].all()
        assert not inputs[b, length + 1 :, :5].any()  # nothing shown while answering
    assert len(set(np.asarray(task.lengths))) > 3  # lengths vary over the batch


def test_repeat_copy_repeats_the_pattern_and_flags_the_end():
    task = repeat_copy_task(jax.random.key(1), 16, num_bits=4, max_length=3, max_repeats=3)
    inputs, targets, mask = map(np.asarray, (task.inputs, task.targets, task.mask))
    for b, length in enumerate(np.asarray(task.lengths)):
        repeats = round(inputs[b, length, -1] * 10)
        assert 1 <= repeats <= 3 and inputs[b, length, -2] == 1.0
        expected = np.tile(inputs[b, :length, :4], (repeats, 1))
        stop = length + 1 + repeats * length
        np.testing.assert_array_equal(targets[b, length + 1 : stop, :4], expected)
        assert targets[b, stop, -1] == 1.0 and targets[b, :, -1].sum() == 1
        assert mask[b].sum() == repeats * length + 1


def test_associative_recall_answer_is_the_item_after_the_query():
    task = associative_recall_task(jax.random.key(2), 16, num_bits=4, item_length=2, max_items=5)
    inputs, targets, mask = map(np.asarray, (task.inputs, task.targets, task.mask))
    for b, count in enumerate(np.asarray(task.lengths)):
        items = [inputs[b, 3 * i + 1 : 3 * i + 3, :4] for i in range(count)]
        start = 3 * count
        assert inputs[b, start, -1] == 1.0
        query = inputs[b, start + 1 : start + 3, :4]
        matches = [i for i, item in enumerate(items[:-1]) if np.array_equal(item, query)]
        assert matches, "the query is one of the items but the last"
        answers = [items[i + 1] for i in matches]
        assert any(np.array_equal(targets[b, start + 3 : start + 5, :4], a) for a in answers)
        assert mask[b].sum() == 2


def test_bit_error_counts_wrong_bits_on_scored_steps_only():
    task = copy_task(jax.random.key(3), 8, num_bits=4, max_length=5)
    perfect = (task.targets * 2 - 1) * 5.0
    np.testing.assert_array_equal(bit_error(perfect, task.targets, task.mask), 0.0)
    np.testing.assert_array_equal(bit_error(-perfect, task.targets, task.mask), 1.0)
    wrong_outside = perfect + (1 - task.mask[..., None]) * -100.0  # unscored steps ignored
    np.testing.assert_array_equal(bit_error(wrong_outside, task.targets, task.mask), 0.0)


def test_bad_task_sizes_are_refused():
    with pytest.raises(DiffdynError, match="num_bits"):
        copy_task(jax.random.key(0), 2, num_bits=0)
    with pytest.raises(DiffdynError, match="min_length <= max_length"):
        copy_task(jax.random.key(0), 2, min_length=5, max_length=3)
    with pytest.raises(DiffdynError, match="repeats"):
        repeat_copy_task(jax.random.key(0), 2, min_repeats=0)
    with pytest.raises(DiffdynError, match="items"):
        associative_recall_task(jax.random.key(0), 2, min_items=1)
