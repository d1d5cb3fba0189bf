"""Training a registered forecaster on a series: the request checked first, then fitted (by
gradient with `fit`, in closed form, or not at all) and saved in a model folder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
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
from ..models.registry import (
    build_model,
    check_model_size,
    model_spec,
    resolve_hyperparameters,
)
from ..resources import check_activation_memory
from . import checkpoint
from .config import TrainConfig
from .data_source import TEST_FRACTION, DataSource, lyapunov_exponent_of
from .fit import fit
from .loop import module_is_finite, read_state_meta
from .reservoir_tuning import TUNABLE, fit_reservoir
from .results import TrainResult


def check_train_request(
    model_name: str,
    folder: str | Path | None,
    *,
    hyperparameters: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    force: bool = False,
    resume: bool = False,
    seed: int | None = None,
) -> tuple[dict[str, Any], TrainConfig]:
    """Check everything about a training request but the data, changing nothing.

    Raises for an unknown model, hyperparameter or training option, a bad value, both
    `force` and `resume`, a folder that cannot take the model (`checkpoint.check_folder`;
    `folder=None` trains in memory), or — with `resume` — a training state written by
    another request (model, hyperparameters, training options, or `seed` when given; the data
    are compared by `train_model`). `train_model` calls it first; call it yourself to fail
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
    _probe_model(model_name, hyper, config, gradient=spec.cls.fit_kind == "gradient")
    if folder is not None:
        checkpoint.check_folder(folder, force=force, resume=resume)
        if resume:
            request = _request(model_name, hyper, config, seed, None)
            check_resume(folder, {k: v for k, v in request.items() if v is not None})
    elif resume:
        raise DiffdynError("resuming needs the model folder the training was saved in.")
    return hyper, config


def _probe_model(
    model_name: str, hyper: dict[str, Any], config: TrainConfig, *, gradient: bool
) -> None:
    """Build the model and (`gradient`) run it once on a context of the training length,
    abstractly (`eqx.filter_eval_shape`: nothing is allocated or computed), so that a
    constructor or call-time error — an unknown score, heads that do not divide the width, a
    positional table shorter than the context — or a model too large for this machine's
    memory (its parameters and optimiser state, and a batch's activations) stops the request
    before any data are simulated or any folder is made."""

    def probe():
        model = build_model(model_name, 1, 0, key=jax.random.key(0), **hyper)
        return model(jnp.zeros((config.context, 1)), horizon=1)[0]

    abstract = check_model_size(model_name, 1, 0, hyper)
    if gradient:
        eqx.filter_eval_shape(probe)
        check_activation_memory(
            abstract,
            config.batch_size,
            config.context + config.horizon,
            f"a batch of {config.batch_size} windows of {config.context} + {config.horizon} "
            f"steps through {model_name}",
            "give a smaller --batch-size, --context or --horizon.",
        )


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
        seed=seed,
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
    args = (train, series, source, model_name, hyper, config, seed, budget, progress,
            lyapunov_exponent, train_rows, devices)  # fmt: skip
    if folder is None:
        trained, sidecar = _train_into(None, False, None, *args)
        return trained, TrainResult.from_sidecar(None, sidecar)
    # Locked while it runs; a failure leaves nothing behind (and --force's old folder as it
    # was); an interrupted run keeps its resumable state (`checkpoint.training_folder`).
    with checkpoint.training_folder(folder, force=force, resume=resume) as place:
        trained, sidecar = _train_into(place.path, place.resume, place.target, *args)
    return trained, TrainResult.from_sidecar(place.target, sidecar)


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
    models fit in one solve. `budget` is wall-clock seconds for the whole training, compiling
    and validation included (`train`). Nothing is saved if training fails.

    `folder` is locked while training runs (a second training into it is refused). A new
    folder is removed again when training fails or is interrupted before its first checkpoint.
    With `force` an existing folder is replaced only when the new model is complete: training
    runs in `.NAME.partial` beside it, swapped in at the end; when that fails the old folder is
    as it was, and when it is interrupted after a checkpoint `resume` continues the partial
    run (and replaces the old folder when it ends). `resume` refuses a state written by
    another request: other data (by fingerprint), model, hyperparameters, training options or
    seed — the budget, `devices` and `lyapunov_exponent` may change.

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


