"""`fit`: gradient training of any forecaster on windows of a standardised series."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..data.window import make_windows
from ..errors import DiffdynError
from ..models.base import AbstractForecaster
from .config import TrainConfig


class TrainingError(DiffdynError):
    """Training that cannot go on (diverged, or no data to train on)."""


@dataclasses.dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped.

    Arrays live in `model`, `best_model` and `opt_state`; the rest is plain numbers, so a
    checkpoint is the serialised arrays plus a JSON of `progress()`.
    """

    model: AbstractForecaster
    best_model: AbstractForecaster
    opt_state: Any
    epoch: int = 0  # epochs completed
    step: int = 0
    best_val: float = math.inf
    bad_epochs: int = 0
    lr_scale: float = 1.0
    failures: int = 0
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    finished: bool = False
    stop_reason: str = ""
    seconds: float = 0.0

    def progress(self) -> dict[str, Any]:
        """The non-array part, for JSON."""
        out = dataclasses.asdict(self)
        for name in ("model", "best_model", "opt_state"):
            out.pop(name)
        out["best_val"] = None if math.isinf(self.best_val) else self.best_val
        return out

    def restore_progress(self, stored: dict[str, Any]) -> None:
        for key, value in stored.items():
            if key == "best_val" and value is None:
                value = math.inf
            setattr(self, key, value)


def make_optimiser(config: TrainConfig, total_steps: int) -> optax.GradientTransformation:
    """Gradient clipping, then Adam (AdamW when weight decay is set) on a schedule."""
    if config.schedule == "cosine":
        rate: Any = optax.cosine_decay_schedule(config.learning_rate, max(total_steps, 1), 0.05)
    else:
        rate = config.learning_rate
    if config.weight_decay > 0:
        adam = optax.adamw(rate, weight_decay=config.weight_decay)
    else:
        adam = optax.adam(rate)
    return optax.chain(optax.clip_by_global_norm(config.clip), adam)


def _windows(values, exog, config: TrainConfig):
    w = make_windows(values, config.context, config.horizon, stride=config.stride, exog=exog)
    return w.context, w.target, w.exog


def _split_validation(values, exog, config: TrainConfig):
    """The last `validation` fraction of the rows, if it can hold a window, is for validation."""
    n = values.shape[0]
    span = config.context + config.horizon
    n_val = int(round(n * config.validation))
    if config.validation == 0 or n_val < span or n - n_val < span:
        return (values, exog), None
    cut = n - n_val
    train = (values[:cut], None if exog is None else exog[:cut])
    # Validation windows may start in the training part: their targets lie after `cut`.
    start = cut - config.context
    val = (values[start:], None if exog is None else exog[start:])
    return train, val


