"""The forecasting protocol of the dysts benchmark (Gilpin 2021), for diffdyn's models.

Gilpin, "Chaos as an interpretable benchmark for forecasting and data-driven modelling",
NeurIPS 2021 Datasets and Benchmarks (arXiv:2110.05266). The protocol, as its code runs it
(`benchmarks/univariate benchmarks/compute_benchmarks_no_noise.py` for the univariate models,
`benchmarks/esn_benchmarks.py`, `nvar_benchmarks.py`, `node_benchmarks.py` for the
multivariate ones, in `williamgilpin/dysts` before the benchmarks moved out in 2024):

- each system's trajectory is 12 dominant periods long, sampled at 100 (fine) or 15 (coarse)
  points per period, in the system's raw units (no standardisation);
- a model is fitted on the first 5/6 of it (10 periods) and forecasts the last 2 periods
  (200 or 30 samples) closed loop from the end of the training part;
- the score is sMAPE on the 0–200 scale (darts' `smape`, and dysts' own `metrics.smape` of
  2021: 200 · mean |ŷ − y| / (|ŷ| + |y|)), over the first coordinate in the univariate
  benchmark, over every coordinate in the multivariate one; the table reports each model's
  median over the systems.

`dysts_task` builds one system's training and test parts, `score_dysts` forecasts and scores
a trained model on them, and `PUBLISHED_MEDIAN_SMAPE` holds the published medians to print
beside diffdyn's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .data.dysts_source import (
    BENCHMARK_PERIODS,
    check_dysts_name,
    dysts_series,
    points_per_period,
)
from .data.series import Series
from .data.split import split_series
from .errors import DataError, DiffdynError
from .train.checkpoint import read_sidecar
from .train.data_source import DataSource
from .train.evaluate import evaluate_model
from .train.forecaster import Forecaster
from .train.results import Evaluation

TRAIN_PERIODS = 10  # int(5/6 · 12 periods) in dysts' scripts
TEST_PERIODS = BENCHMARK_PERIODS - TRAIN_PERIODS  # the forecast horizon: 2 periods
SETTINGS = ("univariate", "multivariate")


@dataclasses.dataclass(frozen=True)
class PublishedScore:
    """A published median sMAPE of the dysts benchmark: `model` in `setting` at `granularity`."""

    model: str
    setting: str
    granularity: str
    median_smape: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PUBLISHED_SOURCE = (
    "Gilpin 2021, Chaos as an interpretable benchmark for forecasting and data-driven "
    "modelling, NeurIPS Datasets and Benchmarks (arXiv:2110.05266): median sMAPE over the "
    "catalogue, 2-period horizon (figures as recorded in diffdyn's shared/ANCHORS.md)"
)
PUBLISHED_MEDIAN_SMAPE: tuple[PublishedScore, ...] = (
    PublishedScore("NBEATS", "univariate", "fine", 67.7),
    PublishedScore("NBEATS", "univariate", "coarse", 50.6),
    PublishedScore("Transformer", "univariate", "fine", 101.4),
    PublishedScore("Transformer", "univariate", "coarse", 94.0),
    PublishedScore("LSTM", "univariate", "fine", 102.0),
    PublishedScore("LSTM", "univariate", "coarse", 67.8),
    PublishedScore("neural ODE", "multivariate", "fine", 72.6),
    PublishedScore("NVAR", "multivariate", "fine", 83.6),
    PublishedScore("ESN", "multivariate", "fine", 102.4),
)


def published_scores(
    *, setting: str | None = None, granularity: str | None = None
) -> tuple[PublishedScore, ...]:
    """The published medians, optionally only those of one setting and/or granularity.

    **Example:** `[s.model for s in published_scores(setting="multivariate")]`
    """
    return tuple(
        s
        for s in PUBLISHED_MEDIAN_SMAPE
        if (setting is None or s.setting == setting)
        and (granularity is None or s.granularity == granularity)
    )


def dysts_split(
    series: Series,
    *,
    train_periods: int = TRAIN_PERIODS,
    test_periods: int = TEST_PERIODS,
) -> tuple[Series, Series]:
    """The protocol's training part (the first `train_periods` periods) and test part (the
    next `test_periods`), cut with `data.split_series`; rows beyond them are dropped.

    The number of rows per period is the series' `points_per_period` (`dysts_series` records
    it), so a fine series of 12 periods gives 1000 + 200 rows and a coarse one 150 + 30.

    **Example:**

    ```python
    from diffdyn.data import dysts_series
    from diffdyn.dysts_protocol import dysts_split

    train, test = dysts_split(dysts_series("Lorenz", granularity="coarse"))
    len(train), len(test)  # (150, 30)
    ```
    """
    ppp = series.metadata.get("points_per_period")
    if not isinstance(ppp, int):
        raise DataError(
            "this series does not record its points per period; make it with "
            "diffdyn.data.dysts_series."
        )
    train_rows, test_rows = train_periods * ppp, test_periods * ppp
    if train_rows < 2 or test_rows < 2 or train_rows + test_rows > len(series):
        raise DataError(
            f"the protocol needs {train_periods} + {test_periods} periods ({train_rows} + "
            f"{test_rows} rows); the series has {len(series)} rows."
        )
    end = train_rows + test_rows
    train, test, *_ = split_series(series, indices=[train_rows, end][: 1 + (end < len(series))])
    return train, test


@dataclasses.dataclass(frozen=True, eq=False)
class DystsTask:
    """One system of the benchmark, ready to train on and score.

    - `system`: dysts' name; `granularity`, `setting` (`"univariate"`: the first coordinate
      only, as the univariate benchmark; `"multivariate"`: every coordinate), `seed`.
    - `train`, `test`: the protocol's parts (`dysts_split`); `source`: the training part's
      `DataSource` for `train_model` (`kind="series"`: trained on whole, nothing held out by
      diffdyn — the test part is the held-out data).
    """

    system: str
    granularity: str | int
    setting: str
    seed: int
    train: Series
    test: Series
    source: DataSource

    @property
    def name(self) -> str:
        """The dataset's name in diffdyn: `"dysts:NAME"`."""
        return str(self.train.metadata["system"])

    def to_json(self) -> dict[str, Any]:
        meta = self.train.metadata
        return {
            "system": self.system,
            "granularity": self.granularity,
            "setting": self.setting,
            "seed": self.seed,
            "points_per_period": meta["points_per_period"],
            "period": meta["period"],
            "lyapunov_exponent": meta["lyapunov_exponent"],
            "variables": list(self.train.variables),
            "train_rows": len(self.train),
            "test_rows": len(self.test),
            "source": self.source.to_json(),
        }


