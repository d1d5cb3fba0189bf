"""The one optimisation core: any Equinox module, any loss, any batch source, any Optax chain.

Everything diffdyn trains — forecasters on windows, systems with learnable fields, memory
networks on tasks, controllers, plastic networks — goes through `train`. A new family brings
a loss `loss(module, batch, key) -> scalar` and a batch source `batches(key, step, progress)
-> batch`; the loop owns the rest:

- **compiled steps**: one optimiser step per compiled call by default; `steps_per_call=K`
  runs up to K inside one `lax.scan` (steps past the chunk's end skipped with `lax.cond`, so
  chunks of any length share one compilation), which helps small feed-forward models;
- **the non-finite guard**: a step whose loss or gradient is not finite changes nothing (module
  and optimiser state are kept), halves the update scale, and after `max_failures` such steps
  the run stops with `TrainingError`; a non-finite module is never saved or returned;
- **the end of the run**: a step count and/or a wall-clock budget (compiling and validating
  included), whichever first; `progress` p ∈ [0, 1] (the larger of the two fractions) drives
  schedules and curricula (`train.schedule`), so a budget-limited run anneals before it stops;
- **validation**: `validate(module) -> float` every `validate_every` steps and at the end, the
  best module kept and returned, early stopping after `patience` validations without
  improvement;
- **deterministic keys**: step s uses `fold_in(key, s)`, so the same seed gives the same
  numbers and a resumed run reproduces an uninterrupted one bit for bit (step-count runs);
- **checkpoint/resume**: with `checkpoint=FOLDER` the state (module, best module, optimiser
  state, counters) is written after every validation so that a kill at any moment leaves the
  last complete state readable (`_save_state`); `resume=True` continues it;
- **progress**: one Rich bar with loss, validation loss, steps/s and ETA, on stderr;
- **data parallelism**: with `devices=N` the batch is sharded over a 1-D mesh of N local
  devices (`jax.sharding`), parameters replicated; the same code runs on several GPUs or on
  CPU cores exposed as host devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PRNGKeyArray

from .. import __version__
from ..errors import DiffdynError, stop_if_terminated
from ..files import atomic_write
from .progress import progress_bar
from .schedule import Schedule, constant

M = TypeVar("M")
STATE_ARRAYS, STATE_JSON = "state.eqx", "state.json"
# The arrays of the last complete state while a new one is being written (see `_save_state`).
STATE_PREVIOUS = "state.previous.eqx"
STATE_FORMAT = 1
DEFAULT_ADVICE = "try a smaller learning rate or stronger gradient clipping."


class TrainingError(DiffdynError):
    """Training that cannot go on (diverged, or nothing to train on)."""


@dataclasses.dataclass
class Record:
    """One validation point of a run: `step`, mean training `loss` since the last point,
    `val_loss` (or the training loss when there is no validation), `progress` p ∈ [0, 1] and
    wall-clock `seconds` so far."""

    step: int
    loss: float
    val_loss: float
    progress: float
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Record:
        """The inverse of `to_json` (a non-finite loss is stored as null)."""

        def number(value: Any) -> float:
            return math.nan if value is None else float(value)

        return cls(
            int(stored["step"]),
            number(stored["loss"]),
            number(stored["val_loss"]),
            number(stored["progress"]),
            number(stored["seconds"]),
        )


@dataclasses.dataclass
class TrainState(Generic[M]):
    """Everything needed to continue a run exactly where it stopped.

    Arrays live in `module`, `best_module`, `opt_state`; the rest is plain numbers (JSON).
    """

    module: M
    best_module: M
    opt_state: Any
    step: int = 0
    seconds: float = 0.0
    best_val: float = math.inf
    bad_validations: int = 0
    update_scale: float = 1.0
    failures: int = 0
    history: list[Record] = dataclasses.field(default_factory=list)
    finished: bool = False
    stop_reason: str = ""
    compile_seconds: float = 0.0

    def counters(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "seconds": self.seconds,
            "best_val": None if math.isinf(self.best_val) else self.best_val,
            "bad_validations": self.bad_validations,
            "update_scale": self.update_scale,
            "failures": self.failures,
            "history": [r.to_json() for r in self.history],
            "finished": self.finished,
            "stop_reason": self.stop_reason,
            "compile_seconds": self.compile_seconds,
        }

    def restore_counters(self, stored: dict[str, Any]) -> None:
        """Set the counters from `counters()` output; `ValueError` (or `TypeError`,
        `KeyError`) when a value is missing or of the wrong kind."""
        kinds = {"step": int, "seconds": float, "best_val": float, "bad_validations": int,
                 "update_scale": float, "failures": int, "finished": bool, "stop_reason": str,
                 "compile_seconds": float}  # fmt: skip
        values: dict[str, Any] = {}
        for name, kind in kinds.items():
            if name not in stored:
                if name == "compile_seconds":  # states written before it was recorded
                    continue
                raise KeyError(name)
            value = stored[name]
            if name == "best_val" and value is None:
                value = math.inf
            if isinstance(value, bool) != (kind is bool) or not isinstance(
                value, int | float if kind is float else kind
            ):
                raise TypeError(f"{name} = {value!r}")
            values[name] = kind(value)
        if values["step"] < 0 or values["failures"] < 0:
            raise ValueError("negative counter")
        history = stored["history"]
        if not isinstance(history, list):
            raise TypeError("history")
        values["history"] = [Record.from_json(r) for r in history]
        for name, value in values.items():
            setattr(self, name, value)


@dataclasses.dataclass
class TrainOutcome(Generic[M]):
    """What `train` returns.

    - `module`: the best module by validation loss (the last one without validation).
    - `last_module`: the module after the last step.
    - `steps`, `seconds`: optimiser steps taken and wall-clock seconds (this run and any it
      resumed).
    - `history`: the `Record` of every validation point.
    - `best_val`: the best validation loss (`inf` when none was finite).
    - `failures`: steps skipped for a non-finite loss or gradient.
    - `finished`: whether the run ended for good (steps done, early stop) rather than by its
      budget, so that another `resume` has nothing to add.
    - `stop_reason`: why it stopped, in words.
    - `compile_seconds`: how long the first call took (compiling the step and taking it),
      summed over this run and any it resumed; part of `seconds`, and counted against the
      budget like the rest.
    """

    module: M
    last_module: M
    steps: int
    seconds: float
    history: list[Record]
    best_val: float
    failures: int
    finished: bool
    stop_reason: str
    compile_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "seconds": self.seconds,
            "history": [r.to_json() for r in self.history],
            "best_val": None if math.isinf(self.best_val) else self.best_val,
            "failures": self.failures,
            "finished": self.finished,
            "stop_reason": self.stop_reason,
            "compile_seconds": self.compile_seconds,
        }


def _is_finite_tree(tree) -> Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def module_is_finite(module) -> bool:
    """Whether every floating array of `module` is finite (checked on the host: no compiling)."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(module, eqx.is_inexact_array))
    return all(bool(np.all(np.isfinite(np.asarray(x)))) for x in leaves)


