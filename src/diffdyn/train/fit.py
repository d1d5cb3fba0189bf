"""`fit`: gradient training of a forecaster on windows of a series — a thin layer on `train`.

What it adds to the core: the window batch source, the rollout loss of a strategy, the
validation split (the end of the training span) and the translation of `TrainConfig` (epochs,
learning rate, clipping, schedule) into steps, an Optax chain and a schedule in units of run
progress.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..data.split import held_out_start
from ..models.base import AbstractForecaster
from . import schedule as schedules
from .config import TrainConfig
from .loop import TrainingError, TrainOutcome, train
from .losses import ForecastLoss


class WindowBatches(eqx.Module):
    """Random minibatches of (context, target, exog) windows of one series, drawn on device.

    A window starting at row s is `values[s : s + context]` followed by `horizon` target rows;
    step k draws `batch_size` starts uniformly (with replacement) with its own key. With the
    curriculum strategy the number of scored rollout steps grows with run progress, 1 → horizon
    over the first half of the run.
    """

    values: Float[Array, "time dim"]
    exog: Float[Array, "time m"] | None
    starts: Int[Array, " windows"]
    context: int = eqx.field(static=True)
    horizon: int = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    strategy: str = eqx.field(static=True)

    def __call__(self, key, step, progress):
        del step
        pick = self.starts[jax.random.randint(key, (self.batch_size,), 0, self.starts.shape[0])]
        span = self.context + self.horizon

        def cut(array):
            return jax.vmap(lambda s: jax.lax.dynamic_slice_in_dim(array, s, span))(pick)

        windows = cut(self.values)
        exog = None if self.exog is None else cut(self.exog)
        if self.strategy == "curriculum":
            used = jnp.floor(schedules.ramp(1.0, self.horizon, until=0.5)(progress))
        else:
            used = jnp.asarray(self.horizon if self.strategy == "free" else 1, jnp.float32)
        return windows[:, : self.context], windows[:, self.context :], exog, used


def rollout_length(config: TrainConfig) -> int:
    """Steps the model is rolled out in the loss: 1 for teacher forcing, else the horizon."""
    return 1 if config.strategy == "teacher" else config.horizon


def forecast_objective(config: TrainConfig) -> ForecastLoss | None:
    """The configured rollout loss (`config.loss`), or `None` for the mean squared error."""
    if config.loss == "mse":
        return None
    return ForecastLoss(
        config.loss, config.soft_dtw_gamma, config.soft_vpt_epsilon, config.soft_vpt_temperature
    )


def forecast_loss(model, batch, key, *, rollout: int, objective: ForecastLoss | None = None):
    """Mean squared error over the first `used` steps of a closed-loop rollout of `rollout`
    (or the batch mean of `objective` over them: soft-DTW, soft VPT; `train/losses.py`),
    plus the batch mean of `aux["penalty"]` for a model that returns one (ACT's ponder cost)."""
    context, target, exog, used = batch
    keys = jax.random.split(key, context.shape[0])

    def one(c, t, x, k):
        forecast, aux = model(c, x, horizon=rollout, key=k)
        return (forecast - t[:rollout]) ** 2, aux.get("penalty", jnp.zeros(())), forecast

    errors, penalty, forecasts = jax.vmap(one)(context, target, exog, keys)  # [B, rollout, d]
    used = jnp.minimum(used, rollout)
    if objective is not None:
        scored = jax.vmap(lambda f, t: objective(f, t, used))(forecasts, target[:, :rollout])
        return jnp.mean(scored) + jnp.mean(penalty)
    mask = (jnp.arange(rollout) < used).astype(errors.dtype)[None, :, None]
    mse = jnp.sum(errors * mask) / (errors.shape[0] * errors.shape[2] * used)
    return mse + jnp.mean(penalty)


class _RolloutLoss(eqx.Module):
    rollout: int = eqx.field(static=True)
    objective: ForecastLoss | None = None

    def __call__(self, model, batch, key):
        return forecast_loss(model, batch, key, rollout=self.rollout, objective=self.objective)


@functools.cache  # one object per configuration: runs alike share one compiled step
def make_optimiser(config: TrainConfig) -> optax.GradientTransformation:
    """Gradient clipping, then Adam (AdamW when weight decay is set) at the learning rate.

    The schedule is not part of it: `train` applies `config`'s schedule in units of run
    progress (`make_schedule`).
    """
    if config.weight_decay > 0:
        adam = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    else:
        adam = optax.adam(config.learning_rate)
    return optax.chain(optax.clip_by_global_norm(config.clip), adam)


def make_schedule(config: TrainConfig) -> schedules.Schedule:
    if config.schedule == "cosine":
        return schedules.cosine(warmup=config.warmup)
    return schedules.constant()


def window_starts(n_rows: int, config: TrainConfig) -> np.ndarray:
    """Rows where training windows (context + horizon) may start, `stride` apart."""
    span = config.context + config.horizon
    return np.arange(0, max(0, n_rows - span + 1), config.stride)


def count_windows(values, config: TrainConfig) -> int:
    """How many training windows `fit` draws from (after the validation split)."""
    cut = held_out_start(len(values), config.validation, config.context + config.horizon)
    return len(window_starts(cut, config))


def steps_for(config: TrainConfig, n_windows: int) -> int:
    """The step count of `config.epochs` passes over `n_windows` windows."""
    return config.epochs * max(1, math.ceil(n_windows / config.batch_size))


@eqx.filter_jit
def _validation_loss(model, context, target, exog, horizon: int, objective=None):
    def one(c, t, x):
        forecast, _ = model(c, x, horizon=horizon)
        if objective is not None:
            return objective(forecast, t, horizon)
        return jnp.mean((forecast - t) ** 2)

    return jnp.mean(jax.vmap(one)(context, target, exog))


def _validator(values, exog, start: int, config: TrainConfig, most: int = 256):
    """Free-running, full-horizon loss (MSE, or `config.loss`) on windows whose targets lie
    after row `start + C`: at most `most` of them, spread evenly (neighbouring windows overlap
    almost entirely, so more would cost time and say little), in one compiled call."""
    span = config.context + config.horizon
    last = len(values) - span
    starts = np.unique(np.linspace(start, last, min(most, last - start + 1)).round().astype(int))
    values, exog = np.asarray(values), None if exog is None else np.asarray(exog)
    windows = jnp.asarray(np.stack([values[j : j + span] for j in starts]))
    inputs = None if exog is None else jnp.asarray(np.stack([exog[j : j + span] for j in starts]))

    def validate(model) -> float:
        context, target = windows[:, : config.context], windows[:, config.context :]
        value = float(
            _validation_loss(
                model, context, target, inputs, config.horizon, forecast_objective(config)
            )
        )
        return value if math.isfinite(value) else math.inf

    return validate


def fit(
    model: AbstractForecaster,
    values: Float[Array, "time dim"],
    exog: Float[Array, "time m"] | None,
    config: TrainConfig,
    *,
    key: PRNGKeyArray,
    budget: float | None = None,
    optimiser: optax.GradientTransformation | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_meta: dict | None = None,
    resume: bool = False,
    on_validation=None,
    devices: int | None = None,
    progress: bool = True,
    divergence_advice: str | None = None,
) -> TrainOutcome[AbstractForecaster]:
    """Train a forecaster on windows of a standardised series with the one core (`train`).

    The loss is the mean squared error of a closed-loop rollout whose scored length the
    strategy sets (`TrainConfig`; the curriculum grows with run progress, so a budget-limited
    run reaches the full horizon). The end of the series (`config.validation`) is held out:
    after every epoch the free-running, full-horizon validation loss is measured there, the best
    model kept, and training stops early after `patience` epochs without improvement.

    **Arguments:**

    - `model`: a gradient-trained forecaster.
    - `values`, `exog`: the standardised training series `[T, d]` and inputs `[T, m]`.
    - `config`: a `TrainConfig` (epochs → steps: `epochs · ⌈windows / batch_size⌉`).
    - `key`: the run's key (deterministic: the same key, the same numbers).
    - `budget`: seconds of wall-clock time for the whole run, compiling and validation
      included (the run ends at its steps or budget, whichever first; see `train`).
    - `optimiser`: any `optax.GradientTransformation` instead of the config's clip + Adam.
    - `checkpoint`, `checkpoint_meta`, `resume`, `on_validation`, `devices`, `progress`: as
      in `train`.
    - `divergence_advice`: what the error of a diverged run advises (default: a smaller
      learning rate, a shorter horizon or stronger clipping, in `TrainConfig`'s words).

    **Returns:** the `TrainOutcome` (`module` is the best model by validation loss).
    """
    if model.fit_kind != "gradient":
        raise TrainingError(f"{type(model).__name__} is not trained by gradient descent.")
    given, model = model, model.for_training(budget)
    values = jnp.asarray(values)
    exog = None if exog is None else jnp.asarray(exog)
    span = config.context + config.horizon
    cut = held_out_start(values.shape[0], config.validation, span)
    starts = window_starts(cut, config)
    if len(starts) == 0:
        raise TrainingError(
            f"not enough data to train: {values.shape[0]} samples, and a window needs "
            f"context {config.context} + horizon {config.horizon}; use more data or a shorter "
            "--context/--horizon."
        )
    if cut < values.shape[0]:
        # Validation windows may start in the training part: their targets lie after `cut`.
        validate = _validator(values, exog, cut - config.context, config)
    else:
        validate = None
    batches = WindowBatches(
        values, exog, jnp.asarray(starts), config.context, config.horizon,
        config.batch_size, config.strategy,
    )  # fmt: skip
    steps_per_epoch = max(1, math.ceil(len(starts) / config.batch_size))
    outcome = train(
        model,
        _RolloutLoss(rollout_length(config), forecast_objective(config)),
        batches,
        optimiser or make_optimiser(config),
        key=key,
        # The config's clip + Adam(W) treats every element alike: run it on one flat vector.
        flat_optimiser=optimiser is None,
        steps=config.epochs * steps_per_epoch,
        budget=budget,
        schedule=make_schedule(config),
        validate=validate,
        validate_every=steps_per_epoch,
        patience=config.patience,
        max_failures=config.max_failures,
        devices=devices,
        checkpoint=checkpoint,
        checkpoint_meta=checkpoint_meta,
        resume=resume,
        on_validation=on_validation,
        progress=progress,
        divergence_advice=divergence_advice
        or (
            f"try a smaller learning_rate (now {config.learning_rate:g}), stronger clipping "
            f"(clip, now {config.clip:g}) or a shorter horizon (now {config.horizon})."
        ),
    )
    if model is not given:  # the trained parameters back in the model as it was given
        structure = jax.tree_util.tree_structure(given)

        def as_given(module):
            return jax.tree_util.tree_unflatten(structure, jax.tree_util.tree_leaves(module))

        outcome = dataclasses.replace(
            outcome, module=as_given(outcome.module), last_module=as_given(outcome.last_module)
        )
    if outcome.finished and outcome.stop_reason.endswith("steps done"):
        reason = f"{config.epochs} epochs done ({outcome.steps} steps)"
        outcome = dataclasses.replace(outcome, stop_reason=reason)
    return outcome