def _horizon_at(config: TrainConfig, epoch: int) -> int:
    if config.strategy == "teacher":
        return 1
    if config.strategy == "free":
        return config.horizon
    ramp = max(1, config.epochs // 2)
    return int(min(config.horizon, 1 + (config.horizon - 1) * epoch / ramp))


def _loss(model, context, target, exog, horizon: int, used: Array):
    """Mean squared error of the first `used` steps of a closed-loop rollout of `horizon`."""

    def one(c, t, x):
        forecast, _ = model(c, x, horizon=horizon)
        return (forecast - t[:horizon]) ** 2

    errors = jax.vmap(one)(context, target, exog)  # [B, horizon, d]
    mask = (jnp.arange(horizon) < used).astype(errors.dtype)[None, :, None]
    return jnp.sum(errors * mask) / (errors.shape[0] * errors.shape[2] * used)


@eqx.filter_jit
def _train_step(model, opt_state, optimiser, batch, horizon, used, lr_scale):
    context, target, exog = batch
    loss, grads = eqx.filter_value_and_grad(_loss)(model, context, target, exog, horizon, used)
    updates, new_opt_state = optimiser.update(
        grads, opt_state, eqx.filter(model, eqx.is_inexact_array)
    )
    updates = jax.tree_util.tree_map(lambda u: u * lr_scale, updates)
    new_model = eqx.apply_updates(model, updates)
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    finite = jnp.isfinite(loss) & jnp.all(jnp.asarray([jnp.all(jnp.isfinite(g)) for g in leaves]))
    # A non-finite step changes nothing: the guard on the host lowers the learning rate.
    model = jax.tree_util.tree_map(
        lambda new, old: jnp.where(finite, new, old) if eqx.is_inexact_array(new) else new,
        new_model,
        model,
    )
    opt_state = jax.tree_util.tree_map(
        lambda new, old: jnp.where(finite, new, old) if eqx.is_array(new) else new,
        new_opt_state,
        opt_state,
    )
    return model, opt_state, loss, finite


@eqx.filter_jit
def _eval_loss(model, batch, horizon):
    context, target, exog = batch
    return _loss(model, context, target, exog, horizon, jnp.asarray(horizon))


def _batched_mean(model, arrays, horizon: int, batch_size: int) -> float:
    n = arrays[0].shape[0]
    total = 0.0
    for start in range(0, n, batch_size):
        batch = tuple(None if a is None else a[start : start + batch_size] for a in arrays)
        total += float(_eval_loss(model, batch, horizon)) * min(batch_size, n - start)
    return total / n


def init_state(
    model: AbstractForecaster, config: TrainConfig, n_windows: int
) -> tuple[TrainState, optax.GradientTransformation]:
    """A fresh `TrainState` and the optimiser it belongs to."""
    steps_per_epoch = max(1, math.ceil(n_windows / config.batch_size))
    optimiser = make_optimiser(config, steps_per_epoch * config.epochs)
    opt_state = optimiser.init(eqx.filter(model, eqx.is_inexact_array))
    return TrainState(model=model, best_model=model, opt_state=opt_state), optimiser


def count_windows(values, config: TrainConfig) -> int:
    """How many training windows `fit` will cut from `values` (after the validation split)."""
    (train_values, _), _ = _split_validation(values, None, config)
    span = config.context + config.horizon
    return max(0, (train_values.shape[0] - span) // config.stride + 1)


def fit(
    model: AbstractForecaster,
    values: Float[Array, "time dim"],
    exog: Float[Array, "time m"] | None,
    config: TrainConfig,
    *,
    key: PRNGKeyArray,
    budget: float | None = None,
    state: TrainState | None = None,
    on_epoch_end: Callable[[TrainState], None] | None = None,
    progress: bool = True,
) -> TrainState:
    """Train `model` on windows of a standardised series; return the final `TrainState`.

    Minibatches of (context, horizon) windows are batched with `jax.vmap`; the loss is the
    mean squared error of a closed-loop rollout whose length the strategy sets (see
    `TrainConfig`). Each epoch ends with a validation loss (full-horizon, free-running) on the
    held-out end of the series; the best model by that loss is kept, early stopping after
    `patience` epochs without improvement, and `state.best_model` is what to save.

    A step whose loss or gradient is not finite changes nothing; the learning rate is halved,
    and after `max_failures` such steps training stops with `TrainingError`.

    **Arguments:**

    - `model`: a gradient-trained forecaster.
    - `values`, `exog`: the standardised training series `[T, d]` and inputs `[T, m]`.
    - `config`: a `TrainConfig`.
    - `key`: shuffling key; epoch e shuffles with `fold_in(key, e)`, so a run resumed from a
      checkpoint reproduces an uninterrupted one.
    - `budget`: wall-clock seconds; training stops after the step that exceeds it.
    - `state`: a `TrainState` to continue (from `train.checkpoint.load_train_state`).
    - `on_epoch_end`: called with the state after every epoch (to write a checkpoint).
    - `progress`: show a Rich progress bar.

    **Returns:** the final `TrainState` (`best_model`, `history`, `stop_reason`).
    """
    if model.fit_kind != "gradient":
        raise TrainingError(f"{type(model).__name__} is not trained by gradient descent.")
    values = jnp.asarray(values)
    exog = None if exog is None else jnp.asarray(exog)
    (train_values, train_exog), validation = _split_validation(values, exog, config)
    try:
        train = _windows(train_values, train_exog, config)
    except DiffdynError as error:
        raise TrainingError(f"not enough data to train: {error}") from None
    val = None if validation is None else _windows(*validation, config)
    n = train[0].shape[0]
    fresh, optimiser = init_state(model, config, n)
    if state is None:
        state = fresh
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    started = time.perf_counter() - state.seconds
    bar = _progress_bar(progress, config.epochs * steps_per_epoch, state.step)
    with bar:
        while state.epoch < config.epochs and not state.finished:
            epoch = state.epoch
            horizon_used = _horizon_at(config, epoch)
            rollout = 1 if config.strategy == "teacher" else config.horizon
            order = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))
            losses = []
            for b in range(steps_per_epoch):
                index = order[b * config.batch_size : (b + 1) * config.batch_size]
                batch = tuple(None if a is None else a[index] for a in train)
                model_next, opt_state, loss, finite = _train_step(
                    state.model,
                    state.opt_state,
                    optimiser,
                    batch,
                    rollout,
                    jnp.asarray(horizon_used),
                    jnp.asarray(state.lr_scale),
                )
                state.model, state.opt_state = model_next, opt_state
                state.step += 1
                if not bool(finite):
                    state.failures += 1
                    state.lr_scale *= 0.5
                    if state.failures > config.max_failures:
                        raise TrainingError(
                            f"training diverged: {state.failures} steps had a non-finite loss "
                            f"or gradient even after lowering the learning rate to "
                            f"{config.learning_rate * state.lr_scale:.2g}; try a smaller "
                            "learning_rate, a shorter horizon, or the teacher strategy."
                        )
                else:
                    losses.append(float(loss))
                bar.advance(loss=losses[-1] if losses else math.nan, val=state.best_val)
                if budget is not None and time.perf_counter() - started > budget:
                    state.stop_reason = f"wall-clock budget of {budget:g} s reached"
                    break
            train_loss = float(np.mean(losses)) if losses else math.nan
            if val is not None:
                val_loss = _batched_mean(state.model, val, config.horizon, config.batch_size)
            else:
                val_loss = train_loss
            state.history.append(
                {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss}
            )
            if math.isfinite(val_loss) and val_loss < state.best_val:
                state.best_val, state.best_model, state.bad_epochs = val_loss, state.model, 0
            else:
                state.bad_epochs += 1
            state.epoch += 1
            state.seconds = time.perf_counter() - started
            if config.patience and state.bad_epochs >= config.patience:
                state.finished, state.stop_reason = (
                    True,
                    (f"early stopping: no validation improvement for {config.patience} epochs"),
                )
            elif state.epoch >= config.epochs:
                state.finished, state.stop_reason = True, f"{config.epochs} epochs done"
            if on_epoch_end is not None:
                on_epoch_end(state)
            if state.stop_reason.startswith("wall-clock"):
                break
    return state


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def advance(self, **fields):
        pass


class _RichBar:
    """A Rich progress bar with loss, validation loss, steps/s and ETA."""

    def __init__(self, total: int, completed: int):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3g}  val {task.fields[val]:.3g}"),
            TextColumn("{task.fields[rate]:.1f} steps/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
            console=Console(stderr=True),  # progress is not output: keep stdout for results
        )
        self.task = self.progress.add_task(
            "train", total=total, completed=completed, loss=math.nan, val=math.nan, rate=0.0
        )
        self.started, self.steps = time.perf_counter(), 0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def advance(self, **fields):
        self.steps += 1
        rate = self.steps / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(self.task, advance=1, rate=rate, **fields)


def _progress_bar(enabled: bool, total: int, completed: int):
    return _RichBar(total, completed) if enabled else _NoBar()
