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
- **the end of the run**: a step count and/or a budget of training time, whichever first;
  `progress` p ∈ [0, 1] (the larger of the two fractions) drives schedules and curricula
  (`train.schedule`), so a budget-limited run anneals before it stops;
- **validation**: `validate(module) -> float` every `validate_every` steps and at the end, the
  best module kept and returned, early stopping after `patience` validations without
  improvement;
- **deterministic keys**: step s uses `fold_in(key, s)`, so the same seed gives the same
  numbers and a resumed run reproduces an uninterrupted one bit for bit (step-count runs);
- **checkpoint/resume**: with `checkpoint=FOLDER` the state (module, best module, optimiser
  state, counters) is written atomically after every validation; `resume=True` continues it;
- **progress**: one Rich bar with loss, validation loss, steps/s and ETA, on stderr;
- **data parallelism**: with `devices=N` the batch is sharded over a 1-D mesh of N local
  devices (`jax.sharding`), parameters replicated; the same code runs on several GPUs or on
  CPU cores exposed as host devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from ..errors import DiffdynError
from ..files import atomic_write
from .progress import progress_bar
from .schedule import Schedule, constant

M = TypeVar("M")
STATE_ARRAYS, STATE_JSON = "state.eqx", "state.json"


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
        }

    def restore_counters(self, stored: dict[str, Any]) -> None:
        for name, value in stored.items():
            if name == "best_val":
                value = math.inf if value is None else value
            elif name == "history":
                value = [Record.from_json(r) for r in value]
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
    - `compile_seconds`: how long the first call of this run took (compiling the step and
      taking it); not counted against the budget.
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


def _where(pred, new, old):
    return jax.tree_util.tree_map(
        lambda a, b: jnp.where(pred, a, b) if eqx.is_array(a) else a, new, old
    )


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
            updates, new_opt_state = optimiser.update(grads, opt_state, params)
            factor = schedule(progress) * scale
            updates = jax.tree_util.tree_map(lambda u: u * factor.astype(u.dtype), updates)
            new_params = eqx.apply_updates(params, updates)
            finite = jnp.isfinite(loss) & _is_finite_tree(grads) & _is_finite_tree(new_params)
            # A non-finite step changes nothing but the update scale, which it halves.
            params = _where(finite, new_params, params)
            opt_state = _where(finite, new_opt_state, opt_state)
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


