"""Training: the one optimisation core (`train`), `fit` for forecasters on it, schedules in
units of run progress, checkpoints, and what the commands call — load data (`data_source`),
train (`training`), evaluate, forecast and explain a saved model, each returning a typed
result (`results`) — and `Forecaster`, the same in memory for notebooks."""

from . import schedule as schedule
from .checkpoint import (
    CheckpointError as CheckpointError,
    Recipe as Recipe,
    load_model as load_model,
    load_module as load_module,
    save_module as save_module,
)
from .config import TrainConfig as TrainConfig
from .data_source import (
    DataSource as DataSource,
    load_data as load_data,
    load_forecast_data as load_forecast_data,
)
from .evaluate import evaluate_model as evaluate_model
from .explain import (
    attention_models as attention_models,
    check_explain_request as check_explain_request,
    explain_model as explain_model,
    gate_models as gate_models,
)
from .fit import fit as fit, make_optimiser as make_optimiser
from .forecast import (
    ForecastDivergedError as ForecastDivergedError,
    forecast_model as forecast_model,
    forecast_windows as forecast_windows,
)
from .forecaster import Forecaster as Forecaster
from .loop import (
    Record as Record,
    TrainingError as TrainingError,
    TrainOutcome as TrainOutcome,
    TrainState as TrainState,
    train as train,
)
from .reservoir_tuning import (
    ReservoirTuning as ReservoirTuning,
    tune_reservoir as tune_reservoir,
)
from .results import (
    BlockWeight as BlockWeight,
    Evaluation as Evaluation,
    Explanation as Explanation,
    Forecast as Forecast,
    InputWeight as InputWeight,
    LagWeight as LagWeight,
    TrainResult as TrainResult,
)
from .training import check_train_request as check_train_request, train_model as train_model
