"""`TrainConfig`: every option of gradient training, with defaults a model can override."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from ..options import check_number

STRATEGIES = ("teacher", "free", "curriculum")
LOSSES = ("mse", "soft-dtw", "soft-vpt")  # train/losses.py
# The range of each numeric option, as `check_number` keywords.
RANGES: dict[str, dict[str, Any]] = {
    "context": {"whole": True, "low": 1},
    "horizon": {"whole": True, "low": 1},
    "epochs": {"whole": True, "low": 1},
    "batch_size": {"whole": True, "low": 1},
    "stride": {"whole": True, "low": 1},
    "patience": {"whole": True, "low": 0},
    "max_failures": {"whole": True, "low": 0},
    "learning_rate": {"above": 0},
    "clip": {"above": 0},
    "weight_decay": {"low": 0},
    "warmup": {"low": 0, "below": 1},
    "validation": {"low": 0, "below": 0.9},
    "soft_dtw_gamma": {"above": 0},
    "soft_vpt_epsilon": {"above": 0},
    "soft_vpt_temperature": {"above": 0},
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Options of `fit`.

    - `context`: input window length (samples).
    - `horizon`: forecast length the loss looks at (free-running and curriculum strategies).
    - `strategy`: `"teacher"` (one-step-ahead loss: the model sees true data, predicts the
      next step), `"free"` (the loss covers a closed-loop rollout of `horizon` steps,
      backpropagated through), `"curriculum"` (the rollout grows from 1 to `horizon` steps over
      the first half of the run — of its steps or its budget — then stays).
    - `epochs`, `batch_size`, `learning_rate`, `clip` (global gradient norm),
      `weight_decay` (AdamW when > 0), `schedule` (`"constant"` or `"cosine"`, in units of
      run progress: the fraction of the steps or of the budget done, whichever is larger),
      `warmup` (the fraction of the run over which the learning rate ramps up from 0).
    - `validation`: fraction of the training windows' time span held out (the end) for early
      stopping; `patience`: epochs without improvement before stopping (0 = never).
    - `stride`: step between consecutive training windows.
    - `max_failures`: non-finite steps tolerated (each halves the learning rate) before
      training stops with an error.
    - `loss`: what the rollout is scored by (`train/losses.py`), in training and in
      validation: `"mse"` (mean squared error), `"soft-dtw"` (the soft-DTW divergence of
      smoothing `soft_dtw_gamma`, Cuturi & Blondel 2017) or `"soft-vpt"` (minus the soft count
      of forecast steps whose NRMSE stays under `soft_vpt_epsilon`, sigmoid temperature
      `soft_vpt_temperature`: a smooth valid prediction time).
    """

    context: int = 32
    horizon: int = 10
    strategy: str = "curriculum"
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 3e-3
    clip: float = 1.0
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup: float = 0.02
    validation: float = 0.15
    patience: int = 10
    stride: int = 1
    max_failures: int = 5
    loss: str = "mse"
    soft_dtw_gamma: float = 0.1
    soft_vpt_epsilon: float = 0.5
    soft_vpt_temperature: float = 0.1

    def __post_init__(self):
        for name, bounds in RANGES.items():
            value = getattr(self, name)
            checked = check_number(f"training option {name}", value, **bounds)
            object.__setattr__(self, name, checked)
        if self.strategy not in STRATEGIES:
            raise DiffdynError(
                f"unknown training strategy {self.strategy!r}; choose one of "
                f"{', '.join(STRATEGIES)}.{did_you_mean(self.strategy, STRATEGIES)}"
            )
        if self.loss not in LOSSES:
            raise DiffdynError(
                f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}."
                f"{did_you_mean(self.loss, LOSSES)}"
            )
        if self.schedule not in ("constant", "cosine"):
            raise DiffdynError(f"schedule must be 'constant' or 'cosine'; got {self.schedule!r}.")

    @classmethod
    def from_options(cls, base: dict[str, Any] | None = None, **options: Any) -> TrainConfig:
        """Build from a model's default training options updated with `options` (may be text)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for source in (base or {}), options:
            for key, raw in source.items():
                if raw is None:
                    continue
                if key not in fields:
                    raise UnknownNameError(
                        f"no training option {key!r} (options: {', '.join(fields)})."
                        f"{did_you_mean(key, list(fields))}"
                    )
                if key in RANGES:
                    values[key] = check_number(f"training option {key}", raw, **RANGES[key])
                else:
                    values[key] = str(raw)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