LARGE_LEAF = 1 << 16  # elements: arrays this large are selected by `jnp.where` in `_where`


def _where(pred, new, old):
    """`new` if `pred` else `old`, for whole pytrees.

    Arrays of fewer than `LARGE_LEAF` elements go through one `lax.cond`: a `jnp.where` per
    array compiled to one XLA:CPU kernel per array, about 90 of the 329 kernels of the
    Transformer forecaster's training step, for its parameters and Adam moments. Larger arrays
    are selected by `jnp.where` each: the conditional copies its operands, which for the plastic
    network's two 1000 × 1000 matrices and their Adam moments cost 18–20 ms of a 95 ms step
    (against 3–5 ms for the selects; `bench/plastic_step.py`'s sizes, 2026-12-03).
    """
    new_arrays, static = eqx.partition(new, eqx.is_array)
    old_arrays = eqx.filter(old, eqx.is_array)
    large = lambda a: a.size >= LARGE_LEAF  # noqa: E731
    new_large, new_small = eqx.partition(new_arrays, large)
    old_large, old_small = eqx.partition(old_arrays, large)
    small = jax.lax.cond(pred, lambda a, b: a, lambda a, b: b, new_small, old_small)
    big = jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new_large, old_large)
    return eqx.combine(big, small, static)


def _mesh_shardings(devices: int | None):
    """(batch sharding, replicated sharding) over the first `devices` local devices, or
    `(None, None)` for one device."""
    if devices is None or devices == 1:
        return None, None
    available = jax.local_devices()
    if devices < 1 or devices > len(available):
        raise DiffdynError(
            f"devices={devices} asked for, but this process sees {len(available)} local "
            "device(s); on CPU, start with --devices N (the CLI) or set "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N before JAX starts."
        )
    mesh = jax.sharding.Mesh(np.asarray(available[:devices]), ("batch",))
    batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return batch, replicated


def _check_split(shape, devices: int) -> None:
    if len(shape) and shape[0] % devices:
        raise DiffdynError(
            f"a batch of {shape[0]} examples cannot be split over {devices} devices; "
            f"use a batch size that is a multiple of {devices}."
        )


