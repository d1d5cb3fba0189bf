"""Train a sequence model on a memory task and score it on sizes up to twice the trained one.

`run_task("copy", "lstm", budget=60)` trains (`train_task`) on the task's training distribution
under a wall-clock budget (compiling included) through the one core (`diffdyn.train.train`:
Adam, gradient norm clipped at 10 except for the pattern-completion networks; `TaskBatches`
draws every step's examples on device), then scores (`score_task`) fresh examples of every
size from the smallest to twice the largest trained one — the larger ones test
generalisation:

- bit tasks (`copy`, `repeat-copy`, `associative-recall`): sigmoid cross-entropy on the scored
  steps; the score is the fraction of wrong bits per pattern length (or number of items);
- `two-hop`: softmax cross-entropy on the answer; the score is the fraction of correct
  answers per number of chains in the story;
- `pattern-completion` (Miconi et al. 2018): the squared error of the activity against the
  completed pattern (their loss); the score is the fraction of wrong bits per number of
  patterns in the episode.

Models (`SEQUENCE_MODELS`): `lstm` and `dnc` map inputs `[T, n_in]` to output logits
`[T, n_out]` and do every task — on two-hop they read the story's sentences and then the
question as one-hot tokens and answer at the last step; `memn2n` (Sukhbaatar et al. 2015) holds
the story's sentences as its memory and does two-hop only; `plastic` (a fully recurrent
network with Hebbian plastic connections, `nn.plasticity`) and `rnn` (the same network without
plasticity) do pattern-completion only. Batches are `jax.vmap`-ed.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from ..models.registry import convert_hyperparameter
from ..nn import LSTMCell, MemN2N, run_sequence
from ..nn.dnc import DNC
from ..train.loop import TrainingError, TrainState, has_state, read_state_meta, train
from .algorithmic import associative_recall_task, bit_error, copy_task, repeat_copy_task
from .pattern_completion import pattern_completion_task, plastic_network, recurrent_network
from .two_hop import IN, two_hop_batch, two_hop_vocab_size

EVAL_PER_SIZE = 256  # fresh examples scored per size, on average
SENTENCE = 3  # two-hop sentences and questions are [subject, relation, object]


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


def memn2n_answerer(
    vocab: int,
    n_out: int,
    *,
    key: PRNGKeyArray,
    hops: int = 2,
    dim: int = 32,
    max_sentences: int = 12,
    init_scale: float = 0.5,
    linear_start_steps: int = 0,
) -> MemN2N:
    """A `MemN2N` over two-hop sentences, as `run_task` builds it (`n_out` is `vocab`: the
    answer logits are `W u` with `W = C_Kᵀ`).

    The defaults learn two-hop in a few thousand steps (dim 32, weights drawn with standard
    deviation 0.5; with the paper's 0.1 the network stays at chance unless it starts linear).
    `linear_start_steps > 0` builds it without softmaxes; `run_task` re-inserts them after that
    many training steps (linear start, Sukhbaatar et al. 2015 sec. 4.2).

    **Example:**

    ```python
    import jax
    from diffdyn.tasks.runner import memn2n_answerer

    net = memn2n_answerer(24, 24, key=jax.random.key(0), hops=2)
    net.hops, net.max_sentences  # (2, 12)
    ```
    """
    del n_out
    return MemN2N(
        vocab, dim, max_sentences, SENTENCE, hops,
        linear=linear_start_steps > 0, init_scale=init_scale, key=key,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SequenceModel:
    """A model `diffdyn task` can train.

    - `build(n_in, n_out, *, key, **hyperparameters)`: the network; its keyword-only arguments
      with defaults are the hyperparameters users may set.
    - `memory`: the hyperparameter that sizes the external memory (checked against the task).
    - `tasks`: the tasks it can do (`None`: every task).
    - `batch_size`, `learning_rate`: its training defaults; `clip`: the global gradient norm
      it is clipped to (`None`: not clipped).
    """

    build: Callable[..., Any]
    memory: str | None = None
    tasks: tuple[str, ...] | None = None
    batch_size: int = 16
    learning_rate: float = 1e-3
    clip: float | None = 10.0

    def defaults(self) -> dict[str, Any]:
        return {
            name: p.default
            for name, p in inspect.signature(self.build).parameters.items()
            if p.kind == p.KEYWORD_ONLY and p.default is not p.empty
        }


SEQUENCE_MODELS: dict[str, SequenceModel] = {
    "lstm": SequenceModel(LSTMSequenceModel),
    "dnc": SequenceModel(DNC, memory="memory_size"),
    "memn2n": SequenceModel(
        memn2n_answerer,
        memory="max_sentences",
        tasks=("two-hop",),
        batch_size=32,
        learning_rate=1e-2,
    ),  # fmt: skip
    # One episode per step, Adam 3e-4 and no clipping, as Miconi et al. 2018. Adam 1e-3
    # learned faster at first but stalled at 4-5 % sign error; clipping at 10 held it at 1-2 %
    # (docs/plasticity.md).
    "plastic": SequenceModel(
        plastic_network,
        tasks=("pattern-completion",),
        batch_size=1,
        learning_rate=3e-4,
        clip=None,
    ),
    "rnn": SequenceModel(
        recurrent_network,
        tasks=("pattern-completion",),
        batch_size=1,
        learning_rate=3e-4,
        clip=None,
    ),
}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A task `diffdyn task` can train on.

    - `make(key, batch, **options)`: the generator; `train`: its options while training.
    - `size`: what the evaluated size counts; `size_keys`: the options giving the smallest and
      largest trained size (one for two-hop: its number of chains); `smallest`: the smallest
      size the generator makes.
    - `metric`: `"bit_error"` or `"accuracy"`; `squared`: a bit task trained on the squared
      error of the activity instead of the cross-entropy (pattern completion, as Miconi et al.).
    - `memory(options) -> (need, unit)`: how many memory slots the largest evaluated example
      needs, and what they hold.
    """

    make: Callable[..., Any]
    train: dict[str, Any]
    size: str
    size_keys: tuple[str, ...]
    smallest: int
    metric: str
    memory: Callable[[dict[str, Any]], tuple[int, str]]
    eval_per_size: int = EVAL_PER_SIZE
    squared: bool = False

    def largest_trained(self, options: dict[str, Any]) -> int:
        return options[self.size_keys[-1]]

    def evaluated_sizes(self, options: dict[str, Any]) -> range:
        return range(self.smallest, 2 * self.largest_trained(options) + 1)


TASKS: dict[str, TaskSpec] = {
    "copy": TaskSpec(
        copy_task, {"num_bits": 8, "min_length": 1, "max_length": 8}, "length",
        ("min_length", "max_length"), 1, "bit_error",
        lambda o: (2 * o["max_length"], "vectors"),
    ),
    "repeat-copy": TaskSpec(
        repeat_copy_task, {"num_bits": 4, "min_length": 1, "max_length": 2}, "length",
        ("min_length", "max_length"), 1, "bit_error",
        lambda o: (2 * o["max_length"], "vectors"),
    ),
    # Graves et al. 2014, sec. 4.3: items of 3 vectors of 6 bits, 2-6 items in training.
    "associative-recall": TaskSpec(
        associative_recall_task,
        {"num_bits": 6, "item_length": 3, "min_items": 2, "max_items": 6}, "items",
        ("min_items", "max_items"), 2, "bit_error",
        lambda o: (2 * o["max_items"] * o["item_length"], "vectors"),
    ),
    "two-hop": TaskSpec(
        two_hop_batch, {"chains": 3, "num_items": 8, "num_boxes": 8, "num_rooms": 4}, "chains",
        ("chains",), 1, "accuracy",
        lambda o: (2 * 2 * o["chains"], "sentences"),
    ),
    # Miconi et al. 2018, sec. 4.1: 5 patterns of 1000 bits, each shown 6 steps with 4-step
    # gaps, trained on the squared error; scored on 16 episodes per number of patterns (an
    # episode of 1000 neurons is 4 MB of trace).
    "pattern-completion": TaskSpec(
        pattern_completion_task,
        {"pattern_size": 1000, "min_patterns": 5, "max_patterns": 5}, "patterns",
        ("min_patterns", "max_patterns"), 1, "bit_error",
        lambda o: (2 * o["max_patterns"], "patterns"), eval_per_size=16, squared=True,
    ),
}  # fmt: skip


def check_task(
    task: str,
    model: str,
    hyperparameters: dict[str, Any] | None = None,
    task_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check a request before any work; return the model's hyperparameters, complete and typed.

    Raises an actionable `DiffdynError` for an unknown task, model or hyperparameter, a model
    that cannot do the task, a value of the wrong type or below 1, a network that cannot be built
    (e.g. zero heads or hops) and a memory too small for the largest evaluated example (the
    message names the minimum). Values may be text as typed on the command line.

    **Example:**

    ```python
    from diffdyn.tasks.runner import check_task

    check_task("two-hop", "memn2n", {"hops": "3"})["hops"]  # 3
    ```
    """
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
    spec, entry = TASKS[task], SEQUENCE_MODELS[model]
    if entry.tasks is not None and task not in entry.tasks:
        able = [name for name, m in SEQUENCE_MODELS.items() if m.tasks is None]
        raise DiffdynError(
            f"model {model} does only the {', '.join(entry.tasks)} task; run {task} with "
            f"--model {' or '.join(able)}, or {model} on {', '.join(entry.tasks)}."
        )
    defaults = entry.defaults()
    resolved = dict(defaults)
    for name, raw in (hyperparameters or {}).items():
        if name not in defaults:
            raise UnknownNameError(
                f"model {model} has no hyperparameter {name!r} (it has {', '.join(defaults)})."
                f"{did_you_mean(name, list(defaults))}"
            )
        value = convert_hyperparameter(model, name, raw, defaults[name])
        if isinstance(value, float) and value <= 0:
            raise DiffdynError(
                f"hyperparameter {name} of model {model} must be positive; got {raw!r}."
            )
        lowest = 0 if defaults[name] == 0 else 1  # counts of steps may be 0, sizes not
        if type(value) is int and value < lowest:
            raise DiffdynError(
                f"hyperparameter {name} of model {model} must be at least {lowest}; got {raw!r}."
            )
        resolved[name] = value
    options = {**spec.train, **(task_options or {})}
    if entry.memory is not None:
        need, unit = spec.memory(options)
        slots = resolved[entry.memory]
        if entry.memory in (hyperparameters or {}) and slots < need:
            raise DiffdynError(
                f"a memory of {slots} slots is too small for {task}: its largest evaluated "
                f"example has {need} {unit} to hold; use at least {entry.memory}={need}."
            )
        resolved[entry.memory] = max(slots, need)
    n_in, n_out = _widths(spec, options)
    # Build abstractly: constructor checks (zero heads or hops, unknown controller) run here.
    eqx.filter_eval_shape(entry.build, n_in, n_out, key=jax.random.key(0), **resolved)
    return resolved


def _widths(spec: TaskSpec, options: dict[str, Any]) -> tuple[int, int]:
    if spec.metric == "accuracy":
        vocab = two_hop_vocab_size(*(options[k] for k in ("num_items", "num_boxes", "num_rooms")))
        return vocab, vocab
    probe = jax.eval_shape(
        lambda k: _arrays(spec.make(k, 1, **options)), jax.random.key(0)
    )  # fmt: skip
    return probe[0].shape[-1], probe[1].shape[-1]


def _arrays(task) -> tuple[Array, Array, Array, Array]:
    return task.inputs, task.targets, task.mask, task.lengths


def _one_hot_sequence(
    story: Int[Array, "S L"], question: Int[Array, " L"], vocab: int
) -> Float[Array, "T vocab"]:
    """The story's tokens, then the question's, one-hot: what `lstm` and `dnc` read."""
    return jax.nn.one_hot(jnp.concatenate([story.reshape(-1), question]), vocab)


def _scatter(key: PRNGKeyArray, story: Int[Array, "S L"], slots: int) -> Int[Array, "M L"]:
    """The story's sentences at random slots (in order) of a memory of `slots`, empty between.

    Sukhbaatar et al. 2015, sec. 4.1 ("random noise"): empty memories added in training
    regularise the temporal encoding; here every slot up to the memory size gets trained, so
    stories longer than the trained ones meet trained temporal vectors.
    """
    where = jnp.sort(jax.random.permutation(key, slots)[: story.shape[0]])
    return jnp.zeros((slots, story.shape[1]), story.dtype).at[where].set(story)


def _fewer_chains(
    key: PRNGKeyArray, story: Int[Array, "S L"], question: Int[Array, " L"], chains: int,
    vocab: int,
) -> Int[Array, "s L"]:  # fmt: skip
    """A story of `chains` chains cut from a longer one: the asked chain and random others, in
    the story's (shuffled) order — distributed like `two_hop_batch(..., chains=chains)`."""
    boxes = story[:, 2]  # a chain's two facts share their box
    asked = boxes[jnp.argmax((story[:, 0] == question[1]) & (story[:, 1] == IN))]
    rank = jnp.where(boxes == asked, -1.0, jax.random.uniform(key, (vocab,))[boxes])
    keep = rank <= jnp.sort(rank)[2 * chains - 1]
    return story[jnp.argsort(~keep, stable=True)[: 2 * chains]]


def _bits_loss(net, batch, squared: bool = False):
    logits = jax.vmap(net)(batch.inputs)
    if squared:
        # Miconi et al. 2018's loss: Σ (y − target)² with y = tanh(z) = 2σ(2z) − 1 the
        # network's activity (logits 2z) and the target in ±1.
        per_bit = (jnp.tanh(logits / 2) - (2 * batch.targets - 1)) ** 2
    else:
        per_bit = optax.sigmoid_binary_cross_entropy(logits, batch.targets)
    per_step = jnp.sum(per_bit, axis=-1) * batch.mask
    return jnp.sum(per_step) / jnp.maximum(jnp.sum(batch.mask), 1.0)


def _answer_logits(net, stories, questions, vocab: int):
    if isinstance(net, MemN2N):
        return jax.vmap(net)(stories, questions)[0]
    sequences = jax.vmap(_one_hot_sequence, (0, 0, None))(stories, questions, vocab)
    return jax.vmap(net)(sequences)[:, -1]


class TaskBatches(eqx.Module):
    """Fresh training examples of a task for every step, generated on device: the batch
    source `train` calls as `batches(key, step, progress)`.

    A batch is `(examples, linear)`: `examples` as the task's generator makes them (for
    `memn2n`, the stories scattered over its `slots` memory slots, `_scatter`), and `linear`
    whether step `step` is still in the linear start (`None` without one).

    **Example:**

    ```python
    import jax
    from diffdyn.tasks import copy_task
    from diffdyn.tasks.runner import TaskBatches

    batches = TaskBatches(copy_task, (("max_length", 4),), batch_size=8)
    examples, linear = batches(jax.random.key(0), 0, 0.0)
    examples.inputs.shape, linear  # (8, 9, 9), None
    ```
    """

    make: Callable[..., Any] = eqx.field(static=True)
    options: tuple[tuple[str, Any], ...] = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    slots: int | None = eqx.field(static=True, default=None)
    linear_steps: int = eqx.field(static=True, default=0)

    def __call__(self, key, step, progress):
        del progress
        k_make, k_slots = jax.random.split(key)
        examples = self.make(k_make, self.batch_size, **dict(self.options))
        if self.slots is not None:
            stories, questions, answers = examples
            keys = jax.random.split(k_slots, self.batch_size)
            stories = jax.vmap(_scatter, (0, 0, None))(keys, stories, self.slots)
            examples = stories, questions, answers
        return examples, (step < self.linear_steps if self.linear_steps else None)


class _TaskLoss(eqx.Module):
    """Sigmoid cross-entropy (or, `squared`, the squared error of the activity) on the scored
    bits, or softmax cross-entropy on the answer."""

    metric: str = eqx.field(static=True)
    vocab: int = eqx.field(static=True)
    squared: bool = eqx.field(static=True, default=False)

    def __call__(self, net, batch, key):
        del key
        examples, linear = batch
        if linear is None:
            return self.of(net, examples)
        # Linear start: `MemN2N.linear` is a Python flag, so both networks are traced and the
        # step's `linear` picks one; the optimiser state is the same across the switch.
        as_linear = eqx.tree_at(lambda m: m.linear, net, True)
        with_softmax = eqx.tree_at(lambda m: m.linear, net, False)
        return jax.lax.cond(
            linear, lambda: self.of(as_linear, examples), lambda: self.of(with_softmax, examples)
        )

    def of(self, net, examples):
        if self.metric == "bit_error":
            return _bits_loss(net, examples, self.squared)
        stories, questions, answers = examples
        logits = _answer_logits(net, stories, questions, self.vocab)
        return optax.softmax_cross_entropy_with_integer_labels(logits, answers).mean()


@functools.cache  # one object per rate: runs alike share one compiled step
def _optimiser(learning_rate: float, clip: float | None = 10.0) -> optax.GradientTransformation:
    if clip is None:
        return optax.adam(learning_rate)
    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(learning_rate))


def run_task(
    task: str,
    model: str = "lstm",
    *,
    budget: float | None = 60.0,
    seed: int = 0,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    max_steps: int | None = 100_000,
    hyperparameters: dict[str, Any] | None = None,
    task_options: dict[str, Any] | None = None,
    progress: bool | str = True,
) -> dict[str, Any]:
    """Train `model` on `task` (`train_task`), then score it per size (`score_task`).

    **Returns** `train_task`'s record with the scores added under `{metric}_per_{size}`:
    `bit_error_per_length`, `bit_error_per_items` or `accuracy_per_chains` (`{size: score}`).

    **Example:**

    ```python
    from diffdyn.tasks.runner import run_task

    result = run_task("two-hop", "memn2n", budget=10, task_options={"chains": 1},
                      progress=False)
    result["accuracy_per_chains"]  # {1: ..., 2: ...}
    ```
    """
    k_train, k_score = jax.random.split(jax.random.key(seed))
    net, record = train_task(
        task, model, key=k_train, budget=budget, batch_size=batch_size,
        learning_rate=learning_rate, max_steps=max_steps, hyperparameters=hyperparameters,
        task_options=task_options, progress=progress,
    )  # fmt: skip
    scores = score_task(net, task, key=k_score, task_options=task_options)
    return {**record, f"{record['metric']}_per_{record['size']}": scores, "seed": seed}


def train_task(
    task: str,
    model: str = "lstm",
    *,
    key: PRNGKeyArray,
    budget: float | None = 60.0,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    max_steps: int | None = 100_000,
    hyperparameters: dict[str, Any] | None = None,
    task_options: dict[str, Any] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    on_validation: Callable[[TrainState], None] | None = None,
    progress: bool | str = True,
) -> tuple[Any, dict[str, Any]]:
    """Train `model` on `task` through the one core (`diffdyn.train.train`) for at most
    `budget` seconds and `max_steps` steps, whichever comes first; return the trained network
    and a record of the run.

    Linear start (`memn2n`, `linear_start_steps > 0`; Sukhbaatar et al. 2015 sec. 4.2): the
    first `linear_start_steps` steps train the network with the softmaxes removed, the later
    ones with them re-inserted — a fixed count, where the paper waits for the validation loss
    to stop falling. It is one run: the optimiser state carries over, and a checkpoint resumes
    across the switch. A network whose run ended while still linear stays linear
    (`softmax_reinserted_at` is then `None`).

    **Arguments:** `batch_size` and `learning_rate` default to the model's (`SequenceModel`);
    `hyperparameters` are the model's; `task_options` change the task's training options
    (`TASKS[task].train`, e.g. `{"chains": 2}`); `budget` or `max_steps` may be `None` (no
    limit of that kind; not both); `checkpoint`, `resume`, `on_validation` and `progress` (the
    core's bar) are as in `train` — a resumed run must have the same task, model and settings.

    **Returns** `(network, record)`; the record holds `task`, `model`, `metric`, `size`,
    `trained_sizes` (smallest and largest), `steps`, `seconds`, `final_loss`, `parameters`,
    `hyperparameters`, `task_options`, `batch_size`, `learning_rate` and
    `softmax_reinserted_at`.

    **Example:**

    ```python
    import jax
    from diffdyn.tasks.runner import train_task

    net, record = train_task("copy", "lstm", key=jax.random.key(0), max_steps=50,
                             progress=False)
    record["steps"]  # 50
    ```
    """
    hyper = check_task(task, model, hyperparameters, task_options)
    spec, entry = TASKS[task], SEQUENCE_MODELS[model]
    options = {**spec.train, **(task_options or {})}
    batch_size = batch_size or entry.batch_size
    learning_rate = learning_rate or entry.learning_rate
    k_model, k_train = jax.random.split(key)
    n_in, n_out = _widths(spec, options)
    net = entry.build(n_in, n_out, key=k_model, **hyper)
    optimiser = _optimiser(learning_rate, entry.clip)
    linear_steps = hyper.get("linear_start_steps", 0)
    batches = TaskBatches(
        spec.make, tuple(sorted(options.items())), batch_size,
        slots=net.max_sentences if isinstance(net, MemN2N) else None, linear_steps=linear_steps,
    )  # fmt: skip
    meta = {"task": task, "model": model, "hyperparameters": hyper, "task_options": options,
            "batch_size": batch_size, "learning_rate": learning_rate}  # fmt: skip
    if resume and checkpoint is not None and has_state(checkpoint):
        stored = read_state_meta(checkpoint)
        if stored != json.loads(json.dumps(meta)):
            raise TrainingError(
                f"the unfinished training in {checkpoint} is of {stored.get('model')} on "
                f"{stored.get('task')} with other settings; resume it with the same task, "
                "model, hyperparameters, task options, batch size and learning rate."
            )
    if budget is not None and math.isinf(budget):
        budget = None
    outcome = train(
        net, _TaskLoss(spec.metric, n_in, spec.squared), batches, optimiser, key=k_train,
        steps=max_steps,
        budget=budget, checkpoint=checkpoint, checkpoint_meta=meta, resume=resume,
        on_validation=on_validation, progress=progress,
    )  # fmt: skip
    net = outcome.module
    reinserted = linear_steps if linear_steps and outcome.steps > linear_steps else None
    if linear_steps:
        net = eqx.tree_at(lambda m: m.linear, net, reinserted is None)
    return net, {
        "task": task,
        "model": model,
        "metric": spec.metric,
        "size": spec.size,
        "trained_sizes": [options[spec.size_keys[0]], spec.largest_trained(options)],
        "steps": outcome.steps,
        "seconds": outcome.seconds,
        "final_loss": outcome.history[-1].loss,
        "parameters": sum(
            x.size for x in jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array))
        ),
        "hyperparameters": hyper,
        "task_options": options,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "softmax_reinserted_at": reinserted,
    }


