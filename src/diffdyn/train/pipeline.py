"""From data to a saved model, and from a saved model to forecasts and scores.

These are the library functions behind `diffdyn train`, `diffdyn forecast` and
`diffdyn evaluate`: the command line only parses arguments and prints what they return.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data.io import read_series
from ..data.split import held_out_start
from ..data.scale import Scaler
from ..data.series import Series
from ..errors import DataError, DiffdynError
from ..metrics import nrmse, smape, valid_prediction_time
from ..models.base import AbstractForecaster
from ..models.registry import MODELS, build_model, model_spec, resolve_hyperparameters
from ..systems.registry import get_system, system_class
from ..systems.simulate import simulate
from . import checkpoint
from .config import TrainConfig
from .fit import fit
from .loop import read_state_meta

TEST_FRACTION = 0.2  # the end of a user's file held out from training


def _fingerprint(series: Series) -> str:
    digest = hashlib.sha256(np.asarray(series.values, np.float64).tobytes())
    if series.exog is not None:
        digest.update(np.asarray(series.exog, np.float64).tobytes())
    return digest.hexdigest()[:16]


def load_data(
    *,
    data: str | None = None,
    system: str | None = None,
    params: dict[str, str] | None = None,
    steps: int | None = None,
    seed: int = 0,
    fresh: bool = False,
) -> tuple[Series, dict[str, Any]]:
    """The series a command works on, and a description of where it came from.

    Exactly one of `data` (a file) or `system` (a catalogue name). With `fresh=True` a system
    is simulated from another initial condition (a perturbed one, and another random key)
    than training uses, so evaluation never sees the training trajectory.
    """
    if (data is None) == (system is None):
        raise DiffdynError("give exactly one of --data FILE or --system NAME.")
    if data is not None and (steps is not None or params):
        raise DiffdynError(
            "--steps and --system-param describe a simulation; they go with --system, "
            "not with --data."
        )
    if data is not None:
        series = read_series(data)
        return series, {"kind": "file", "path": str(data), "fingerprint": _fingerprint(series)}
    built = get_system(system or "", **(params or {}))
    key = jax.random.key(seed + (7919 if fresh else 0))
    y0 = None
    if fresh:
        base = built.initial_state()
        y0 = base + 0.01 * (1 + jnp.abs(base)) * jax.random.normal(
            jax.random.fold_in(key, 1), base.shape, base.dtype
        )
    series = simulate(built, steps=steps, y0=y0, key=key)
    source = {"kind": "system", "system": built.name, "parameters": params or {}, "seed": seed}
    return series.numpy(), source


def load_forecast_data(
    *,
    data: str | None = None,
    system: str | None = None,
    params: dict[str, str] | None = None,
    steps: int,
    seed: int = 0,
) -> tuple[Series, Series | None, dict[str, Any]]:
    """The history to forecast from, the truth to compare with (or `None`), and the source.

    A file is all history (its future is unknown). A system is simulated afresh
    (`load_data(fresh=True)`) for its default length plus `steps`: the first part is the
    history, the last `steps` samples the truth the forecast should follow.
    """
    if steps < 1:
        raise DiffdynError(f"--steps must be at least 1; got {steps}.")
    if system is None:
        series, source = load_data(data=data, system=system, params=params, seed=seed, fresh=True)
        return series, None, source
    length = system_class(system).default_steps + steps
    series, source = load_data(system=system, params=params, steps=length, seed=seed, fresh=True)
    return series.slice(0, length - steps), series.slice(length - steps, None), source


def _lyapunov_exponent(series: Series, given: float | None) -> float | None:
    if given is not None:
        if not given > 0:
            raise DiffdynError(f"--lyapunov-exponent must be positive; got {given}.")
        return given
    return series.lyapunov_exponent if (series.lyapunov_exponent or 0) > 0 else None


def check_train_request(
    model_name: str,
    folder: str | Path,
    *,
    hyperparameters: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    force: bool = False,
    resume: bool = False,
) -> tuple[dict[str, Any], TrainConfig]:
    """Check everything about a training request but the data, changing nothing.

    Raises for an unknown model, hyperparameter or training option, a bad value, or a folder
    that cannot take the model (`checkpoint.check_folder`). `train_model` calls it first; call
    it yourself to fail before loading or simulating data. Returns the resolved
    hyperparameters and the `TrainConfig`.
    """
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
    checkpoint.check_folder(folder, force=force, resume=resume)
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


@dataclass
class TrainResult:
    folder: Path
    sidecar: dict[str, Any]
    stop_reason: str


def train_model(
    series: Series,
    source: dict[str, Any],
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
    """
    hyper, config = check_train_request(
        model_name,
        folder,
        hyperparameters=hyperparameters,
        options=options,
        force=force,
        resume=resume,
    )
    if source["kind"] == "file":
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
    folder = checkpoint.prepare_folder(folder, force=force, resume=resume)
    scaler = Scaler.fit(train)
    values = jnp.asarray(scaler.transform(np.asarray(train.values)))
    exog = None if train.exog is None else jnp.asarray(train.exog)
    key = jax.random.key(seed)
    init_key, train_key = jax.random.split(key)
    dt = float(train.dt or 1.0)
    model = build_model(model_name, train.dim, len(train.exog_variables), dt=dt, key=init_key,
                        **hyper)  # fmt: skip
    lam = _lyapunov_exponent(train, lyapunov_exponent)
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
        "data": {**source, "rows": len(series), "train_rows": train_rows},
        "lyapunov_exponent": lam,
        "seed": seed,
    }
    started = time.perf_counter()
    if model.fit_kind == "gradient":
        resume_folder = folder / checkpoint.RESUME
        if resume:
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
    checkpoint.save_model(folder, trained, sidecar)
    if finished:
        checkpoint.clear_train_state(folder)
    return TrainResult(folder, sidecar, stop_reason)