def _shard_batch(batch, sharding, devices: int):
    def constrain(x):
        if not eqx.is_array(x) or x.ndim == 0:
            return x
        _check_split(x.shape, devices)
        return jax.lax.with_sharding_constraint(x, sharding)

    return jax.tree_util.tree_map(constrain, batch)


@eqx.filter_jit
def _run_chunk(
    params,
    static,
    opt_state,
    scalars,
    loss_fn,
    batches,
    optimiser,
    schedule,
    key,
    inv_steps,
    time_start,
    time_per_step,
    n_active,
    chunk: int,
    sharding,
    devices: int,
    flat: bool,
):
    """Up to `chunk` optimiser steps in one `lax.scan`; steps i >= n_active are skipped."""

    def body(carry, i):
        def step_once(carry):
            params, opt_state, step, scale, failures, loss_sum, n_ok = carry
            progress = jnp.clip(
                jnp.maximum(
                    step.astype(jnp.float32) * inv_steps,
                    time_start + i.astype(jnp.float32) * time_per_step,
                ),
                0.0,
                1.0,
            )
            k_batch, k_loss = jax.random.split(jax.random.fold_in(key, step))
            batch = batches(k_batch, step, progress)
            if sharding is not None:
                batch = _shard_batch(batch, sharding, devices)

            def objective(p):
                return loss_fn(eqx.combine(p, static), batch, k_loss)

            loss, grads = jax.value_and_grad(objective)(params)
            if flat:
                flat_grads, unravel = ravel_pytree(grads)
                flat_params = ravel_pytree(params)[0]
                extra = _extra_args(optimiser, loss, flat_grads, lambda q: objective(unravel(q)))
                flat_updates, new_opt_state = optimiser.update(
                    flat_grads, opt_state, flat_params, **extra
                )
                updates = unravel(flat_updates)
            else:
                extra = _extra_args(optimiser, loss, grads, objective)
                updates, new_opt_state = optimiser.update(grads, opt_state, params, **extra)
            factor = schedule(progress) * scale
            updates = jax.tree_util.tree_map(lambda u: u * factor.astype(u.dtype), updates)
            new_params = eqx.apply_updates(params, updates)
            finite = jnp.isfinite(loss) & _is_finite_tree(grads) & _is_finite_tree(new_params)
            # A non-finite step changes nothing but the update scale, which it halves.
            params, opt_state = _where(finite, (new_params, new_opt_state), (params, opt_state))
            scale = jnp.where(finite, scale, 0.5 * scale)
            failures = failures + jnp.where(finite, 0, 1).astype(failures.dtype)
            loss_sum = loss_sum + jnp.where(finite, loss, 0.0).astype(loss_sum.dtype)
            n_ok = n_ok + jnp.where(finite, 1, 0).astype(n_ok.dtype)
            return params, opt_state, step + 1, scale, failures, loss_sum, n_ok

        if chunk == 1:
            return step_once(carry), None
        carry = jax.lax.cond(i < n_active, step_once, lambda c: c, carry)
        return carry, None

    step, scale, failures = scalars
    zero_loss, zero_count = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
    carry = (params, opt_state, step, scale, failures, zero_loss, zero_count)
    if chunk == 1:  # no loop around the step: see `train`'s `steps_per_call`
        carry = body(carry, jnp.zeros((), jnp.int32))[0]
    else:
        carry, _ = jax.lax.scan(body, carry, jnp.arange(chunk))
    params, opt_state, step, scale, failures, loss_sum, n_ok = carry
    return params, opt_state, (step, scale, failures), loss_sum, n_ok


def _extra_args(optimiser, value, grad, value_fn) -> dict[str, Any]:
    """What an optimiser with extra arguments (`optax.GradientTransformationExtraArgs`, e.g.
    `optax.lbfgs`, whose line search evaluates the loss) is given besides the gradients: the
    step's loss value and gradient and the loss as a function of the parameters, on the step's
    own batch and key. Transformations that take no extra arguments ignore them (`optax.chain`
    passes them on only to those that do); a plain `GradientTransformation` gets none."""
    if isinstance(optimiser, optax.GradientTransformationExtraArgs):
        return {"value": value, "grad": grad, "value_fn": value_fn}
    return {}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str | None:
    try:
        return _sha256(path.read_bytes())
    except OSError:
        return None


