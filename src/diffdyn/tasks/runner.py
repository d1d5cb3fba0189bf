"""Train a sequence model on an algorithmic task and report its bit error per length.

`run_task("copy", "lstm", budget=60)` trains on the task's training lengths under a wall-clock
budget (Adam, sigmoid cross-entropy on the scored steps, gradient clipping), then measures the
bit error on fresh batches of every length from 1 to twice the longest trained one — the
longer ones test generalisation beyond training.

Sequence models map inputs `[T, n_in]` to output logits `[T, n_out]` on one example
(`SEQUENCE_MODELS`: name → builder); batches are `jax.vmap`-ed.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from ..nn import LSTMCell, run_sequence
from ..nn.dnc import DNC
from .algorithmic import MemoryTask, bit_error, copy_task, repeat_copy_task


class LSTMSequenceModel(eqx.Module):
    """An LSTM read out linearly at every step: the baseline without external memory.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.tasks.runner import LSTMSequenceModel

    model = LSTMSequenceModel(9, 8, key=jax.random.key(0), hidden=32)
    model(jnp.zeros((17, 9))).shape  # (17, 8)
    ```
    """

    cell: LSTMCell
    readout: eqx.nn.Linear

    def __init__(self, n_in: int, n_out: int, *, key: PRNGKeyArray, hidden: int = 64):
        k_cell, k_out = jax.random.split(key)
        self.cell = LSTMCell(n_in, hidden, key=k_cell)
        self.readout = eqx.nn.Linear(hidden, n_out, key=k_out)

    def __call__(self, inputs: Float[Array, "time n_in"]) -> Float[Array, "time n_out"]:
        hiddens, _ = run_sequence(self.cell, inputs)
        return jax.vmap(self.readout)(hiddens)


SEQUENCE_MODELS: dict[str, Callable[..., Any]] = {"lstm": LSTMSequenceModel, "dnc": DNC}

# name -> (generator, training options, lengths evaluated beyond training)
TASKS: dict[str, dict[str, Any]] = {
    "copy": {
        "make": copy_task,
        "train": {"num_bits": 8, "min_length": 1, "max_length": 8},
        "length_keys": ("min_length", "max_length"),
    },
    "repeat-copy": {
        "make": repeat_copy_task,
        "train": {"num_bits": 4, "min_length": 1, "max_length": 2},
        "length_keys": ("min_length", "max_length"),
    },
}


def check_task(task: str, model: str, hyperparameters: dict[str, Any] | None = None) -> None:
    """Raise an actionable error for an unknown task, model or hyperparameter name."""
    if task not in TASKS:
        raise UnknownNameError(
            f"unknown task {task!r}; choose one of {', '.join(TASKS)}."
            f"{did_you_mean(task, list(TASKS))}"
        )
    if model not in SEQUENCE_MODELS:
        raise UnknownNameError(
            f"unknown model {model!r} for tasks; choose one of {', '.join(SEQUENCE_MODELS)}."
            f"{did_you_mean(model, list(SEQUENCE_MODELS))}"
        )
    accepted = [
        name
        for name, p in inspect.signature(SEQUENCE_MODELS[model]).parameters.items()
        if p.kind == p.KEYWORD_ONLY and name != "key"
    ]
    for name in hyperparameters or {}:
        if name not in accepted:
            raise UnknownNameError(
                f"model {model} has no hyperparameter {name!r} (it has {', '.join(accepted)})."
                f"{did_you_mean(name, accepted)}"
            )
    if model == "dnc":
        longest = 2 * TASKS[task]["train"]["max_length"]  # the longest evaluated pattern
        slots = (hyperparameters or {}).get("memory_size", 32)
        if slots < longest:
            raise DiffdynError(
                f"a memory of {slots} slots is too small for {task} patterns of up to {longest} "
                f"vectors (the longest scored); use at least memory_size={longest}."
            )


def _loss(model, batch: MemoryTask):
    logits = jax.vmap(model)(batch.inputs)
    per_bit = optax.sigmoid_binary_cross_entropy(logits, batch.targets)
    per_step = jnp.sum(per_bit, axis=-1) * batch.mask
    return jnp.sum(per_step) / jnp.maximum(jnp.sum(batch.mask), 1.0)


def run_task(
    task: str,
    model: str = "lstm",
    *,
    budget: float = 60.0,
    seed: int = 0,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    max_steps: int = 100_000,
    hyperparameters: dict[str, Any] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train `model` on `task` for at most `budget` seconds; return the bit error per length.

    **Returns** a dict with `bit_error_per_length` (`{length: mean fraction of wrong bits}`),
    `trained_lengths`, `steps`, `seconds`, `final_loss` and `parameters`.
    """
    check_task(task, model, hyperparameters)
    spec = TASKS[task]
    options = dict(spec["train"])
    key = jax.random.key(seed)
    k_model, k_train, k_eval = jax.random.split(key, 3)
    probe = spec["make"](k_eval, 1, **options)
    n_in, n_out = probe.inputs.shape[-1], probe.targets.shape[-1]
    net = SEQUENCE_MODELS[model](n_in, n_out, key=k_model, **(hyperparameters or {}))
    optimiser = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(learning_rate))
    state = optimiser.init(eqx.filter(net, eqx.is_array))

    @eqx.filter_jit
    def steps(net, state, key):
        def step(carry, key):
            net, state = carry
            batch = spec["make"](key, batch_size, **options)
            loss, grads = eqx.filter_value_and_grad(_loss)(net, batch)
            updates, state = optimiser.update(grads, state, eqx.filter(net, eqx.is_array))
            return (eqx.apply_updates(net, updates), state), loss

        (net, state), losses = jax.lax.scan(step, (net, state), jax.random.split(key, 50))
        return net, state, jnp.mean(losses)

    started = time.perf_counter()
    done, loss = 0, math.nan
    while done < max_steps and time.perf_counter() - started < budget:
        k_train, k = jax.random.split(k_train)
        net, state, value = steps(net, state, k)
        done += 50
        loss = float(value)
        if not math.isfinite(loss):
            raise DiffdynError(f"training diverged (loss {loss}) after {done} steps.")
        if progress is not None:
            progress(done, loss)
    seconds = time.perf_counter() - started

    low_key, high_key = spec["length_keys"]
    longest = options[high_key]
    batches = [
        spec["make"](jax.random.fold_in(k_eval, n), 256, **{**options, low_key: n, high_key: n})
        for n in range(1, 2 * longest + 1)
    ]
    # Pad every length to the longest (zeros after the end, unscored): the models are causal,
    # so one compilation scores every length.
    steps_max = batches[-1].inputs.shape[1]

    def pad(a):
        return jnp.pad(a, [(0, 0), (0, steps_max - a.shape[1])] + [(0, 0)] * (a.ndim - 2))

    @eqx.filter_jit
    def score(net, inputs, targets, mask):
        return jnp.mean(bit_error(jax.vmap(net)(inputs), targets, mask))

    errors = {
        n: float(score(net, pad(b.inputs), pad(b.targets), pad(b.mask)))
        for n, b in enumerate(batches, start=1)
    }
    return {
        "task": task,
        "model": model,
        "trained_lengths": [options[low_key], longest],
        "bit_error_per_length": errors,
        "steps": done,
        "seconds": seconds,
        "final_loss": loss,
        "parameters": sum(
            x.size for x in jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array))
        ),
        "seed": seed,
    }
