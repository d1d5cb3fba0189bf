"""`Forecaster`: a model of the registry in a notebook — build, fit, forecast, evaluate,
explain, and save only when asked."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..data.series import Series
from ..errors import DiffdynError
from ..models.base import AbstractForecaster
from . import checkpoint
from .data_source import DataSource
from .evaluate import evaluate_trained
from .explain import explain_trained
from .forecast import forecast_trained
from .results import Evaluation, Explanation, Forecast, TrainResult
from .training import check_train_request, train_forecaster


class Forecaster:
    """A registered forecasting model with everything it needs to run on raw data: its
    weights, the scaler fitted on its training data and its description.

    **Arguments:**

    - `name`: a registry name (`diffdyn models` lists them).
    - `**hyperparameters`: the model's hyperparameters (as `diffdyn train -p NAME=VALUE`).

    Every method takes and returns data in the series' own units; each returns the typed
    result of the matching command (`TrainResult`, `Forecast`, `Evaluation`, `Explanation`).
    A series handed over here is used whole: split it yourself (`Series.slice`,
    `data.split_series`) to keep test data out of training.

    **Example:**

    ```python
    from diffdyn import Forecaster, get_system, simulate

    series = simulate(get_system("henon"), steps=1500)
    train, test = series.slice(0, 1000), series.slice(1000, None)
    model = Forecaster("ngrc")
    model.fit(train)                           # TrainResult: parameters, seconds, ...
    print(model.evaluate(test).vpt)            # Evaluation: VPT, NRMSE(t), sMAPE, ...
    model.forecast(test, steps=20).forecast    # Forecast: a Series after the end of test
    ```
    """

    def __init__(self, name: str, /, **hyperparameters: Any):
        check_train_request(name, None, hyperparameters=hyperparameters)
        self.name = name
        self.hyperparameters = hyperparameters
        self.module: AbstractForecaster | None = None
        self.result: TrainResult | None = None

    def __repr__(self) -> str:
        state = "not fitted" if self.result is None else f"{self.result.parameters} parameters"
        return f"Forecaster({self.name!r}, {state})"

    def _fitted(self) -> tuple[AbstractForecaster, TrainResult]:
        if self.module is None or self.result is None:
            raise DiffdynError(f"the {self.name} forecaster is not fitted yet; call fit first.")
        return self.module, self.result

    def fit(
        self,
        series: Series,
        *,
        budget: float | None = None,
        seed: int = 0,
        folder: str | Path | None = None,
        force: bool = False,
        progress: bool = False,
        lyapunov_exponent: float | None = None,
        **options: Any,
    ) -> TrainResult:
        """Fit the model to all of `series`.

        **Arguments:**

        - `budget`: wall-clock seconds of gradient training, compiling and validation
          included (default: the epochs' worth).
        - `seed`: of initial weights and shuffling.
        - `folder`: also save the model there, checkpointing every epoch (default: keep it
          in memory only; `save` writes it later).
        - `force`: replace an existing `folder`.
        - `progress`: show a progress bar.
        - `lyapunov_exponent`: λ₁ of the data, per time unit, for VPT in Lyapunov times
          (default: the series' own, when simulated).
        - `**options`: training options (`TrainConfig`: `context=`, `epochs=`, `strategy=`...).
        """
        self.module, self.result = train_forecaster(
            series,
            DataSource.of_series(series),
            self.name,
            folder,
            hyperparameters=self.hyperparameters,
            options=options,
            seed=seed,
            budget=budget,
            force=force,
            progress=progress,
            lyapunov_exponent=lyapunov_exponent,
        )
        return self.result

    def forecast(self, series: Series, steps: int, *, truth: Series | None = None) -> Forecast:
        """Forecast `steps` samples after the end of `series`, closed loop (`forecast_model`)."""
        model, fitted = self._fitted()
        return forecast_trained(model, fitted.sidecar, series, steps, truth=truth)

    def evaluate(
        self,
        series: Series,
        *,
        threshold: float = 0.5,
        lyapunov_exponent: float | None = None,
        horizon: int | None = None,
        starts: int = 50,
    ) -> Evaluation:
        """Score forecasts from `starts` points of `series` (`evaluate_model`)."""
        model, fitted = self._fitted()
        return evaluate_trained(
            model,
            fitted.sidecar,
            series,
            DataSource.of_series(series),
            threshold=threshold,
            lyapunov_exponent=lyapunov_exponent,
            horizon=horizon,
            starts=starts,
        )

    def explain(
        self, series: Series, *, horizon: int | None = None, start: int = 0
    ) -> Explanation:
        """The alignment of an attention model on the window at `start` (`explain_model`)."""
        model, fitted = self._fitted()
        return explain_trained(
            model,
            fitted.sidecar,
            series,
            DataSource.of_series(series),
            horizon=horizon,
            start=start,
        )

    def save(self, folder: str | Path, *, force: bool = False) -> Path:
        """Write the model folder that `diffdyn evaluate` / `forecast` and `load` read."""
        model, fitted = self._fitted()
        folder = checkpoint.prepare_folder(folder, force=force)
        checkpoint.save_model(folder, model, fitted.sidecar)
        self.result = dataclasses.replace(fitted, folder=folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Forecaster:
        """The forecaster saved in a model folder (by `save` or `diffdyn train`)."""
        module, sidecar = checkpoint.load_model(folder)
        forecaster = cls(sidecar["model"], **sidecar["hyperparameters"])
        forecaster.module = module
        forecaster.result = TrainResult.from_sidecar(folder, sidecar)
        return forecaster