def _remove_leftovers(folder: Path) -> None:
    """Temporary files a killed write left in `folder` (only ever called by the run that owns
    the folder)."""
    for leftover in folder.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def clear_state(folder: str | Path) -> None:
    """Remove a training state from `folder` (its description first, so that what is left
    of a half-removed state is never taken for one)."""
    folder = Path(folder)
    for name in (STATE_JSON, STATE_ARRAYS, STATE_PREVIOUS):
        (folder / name).unlink(missing_ok=True)
    if folder.is_dir():
        _remove_leftovers(folder)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold off SIGINT and SIGTERM while the block runs (they are delivered when it ends), in
    the main thread; elsewhere (where no signal handler runs anyway) a no-op."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "pthread_sigmask"
    ):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _save_state(folder: Path, state: TrainState, meta: dict[str, Any]) -> None:
    """Write the state so that a kill at any moment leaves the last complete one readable.

    `state.json` (counters, `meta`, the SHA-256 of the arrays it goes with) is the commit
    point. The arrays of the state it describes are first moved aside to
    `state.previous.eqx`, the new arrays written to `state.eqx`, then `state.json` replaced
    (each step atomic), then the previous arrays removed: whenever the process dies, one of the
    two arrays files matches the description (`_load_state` picks it), so a resumed run
    neither loses the steps of the last checkpoint nor counts any step twice. Ctrl-C and
    SIGTERM wait until the write is done (it takes milliseconds), and a write that fails
    midway puts the last complete state back in place.
    """
    with signals_held():
        try:
            _write_state(folder, state, meta)
        except BaseException:
            _settle(folder)
            raise


def _settle(folder: Path) -> None:
    """After a state write that stopped midway: the arrays that `state.json` describes back
    under `state.eqx`, the other arrays file removed (or left as it is when nothing fits)."""
    arrays, previous = folder / STATE_ARRAYS, folder / STATE_PREVIOUS
    try:
        digest = json.loads((folder / STATE_JSON).read_text()).get("arrays_sha256")
    except (OSError, ValueError, AttributeError):
        return
    if digest is not None and _file_sha256(previous) == digest:
        os.replace(previous, arrays)
    elif digest is not None and _file_sha256(arrays) == digest:
        previous.unlink(missing_ok=True)


def _write_state(folder: Path, state: TrainState, meta: dict[str, Any]) -> None:
    from .checkpoint import write_json  # non-finite floats become null

    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, (state.module, state.best_module, state.opt_state))
    data = buffer.getvalue()
    arrays, previous, record = folder / STATE_ARRAYS, folder / STATE_PREVIOUS, folder / STATE_JSON
    if record.exists() and arrays.exists():
        try:
            committed = json.loads(record.read_text()).get("arrays_sha256")
        except (OSError, ValueError, AttributeError):
            committed = None
        # `state.eqx` may be the uncommitted half of a save that was killed (the complete
        # state then being `state.previous.eqx`): only the committed one is kept aside.
        if committed is None or _file_sha256(arrays) == committed:
            os.replace(arrays, previous)
    atomic_write(arrays, lambda f: f.write(data))
    content = {
        "format": STATE_FORMAT,
        "diffdyn_version": __version__,
        "arrays_sha256": _sha256(data),
        "counters": state.counters(),
        "meta": meta,
    }
    write_json(record, content)
    previous.unlink(missing_ok=True)


def has_state(folder: str | Path) -> bool:
    """Whether `folder` holds a training state that `train(..., resume=True)` can continue."""
    folder = Path(folder)
    return (folder / STATE_JSON).is_file() and (
        (folder / STATE_ARRAYS).is_file() or (folder / STATE_PREVIOUS).is_file()
    )


def _read_record(folder: Path) -> dict[str, Any]:
    """`state.json`, checked to be one this diffdyn reads."""
    path = folder / STATE_JSON
    try:
        stored = json.loads(path.read_text())
        if not isinstance(stored, dict) or not isinstance(stored.get("meta"), dict):
            raise ValueError("not a training state")
        if not isinstance(stored.get("counters"), dict):
            raise ValueError("no counters")
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError too
        raise TrainingError(
            f"the training state {path} is unreadable (damaged or truncated: {error}); "
            "start the training again (--force on the command line)."
        ) from None
    written = stored.get("format", STATE_FORMAT)  # states before the format was recorded: 1
    if written != STATE_FORMAT:
        raise TrainingError(
            f"the training state in {folder} was written by diffdyn "
            f"{stored.get('diffdyn_version', '?')} in state format {written!r}; this diffdyn "
            f"{__version__} reads format {STATE_FORMAT}: start the training again (--force on "
            "the command line)."
        )
    return stored