def _schema_part(series: Series, sidecar: dict[str, Any]) -> Series:
    """The columns the model was trained on, or a clear error naming what is missing."""
    wanted, have = sidecar["variables"], list(series.variables)
    missing = [v for v in wanted if v not in have]
    if missing:
        raise DataError(
            f"the data lack variable(s) {', '.join(missing)} that the model was trained on "
            f"(the data have {', '.join(have)}; the model needs {', '.join(wanted)})."
        )
    exog_wanted = sidecar.get("exog_variables", [])
    exog_have = list(series.exog_variables)
    missing_exog = [v for v in exog_wanted if v not in exog_have]
    if missing_exog:
        raise DataError(
            f"the data lack exogenous input(s) {', '.join(missing_exog)} that the model was "
            "trained with."
        )
    out = series.select(wanted)
    if exog_wanted:
        index = [exog_have.index(v) for v in exog_wanted]
        out = out.replace(
            exog=np.asarray(series.exog)[:, index], exog_variables=tuple(exog_wanted)
        )
    else:
        out = out.replace(exog=None, exog_variables=())
    return out


def _held_out(series: Series, source: dict[str, Any], sidecar: dict[str, Any], context: int):
    data = sidecar["data"]
    if (
        source["kind"] == "file"
        and data.get("kind") == "file"
        and source.get("fingerprint") == data.get("fingerprint")
    ):
        # The training file: only its held-out end (with a context reaching back) is scored.
        return series.slice(max(0, data["train_rows"] - context), None), True
    return series, False


@eqx.filter_jit
def _forecast_many(model, contexts, exogs, horizon):
    return jax.vmap(lambda c, x: model(c, x, horizon=horizon)[0])(contexts, exogs)


def forecast_windows(
    model: AbstractForecaster,
    values: np.ndarray,
    exog: np.ndarray | None,
    starts: np.ndarray,
    context: int,
    horizon: int,
    chunk: int = 64,
) -> np.ndarray:
    """Closed-loop forecasts `[len(starts), horizon, d]` from windows starting at `starts`."""
    out = []
    for i in range(0, len(starts), chunk):
        s = starts[i : i + chunk]
        ctx = np.stack([values[j : j + context] for j in s])
        ex = None if exog is None else np.stack([exog[j : j + context + horizon] for j in s])
        out.append(np.asarray(_forecast_many(model, jnp.asarray(ctx), ex, horizon)))
    return np.concatenate(out)