def dysts_task(
    name: str,
    *,
    granularity: str | int = "fine",
    setting: str = "univariate",
    seed: int = 0,
    **simulation: Any,
) -> DystsTask:
    """Simulate a dysts system for the protocol (`dysts_series`, 12 periods) and split it.

    `**simulation` goes to `dysts_series` (`method`, `rtol`, `atol`).

    **Example:**

    ```python
    from diffdyn.dysts_protocol import dysts_task

    task = dysts_task("dysts:Lorenz", granularity="coarse", setting="multivariate")
    len(task.train), len(task.test), task.train.variables  # (150, 30, ('x', 'y', 'z'))
    ```
    """
    if setting not in SETTINGS:
        raise DiffdynError(f"the setting is one of {', '.join(SETTINGS)}; got {setting!r}.")
    system = check_dysts_name(name)
    points_per_period(granularity)  # checked before any simulation
    series = dysts_series(
        system, granularity=granularity, periods=BENCHMARK_PERIODS, seed=seed, **simulation
    )
    if setting == "univariate":
        series = series.select(series.variables[:1])
    train, test = dysts_split(series)
    return DystsTask(system, granularity, setting, seed, train, test, DataSource.of_series(train))


@dataclasses.dataclass(frozen=True, eq=False)
class DystsScore:
    """A trained model's score under the dysts protocol on one system.

    - `system` (`"dysts:NAME"`), `model` (registry name), `granularity`,
      `points_per_period`, `variables` (those forecast and scored).
    - `horizon`: forecast samples (`test_periods` · points per period); `horizon_periods`.
    - `smape`: sMAPE (0–200) of the closed-loop forecast against the test part, over
      `variables`; a forecast that went non-finite counts as a zero forecast from that step on
      (each such point scores 200, the worst), as in `evaluate_model`.
    - `diverged_at`: the first non-finite forecast step (from 1), or `None`.
    - `vpt`: valid prediction time of this one forecast, in `vpt_unit` (Lyapunov times with
      dysts' λ₁), at NRMSE threshold `threshold`; `vpt_censored`: the forecast stayed within
      ε over the whole horizon (`vpt` is then the horizon, a lower bound); `evaluation`: the
      full `Evaluation`.
    """

    system: str
    model: str
    granularity: str | int
    points_per_period: int
    variables: tuple[str, ...]
    horizon: int
    horizon_periods: float
    smape: float
    diverged_at: int | None
    vpt: float
    vpt_unit: str
    vpt_censored: bool
    threshold: float
    evaluation: Evaluation = dataclasses.field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "model": self.model,
            "protocol": "dysts",
            "granularity": self.granularity,
            "points_per_period": self.points_per_period,
            "variables": list(self.variables),
            "horizon": self.horizon,
            "horizon_periods": self.horizon_periods,
            "smape": self.smape,
            "diverged_at": self.diverged_at,
            "vpt": self.vpt,
            "vpt_unit": self.vpt_unit,
            "vpt_censored": self.vpt_censored,
            "threshold": self.threshold,
        }


