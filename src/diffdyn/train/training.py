"""Training a registered forecaster on a series: the request checked first, then fitted (by
gradient with `fit`, in closed form, or not at all) and saved in a model folder."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data.scale import Scaler
from ..data.series import Series
from ..data.split import held_out_start
from ..errors import DataError, DiffdynError
from ..models.base import AbstractForecaster
from ..models.registry import build_model, model_spec, resolve_hyperparameters
from . import checkpoint
from .config import TrainConfig
from .data_source import TEST_FRACTION, DataSource, lyapunov_exponent_of
from .fit import fit
from .loop import read_state_meta
from .results import TrainResult


def check_train_request(
    model_name: str,
    folder: str | Path | None,
    *,
    hyperparameters: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    force: bool = False,
    resume: bool = False,
) -> tuple[dict[str, Any], TrainConfig]:
    """Check everything about a training request but the data, changing nothing.

    Raises for an unknown model, hyperparameter or training option, a bad value, both
    `force` and `resume`, or a folder that cannot take the model (`checkpoint.check_folder`;
    `folder=None` trains in memory). `train_model` calls it first; call it yourself to fail
    before loading or simulating data. Returns the resolved hyperparameters and the
    `TrainConfig`.
    """
    if force and resume:
        raise DiffdynError("give --force (start again) or --resume (continue), not both.")
    spec = model_spec(model_name)
    hyper = resolve_hyperparameters(model_name, hyperparameters or {})
    config = TrainConfig.from_options(spec.training, **(options or {}))
    if "context" in spec.defaults:  # models built for one context length (darnn)
        if (options or {}).get("context") is None:
            config = dataclasses.replace(config, context=hyper["context"])
        elif "context" not in (hyperparameters or {}):
            hyper["context"] = config.context
        elif hyper["context"] != config.context:
            raise DiffdynError(
                f"--param context={hyper['context']} and --context {config.context} disagree; "
                "give one of them (this model reads contexts of exactly one length)."
            )
    if spec.cls.fit_kind == "gradient":
        _probe_model(model_name, hyper, config.context)
    if folder is not None:
        checkpoint.check_folder(folder, force=force, resume=resume)
    elif resume:
        raise DiffdynError("resuming needs the model folder the training was saved in.")
    return hyper, config


def _probe_model(model_name: str, hyper: dict[str, Any], context: int) -> None:
    """Build the model and run it once on a context of the training length, abstractly
    (`eqx.filter_eval_shape`: nothing is computed), so that a constructor or call-time error —
    an unknown score, heads that do not divide the width, a positional table shorter than the
    context — stops the request before any data are simulated or any folder is made."""

    def probe():
        model = build_model(model_name, 1, 0, key=jax.random.key(0), **hyper)
        return model(jnp.zeros((context, 1)), horizon=1)[0]

    eqx.filter_eval_shape(probe)


def train_forecaster(
    series: Series,
    source: DataSource,
    model_name: str,
    folder: str | Path | None,
    *,
    hyperparameters: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    seed: int = 0,
    budget: float | None = None,
    force: bool = False,
    resume: bool = False,
    progress: bool = True,
    lyapunov_exponent: float | None = None,
    devices: int | None = None,
) -> tuple[AbstractForecaster, TrainResult]:
    """`train_model` returning the trained module too; with `folder=None` nothing is saved
    (and a gradient run keeps no checkpoint to resume)."""
    hyper, config = check_train_request(
        model_name,
        folder,
        hyperparameters=hyperparameters,
        options=options,
        force=force,
        resume=resume,
    )
    if source.kind == "file":
        train_rows = held_out_start(len(series), TEST_FRACTION)
        train = series.slice(0, train_rows)
    else:
        train_rows = len(series)
        train = series
    if len(train) < config.context + config.horizon + 1:
        raise DataError(
            f"the training part has {len(train)} samples, fewer than one window needs "
            f"(context {config.context} + horizon {config.horizon}); use more data or pass "
            "smaller --context/--horizon."
        )
    if folder is not None:
        folder = checkpoint.prepare_folder(folder, force=force, resume=resume)
    try:
        trained, sidecar = _train_into(
            folder, train, series, source, model_name, hyper, config, seed, budget, resume,
            progress, lyapunov_exponent, train_rows, devices,
        )  # fmt: skip
    except DiffdynError:
        # Bad input or a diverged run leaves nothing behind (an interrupted one keeps its
        # resumable state: KeyboardInterrupt is not caught here).
        if folder is not None and not resume:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return trained, TrainResult.from_sidecar(folder, sidecar)


def train_model(
    series: Series,
    source: DataSource,
    model_name: str,
    folder: str | Path,
    *,
    hyperparameters: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    seed: int = 0,
    budget: float | None = None,
    force: bool = False,
    resume: bool = False,
    progress: bool = True,
    lyapunov_exponent: float | None = None,
    devices: int | None = None,
) -> TrainResult:
    """Train a registered model on `series` and save it in `folder`.

    A file's last `TEST_FRACTION` of rows is held out for `evaluate`; a simulated series is
    used whole (evaluation simulates a fresh one). The scaler is fitted on the training rows
    only. Gradient models train with `fit` (checkpointing every epoch for `resume`); closed-form
    models fit in one solve. Nothing is saved if training fails.

    **Example:**

    ```python
    from diffdyn.train import load_data, train_model

    series, source = load_data(system="lorenz63", steps=5000)
    result = train_model(series, source, "ngrc", "runs/lorenz63-ngrc")
    print(result.parameters, result.seconds, result.stop_reason)
    ```
    """
    _, result = train_forecaster(
        series,
        source,
        model_name,
        folder,
        hyperparameters=hyperparameters,
        options=options,
        seed=seed,
        budget=budget,
        force=force,
        resume=resume,
        progress=progress,
        lyapunov_exponent=lyapunov_exponent,
        devices=devices,
    )
    return result


def _train_into(folder, train, series, source, model_name, hyper, config, seed, budget, resume,
                progress, lyapunov_exponent, train_rows, devices):  # fmt: skip
    scaler = Scaler.fit(train)
    values = jnp.asarray(scaler.transform(np.asarray(train.values)))
    exog = None if train.exog is None else jnp.asarray(train.exog)
    key = jax.random.key(seed)
    init_key, train_key = jax.random.split(key)
    dt = float(train.dt or 1.0)
    model = build_model(model_name, train.dim, len(train.exog_variables), dt=dt, key=init_key,
                        **hyper)  # fmt: skip
    sidecar: dict[str, Any] = {
        "model": model_name,
        "hyperparameters": hyper,
        "training": config.to_dict(),
        "dim": train.dim,
        "exog_dim": len(train.exog_variables),
        "variables": list(train.variables),
        "exog_variables": list(train.exog_variables),
        "dt": train.dt,
        "scaler": scaler.to_dict(),
        "data": {**source.to_json(), "rows": len(series), "train_rows": train_rows},
        "lyapunov_exponent": lyapunov_exponent_of(train, lyapunov_exponent),
        "seed": seed,
    }
    started = time.perf_counter()
    if model.fit_kind == "gradient":
        resume_folder = None if folder is None else folder / checkpoint.RESUME
        if resume and resume_folder is not None:
            stored = read_state_meta(resume_folder)
            if stored.get("model") != model_name or stored.get("hyperparameters") != hyper:
                raise checkpoint.CheckpointError(
                    f"the unfinished training in {folder} is of model {stored.get('model')} "
                    "with other settings; resume it with the same --model and --param."
                )
            sidecar["seed"] = seed = stored["seed"]
            init_key, train_key = jax.random.split(jax.random.key(seed))
            model = build_model(model_name, train.dim, len(train.exog_variables), dt=dt,
                                key=init_key, **hyper)  # fmt: skip
        outcome = fit(
            model,
            values,
            exog,
            config,
            key=train_key,
            budget=budget,
            checkpoint=resume_folder,
            checkpoint_meta=sidecar,
            resume=resume,
            devices=devices,
            progress=progress,
        )
        trained, stop_reason = outcome.module, outcome.stop_reason
        finished = outcome.finished
        sidecar["history"] = [r.to_json() for r in outcome.history]
        sidecar["best_val_loss"] = outcome.best_val
        sidecar["train_seconds"] = outcome.seconds
        sidecar["steps"] = outcome.steps
    elif model.fit_kind == "closed_form":
        trained = model.fit_closed_form(values, exog)
        stop_reason, finished = "fitted in closed form", True
        sidecar["train_seconds"] = time.perf_counter() - started
    else:
        trained, stop_reason, finished = model, "nothing to fit", True
        sidecar["train_seconds"] = 0.0
    leaves = jax.tree_util.tree_leaves(eqx.filter(trained, eqx.is_inexact_array))
    if not all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves):
        raise DiffdynError(
            "training produced non-finite parameters; nothing was saved. Try a smaller "
            "learning_rate or the teacher strategy."
        )
    sidecar["stop_reason"] = stop_reason
    sidecar["finished"] = finished
    sidecar["parameters"] = int(sum(leaf.size for leaf in leaves))
    if folder is not None:
        checkpoint.save_model(folder, trained, sidecar)
        if finished:
            checkpoint.clear_train_state(folder)
    return trained, sidecar
