"""Training: options, the gradient loop, checkpoints, and the train/evaluate/forecast pipeline."""

from .checkpoint import CheckpointError as CheckpointError, load_model as load_model
from .config import TrainConfig as TrainConfig
from .fit import TrainingError as TrainingError, TrainState as TrainState, fit as fit
from .pipeline import (
    evaluate_model as evaluate_model,
    forecast_model as forecast_model,
    forecast_windows as forecast_windows,
    load_data as load_data,
    train_model as train_model,
)