def _save_state(folder: Path, state: TrainState, meta: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (state.module, state.best_module, state.opt_state)
    atomic_write(folder / STATE_ARRAYS, lambda f: eqx.tree_serialise_leaves(f, arrays))
    from .checkpoint import write_json  # non-finite floats become null

    write_json(folder / STATE_JSON, {"counters": state.counters(), "meta": meta})


def has_state(folder: str | Path) -> bool:
    """Whether `folder` holds a training state that `train(..., resume=True)` can continue."""
    return (Path(folder) / STATE_JSON).is_file() and (Path(folder) / STATE_ARRAYS).is_file()


def read_state_meta(folder: str | Path) -> dict[str, Any]:
    """The `meta` dict stored with a training state (what the caller put there)."""
    try:
        return json.loads((Path(folder) / STATE_JSON).read_text())["meta"]
    except (OSError, ValueError, KeyError) as error:
        raise TrainingError(
            f"the training state in {folder} is unreadable ({type(error).__name__}); "
            "start the training again."
        ) from None


def _load_state(folder: Path, fresh: TrainState) -> TrainState:
    from .checkpoint import deserialise

    try:
        stored = json.loads((folder / STATE_JSON).read_text())
    except (OSError, ValueError) as error:
        raise TrainingError(f"the training state in {folder} is unreadable ({error}).") from None
    like = (fresh.module, fresh.best_module, fresh.opt_state)
    fresh.module, fresh.best_module, fresh.opt_state = deserialise(folder / STATE_ARRAYS, like)
    fresh.restore_counters(stored["counters"])
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
    checkpoint: str | Path | None = None,
    checkpoint_meta: dict[str, Any] | None = None,
    resume: bool = False,
    on_validation: Callable[[TrainState], None] | None = None,
    progress: bool | str = True,
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
      optax.clip_by_global_norm(1.0), optax.adam(1e-3))`).
    - `key`: step s draws its batch and loss keys from `fold_in(key, s)`.
    - `steps`, `budget`: the end of the run — a step count, seconds of training, or both
      (whichever comes first). At least one. The budget clock starts when the first call,
      which compiles the step, returns, and stops while validating: a model that takes long
      to compile still gets its budget of training (`TrainOutcome.compile_seconds` says how
      long compiling took).
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
    - `checkpoint`: a folder for the resumable state, written after every validation;
      `checkpoint_meta`: a JSON-able dict stored beside it (what the caller needs to check a
      resume against); `resume`: continue the state in `checkpoint`.
    - `on_validation(state)`: called after every validation point (and its checkpoint).
    - `progress`: show a Rich progress bar (a string: its label).

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
    opt_state = optimiser.init(params)
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
    # `budget` is this call's; `state.seconds` counts every call of the run. The budget clock
    # starts when the first call (which compiles) returns and stops while validating.
    started, seconds_before = time.perf_counter(), state.seconds
    clock = _BudgetClock()
    per_step = None  # seconds per step, measured on calls after the first (which compiles)
    calls, compile_seconds = 0, 0.0
    since_loss, since_ok = 0.0, 0
    next_validation = (
        state.step + validate_every - state.step % validate_every if validate_every else None
    )
    last_validation_time = time.perf_counter()
    bar = progress_bar(progress, total=steps, budget=budget, completed=state.step)
    with bar:
        while not state.finished:
            elapsed = clock.elapsed()
            remaining = None if steps is None else steps - state.step
            if remaining is not None and remaining <= 0:
                state.finished, state.stop_reason = True, f"{steps} steps done"
            elif budget is not None and elapsed >= budget:
                state.stop_reason = f"training budget of {budget:g} s reached"
            if state.stop_reason:
                _validate_point(state, validate, since_loss, since_ok, started, seconds_before,
                                steps, budget, clock)  # fmt: skip
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
                    fit_in = min(budget - elapsed, 0.25) / max(per_step, 1e-9)
                    n = max(1, min(n, int(fit_in) + 1))
            time_start = 0.0 if budget is None else elapsed / budget
            time_per_step = 0.0 if budget is None or per_step is None else per_step / budget
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
            params, state.opt_state, scalars, loss_sum, n_ok = _run_chunk(
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
            )
            loss_sum, n_ok = float(loss_sum), int(n_ok)  # waits for the chunk
            took = time.perf_counter() - call_started
            calls += 1
            if calls == 1:
                compile_seconds = took
                clock.start()
            else:
                per_step = took / n if per_step is None else 0.7 * per_step + 0.3 * took / n
            state.module = eqx.combine(params, static)
            step, scale, failures = (np.asarray(s).item() for s in scalars)
            state.step, state.update_scale, state.failures = int(step), float(scale), int(failures)
            since_loss, since_ok = since_loss + loss_sum, since_ok + n_ok
            state.seconds = seconds_before + time.perf_counter() - started
            if state.failures > max_failures:
                raise TrainingError(
                    f"training diverged: {state.failures} steps had a non-finite loss or "
                    f"gradient even after scaling the updates down to {state.update_scale:.2g}"
                    " of their size; try a smaller learning rate, a shorter horizon, or "
                    "stronger gradient clipping."
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
                _validate_point(state, validate, since_loss, since_ok, started, seconds_before,
                                steps, budget, clock)  # fmt: skip
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
            "training produced non-finite parameters; nothing was kept. Try a smaller "
            "learning rate or stronger gradient clipping."
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
        compile_seconds=compile_seconds,
    )


class _BudgetClock:
    """Seconds of training counted against the budget: from `start()` on, validations paused."""

    def __init__(self):
        self.origin: float | None = None

    def start(self) -> None:
        self.origin = time.perf_counter()

    def elapsed(self) -> float:
        return 0.0 if self.origin is None else time.perf_counter() - self.origin

    @contextlib.contextmanager
    def paused(self):
        began = time.perf_counter()
        try:
            yield
        finally:
            if self.origin is not None:
                self.origin += time.perf_counter() - began


def _validate_point(
    state, validate, since_loss, since_ok, started, seconds_before, steps, budget, clock
) -> None:
    if state.history and state.history[-1].step == state.step:
        return  # this step was validated already (the run ended on a validation point)
    train_loss = since_loss / since_ok if since_ok else math.nan
    if validate is not None:
        with clock.paused():
            value = float(validate(state.module))
    else:
        value = train_loss
    fractions = [0.0]
    if steps:
        fractions.append(state.step / steps)
    if budget:
        fractions.append(clock.elapsed() / budget)
    state.seconds = seconds_before + time.perf_counter() - started
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