def _request(model_name, hyper, config, seed, data) -> dict[str, Any]:
    """What makes two trainings the same one (all but budget, devices, progress), as JSON."""
    request = {
        "model": model_name,
        "hyperparameters": hyper,
        "training": config.to_dict(),
        "seed": seed,
        "data": data,
    }
    return json.loads(json.dumps(request))


def _data_identity(source: DataSource, train: Series, rows: int) -> dict[str, Any]:
    return {
        **source.to_json(),
        "rows": rows,
        "variables": list(train.variables),
        "exog_variables": list(train.exog_variables),
        "dt": train.dt,
    }


DATA_IDENTITY = ("kind", "fingerprint", "variables", "exog_variables", "dt")


def request_fingerprint(request: dict[str, Any]) -> str:
    """A short hash of a training request; the data by their own fingerprint, not by path."""
    data = request.get("data") or {}
    key = {
        **request,
        "data": {k: data.get(k) for k in DATA_IDENTITY},
    }
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_FLAGS = {"context": "--context", "horizon": "--horizon", "epochs": "--epochs",
          "batch_size": "--batch-size", "learning_rate": "--learning-rate",
          "strategy": "--strategy"}  # fmt: skip


def _option_text(name: str, value: Any) -> str:
    flag = _FLAGS.get(name)
    return f"{flag} {value}" if flag else f"--option {name}={value}"


def _data_text(data: dict[str, Any]) -> str:
    fingerprint = f"fingerprint {data.get('fingerprint') or '?'}"
    if data.get("kind") == "file":
        return f"--data {data.get('path')} ({fingerprint})"
    if data.get("kind") == "system":
        params = "".join(
            f" --system-param {k}={v}" for k, v in (data.get("parameters") or {}).items()
        )
        return f"--system {data.get('system')}{params} ({data.get('rows')} samples, {fingerprint})"
    return f"a series given in Python ({fingerprint})"


