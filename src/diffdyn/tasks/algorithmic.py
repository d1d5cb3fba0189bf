"""Algorithmic memory tasks: copy, repeat-copy and associative recall, as batches of arrays.

The tasks of the Neural Turing Machine (Graves, Wayne & Danihelka 2014, sec. 4) and the
Differentiable Neural Computer (Graves et al. 2016), which show what an external memory buys:
a network must store a sequence of random bit vectors and give it back later.

Every generator returns a `MemoryTask` of fixed-size arrays (sequences of different lengths
are padded to one length, so a whole batch is one array and one compilation serves every
length up to the maximum):

- `inputs [B, T, n_in]`: what the network reads at each step;
- `targets [B, T, n_out]`: what it should output (bits in {0, 1});
- `mask [B, T]`: 1 at the steps whose output is scored, 0 elsewhere;
- `lengths [B]`: the length of each pattern (vectors to store).

Score predictions with `bit_error` (fraction of wrong bits over the scored steps, thresholding
the network's outputs at 0 — they are logits).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import DiffdynError


@dataclasses.dataclass(frozen=True)
class MemoryTask:
    """A batch of an algorithmic task (see the module docstring)."""

    inputs: Float[Array, "batch time n_in"]
    targets: Float[Array, "batch time n_out"]
    mask: Float[Array, "batch time"]
    lengths: Array


def _check(num_bits: int, min_length: int, max_length: int) -> None:
    if num_bits < 1:
        raise DiffdynError(f"num_bits must be at least 1; got {num_bits}.")
    if not 1 <= min_length <= max_length:
        raise DiffdynError(
            f"lengths must satisfy 1 <= min_length <= max_length; got {min_length} and "
            f"{max_length}."
        )


def copy_task(
    key: PRNGKeyArray,
    batch: int,
    *,
    num_bits: int = 8,
    min_length: int = 1,
    max_length: int = 8,
) -> MemoryTask:
    """Copy (Graves et al. 2014, sec. 4.1): read L random `num_bits`-bit vectors, then a
    delimiter, then output the L vectors in order.

    Input channels: the bits, and a delimiter flag (1 on the step after the pattern). The
    output steps follow the delimiter; T = 2 · `max_length` + 1.

    **Example:**

    ```python
    import jax
    from diffdyn.tasks import copy_task

    task = copy_task(jax.random.key(0), 16, num_bits=8, max_length=8)
    task.inputs.shape, task.targets.shape  # (16, 17, 9), (16, 17, 8)
    ```
    """
    _check(num_bits, min_length, max_length)
    steps = 2 * max_length + 1
    k_len, k_bits = jax.random.split(key)
    lengths = jax.random.randint(k_len, (batch,), min_length, max_length + 1)
    bits = jax.random.bernoulli(k_bits, 0.5, (batch, max_length, num_bits)).astype(jnp.float32)
    time = jnp.arange(steps)

    def one(length, pattern):
        padded = jnp.concatenate([pattern, jnp.zeros((steps - max_length, num_bits))])
        in_pattern = time < length
        shown = jnp.where(in_pattern[:, None], padded, 0.0)
        delimiter = (time == length).astype(jnp.float32)
        inputs = jnp.concatenate([shown, delimiter[:, None]], axis=1)
        scored = (time > length) & (time <= 2 * length)
        source = jnp.clip(time - length - 1, 0, max_length - 1)
        targets = jnp.where(scored[:, None], pattern[source], 0.0)
        return inputs, targets, scored.astype(jnp.float32)

    inputs, targets, mask = jax.vmap(one)(lengths, bits)
    return MemoryTask(inputs, targets, mask, lengths)


def repeat_copy_task(
    key: PRNGKeyArray,
    batch: int,
    *,
    num_bits: int = 4,
    min_length: int = 1,
    max_length: int = 2,
    min_repeats: int = 1,
    max_repeats: int = 2,
    norm_max: int = 10,
) -> MemoryTask:
    """Repeat copy (Graves et al. 2014, sec. 4.2): read L random vectors, then the number of
    repeats R, then output the pattern R times and an end-of-output flag.

    The defaults are those of the DNC reference training script (4 bits, lengths 1–2,
    repeats 1–2). Input channels: the bits, a delimiter flag, and R / `norm_max` on the
    delimiter step. Output channels: the bits and the end flag (scored on the R · L copy steps
    and the end step). T = `max_length` · (`max_repeats` + 1) + 2.
    """
    _check(num_bits, min_length, max_length)
    if not 1 <= min_repeats <= max_repeats:
        raise DiffdynError(
            f"repeats must satisfy 1 <= min_repeats <= max_repeats; got {min_repeats} and "
            f"{max_repeats}."
        )
    steps = max_length * (max_repeats + 1) + 2
    k_len, k_rep, k_bits = jax.random.split(key, 3)
    lengths = jax.random.randint(k_len, (batch,), min_length, max_length + 1)
    repeats = jax.random.randint(k_rep, (batch,), min_repeats, max_repeats + 1)
    bits = jax.random.bernoulli(k_bits, 0.5, (batch, max_length, num_bits)).astype(jnp.float32)
    time = jnp.arange(steps)

    def one(length, repeat, pattern):
        padded = jnp.concatenate([pattern, jnp.zeros((steps - max_length, num_bits))])
        shown = jnp.where((time < length)[:, None], padded, 0.0)
        delimiter = (time == length).astype(jnp.float32)
        count = delimiter * repeat / norm_max
        inputs = jnp.concatenate([shown, delimiter[:, None], count[:, None]], axis=1)
        start, stop = length + 1, length + 1 + repeat * length
        copying = (time >= start) & (time < stop)
        source = jnp.clip((time - start) % jnp.maximum(length, 1), 0, max_length - 1)
        copy_bits = jnp.where(copying[:, None], pattern[source], 0.0)
        end = (time == stop).astype(jnp.float32)
        targets = jnp.concatenate([copy_bits, end[:, None]], axis=1)
        return inputs, targets, (copying | (time == stop)).astype(jnp.float32)

    inputs, targets, mask = jax.vmap(one)(lengths, repeats, bits)
    return MemoryTask(inputs, targets, mask, lengths)


def associative_recall_task(
    key: PRNGKeyArray,
    batch: int,
    *,
    num_bits: int = 6,
    item_length: int = 3,
    min_items: int = 2,
    max_items: int = 6,
) -> MemoryTask:
    """Associative recall (Graves et al. 2014, sec. 4.3): a list of items (each `item_length`
    random vectors, each preceded by an item flag), then a query flag and a copy of one item
    (not the last); the network must output the item that followed it in the list.

    Input channels: the bits, an item flag and a query flag. Output: the bits of the next item,
    scored on the `item_length` steps after the query. `lengths` holds the number of items.
    """
    _check(num_bits, 1, item_length)
    if not 2 <= min_items <= max_items:
        raise DiffdynError(
            f"items must satisfy 2 <= min_items <= max_items; got {min_items} and {max_items}."
        )
    block = item_length + 1
    steps = block * (max_items + 1) + item_length
    k_n, k_q, k_bits = jax.random.split(key, 3)
    counts = jax.random.randint(k_n, (batch,), min_items, max_items + 1)
    queries = jax.random.randint(k_q, (batch,), 0, 1 << 30) % (counts - 1)
    items = jax.random.bernoulli(k_bits, 0.5, (batch, max_items, item_length, num_bits))
    items = items.astype(jnp.float32)
    time = jnp.arange(steps)

    def one(count, query, item_bits):
        item_index = jnp.clip(time // block, 0, max_items - 1)
        offset = time % block
        in_list = time < count * block
        flag = (in_list & (offset == 0)).astype(jnp.float32)
        bits_list = jnp.where(
            (in_list & (offset > 0))[:, None],
            item_bits[item_index, jnp.clip(offset - 1, 0, item_length - 1)],
            0.0,
        )
        query_start = count * block
        query_flag = (time == query_start).astype(jnp.float32)
        query_offset = time - query_start - 1
        in_query = (query_offset >= 0) & (query_offset < item_length)
        query_bits = jnp.where(
            in_query[:, None], item_bits[query, jnp.clip(query_offset, 0, item_length - 1)], 0.0
        )
        answer_offset = time - query_start - 1 - item_length
        scored = (answer_offset >= 0) & (answer_offset < item_length)
        answer = jnp.where(
            scored[:, None],
            item_bits[query + 1, jnp.clip(answer_offset, 0, item_length - 1)],
            0.0,
        )
        inputs = jnp.concatenate(
            [bits_list + query_bits, flag[:, None], query_flag[:, None]], axis=1
        )
        return inputs, answer, scored.astype(jnp.float32)

    inputs, targets, mask = jax.vmap(one)(counts, queries, items)
    return MemoryTask(inputs, targets, mask, counts)


def bit_error(
    logits: Float[Array, "batch time n_out"],
    targets: Float[Array, "batch time n_out"],
    mask: Float[Array, "batch time"],
) -> Float[Array, " batch"]:
    """Fraction of wrong bits per sequence over its scored steps (outputs are logits: a bit is
    1 when its logit is positive)."""
    wrong = ((logits > 0).astype(jnp.float32) != targets).astype(jnp.float32)
    per_step = jnp.sum(wrong, axis=-1) * mask
    bits = jnp.sum(mask, axis=-1) * targets.shape[-1]
    return jnp.sum(per_step, axis=-1) / jnp.maximum(bits, 1.0)
