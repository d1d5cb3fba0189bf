"""What training, evaluation, forecasting and explanation return: typed results with `to_json`.

Every command and the compare grid read these classes, never bare dicts; `to_json()` gives
what `diffdyn evaluate` and `diffdyn explain --json` write (non-finite numbers become `null`).
Times are in the data's time units, errors in the data's units unless a field says otherwise.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..data.series import Series
from ..metrics import ValidPredictionTime
from .config import TrainConfig
from .data_source import DataSource
from .loop import Record
from .reservoir_tuning import ReservoirTuning


def _floats(array: Any) -> Any:
    """Nested lists of floats, `None` where a value is not finite (JSON has no NaN)."""
    array = np.asarray(array, float)
    if np.isfinite(array).all():
        return array.tolist()
    if array.ndim == 0:
        return None
    if array.ndim == 1:
        return [float(v) if math.isfinite(v) else None for v in array]
    return [_floats(row) for row in array]


def _array(stored: Any) -> np.ndarray:
    """The inverse of `_floats`: `None` becomes NaN."""
    return np.asarray(stored if stored is not None else [], dtype=float)


def _optional_array(stored: Any) -> np.ndarray | None:
    return None if stored is None else _array(stored)


def first_non_finite(forecasts: np.ndarray) -> np.ndarray:
    """Per forecast `[..., horizon, d]`: the first step (counted from 1) with a non-finite
    value, or 0 when every step is finite. Shape `[...]`."""
    bad = ~np.isfinite(np.asarray(forecasts, float)).all(axis=-1)
    return np.where(bad.any(axis=-1), bad.argmax(axis=-1) + 1, 0)


_SERIES_FACTS = ("system", "kind", "model", "source", "lyapunov_exponent")


def series_to_json(series: Series) -> dict[str, Any]:
    """A single trajectory as JSON: names, times, values, dt and the facts plots read."""
    return {
        "variables": list(series.variables),
        "times": _floats(series.times),
        "values": _floats(series.values),
        "dt": series.dt,
        "metadata": {k: series.metadata[k] for k in _SERIES_FACTS if k in series.metadata},
    }


def series_from_json(stored: dict[str, Any]) -> Series:
    return Series(
        _array(stored["values"]).reshape(-1, len(stored["variables"])),
        _array(stored["times"]),
        tuple(stored["variables"]),
        dt=stored.get("dt"),
        metadata=dict(stored.get("metadata") or {}),
    )


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# -- training ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class TrainResult:
    """What training a model produced (`train_model`, `Forecaster.fit`).

    - `folder`: the model folder it was saved in, or `None` (a `Forecaster` fitted in memory).
    - `model`: the registry name; `hyperparameters`: every hyperparameter, resolved.
    - `training`: the `TrainConfig` (context and horizon in samples; recorded for every model).
    - `parameters`: the number of fitted scalars (0 for persistence).
    - `seconds`: wall-clock seconds of fitting, this run and any it resumed (compilation
      included).
    - `steps`: optimiser steps taken (gradient models), else `None`.
    - `stop_reason`: why it stopped, in words; `finished`: `False` when a budget stopped a
      gradient run that `resume` can continue.
    - `best_val_loss`: the best validation loss (MSE of a free-running forecast on standardised
      data) of a gradient run, else `None`.
    - `history`: one `Record` per validation point (epoch).
    - `data`: the `DataSource` trained on; `rows`: its samples; `train_rows`: the first rows
      used for training (a file's last `TEST_FRACTION` is held out: `rows - train_rows`).
    - `lyapunov_exponent`: λ₁ per time unit recorded for `evaluate`, or `None`.
    - `seed`: the seed of initial weights and shuffling.
    - `sidecar`: the model description saved as `model.json` (the checkpoint format).
    - `tuning`: what tuning a reservoir by gradient did (`ReservoirTuning`: the tuned
      values among them), or `None` when it was not tuned.
    """

    folder: Path | None
    model: str
    hyperparameters: dict[str, Any]
    training: TrainConfig
    parameters: int
    seconds: float
    steps: int | None
    stop_reason: str
    finished: bool
    best_val_loss: float | None
    history: list[Record]
    data: DataSource
    rows: int
    train_rows: int
    lyapunov_exponent: float | None
    seed: int
    sidecar: dict[str, Any] = dataclasses.field(repr=False)
    tuning: ReservoirTuning | None = None

    @classmethod
    def from_sidecar(cls, folder: str | Path | None, sidecar: dict[str, Any]) -> TrainResult:
        """The result recorded in a model description (`model.json`)."""
        data = sidecar["data"]
        best = sidecar.get("best_val_loss")
        return cls(
            folder=None if folder is None else Path(folder),
            model=sidecar["model"],
            hyperparameters=dict(sidecar["hyperparameters"]),
            training=TrainConfig.from_options(sidecar["training"]),
            parameters=int(sidecar["parameters"]),
            seconds=float(sidecar["train_seconds"]),
            steps=None if sidecar.get("steps") is None else int(sidecar["steps"]),
            stop_reason=str(sidecar["stop_reason"]),
            finished=bool(sidecar["finished"]),
            best_val_loss=None if best is None else _finite_or_none(float(best)),
            history=[Record(**r) for r in sidecar.get("history", [])],
            data=DataSource.from_json(data),
            rows=int(data["rows"]),
            train_rows=int(data["train_rows"]),
            lyapunov_exponent=sidecar.get("lyapunov_exponent"),
            seed=int(sidecar["seed"]),
            sidecar=sidecar,
            tuning=(
                None
                if sidecar.get("tuning") is None
                else ReservoirTuning.from_json(sidecar["tuning"])
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": None if self.folder is None else str(self.folder),
            "model": self.model,
            "hyperparameters": self.hyperparameters,
            "training": self.training.to_dict(),
            "parameters": self.parameters,
            "seconds": self.seconds,
            "steps": self.steps,
            "stop_reason": self.stop_reason,
            "finished": self.finished,
            "best_val_loss": self.best_val_loss,
            "history": [r.to_json() for r in self.history],
            "data": {**self.data.to_json(), "rows": self.rows, "train_rows": self.train_rows},
            "lyapunov_exponent": self.lyapunov_exponent,
            "seed": self.seed,
            "tuning": None if self.tuning is None else self.tuning.to_json(),
        }


# -- forecasting -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class Forecast:
    """A closed-loop forecast, the context it started from and, when known, the truth.

    - `model`: the registry name.
    - `context`: the window the model read, `[C, d]` (its last sample is just before the
      forecast's first).
    - `forecast`: the forecast `[steps, d]`, in the data's units, timed after the context.
    - `truth`: what really followed, `[steps, d]`, or `None` (a file's unknown future).

    `forecast_model` never returns a non-finite forecast (it raises `ForecastDivergedError`);
    `Evaluation.example` may, for a start point whose forecast diverged (`diverged_at`).
    """

    model: str
    context: Series
    forecast: Series
    truth: Series | None = None

    @property
    def steps(self) -> int:
        return len(self.forecast)

    @property
    def diverged_at(self) -> int | None:
        """The first forecast step (from 1) with a non-finite value, or `None`."""
        step = int(first_non_finite(np.asarray(self.forecast.values)))
        return step or None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "steps": self.steps,
            "diverged_at": self.diverged_at,
            "context": series_to_json(self.context),
            "forecast": series_to_json(self.forecast),
            "truth": None if self.truth is None else series_to_json(self.truth),
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Forecast:
        truth = stored.get("truth")
        return cls(
            str(stored["model"]),
            series_from_json(stored["context"]),
            series_from_json(stored["forecast"]),
            None if truth is None else series_from_json(truth),
        )


# -- evaluation --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class Evaluation:
    """The scores of a saved model on held-out data (`evaluate_model`, `Forecaster.evaluate`).

    Forecasts start at `start_points` windows spread over the evaluation data; step k of a
    forecast (from 1) is lead time k·dt.

    - `model`: the registry name; `data`: the `DataSource` scored on.
    - `held_out`: whether the data are the held-out end of the model's training file
      (`held_out_end_of_training_file` in JSON); `in_sample`: whether they are the very
      series it was trained on (the scores then flatter the model).
    - `context`, `horizon`: samples read before each forecast, and forecast length.
    - `dt`: the sampling step (time units); `lyapunov_exponent`: λ₁ per time unit, or `None`.
    - `threshold`: ε, the NRMSE above which a forecast stops being valid.
    - `start_indices`: `[n]` the first context sample of each forecast, counted in `series`.
    - `vpt`: the `ValidPredictionTime` (in Lyapunov times when λ₁ is known, else time units).
    - `nrmse`: NRMSE (normalised by the training data's σ) at a few lead times, keyed by the
      lead time as text (`"0.25"`); `nrmse_curve`: `[horizon]` NRMSE at every step, mean over
      start points (a non-finite forecast counts as a huge error).
    - `smape`: sMAPE on the 0–200 scale; `rmse`: RMSE in the data's units.
    - `diverged_at`: per start point, the first forecast step with a non-finite value, or
      `None` when it stayed finite.
    - `series`: the evaluation data (the held-out end with its context, or all of it), and
      `forecasts`: `[n, horizon, d]` every forecast in the data's units — both left out of
      `to_json`.
    """

    model: str
    data: DataSource
    held_out: bool
    in_sample: bool
    context: int
    horizon: int
    dt: float
    lyapunov_exponent: float | None
    threshold: float
    start_indices: np.ndarray
    vpt: ValidPredictionTime
    nrmse: dict[str, float]
    nrmse_curve: np.ndarray
    smape: float
    rmse: float
    diverged_at: tuple[int | None, ...]
    series: Series = dataclasses.field(repr=False)
    forecasts: np.ndarray = dataclasses.field(repr=False)

    @property
    def start_points(self) -> int:
        return len(self.start_indices)

    @property
    def diverged(self) -> int:
        """How many of the forecasts went non-finite."""
        return sum(step is not None for step in self.diverged_at)

    @property
    def first_divergence(self) -> int | None:
        """The earliest step at which any forecast went non-finite, or `None`."""
        steps = [step for step in self.diverged_at if step is not None]
        return min(steps) if steps else None

    @property
    def note(self) -> str:
        """What a reader of the scores must know: diverged forecasts, in-sample data."""
        notes = []
        first = self.first_divergence
        if first is not None:
            notes.append(
                f"{self.diverged} of {self.start_points} forecasts went non-finite, the first "
                f"at step {first} (t = {first * self.dt:g})"
            )
        if self.in_sample:
            notes.append("scored on the training data itself: these scores are in-sample")
        return "; ".join(notes)

    @property
    def summary(self) -> str:
        return str(self.vpt)

    @property
    def truths(self) -> np.ndarray:
        """`[n, horizon, d]`: what followed each context, in the data's units."""
        values = np.asarray(self.series.values)
        first = self.start_indices + self.context
        return np.stack([values[s : s + self.horizon] for s in first])

    def example(self, index: int = 0, steps: int | None = None) -> Forecast:
        """The forecast from start point `index` (its first `steps`) beside its context and
        the truth."""
        steps = self.horizon if steps is None else min(steps, self.horizon)
        start = int(self.start_indices[index])
        context = self.series.slice(start, start + self.context)
        truth = self.series.slice(start + self.context, start + self.context + steps)
        forecast = Series(
            self.forecasts[index, :steps],
            np.asarray(truth.times),
            self.series.variables,
            dt=self.series.dt,
            metadata={"source": "forecast", "model": self.model,
                      "system": self.series.metadata.get("system")},
        )  # fmt: skip
        return Forecast(self.model, context, forecast, truth.replace(exog=None, exog_variables=()))

    def to_json(self) -> dict[str, Any]:
        vpt = self.vpt.to_json()
        vpt.pop("threshold")
        return {
            "model": self.model,
            "data": self.data.to_json(),
            "held_out_end_of_training_file": self.held_out,
            "in_sample": self.in_sample,
            "start_points": self.start_points,
            "start_indices": [int(s) for s in self.start_indices],
            "context": self.context,
            "horizon": self.horizon,
            "dt": self.dt,
            "lyapunov_exponent": self.lyapunov_exponent,
            "threshold": self.threshold,
            "vpt": vpt,
            "nrmse": self.nrmse,
            "nrmse_curve": _floats(self.nrmse_curve),
            "smape": self.smape,
            "rmse": self.rmse,
            "diverged_at": list(self.diverged_at),
            "note": self.note,
            "summary": self.summary,
        }


# -- explanation -------------------------------------------------------------------------------
class LagWeight(NamedTuple):
    """An attention weight on a lag (1 = the most recent observation)."""

    lag: int
    weight: float


class BlockWeight(NamedTuple):
    """An attention weight on a memory block (0 = the oldest block)."""

    block: int
    weight: float


class InputWeight(NamedTuple):
    """A mean input-attention weight on a driving series."""

    name: str
    weight: float


def _ranked(weights: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-weights, kind="stable")]


@dataclasses.dataclass(frozen=True, eq=False)
class Explanation:
    """Where an attention model looks, or which branches a gated model takes, on one context
    window (`explain_model`).

    - `model`, `data`, `held_out`: as in `Evaluation`.
    - `start`: the window's first sample in the evaluation data; `first_sample`: the same
      sample counted in the series given.
    - `context`, `horizon`: the window length and the forecast steps explained.
    - `attention`: `[horizon, W]` the alignment: row k = forecast step k + 1, column i = the
      context step W − i before the forecast (the last column the most recent observation;
      W = `context`, or fewer for a sliding-window model); rows sum to 1. `None` for a model
      without attention.
    - `driving_series`: the `n` names the model reads: variables, then exogenous inputs.
    - `input_attention`: `[context, n]` DA-RNN's weight of each driving series per context
      step, or `None`.
    - `memory_attention`: `[horizon, blocks]` MTNet's weight of each memory block (oldest
      first), or `None`; `block_length`: steps per block, or `None`. Block i (from 0) of n
      covers lags (n − i)·L + 1 … (n − i + 1)·L; the query window is lags 1 … L.
    - `gates`: `[horizon, K]` a gated model's weight of each of its K branches in every
      forecast step (rows sum to 1), or `None`; `gate_label`: what a branch is ("expert",
      "ponder step").
    - `ponder`: `[horizon]` the ponder steps behind every forecast step (ACT), or `None`.
    - `forecast`: `[horizon, d]` the forecast of the window, in the data's units, or `None`.
    """

    model: str
    data: DataSource
    held_out: bool
    start: int
    first_sample: int
    context: int
    horizon: int
    attention: np.ndarray | None
    driving_series: tuple[str, ...]
    input_attention: np.ndarray | None = None
    memory_attention: np.ndarray | None = None
    block_length: int | None = None
    gates: np.ndarray | None = None
    gate_label: str | None = None
    ponder: np.ndarray | None = None
    forecast: np.ndarray | None = None

    @property
    def peaks(self) -> list[LagWeight]:
        """Per forecast step: the lag with the most weight, and that weight (none without
        attention)."""
        if self.attention is None:
            return []
        seen = self.attention.shape[1]
        return [
            LagWeight(int(seen - i), float(row[i]))
            for row, i in zip(self.attention, self.attention.argmax(axis=1))
        ]

    @property
    def mean_attention_per_lag(self) -> np.ndarray | None:
        """`[W]` the mean weight over forecast steps of lag 1, 2, … (lag 1 first), or `None`."""
        return None if self.attention is None else self.attention.mean(axis=0)[::-1]

    @property
    def mean_input_attention(self) -> np.ndarray | None:
        """`[n]` the mean input-attention weight of each driving series, or `None`."""
        return None if self.input_attention is None else self.input_attention.mean(axis=0)

    def ranked_lags(self) -> list[LagWeight]:
        """Lags by mean weight, heaviest first (ties: the more recent first)."""
        per_lag = self.mean_attention_per_lag
        if per_lag is None:
            return []
        return [LagWeight(i + 1, float(per_lag[i])) for i in _ranked(per_lag)]

    @property
    def mean_gates(self) -> np.ndarray | None:
        """`[K]` the mean weight of each branch over the forecast steps, or `None`."""
        return None if self.gates is None else self.gates.mean(axis=0)

    def ranked_inputs(self) -> list[InputWeight]:
        """Driving series by mean input-attention weight, heaviest first (none without it)."""
        mean = self.mean_input_attention
        if mean is None:
            return []
        return [InputWeight(self.driving_series[i], float(mean[i])) for i in _ranked(mean)]

    @property
    def memory_peaks(self) -> list[BlockWeight]:
        """Per forecast step: the memory block with the most weight (none without memory)."""
        if self.memory_attention is None:
            return []
        return [
            BlockWeight(int(i), float(row[i]))
            for row, i in zip(self.memory_attention, self.memory_attention.argmax(axis=1))
        ]

    def ranked_blocks(self) -> list[BlockWeight]:
        """Memory blocks by mean weight over forecast steps, heaviest first."""
        if self.memory_attention is None:
            return []
        mean = self.memory_attention.mean(axis=0)
        return [BlockWeight(i, float(mean[i])) for i in _ranked(mean)]

    def to_json(self) -> dict[str, Any]:
        mean_inputs = self.mean_input_attention
        per_lag = self.mean_attention_per_lag
        mean_gates = self.mean_gates
        return {
            "model": self.model,
            "data": self.data.to_json(),
            "held_out_end_of_training_file": self.held_out,
            "start": self.start,
            "first_sample": self.first_sample,
            "context": self.context,
            "horizon": self.horizon,
            "attention": None if self.attention is None else _floats(self.attention),
            "input_attention": None
            if self.input_attention is None
            else _floats(self.input_attention),
            "driving_series": list(self.driving_series),
            "peaks": [p._asdict() for p in self.peaks],
            "mean_attention_per_lag": None if per_lag is None else _floats(per_lag),
            "mean_input_attention": None if mean_inputs is None else _floats(mean_inputs),
            "memory_attention": None
            if self.memory_attention is None
            else _floats(self.memory_attention),
            "block_length": self.block_length,
            "gates": None if self.gates is None else _floats(self.gates),
            "gate_label": self.gate_label,
            "mean_gates": None if mean_gates is None else _floats(mean_gates),
            "ponder": None if self.ponder is None else _floats(self.ponder),
            "forecast": None if self.forecast is None else _floats(self.forecast),
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Explanation:
        return cls(
            model=str(stored["model"]),
            data=DataSource.from_json(stored["data"]),
            held_out=bool(stored["held_out_end_of_training_file"]),
            start=int(stored["start"]),
            first_sample=int(stored["first_sample"]),
            context=int(stored["context"]),
            horizon=int(stored["horizon"]),
            attention=_optional_array(stored["attention"]),
            driving_series=tuple(stored["driving_series"]),
            input_attention=_optional_array(stored.get("input_attention")),
            memory_attention=_optional_array(stored.get("memory_attention")),
            block_length=stored.get("block_length"),
            gates=_optional_array(stored.get("gates")),
            gate_label=stored.get("gate_label"),
            ponder=_optional_array(stored.get("ponder")),
            forecast=_optional_array(stored.get("forecast")),
        )
