"""`Identification`: what `identify` returns — the fitted system, its values with standard
errors and correlations, the start values, the loss, and every segment's initial state."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..data.series import Series
from ..systems.base import AbstractSystem
from ..train.results import _floats


def _values_json(values: dict[str, np.ndarray] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {name: _floats(value) for name, value in values.items()}


@dataclasses.dataclass(frozen=True)
class Identification:
    """The result of `identify`. Values are in the system's units; arrays are NumPy.

    - `system`: the fitted system (an instance of the class that was given).
    - `fitted`, `start`: each fitted array field's value at the end and at the start.
    - `standard_errors`: per fitted array field, from σ̂²(JᵀJ)⁻¹ at the optimum
      (`identify.uncertainty`), or `None` when not computed (`uncertainty_note` says why).
    - `correlation`: `[q, q]` correlations of the fitted entries named by `correlation_names`.
    - `networks`: fitted network fields → their number of weights (no standard errors).
    - `transforms`: each fitted field's reparametrisation, in words.
    - `loss`: the objective `S` at the end (data misfit + continuity penalty); `data_loss`:
      the mean squared standardised misfit of the observed values; `continuity_loss`: the
      weighted penalty (0 for single shooting).
    - `noise`: the RMS residual of each observed variable, in its units: an estimate of the
      noise when the fit is good.
    - `observed`, `latent`: the state variables compared with data, and the others.
    - `segments`, `segment_times` `[K]`, `initial_states` `[K, d]` (fitted, every state
      variable), `initial_state_errors` `[K, d]` or `None`.
    - `trajectory`: the fitted model at the data's times, every variable (segment by segment).
    - `restart_losses`: the final loss of each restart (`inf` where one failed); `best_restart`.
    - `adam_steps`, `refine_steps`: optimiser steps of the best restart; `refined`: whether
      Levenberg–Marquardt improved on Adam; `stop_reason`: why Adam stopped.
    - `adjoint`: the adjoint of the gradients (`"recursive"`, `"backsolve"`).
    - `seconds`: wall-clock time of the whole identification; `compile_seconds`: of it, the
      training core's first call of Adam's step (compiling it).
    - `notes`: remarks on the fit (e.g. more network weights than observed values).
    """

    system: AbstractSystem
    fitted: dict[str, np.ndarray]
    start: dict[str, np.ndarray]
    standard_errors: dict[str, np.ndarray] | None
    correlation: np.ndarray | None
    correlation_names: tuple[str, ...]
    uncertainty_note: str
    networks: dict[str, int]
    transforms: dict[str, str]
    loss: float
    data_loss: float
    continuity_loss: float
    noise: dict[str, float]
    observed: tuple[str, ...]
    latent: tuple[str, ...]
    segments: int
    segment_times: np.ndarray
    initial_states: np.ndarray
    initial_state_errors: np.ndarray | None
    trajectory: Series
    restart_losses: tuple[float, ...]
    best_restart: int
    adam_steps: int
    refine_steps: int
    refined: bool
    stop_reason: str
    adjoint: str
    seconds: float
    compile_seconds: float
    notes: tuple[str, ...] = ()

    def relative_errors(self, truth: dict[str, Any]) -> dict[str, float]:
        """`max |fitted − true| / |true|` of each field named in `truth` (a check against a
        known answer, as the experiments do)."""
        out = {}
        for name, value in truth.items():
            true = np.asarray(value, float)
            out[name] = float(np.max(np.abs(np.asarray(self.fitted[name]) - true) / np.abs(true)))
        return out

    def to_json(self) -> dict[str, Any]:
        """Everything but the system object and the trajectory's values, as JSON (non-finite
        numbers become `null`)."""
        system = self.system
        return {
            "system": system.name or type(system).__name__,
            "class": f"{type(system).__module__}:{type(system).__qualname__}",
            "kind": system.kind,
            "fitted": _values_json(self.fitted),
            "start": _values_json(self.start),
            "standard_errors": _values_json(self.standard_errors),
            "correlation": None if self.correlation is None else _floats(self.correlation),
            "correlation_names": list(self.correlation_names),
            "uncertainty_note": self.uncertainty_note,
            "networks": dict(self.networks),
            "transforms": dict(self.transforms),
            "loss": _floats(self.loss),
            "data_loss": _floats(self.data_loss),
            "continuity_loss": _floats(self.continuity_loss),
            "noise": {k: _floats(v) for k, v in self.noise.items()},
            "observed": list(self.observed),
            "latent": list(self.latent),
            "variables": list(system.variables),
            "segments": self.segments,
            "segment_times": _floats(self.segment_times),
            "initial_states": _floats(self.initial_states),
            "initial_state_errors": None
            if self.initial_state_errors is None
            else _floats(self.initial_state_errors),
            "restart_losses": [_floats(v) for v in self.restart_losses],
            "best_restart": self.best_restart,
            "adam_steps": self.adam_steps,
            "refine_steps": self.refine_steps,
            "refined": self.refined,
            "stop_reason": self.stop_reason,
            "adjoint": self.adjoint,
            "seconds": self.seconds,
            "compile_seconds": self.compile_seconds,
            "notes": list(self.notes),
        }