def evaluate_model(
    folder: str | Path,
    series: Series,
    source: dict[str, Any],
    *,
    threshold: float = 0.5,
    lyapunov_exponent: float | None = None,
    horizon: int | None = None,
    starts: int = 50,
) -> dict[str, Any]:
    """Score a saved model on held-out data: NRMSE(t), sMAPE and valid prediction time.

    Forecasts start at `starts` points spread evenly over the evaluation data (never one);
    errors are in the data's own units, NRMSE normalised by the training data's standard
    deviation. VPT is in Lyapunov times when λ₁ is known (the user's, the training system's
    or the data's), else in time units — the result says which.
    """
    if not threshold > 0:
        raise DiffdynError(f"the threshold ε must be positive; got {threshold}.")
    model, sidecar = checkpoint.load_model(folder)
    context = int(sidecar["training"]["context"])
    part, held_out = _held_out(_schema_part(series, sidecar), source, sidecar, context)
    scaler = Scaler.from_dict(sidecar["scaler"])
    dt = part.dt or sidecar.get("dt") or 1.0
    lam = lyapunov_exponent or sidecar.get("lyapunov_exponent") or part.lyapunov_exponent
    lam = _lyapunov_exponent(part, lam) if lam else None
    room = len(part) - context
    if horizon is None:
        horizon = math.ceil(10 / (lam * dt)) if lam else 200
        horizon = max(1, min(horizon, room - max(1, room // 4)))
    if room < horizon or horizon < 1:
        raise DataError(
            f"the evaluation data have {len(part)} samples, fewer than context {context} + "
            f"horizon {horizon}; give a longer series or a shorter --horizon."
        )
    start_points = np.unique(np.linspace(0, room - horizon, starts).round().astype(int))
    values = np.asarray(scaler.transform(np.asarray(part.values)))
    exog = None if part.exog is None else np.asarray(part.exog)
    forecasts = forecast_windows(model, values, exog, start_points, context, horizon)
    forecasts = np.asarray(scaler.inverse_transform(forecasts))
    truths = np.stack(
        [np.asarray(part.values)[s + context : s + context + horizon] for s in start_points]
    )
    if not np.all(np.isfinite(forecasts)):
        bad = int((~np.isfinite(forecasts)).any(axis=(1, 2)).sum())
        note = f"{bad} of {len(start_points)} forecasts diverged to non-finite values"
    else:
        note = ""
    train_std = np.asarray(sidecar["scaler"]["scale"])
    curve = nrmse(np.nan_to_num(forecasts, nan=1e30), truths, train_std).mean(axis=0)
    vpt = valid_prediction_time(
        forecasts, truths, train_std, dt, lyapunov_exponent=lam, threshold=threshold
    )
    leads = sorted({1, max(1, horizon // 4), max(1, horizon // 2), horizon})
    return {
        "model": sidecar["model"],
        "data": source,
        "held_out_end_of_training_file": held_out,
        "start_points": len(start_points),
        "context": context,
        "horizon": horizon,
        "dt": dt,
        "lyapunov_exponent": lam,
        "threshold": threshold,
        "vpt": {
            "mean": vpt.mean,
            "std": vpt.std,
            "unit": vpt.unit,
            "censored": vpt.censored,
            "per_start": vpt.per_start.tolist(),
        },
        "nrmse": {f"{lead * dt:g}": float(curve[lead - 1]) for lead in leads},
        "nrmse_curve": curve.tolist(),
        "smape": smape(np.nan_to_num(forecasts, nan=0.0), truths),
        "rmse": float(np.sqrt(np.mean((np.nan_to_num(forecasts, nan=1e30) - truths) ** 2))),
        "note": note,
        "summary": str(vpt),
    }


def forecast_model(folder: str | Path, series: Series, steps: int) -> tuple[Series, Series | None]:
    """Forecast `steps` samples after the end of `series` (closed loop).

    A model that uses exogenous inputs needs their future values: it forecasts the last
    `steps` rows of `series` instead, whose inputs are known. Returns the forecast and, in that
    case, the truth it can be compared with.
    """
    if steps < 1:
        raise DiffdynError(f"--steps must be at least 1; got {steps}.")
    model, sidecar = checkpoint.load_model(folder)
    context = int(sidecar["training"]["context"])
    part = _schema_part(series, sidecar)
    uses_exog = bool(sidecar.get("exog_variables"))
    end = len(part) - steps if uses_exog else len(part)
    if end < context:
        raise DataError(
            f"the data have {len(part)} samples; the model reads {context} before forecasting"
            + (f" and {steps} more are needed for the inputs" if uses_exog else "")
            + "; give a longer series."
        )
    scaler = Scaler.from_dict(sidecar["scaler"])
    values = np.asarray(scaler.transform(np.asarray(part.values)))
    exog = None if part.exog is None else np.asarray(part.exog)[end - context : end + steps]
    forecast = forecast_windows(
        model, values[end - context : end], exog, np.array([0]), context, steps
    )[0]
    forecast = np.asarray(scaler.inverse_transform(forecast))
    times = np.asarray(part.times)
    dt = part.dt or sidecar.get("dt") or float(np.median(np.diff(times)))
    future = times[end - 1] + dt * np.arange(1, steps + 1)
    meta = {"source": "forecast", "model": sidecar["model"], "system": part.metadata.get("system")}
    out = Series(forecast, future, part.variables, dt=dt, metadata=meta)
    truth = part.slice(end, None) if uses_exog else None
    return out, truth


def attention_models() -> list[str]:
    """The registered models whose forecasts come with an alignment matrix (`has_attention`)."""
    model_spec("persistence")  # loads the built-in registry
    return sorted(name for name, spec in MODELS.items() if spec.cls.has_attention)


def check_explain_request(folder: str | Path) -> dict[str, Any]:
    """Check, before any data are loaded, that `folder` holds a model with attention.

    Returns the sidecar; raises `CheckpointError` for a missing or unfinished model folder and
    `DiffdynError` (naming the models that have attention) for a model without it.
    """
    sidecar = checkpoint.read_sidecar(folder)
    if not model_spec(sidecar["model"]).cls.has_attention:
        having = ", ".join(attention_models()) or "none is registered"
        raise DiffdynError(
            f"model {sidecar['model']} has no attention, so there is no alignment to draw; "
            f"train a model that has it ({having})."
        )
    return sidecar


def explain_model(
    folder: str | Path,
    series: Series,
    source: dict[str, Any],
    *,
    horizon: int | None = None,
    start: int | None = None,
) -> dict[str, Any]:
    """Run a saved attention model on one context window and return its alignment.

    The window is taken from the evaluation data as `evaluate_model` takes them (the held-out
    end of the training file, any other series whole); `start` counts samples from the start
    of that part (default 0, its first window) and `horizon` defaults to the training horizon.

    **Returns** a dict with `model`, `data`, `held_out_end_of_training_file`, `start`,
    `first_sample` (the window's first sample in `series`), `context`, `horizon`, `attention`
    (`[horizon, context]` nested lists: row = forecast step, column = context step, the last
    column the most recent observation; a sliding-window model may give fewer columns, its
    newest inputs), `input_attention` (`[context, n]` or `None`),
    `driving_series` (the `n` names: variables, then exogenous inputs), `peaks` (per forecast
    step: the `lag` with most weight, 1 = most recent, and that `weight`),
    `mean_attention_per_lag` (lag 1 first), `mean_input_attention` (per driving series, or
    `None`), and for a memory model (MTNet) `memory_attention` (`[horizon, blocks]`, oldest
    block first, or `None`) with `block_length` (steps per block, or `None`): block i of n
    covers lags (n − i + 1)·L + 1 … (n − i + 2)·L, the query window lags 1 … L.

    **Example:**

    ```python
    from diffdyn.train import load_data
    from diffdyn.train.pipeline import explain_model

    series, source = load_data(system="lorenz63", fresh=True)
    result = explain_model("runs/lorenz63-seq2seq-attention", series, source)
    ```
    """
    sidecar = check_explain_request(folder)
    training = sidecar["training"]
    context = int(training["context"])
    horizon = int(training["horizon"]) if horizon is None else horizon
    start = 0 if start is None else start
    if horizon < 1:
        raise DiffdynError(f"--horizon must be at least 1; got {horizon}.")
    if start < 0:
        raise DiffdynError(f"--start must be 0 or more; got {start}.")
    part, held_out = _held_out(_schema_part(series, sidecar), source, sidecar, context)
    last = len(part) - context - horizon
    if start > last:
        where = "its held-out end has" if held_out else "they have"
        raise DataError(
            f"the data are too short for a window at --start {start} with context {context} and "
            f"horizon {horizon}: {where} {len(part)} samples, so --start can be at most "
            f"{max(last, 0)} and --horizon at most {max(len(part) - context - start, 0)}."
        )
    model, _ = checkpoint.load_model(folder)
    scaler = Scaler.from_dict(sidecar["scaler"])
    window = np.asarray(scaler.transform(np.asarray(part.values)[start : start + context]))
    exog = None
    if part.exog is not None:
        exog = jnp.asarray(np.asarray(part.exog)[start : start + context + horizon])
    _, aux = _run_once(model, jnp.asarray(window), exog, horizon)
    names = [*sidecar["variables"], *sidecar.get("exog_variables", [])]
    attention = np.asarray(aux.get("attention", np.zeros(0)), float)
    # A sliding-window model (the Transformer) may attend over its newest W <= C inputs.
    if (
        attention.ndim != 2
        or attention.shape[0] != horizon
        or not (1 <= attention.shape[1] <= context)
    ):
        raise DiffdynError(
            f"model {sidecar['model']} returned attention of shape {attention.shape}, not "
            f"[horizon, context] = ({horizon}, {context}); the model breaks the aux contract."
        )
    inputs_seen = attention.shape[1]
    inputs = aux.get("input_attention")
    if inputs is not None:
        inputs = np.asarray(inputs, float)
        if inputs.shape != (context, len(names)):
            raise DiffdynError(
                f"model {sidecar['model']} returned input attention of shape {inputs.shape}, "
                f"not [context, driving series] = ({context}, {len(names)})."
            )
    memory = aux.get("memory_attention")
    block_length = None
    if memory is not None:
        memory = np.asarray(memory, float)
        block_length = int(getattr(model, "block_length", 0))
        # n blocks of `block_length` steps, older than the query window of as many steps.
        if (
            memory.ndim != 2
            or memory.shape[0] != horizon
            or block_length < 1
            or (memory.shape[1] + 1) * block_length > context
        ):
            raise DiffdynError(
                f"model {sidecar['model']} returned memory attention of shape {memory.shape} "
                f"with blocks of {block_length} steps, which do not fit [horizon, blocks] in a "
                f"context of {context}; the model breaks the aux contract."
            )
    peak = attention.argmax(axis=1)
    return {
        "model": sidecar["model"],
        "data": source,
        "held_out_end_of_training_file": held_out,
        "start": start,
        "first_sample": len(series) - len(part) + start,
        "context": context,
        "horizon": horizon,
        "attention": attention.tolist(),
        "input_attention": None if inputs is None else inputs.tolist(),
        "driving_series": names,
        "peaks": [
            {"lag": int(inputs_seen - i), "weight": float(attention[k, i])}
            for k, i in enumerate(peak)
        ],
        "mean_attention_per_lag": attention.mean(axis=0)[::-1].tolist(),
        "mean_input_attention": None if inputs is None else inputs.mean(axis=0).tolist(),
        "memory_attention": None if memory is None else memory.tolist(),
        "block_length": block_length,
    }


@eqx.filter_jit
def _run_once(model, context, exog, horizon):
    return model(context, exog, horizon=horizon)
