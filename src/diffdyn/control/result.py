"""The typed results of `train_controller` and `evaluate_controller`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx


def _number(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


@dataclasses.dataclass(frozen=True)
class CostPoint:
    """One point of the cost curve: after `iteration` optimiser steps (`rollouts` simulated
    episodes, `seconds` of training), the mean training cost since the last point and the
    cost of the fixed validation batch."""

    iteration: int
    rollouts: int
    cost: float
    validation_cost: float
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "rollouts": self.rollouts,
                "cost": _number(self.cost), "validation_cost": _number(self.validation_cost),
                "seconds": self.seconds}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ControlEvaluation:
    """A policy run on fresh initial states: `episodes`, `successes` (per episode),
    `success_rate`, `mean_cost` (the task's cost, averaged), `max_abs_control` (the largest
    |u| of any episode), `limit` (the actuator limit, `None` for none), `within_limit`
    (max |u| ≤ limit), `criterion` (the success criterion in words)."""

    episodes: int
    successes: tuple[bool, ...]
    success_rate: float
    mean_cost: float
    max_abs_control: float
    limit: float | None
    within_limit: bool
    criterion: str

    def to_json(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "success_rate": self.success_rate,
                "successes": [bool(s) for s in self.successes],
                "mean_cost": _number(self.mean_cost), "max_abs_control": self.max_abs_control,
                "limit": self.limit, "within_limit": self.within_limit,
                "criterion": self.criterion}  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class ControlResult:
    """What `train_controller` returns.

    - `system`, `task`: names; `policy`: the trained policy (the best by validation cost);
      `policy_kind` (`"linear"`, `"mlp"` or the class name), `parameters` (trained numbers).
    - `iterations`: optimiser steps; `rollouts`: simulated training episodes (batch ×
      iterations, each `steps` sampling steps long: `simulated_steps` in all), not counting
      validation and evaluation.
    - `seconds` (training wall-clock, compiling included), `compile_seconds`.
    - `cost_curve`: a `CostPoint` per validation; `final_cost`: the best validation cost.
    - `evaluation`: the `ControlEvaluation` on fresh initial states.
    - `settings`: the task and training settings used (horizon, dt, limit, batch, …).
    - `stop_reason`, `seed`.
    """

    system: str
    task: str
    policy: eqx.Module
    policy_kind: str
    parameters: int
    iterations: int
    rollouts: int
    simulated_steps: int
    seconds: float
    compile_seconds: float
    cost_curve: tuple[CostPoint, ...]
    final_cost: float
    evaluation: ControlEvaluation
    settings: dict[str, Any]
    stop_reason: str
    seed: int

    def to_json(self) -> dict[str, Any]:
        return {"system": self.system, "task": self.task, "policy": self.policy_kind,
                "parameters": self.parameters, "iterations": self.iterations,
                "rollouts": self.rollouts, "simulated_steps": self.simulated_steps,
                "seconds": self.seconds, "compile_seconds": self.compile_seconds,
                "final_cost": _number(self.final_cost),
                "evaluation": self.evaluation.to_json(), "settings": dict(self.settings),
                "stop_reason": self.stop_reason, "seed": self.seed,
                "cost_curve": [p.to_json() for p in self.cost_curve]}  # fmt: skip
