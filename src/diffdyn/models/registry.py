"""The model registry: name → class, default hyperparameters, one-line description."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.core

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from ..options import check_number
from ..resources import check_training_memory, parameter_count
from .base import AbstractForecaster


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registry entry.

    - `name`: what users type (`--model lstm`).
    - `cls`: the forecaster class; built as `cls(dim, exog_dim, key=key, **hyperparameters)`.
    - `defaults`: default hyperparameters (every accepted hyperparameter has one).
    - `description`: one line for `diffdyn models`.
    - `training`: default training options for gradient models (strategy, epochs, ...).
    - `fixed`: constructor arguments that define the entry and users cannot change (the
      `lstm` entry is a `RecurrentForecaster` with `cell="lstm"`).
    """

    name: str
    cls: type[AbstractForecaster]
    defaults: dict[str, Any]
    description: str
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (later issues' models join the same way)."""
    MODELS[spec.name] = spec
    return spec


def model_spec(name: str) -> ModelSpec:
    """The registry entry for `name`."""
    _load_builtin()
    if name not in MODELS:
        raise UnknownNameError(
            f"unknown model {name!r}.{did_you_mean(name, list(MODELS))} "
            "Run `diffdyn models` to list them."
        )
    return MODELS[name]


def resolve_hyperparameters(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults updated with `overrides`, converted to the defaults' types.

    Values may be text as typed on the command line (`hidden=64`, `cell=gru`).
    """
    spec = model_spec(name)
    out = dict(spec.defaults)
    for key, raw in overrides.items():
        if key not in spec.defaults:
            allowed = ", ".join(spec.defaults) or "none"
            raise UnknownNameError(
                f"model {name} has no hyperparameter {key!r} (it has {allowed})."
                f"{did_you_mean(key, list(spec.defaults))}"
            )
        out[key] = convert_hyperparameter(name, key, raw, spec.defaults[key])
    return out


# Whole-number hyperparameters (sizes, counts, lengths) above this cannot be trained on any
# machine, and shapes built from them would overflow XLA's size arithmetic.
MAX_SIZE = 2**24


def convert_hyperparameter(model: str, key: str, raw: Any, default: Any) -> Any:
    """`raw` (often text from the command line) as the type of `default`, or one-sentence error.

    Booleans accept true/false/1/0/yes/no; integers accept "64" and "64.0" but not "64.5", and
    lie in [0, `MAX_SIZE`]; floats must be finite and not negative (no built-in model has a
    negative hyperparameter); the model's constructor checks its own narrower ranges.
    """
    label = f"hyperparameter {key} of model {model}"
    if isinstance(default, bool):
        if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0", "yes", "no"):
            return raw.lower() in ("true", "1", "yes")
        if isinstance(raw, bool):
            return raw
        raise DiffdynError(f"{label} must be true or false; got {raw!r}.")
    if isinstance(default, int):
        return check_number(label, raw, whole=True, low=0, high=MAX_SIZE)
    if isinstance(default, float):
        return check_number(label, raw, low=0)
    return str(raw)


def build_model(
    name: str,
    dim: int,
    exog_dim: int = 0,
    *,
    dt: float = 1.0,
    key: jax.Array,
    **hyperparameters: Any,
) -> AbstractForecaster:
    """Build a registered model for data with `dim` variables and `exog_dim` inputs, sampled
    every `dt` time units.

    Every model is built knowing `dt`: a class whose constructor takes a `dt` keyword (a
    continuous-time model, which integrates over real time) receives it; the others forecast
    in steps of the data and do not need it.

    **Example:**

    ```python
    import jax
    from diffdyn.models import build_model

    model = build_model("persistence", dim=3, key=jax.random.key(0))
    ```
    """
    spec = model_spec(name)
    params = resolve_hyperparameters(name, hyperparameters)
    if not dt > 0:
        raise DiffdynError(f"the sampling step dt must be positive; got {dt}.")
    if "dt" in inspect.signature(spec.cls.__init__).parameters:
        params["dt"] = float(dt)

    if not isinstance(key, jax.core.Tracer):
        check_model_size(name, dim, exog_dim, params)
    return spec.cls(dim, exog_dim, key=key, **spec.fixed, **params)  # pyright: ignore[reportCallIssue]


def check_model_size(
    name: str, dim: int, exog_dim: int, hyperparameters: dict[str, Any]
) -> AbstractForecaster | None:
    """Refuse (one sentence with the estimate) a model whose training state would not fit in
    this machine's memory, counting its parameters abstractly (`eqx.filter_eval_shape`:
    nothing is allocated) — instead of an out-of-memory kill or an abort while allocating.
    `hyperparameters` are resolved ones (`resolve_hyperparameters`). Returns the abstract
    model (array leaves as `jax.ShapeDtypeStruct`), or `None` for a model drawn on the host."""
    spec = model_spec(name)
    params = dict(hyperparameters)

    def construct():
        key = jax.random.key(0)
        return spec.cls(dim, exog_dim, key=key, **spec.fixed, **params)  # pyright: ignore[reportCallIssue]

    abstract = abstract_model(construct)
    if abstract is None:
        return None  # drawn on the host (the ESN), which checks its own size before drawing
    given = ", ".join(f"{k}={v}" for k, v in params.items() if isinstance(v, int))
    check_training_memory(
        parameter_count(abstract),
        f"model {name} ({given or 'defaults'})",
        "give smaller hyperparameters with -p NAME=VALUE.",
    )
    return abstract


def abstract_model(construct: Callable[[], AbstractForecaster]) -> AbstractForecaster | None:
    """`construct()` run abstractly (`eqx.filter_eval_shape`: its arrays as
    `jax.ShapeDtypeStruct`s, nothing drawn, allocated or compiled), or `None` for a model
    drawn on the host (the ESN), which cannot be traced."""
    try:
        return eqx.filter_eval_shape(construct)
    except jax.errors.TracerArrayConversionError:
        return None


def _load_builtin() -> None:
    # Importing the model modules registers them.
    from . import catalogue  # noqa: F401