def read_state_meta(folder: str | Path) -> dict[str, Any]:
    """The `meta` dict stored with a training state (what the caller put there)."""
    return _read_record(Path(folder))["meta"]


def read_state_record(folder: str | Path) -> dict[str, Any]:
    """All that `state.json` holds: `counters`, `meta`, `format`, `diffdyn_version`."""
    return _read_record(Path(folder))


def _state_arrays(folder: Path, stored: dict[str, Any]) -> Path:
    """The arrays file that goes with `state.json`, the other one removed."""
    arrays, previous = folder / STATE_ARRAYS, folder / STATE_PREVIOUS
    digest = stored.get("arrays_sha256")
    if digest is None:  # a state written before digests were recorded
        return arrays
    if _file_sha256(arrays) == digest:
        previous.unlink(missing_ok=True)
        return arrays
    if _file_sha256(previous) == digest:  # killed while writing the next state
        os.replace(previous, arrays)
        return arrays
    raise TrainingError(
        f"the training state in {folder} is damaged: {STATE_ARRAYS} is missing, truncated or "
        f"does not belong to {STATE_JSON}; start the training again (--force on the command "
        "line)."
    )


def _load_state(folder: Path, fresh: TrainState) -> TrainState:
    from .checkpoint import CheckpointError, deserialise

    stored = _read_record(folder)
    _remove_leftovers(folder)
    path = _state_arrays(folder, stored)
    like = (fresh.module, fresh.best_module, fresh.opt_state)
    try:
        fresh.module, fresh.best_module, fresh.opt_state = deserialise(path, like)
    except CheckpointError:
        if "arrays_sha256" not in stored:
            raise
        version = stored.get("diffdyn_version")
        by = "" if version == __version__ else f" by diffdyn {version}"
        raise TrainingError(
            f"the training state in {folder} is whole but was written{by} for another module "
            "than this run builds (another model, other hyperparameters or data of another "
            "shape); resume with the request that started it, or start the training again "
            "(--force on the command line)."
        ) from None
    try:
        fresh.restore_counters(stored["counters"])
    except (KeyError, TypeError, ValueError) as error:
        raise TrainingError(
            f"the training state {folder / STATE_JSON} is damaged (counter {error}); start the "
            "training again (--force on the command line)."
        ) from None
    return fresh


