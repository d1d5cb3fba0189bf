"""Scoring a trained model on held-out data: NRMSE(t), sMAPE, RMSE and valid prediction time
over many forecast start points, and the step at which any forecast went non-finite."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..data.scale import Scaler
from ..data.series import Series
from ..errors import DataError
from ..metrics import nrmse, smape, valid_prediction_time
from ..models.base import AbstractForecaster
from ..options import check_number
from . import checkpoint
from .data_source import (
    DataSource,
    evaluation_part,
    is_training_data,
    lyapunov_exponent_of,
    model_part,
)
from .forecast import forecast_windows
from .results import Evaluation, first_non_finite

HORIZON_LYAPUNOV_TIMES = 10  # the default forecast length when λ₁ is known
HORIZON_SAMPLES = 200  # ... and when it is not


def evaluate_trained(
    model: AbstractForecaster,
    sidecar: dict[str, Any],
    series: Series,
    source: DataSource,
    *,
    threshold: float = 0.5,
    lyapunov_exponent: float | None = None,
    horizon: int | None = None,
    starts: int = 50,
) -> Evaluation:
    """`evaluate_model` for a model in memory with its description (`model.json` content)."""
    threshold = check_number("the threshold ε (--threshold)", threshold, above=0)
    context = int(sidecar["training"]["context"])
    part, held_out = evaluation_part(model_part(series, sidecar), source, sidecar, context)
    scaler = Scaler.from_dict(sidecar["scaler"])
    dt = float(part.dt or sidecar.get("dt") or 1.0)
    if lyapunov_exponent is not None:
        lam = lyapunov_exponent_of(part, lyapunov_exponent)
    else:
        lam = sidecar.get("lyapunov_exponent") or part.lyapunov_exponent
        lam = lyapunov_exponent_of(part, lam) if lam else None
    room = len(part) - context
    if horizon is None:
        horizon = math.ceil(HORIZON_LYAPUNOV_TIMES / (lam * dt)) if lam else HORIZON_SAMPLES
        horizon = max(1, min(horizon, room - max(1, room // 4)))
    if room < horizon or horizon < 1:
        raise DataError(
            f"the evaluation data have {len(part)} samples, fewer than context {context} + "
            f"horizon {horizon}; give a longer series or a shorter --horizon."
        )
    start_points = np.unique(np.linspace(0, room - horizon, starts).round().astype(int))
    values = np.asarray(scaler.transform(np.asarray(part.values)))
    exog = None if part.exog is None else np.asarray(part.exog)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging forecast is a result
        forecasts = forecast_windows(model, values, exog, start_points, context, horizon)
        forecasts = np.asarray(scaler.inverse_transform(forecasts))
        truths = np.stack(
            [np.asarray(part.values)[s + context : s + context + horizon] for s in start_points]
        )
        train_std = np.asarray(sidecar["scaler"]["scale"])
        curve = nrmse(np.nan_to_num(forecasts, nan=1e30), truths, train_std).mean(axis=0)
        vpt = valid_prediction_time(
            forecasts, truths, train_std, dt, lyapunov_exponent=lam, threshold=threshold
        )
        rmse = float(np.sqrt(np.mean((np.nan_to_num(forecasts, nan=1e30) - truths) ** 2)))
    leads = sorted({1, max(1, horizon // 4), max(1, horizon // 2), horizon})
    return Evaluation(
        model=sidecar["model"],
        data=source,
        held_out=held_out,
        in_sample=not held_out and is_training_data(source, sidecar),
        context=context,
        horizon=horizon,
        dt=dt,
        lyapunov_exponent=lam,
        threshold=threshold,
        start_indices=start_points,
        vpt=vpt,
        nrmse={f"{lead * dt:g}": float(curve[lead - 1]) for lead in leads},
        nrmse_curve=curve,
        smape=smape(np.nan_to_num(forecasts, nan=0.0), truths),
        rmse=rmse,
        diverged_at=tuple(int(s) or None for s in first_non_finite(forecasts)),
        series=part,
        forecasts=forecasts,
    )


def evaluate_model(
    folder: str | Path,
    series: Series,
    source: DataSource,
    *,
    threshold: float = 0.5,
    lyapunov_exponent: float | None = None,
    horizon: int | None = None,
    starts: int = 50,
) -> Evaluation:
    """Score a saved model on held-out data: NRMSE(t), sMAPE, RMSE and valid prediction time.

    Forecasts start at `starts` points spread evenly over the evaluation data (never one):
    the held-out end of the training file, or any other series whole. Errors are in the data's
    own units, NRMSE normalised by the training data's standard deviation. VPT is in Lyapunov
    times when λ₁ is known (the user's, the training system's or the data's), else in time
    units — the result says which. The default horizon is 10 Lyapunov times (200 samples
    without λ₁), shortened to leave room for the spread of start points. A forecast that goes
    non-finite is scored as failed from that step on, and its step is in `diverged_at`.

    **Example:**

    ```python
    from diffdyn.train import evaluate_model, load_data

    series, source = load_data(system="lorenz63", fresh=True)
    scores = evaluate_model("runs/lorenz63-lstm", series, source)
    print(scores.vpt, scores.nrmse)
    ```
    """
    model, sidecar = checkpoint.load_model(folder)
    return evaluate_trained(
        model,
        sidecar,
        series,
        source,
        threshold=threshold,
        lyapunov_exponent=lyapunov_exponent,
        horizon=horizon,
        starts=starts,
    )