def score_task(
    net, task: str, *, key: PRNGKeyArray, task_options: dict[str, Any] | None = None
) -> dict[int, float]:
    """Score a trained network on fresh examples of every size from the task's smallest to
    twice the largest trained one: `{size: bit error}` or, for two-hop, `{chains: accuracy}`.

    **Example:**

    ```python
    import jax
    from diffdyn.tasks.runner import score_task, train_task

    net, _ = train_task("copy", "lstm", key=jax.random.key(0), max_steps=50, progress=False)
    score_task(net, "copy", key=jax.random.key(1))  # {1: ..., ..., 16: ...}
    ```
    """
    spec = TASKS[task]
    options = {**spec.train, **(task_options or {})}
    if spec.metric == "bit_error":
        return _score_bits(net, spec, options, key)
    return _score_answers(net, spec, options, key, _widths(spec, options)[0])


def _score_bits(net, spec: TaskSpec, options: dict[str, Any], key) -> dict[int, float]:
    """Bit error per size on one batch of sizes drawn uniformly over the evaluated range: one
    generator and one forward pass (the models are causal, and steps after a short example
    are zero and unscored, so padding it to the longest changes nothing)."""
    sizes = spec.evaluated_sizes(options)
    low, high = spec.size_keys
    wide = {**options, low: sizes[0], high: sizes[-1]}

    @eqx.filter_jit
    def score(net, key):
        inputs, targets, mask, lengths = _arrays(
            spec.make(key, spec.eval_per_size * len(sizes), **wide)
        )  # fmt: skip
        return bit_error(jax.vmap(net)(inputs), targets, mask), lengths

    errors, lengths = (np.asarray(a) for a in score(net, key))
    return {n: float(np.mean(errors[lengths == n])) for n in sizes}