def train(
    module: M,
    loss: Callable[[M, Any, PRNGKeyArray], Array],
    batches: Callable[[PRNGKeyArray, Array, Array], Any],
    optimiser: optax.GradientTransformation,
    *,
    key: PRNGKeyArray,
    steps: int | None = None,
    budget: float | None = None,
    schedule: Schedule | None = None,
    validate: Callable[[M], float] | None = None,
    validate_every: int | None = None,
    patience: int = 0,
    max_failures: int = 5,
    steps_per_call: int = 1,
    devices: int | None = None,
    flat_optimiser: bool = False,
    checkpoint: str | Path | None = None,
    checkpoint_meta: dict[str, Any] | None = None,
    resume: bool = False,
    on_validation: Callable[[TrainState], None] | None = None,
    progress: bool | str = True,
    divergence_advice: str = DEFAULT_ADVICE,
) -> TrainOutcome[M]:
    """Minimise `loss` over the inexact arrays of `module` with `optimiser`.

    **Arguments:**

    - `module`: any pytree (an `eqx.Module`); its floating arrays are trained, the rest is
      static. Freeze parts by making them non-arrays or wrapping them in
      `jax.lax.stop_gradient` inside the module.
    - `loss(module, batch, key) -> scalar`: traceable.
    - `batches(key, step, progress) -> batch`: traceable; the batch for optimiser step `step`
      (an int32 scalar) at run progress `progress` ∈ [0, 1]. To carry data (a series, its
      windows), make it an `eqx.Module` with array fields: its arrays are arguments of the
      compiled step, not constants baked into it.
    - `optimiser`: any `optax.GradientTransformation` (e.g. `optax.chain(
      optax.clip_by_global_norm(1.0), optax.adam(1e-3))`). One that takes extra arguments
      (`optax.GradientTransformationExtraArgs`) also gets the step's `value`, `grad` and
      `value_fn` (the loss of the parameters on the step's batch and key), so a line-search
      optimiser such as `optax.lbfgs()` works as it is; keep the default `schedule` with it
      (a factor other than 1 rescales the line-searched step).
    - `key`: step s draws its batch and loss keys from `fold_in(key, s)`.
    - `steps`, `budget`: the end of the run — a step count, seconds of wall-clock time, or
      both (whichever comes first). At least one. The budget bounds the whole call: compiling
      (the first call, `TrainOutcome.compile_seconds`), every step and every validation,
      the final one included (its length is estimated from the last validation, or from the
      compile time before there is one), so the call returns about `budget` seconds after it
      started. At least one step is always taken: when compiling alone spends the budget the
      run stops after that first step and its `stop_reason` says so. Budget progress is the
      fraction of the time left after compiling, so schedules and curricula run their whole
      course in the steps there is time for.
    - `schedule(progress) -> factor`: multiplies the updates (`train.schedule`; default
      constant 1).
    - `validate(module) -> float`: host-side validation loss (lower is better), every
      `validate_every` steps (default: about 20 times per step-count run, every 2 s of a
      budget run) and at the end; the best module is returned. Without it the training loss
      stands in and the last module is returned.
    - `patience`: stop after that many validations without improvement (0: never).
    - `max_failures`: non-finite steps tolerated before `TrainingError`.
    - `steps_per_call`: optimiser steps per compiled call. 1 (the default) compiles the step
      alone; more run in one `lax.scan`, which saves Python's per-step overhead for small
      feed-forward models (a TDNN step: 2.1 → 1.4 ms) but, measured on XLA:CPU, makes models
      with loops of their own slower to compile and to run (an LSTM forecaster step 8.9 →
      19 ms, a DNC copy step 11.5 → 35 ms).
    - `devices`: shard each batch over this many local devices (its leading axis).
    - `flat_optimiser`: give `optimiser` the parameters and gradients as one flat vector
      (`jax.flatten_util.ravel_pytree`) instead of a tree of arrays. Its per-array work (Adam's
      moments, a global norm) then compiles to a few XLA kernels instead of several per
      array. With the one-`lax.cond` guard below, the Transformer forecaster's training step
      went from 329 to 236 kernels and compiled in about half the time (24-34 s against
      55-63 s on a 2-core machine at load 8). Only for optimisers that treat every element
      alike (clipping by global norm, Adam, AdamW without a mask), which is what `fit` builds;
      a tree-aware one
      (`optax.masked`, `optax.multi_transform`) needs the default, False.
    - `checkpoint`: a folder for the resumable state, written after every validation;
      `checkpoint_meta`: a JSON-able dict stored beside it (what the caller needs to check a
      resume against); `resume`: continue the state in `checkpoint`.
    - `on_validation(state)`: called after every validation point (and its checkpoint).
    - `progress`: show a Rich progress bar (a string: its label).
    - `divergence_advice`: the end of the `TrainingError` message when the run diverges —
      what to change, in the caller's words (e.g. its command-line options).

    **Returns:** a `TrainOutcome`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp, optax
    from diffdyn.train import train

    data = jnp.linspace(-1, 1, 64)

    def loss(w, batch, key):
        return jnp.mean((w * batch - 3.0 * batch) ** 2)

    out = train(jnp.asarray(0.0), loss, lambda key, step, p: data, optax.adam(0.1),
                key=jax.random.key(0), steps=300, progress=False)
    float(out.module)  # ≈ 3.0
    ```
    """
    if steps is None and budget is None:
        raise DiffdynError("give the run an end: a number of steps, a budget, or both.")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise DiffdynError(f"steps must be a positive whole number; got {steps!r}.")
    if budget is not None and not (budget > 0 and math.isfinite(budget)):
        raise DiffdynError(f"the budget must be a positive number of seconds; got {budget!r}.")
    if steps_per_call < 1:
        raise DiffdynError(f"steps_per_call must be at least 1; got {steps_per_call}.")
    clock = _Clock(budget, validate is not None)  # this call's wall clock, from now
    schedule = schedule or constant()
    folder = None if checkpoint is None else Path(checkpoint)
    if resume and (folder is None or not has_state(folder)):
        raise TrainingError(
            f"nothing to resume in {folder}: no unfinished training state there; start the "
            "training without resume."
        )
    batch_sharding, replicated = _mesh_shardings(devices)
    n_devices = 1 if devices is None else devices
    if batch_sharding is not None:
        # Shapes only: a batch that does not split is refused before any work.
        shapes = jax.eval_shape(batches, key, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32))
        jax.tree_util.tree_map(lambda x: _check_split(x.shape, n_devices), shapes)
    params, static = eqx.partition(module, eqx.is_inexact_array)
    opt_state = optimiser.init(ravel_pytree(params)[0] if flat_optimiser else params)
    state: TrainState = TrainState(module=module, best_module=module, opt_state=opt_state)
    if resume and folder is not None:
        state = _load_state(folder, state)
        if not state.finished:
            state.stop_reason = ""  # a budget spent before: this call has its own
    if validate_every is None:
        validate_every = max(1, steps // 20) if steps is not None else None
    chunk = max(1, min(steps_per_call, steps or steps_per_call, validate_every or steps_per_call))
    inv_steps = 0.0 if steps is None else 1.0 / steps
    checked_validation = 2.0  # seconds between validations of a budget-only run
    # `budget` is this call's; `state.seconds` counts every call of the run.
    seconds_before, compile_before = state.seconds, state.compile_seconds
    per_step = None  # seconds per step, measured on calls after the first (which compiles)
    calls = 0
    since_loss, since_ok = 0.0, 0
    next_validation = (
        state.step + validate_every - state.step % validate_every if validate_every else None
    )
    last_validation_time = time.perf_counter()
    bar = progress_bar(progress, total=steps, budget=budget, completed=state.step)
    with bar:
        while not state.finished:
            stop_if_terminated()  # a SIGTERM whose exception was lost (`errors.terminate`)
            remaining = None if steps is None else steps - state.step
            if remaining is not None and remaining <= 0:
                state.finished, state.stop_reason = True, f"{steps} steps done"
            elif budget is not None and calls and clock.spent():
                state.stop_reason = f"training budget of {budget:g} s reached"
                compiling = state.compile_seconds - compile_before
                if calls == 1 and compiling >= 0.5 * budget:
                    state.stop_reason += (
                        f" while compiling ({compiling:.3g} s): one step taken; give a larger "
                        "budget to train"
                    )
            if state.stop_reason:
                _validate_point(state, validate, since_loss, since_ok, seconds_before, steps,
                                clock)  # fmt: skip
                _after_validation(state, folder, checkpoint_meta, on_validation, bar)
                break
            n = chunk if remaining is None else min(chunk, remaining)
            if next_validation is not None:
                n = min(n, next_validation - state.step)
            if budget is not None:
                if per_step is None:
                    n = 1  # the first calls compile and measure: one step each
                else:
                    # Calls of about a quarter second, none overrunning the budget much.
                    fit_in = min(clock.left(), 0.25) / max(per_step, 1e-9)
                    n = max(1, min(n, int(fit_in) + 1))
            time_start = clock.fraction()
            time_per_step = 0.0 if per_step is None else clock.fraction_of(per_step)
            params, static = eqx.partition(state.module, eqx.is_inexact_array)
            if replicated is not None:
                params = jax.device_put(params, replicated)
                state.opt_state = jax.device_put(state.opt_state, replicated)
            scalars = (
                jnp.asarray(state.step, jnp.int32),
                jnp.asarray(state.update_scale, jnp.float32),
                jnp.asarray(state.failures, jnp.int32),
            )
            call_started = time.perf_counter()
            params, opt_state, scalars, loss_sum, n_ok = _run_chunk(
                params,
                static,
                state.opt_state,
                scalars,
                loss,
                batches,
                optimiser,
                schedule,
                key,
                jnp.asarray(inv_steps, jnp.float32),
                jnp.asarray(time_start, jnp.float32),
                jnp.asarray(time_per_step, jnp.float32),
                jnp.asarray(n, jnp.int32),
                chunk,
                batch_sharding,
                n_devices,
                flat_optimiser,
            )
            loss_sum, n_ok = float(loss_sum), int(n_ok)  # waits for the chunk
            step, scale, failures = (np.asarray(s).item() for s in scalars)
            # The state changes only here, all at once, after the chunk is done: an interrupt
            # during the call leaves it as it was at the end of the previous chunk.
            state.module, state.opt_state = eqx.combine(params, static), opt_state
            state.step, state.update_scale, state.failures = int(step), float(scale), int(failures)
            took = time.perf_counter() - call_started
            calls += 1
            if calls == 1:
                state.compile_seconds = compile_before + took
                clock.compiled(took)
            else:
                per_step = took / n if per_step is None else 0.7 * per_step + 0.3 * took / n
            since_loss, since_ok = since_loss + loss_sum, since_ok + n_ok
            state.seconds = seconds_before + clock.elapsed()
            if state.failures > max_failures:
                raise TrainingError(
                    f"training diverged at step {state.step}: {state.failures} steps had a "
                    f"non-finite loss or gradient even after scaling the updates down to "
                    f"{state.update_scale:.2g} of their size; {divergence_advice}"
                )
            bar.update(
                state.step,
                state.seconds,
                loss=since_loss / since_ok if since_ok else math.nan,
                val=state.best_val,
            )
            due = next_validation is not None and state.step >= next_validation
            if next_validation is None and time.perf_counter() - last_validation_time >= (
                checked_validation
            ):
                due = True
            if due:
                _validate_point(state, validate, since_loss, since_ok, seconds_before, steps,
                                clock)  # fmt: skip
                since_loss, since_ok = 0.0, 0
                last_validation_time = time.perf_counter()
                if next_validation is not None:
                    next_validation += validate_every or 0
                if patience and state.bad_validations >= patience:
                    state.finished = True
                    state.stop_reason = (
                        f"early stopping: no validation improvement in {patience} checks"
                    )
                _after_validation(state, folder, checkpoint_meta, on_validation, bar)
    best = state.best_module if validate is not None else state.module
    if not module_is_finite(best):
        raise TrainingError(
            "training produced non-finite parameters; nothing was kept; " + divergence_advice
        )
    return TrainOutcome(
        module=best,
        last_module=state.module,
        steps=state.step,
        seconds=state.seconds,
        history=state.history,
        best_val=state.best_val,
        failures=state.failures,
        finished=state.finished,
        stop_reason=state.stop_reason,
        compile_seconds=state.compile_seconds,
    )


VALIDATION_COMPILE_FRACTION = 0.25  # of the first call, kept for the first validation


class _Clock:
    """The wall clock of one `train` call, and its budget (which covers everything: compiling,
    steps, validations).

    Budget progress is measured over the time left once the first call (compiling) returned,
    less the time the final validation is expected to take, so that a schedule runs its whole
    course in the steps there is time for and the run ends near its budget, not after it.
    """

    def __init__(self, budget: float | None, validates: bool):
        self.origin = time.perf_counter()
        self.budget = budget
        self.validates = validates
        self.compile: float | None = None  # seconds of the first call
        self.start: float | None = None  # elapsed seconds when the first call returned
        self.validation: float | None = None  # seconds the last validation took

    def elapsed(self) -> float:
        return time.perf_counter() - self.origin

    def compiled(self, seconds: float) -> None:
        self.compile, self.start = seconds, self.elapsed()

    def reserve(self) -> float:
        """Seconds kept for the final validation."""
        if not self.validates:
            return 0.0
        if self.validation is not None:
            return self.validation
        # Not validated yet: the first validation compiles a forward pass. Measured on the
        # registry's forecasters (2026-12-01, Lorenz-63): compiling it took 0.16-0.22 of the
        # training step's compile (LSTM 0.42 s against 2.2 s, DNC 1.2 against 6.1, attention
        # seq2seq 1.2 against 6.6). Half of the first call, reserved before, left the models
        # slowest to compile one step in the compare grid's 20 s budgets.
        return VALIDATION_COMPILE_FRACTION * (self.compile or 0.0)

    def left(self) -> float:
        """Seconds of the budget left for steps (infinite without a budget)."""
        if self.budget is None:
            return math.inf
        return self.budget - self.elapsed() - self.reserve()

    def spent(self) -> bool:
        return self.left() <= 0

    def _span(self) -> float:
        assert self.budget is not None and self.start is not None
        return max(self.budget - self.start - self.reserve(), 1e-9)

    def fraction(self) -> float:
        """Budget progress now, in [0, 1] (0 without a budget or before the first call)."""
        if self.budget is None or self.start is None:
            return 0.0
        return min(1.0, max(0.0, (self.elapsed() - self.start) / self._span()))

    def fraction_of(self, seconds: float) -> float:
        if self.budget is None or self.start is None:
            return 0.0
        return seconds / self._span()


def _validate_point(state, validate, since_loss, since_ok, seconds_before, steps, clock) -> None:
    if state.history and state.history[-1].step == state.step:
        return  # this step was validated already (the run ended on a validation point)
    train_loss = since_loss / since_ok if since_ok else math.nan
    if validate is not None:
        began = time.perf_counter()
        value = float(validate(state.module))
        clock.validation = time.perf_counter() - began
    else:
        value = train_loss
    fractions = [0.0, clock.fraction()]
    if steps:
        fractions.append(state.step / steps)
    state.seconds = seconds_before + clock.elapsed()
    state.history.append(
        Record(state.step, train_loss, value, min(1.0, max(fractions)), state.seconds)
    )
    if math.isfinite(value) and value < state.best_val:
        state.best_val, state.best_module, state.bad_validations = value, state.module, 0
    else:
        state.bad_validations += 1


def _after_validation(state, folder, meta, on_validation, bar) -> None:
    bar.update(state.step, state.seconds, val=state.best_val)
    if folder is not None:
        _save_state(folder, state, meta or {})
    if on_validation is not None:
        on_validation(state)
