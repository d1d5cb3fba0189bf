"""Closed-loop forecasts of a trained model: batched from many windows, or after a series.

A forecast that goes non-finite is never handed on as numbers: `forecast_model` raises
`ForecastDivergedError` naming the step, and evaluation records the step per start point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data.scale import Scaler
from ..data.series import Series
from ..errors import DataError, DiffdynError
from ..models.base import AbstractForecaster
from ..models.registry import model_spec
from . import checkpoint
from .data_source import model_part
from .results import Forecast, first_non_finite


class ForecastDivergedError(DiffdynError):
    """A closed-loop forecast that left the finite numbers; `step` is the first bad step
    (counted from 1)."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def divergence_advice(sidecar: dict[str, Any]) -> str:
    """What to try when a model's closed-loop forecast blows up, for its way of fitting."""
    fit_kind = model_spec(sidecar["model"]).cls.fit_kind
    if "ridge" in sidecar.get("hyperparameters", {}):
        return "refit with a larger ridge (-p ridge=...), or forecast fewer --steps."
    if fit_kind == "gradient":
        return (
            "retrain it on longer rollouts (--strategy free, or a longer --horizon) or with a "
            "smaller --learning-rate, or forecast fewer --steps."
        )
    return "forecast fewer --steps."


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
    """Closed-loop forecasts `[len(starts), horizon, d]` from the windows of `context` samples
    of `values` `[T, d]` (and `exog` `[T, m]`) starting at `starts`, in the model's units."""
    out = []
    for i in range(0, len(starts), chunk):
        s = starts[i : i + chunk]
        ctx = np.stack([values[j : j + context] for j in s])
        ex = None if exog is None else np.stack([exog[j : j + context + horizon] for j in s])
        out.append(np.asarray(_forecast_many(model, jnp.asarray(ctx), ex, horizon)))
    return np.concatenate(out)


def forecast_trained(
    model: AbstractForecaster,
    sidecar: dict[str, Any],
    series: Series,
    steps: int,
    *,
    truth: Series | None = None,
) -> Forecast:
    """`forecast_model` for a model in memory with its description (`model.json` content)."""
    if steps < 1:
        raise DiffdynError(f"--steps must be at least 1; got {steps}.")
    context = int(sidecar["training"]["context"])
    part = model_part(series, sidecar)
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
    with np.errstate(over="ignore", invalid="ignore"):
        forecast = forecast_windows(
            model, values[end - context : end], exog, np.array([0]), context, steps
        )[0]
        forecast = np.asarray(scaler.inverse_transform(forecast))
    times = np.asarray(part.times)
    dt = part.dt or sidecar.get("dt") or float(np.median(np.diff(times)))
    bad = int(first_non_finite(forecast))
    if bad:
        raise ForecastDivergedError(
            f"the {sidecar['model']} forecast went non-finite at step {bad} of {steps} "
            f"(lead time {bad * dt:g}); " + divergence_advice(sidecar),
            bad,
        )
    future = times[end - 1] + dt * np.arange(1, steps + 1)
    meta = {"source": "forecast", "model": sidecar["model"], "system": part.metadata.get("system")}
    out = Series(forecast, future, part.variables, dt=dt, metadata=meta)
    if uses_exog:  # the inputs were known because their rows are in `series`: so is the truth
        truth = part.slice(end, None).replace(exog=None, exog_variables=())
    return Forecast(sidecar["model"], part.slice(end - context, end), out, truth)


def forecast_model(
    folder: str | Path, series: Series, steps: int, *, truth: Series | None = None
) -> Forecast:
    """Forecast `steps` samples after the end of `series` (closed loop) with a saved model.

    A model that uses exogenous inputs needs their future values: it forecasts the last
    `steps` rows of `series` instead, whose inputs are known, and those rows are the truth.
    Otherwise `truth` (what followed `series`, when known) is attached to the result as given.

    **Raises** `ForecastDivergedError` (a `DiffdynError`) when the forecast goes non-finite.

    **Example:**

    ```python
    from diffdyn.train import forecast_model, load_forecast_data

    history, truth, _ = load_forecast_data(system="lorenz63", steps=500)
    result = forecast_model("runs/lorenz63-lstm", history, 500, truth=truth)
    result.forecast.values.shape  # (500, 3)
    ```
    """
    model, sidecar = checkpoint.load_model(folder)
    return forecast_trained(model, sidecar, series, steps, truth=truth)