def _joined(history: Series, test: Series) -> Series:
    """`history` followed by `test`, which must continue it in time at the same step."""
    if history.variables != test.variables:
        raise DataError(
            f"the test part's variables ({', '.join(test.variables)}) are not the training "
            f"part's ({', '.join(history.variables)})."
        )
    dt = test.dt or history.dt
    gap = float(np.asarray(test.times)[0] - np.asarray(history.times)[-1])
    if dt is None or not np.isclose(gap, dt, rtol=1e-6):
        raise DataError(
            "the test part must follow the training part directly (one trajectory, cut by "
            "dysts_split)."
        )
    return test.replace(
        values=np.concatenate([np.asarray(history.values), np.asarray(test.values)]),
        times=np.concatenate([np.asarray(history.times), np.asarray(test.times)]),
        exog=None,
        exog_variables=(),
    )


def score_dysts(
    model: str | Path | Forecaster,
    train: Series,
    test: Series,
    *,
    threshold: float = 0.5,
) -> DystsScore:
    """Forecast the test part closed loop from the end of the training part, and score it.

    The forecast goes through `evaluate_model` (a saved model's folder) or
    `Forecaster.evaluate` (a fitted one in memory) with one start point: the model reads the
    last `context` samples of `train` and forecasts `len(test)` samples, in the data's units;
    sMAPE is `metrics.smape` over every variable the model forecasts.

    **Example:**

    ```python
    from diffdyn.dysts_protocol import dysts_task, score_dysts
    from diffdyn.train import train_model

    task = dysts_task("Lorenz", granularity="coarse")
    train_model(task.train, task.source, "ngrc", "dysts-lorenz-ngrc", progress=False)
    score = score_dysts("dysts-lorenz-ngrc", task.train, task.test)
    print(score.smape, score.horizon)  # horizon 30: two periods at 15 points per period
    ```
    """
    if isinstance(model, Forecaster):
        if model.result is None:
            raise DiffdynError(f"the {model.name} forecaster is not fitted yet; call fit first.")
        sidecar = model.result.sidecar
    else:
        sidecar = read_sidecar(model)
    context = int(sidecar["training"]["context"])
    if len(train) < context:
        raise DataError(
            f"the training part has {len(train)} samples; the model reads {context} before "
            "forecasting."
        )
    window = _joined(train.slice(len(train) - context, None), test)
    horizon = len(test)
    if isinstance(model, Forecaster):
        evaluation = model.evaluate(window, threshold=threshold, horizon=horizon, starts=1)
    else:
        evaluation = evaluate_model(
            model, window, DataSource.of_series(window), threshold=threshold, horizon=horizon,
            starts=1,
        )  # fmt: skip
    ppp = int(test.metadata.get("points_per_period") or 0)
    return DystsScore(
        system=str(test.metadata.get("system")),
        model=evaluation.model,
        granularity=test.metadata.get("granularity", ppp),
        points_per_period=ppp,
        variables=tuple(sidecar["variables"]),
        horizon=horizon,
        horizon_periods=horizon / ppp if ppp else float("nan"),
        smape=float(evaluation.smape),
        diverged_at=evaluation.diverged_at[0],
        vpt=float(evaluation.vpt.mean),
        vpt_unit=evaluation.vpt.unit,
        vpt_censored=evaluation.vpt.censored > 0,
        threshold=threshold,
        evaluation=evaluation,
    )
