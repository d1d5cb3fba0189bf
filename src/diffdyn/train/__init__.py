"""Training: the one optimisation core (`train`), `fit` for forecasters on it, schedules in
units of run progress, checkpoints, and the train/evaluate/forecast pipeline."""

from . import schedule as schedule
from .checkpoint import (
    CheckpointError as CheckpointError,
    Recipe as Recipe,
    load_model as load_model,
    load_module as load_module,
    save_module as save_module,
)
from .config import TrainConfig as TrainConfig
from .fit import fit as fit, make_optimiser as make_optimiser
from .loop import (
    Record as Record,
    TrainingError as TrainingError,
    TrainOutcome as TrainOutcome,
    TrainState as TrainState,
    train as train,
)
from .pipeline import (
    evaluate_model as evaluate_model,
    forecast_model as forecast_model,
    forecast_windows as forecast_windows,
    load_data as load_data,
    train_model as train_model,
)