def _differences(stored: dict[str, Any], given: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What differs between a stored and a given request, in words, and the names of the
    parts (for the advice)."""
    said, parts = [], []
    if "model" in given and stored.get("model") != given["model"]:
        said.append(f"it trains --model {stored.get('model')}; this --resume gives --model "
                    f"{given['model']}")  # fmt: skip
        parts.append("--model")
    elif "hyperparameters" in given and stored.get("hyperparameters") != given["hyperparameters"]:
        old, new = stored.get("hyperparameters") or {}, given["hyperparameters"]
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        said.append(
            "it has " + " ".join(f"-p {k}={old.get(k)}" for k in keys) + "; this --resume "
            "gives " + " ".join(f"-p {k}={new.get(k)}" for k in keys)
        )
        parts.append("--param")
    if "training" in given and stored.get("training") != given["training"]:
        old, new = stored.get("training") or {}, given["training"]
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        said.append(
            "it trains with " + ", ".join(_option_text(k, old.get(k)) for k in keys)
            + "; this --resume gives " + ", ".join(_option_text(k, new.get(k)) for k in keys)
        )  # fmt: skip
        parts.append("training options")
    if "seed" in given and stored.get("seed") != given["seed"]:
        said.append(f"it was started with --seed {stored.get('seed')}; this --resume gives "
                    f"--seed {given['seed']}")  # fmt: skip
        parts.append("--seed")
    if given.get("data") is not None:
        old, new = stored.get("data") or {}, given["data"]
        if any(old.get(k) != new.get(k) for k in DATA_IDENTITY):
            changed = (
                ", whose contents have changed since"
                if old.get("kind") == new.get("kind") == "file"
                and old.get("path") == new.get("path")
                else ""
            )
            for key, what in (("variables", "variables"), ("dt", "sampling step")):
                if old.get("fingerprint") == new.get("fingerprint") and old.get(key) != new.get(
                    key
                ):
                    changed += f" ({what} {old.get(key)} then, {new.get(key)} now)"
            said.append(f"it was trained on {_data_text(old)}; this --resume gives "
                        f"{_data_text(new)}{changed}")  # fmt: skip
            parts.append("data")
    return said, parts


def check_resume(folder: str | Path, given: dict[str, Any]) -> None:
    """Refuse to resume the training state of `folder` with another request than the one
    that wrote it (parts of a `_request`; those left out are not compared), naming what
    differs."""
    place = checkpoint.resume_folder(folder)
    if place is None:
        return
    meta = read_state_meta(place)
    stored = {
        **meta,
        "data": {
            **(meta.get("data") or {}),
            "variables": meta.get("variables"),
            "exog_variables": meta.get("exog_variables"),
            "dt": meta.get("dt"),
        },
    }
    if given.keys() >= {"model", "hyperparameters", "training", "seed", "data"} and stored.get(
        "request_fingerprint"
    ) == request_fingerprint(given):
        return
    said, parts = _differences(stored, given)
    if said:
        same = " and ".join(dict.fromkeys(parts))
        raise checkpoint.CheckpointError(
            f"the unfinished training in {folder} was started by another request ("
            + "; ".join(said)
            + f"): resume with the same {same}, or start again with --force."
        )


def _divergence_advice(model_name: str, config: TrainConfig) -> str:
    """What to change when gradient training diverges: the command-line options that help."""
    return (
        f"retrain with a smaller --learning-rate (now {config.learning_rate:g}), stronger "
        f"gradient clipping (--option clip=..., now {config.clip:g}), a shorter --horizon "
        f"(now {config.horizon}) or --strategy teacher."
    )


def _non_finite_advice(model_name: str, hyper: dict[str, Any], config: TrainConfig) -> str:
    fit_kind = model_spec(model_name).cls.fit_kind
    if fit_kind == "gradient":
        return _divergence_advice(model_name, config)
    if "ridge" in hyper:
        return (
            "its closed-form fit is ill-conditioned on these data: give a larger ridge "
            "(-p ridge=1e-4, or larger), or rescale the data."
        )
    return "check the data for huge or constant values."


def _train_into(folder, resume, target, train, series, source, model_name, hyper, config, seed,
                budget, progress, lyapunov_exponent, train_rows, devices):  # fmt: skip
    request = _request(model_name, hyper, config, seed, _data_identity(source, train, len(series)))
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
        "request_fingerprint": request_fingerprint(request),
    }
    started = time.perf_counter()
    if model.fit_kind == "gradient":
        resume_folder = None if folder is None else folder / checkpoint.RESUME
        if resume and resume_folder is not None:
            check_resume(target, request)
            stored = read_state_meta(resume_folder)
            if lyapunov_exponent is None:  # recorded for evaluate: the first run's stands
                sidecar["lyapunov_exponent"] = stored.get("lyapunov_exponent")
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
            divergence_advice=_divergence_advice(model_name, config),
        )
        trained, stop_reason = outcome.module, outcome.stop_reason
        finished = outcome.finished
        sidecar["history"] = [r.to_json() for r in outcome.history]
        sidecar["best_val_loss"] = outcome.best_val
        sidecar["train_seconds"] = outcome.seconds
        sidecar["compile_seconds"] = outcome.compile_seconds
        sidecar["steps"] = outcome.steps
    elif isinstance(model, TUNABLE):
        # tuned by gradient through its readout first when its `tune` says so
        trained, tuning = fit_reservoir(
            model, values, exog, key=train_key, budget=budget, progress=progress
        )
        stop_reason, finished = "fitted in closed form", True
        if tuning is not None:
            stop_reason = f"tuned ({tuning.stop_reason}), then fitted in closed form"
            sidecar["tuning"] = tuning.to_json()
        sidecar["train_seconds"] = time.perf_counter() - started
    elif model.fit_kind == "closed_form":
        trained = model.fit_closed_form(values, exog)
        stop_reason, finished = "fitted in closed form", True
        sidecar["train_seconds"] = time.perf_counter() - started
    else:
        trained, stop_reason, finished = model, "nothing to fit", True
        sidecar["train_seconds"] = 0.0
    leaves = jax.tree_util.tree_leaves(eqx.filter(trained, eqx.is_inexact_array))
    if not module_is_finite(trained):
        raise DiffdynError(
            "training produced non-finite parameters; nothing was saved. "
            + _non_finite_advice(model_name, hyper, config)
        )
    sidecar["stop_reason"] = stop_reason
    sidecar["finished"] = finished
    sidecar["parameters"] = int(sum(leaf.size for leaf in leaves))
    if folder is not None:
        checkpoint.save_model(folder, trained, sidecar)
        if finished:
            checkpoint.clear_train_state(folder)
    return trained, sidecar