def _score_answers(
    net, spec: TaskSpec, options: dict[str, Any], key, vocab: int
) -> dict[int, float]:
    """Accuracy per number of chains, on stories cut from one batch of the largest size."""
    sizes = spec.evaluated_sizes(options)
    wide = {**options, "chains": sizes[-1]}

    @eqx.filter_jit
    def score(net, key):
        k_story, k_cut = jax.random.split(key)
        stories, questions, answers = spec.make(k_story, EVAL_PER_SIZE, **wide)
        cuts = jax.random.split(k_cut, EVAL_PER_SIZE)
        cut = jax.vmap(_fewer_chains, (0, 0, 0, None, None))
        fewer = [cut(cuts, stories, questions, c, vocab) for c in sizes]
        if isinstance(net, MemN2N):
            logits = [jax.vmap(net)(f, questions)[0] for f in fewer]
        else:
            # One forward pass for every size: sequences padded at the end (the models are
            # causal), each answer read at the last step of its own sequence.
            seqs = [jax.vmap(_one_hot_sequence, (0, 0, None))(f, questions, vocab) for f in fewer]
            longest = seqs[-1].shape[1]
            padded = [jnp.pad(s, [(0, 0), (0, longest - s.shape[1]), (0, 0)]) for s in seqs]
            outputs = jax.vmap(net)(jnp.concatenate(padded)).reshape(
                len(sizes), EVAL_PER_SIZE, longest, -1
            )
            logits = [outputs[i, :, s.shape[1] - 1] for i, s in enumerate(seqs)]
        return jnp.stack([jnp.mean(jnp.argmax(z, axis=-1) == answers) for z in logits])

    return {c: float(a) for c, a in zip(sizes, score(net, key))}
