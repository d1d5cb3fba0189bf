"""The checks of an identification request, each refusing bad input in one sentence: the
fields to fit, the observed variables, the kind of system."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import numpy as np

from ..data.series import Series
from ..errors import DataError, DiffdynError, UnknownNameError, did_you_mean
from ..systems.base import AbstractSystem
from ..systems.controlled import AbstractControlledFlow

DIVERGENCE_ADVICE = (
    "use more segments (segments=, --segments) or tighter bounds, or start closer to the data."
)


def _label(system: AbstractSystem) -> str:
    return system.name or type(system).__name__


def check_fit(system: AbstractSystem, fit: Sequence[str] | str) -> tuple[str, ...]:
    """The fields to fit, checked: each is a field of `system` holding a floating array or a
    module of them (a network). **Raises** `UnknownNameError` for a name that is no field,
    `DiffdynError` for a static setting or a field that holds no floating array."""
    names = [fit] if isinstance(fit, str) else list(fit)
    names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    label = _label(system)
    if not names:
        raise DiffdynError(f"name at least one field of {label} to fit (e.g. fit=['rho']).")
    # a controlled flow's recorded input is data (`driven_by`), not an unknown
    fields = {f.name: f for f in dataclasses.fields(system) if f.name != "recorded_input"}
    fittable = [n for n in fields if not fields[n].metadata.get("static")]
    for name in names:
        if name not in fields:
            raise UnknownNameError(
                f"{label} has no field {name!r} to fit (it has {', '.join(fittable) or 'none'})."
                f"{did_you_mean(name, fittable)}"
            )
        if fields[name].metadata.get("static"):
            raise DiffdynError(
                f"{name} of {label} is a static setting (it fixes shapes), not an array: it "
                f"cannot be fitted; fit one of {', '.join(fittable)}."
            )
        value = getattr(system, name)
        if eqx.is_array(value):
            if not eqx.is_inexact_array(value):
                raise DiffdynError(
                    f"{name} of {label} holds integers; declare it with a float default, "
                    f"e.g. param({float(np.asarray(value).reshape(-1)[0])}), to fit it."
                )
            continue
        if not jax.tree_util.tree_leaves(eqx.filter(value, eqx.is_inexact_array)):
            raise DiffdynError(
                f"{name} of {label} is not an array field (it holds "
                f"{type(value).__name__}); declare it with param(...) to fit it."
            )
    return tuple(names)


def match_observed(
    system: AbstractSystem, series: Series, observe: Sequence[str] | str | None
) -> tuple[str, ...]:
    """The observed variables: `observe`, or else every column of `series`; each must be a
    variable of `system` and a column of `series`."""
    label, variables = _label(system), system.variables
    columns = tuple(series.variables)
    if observe is None:
        unknown = [c for c in columns if c not in variables]
        if len(columns) > len(variables):
            raise DataError(
                f"the data have {len(columns)} columns ({', '.join(columns)}) but {label} has "
                f"{len(variables)} variables ({', '.join(variables)}); choose the observed "
                "ones with observe (--observe)."
            )
        if unknown:
            raise DataError(
                f"the data columns {', '.join(unknown)} are not variables of {label} "
                f"({', '.join(variables)}); name the columns after the variables, or choose "
                "the observed ones with observe (--observe)."
            )
        return columns
    names = [observe] if isinstance(observe, str) else list(observe)
    names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not names:
        raise DiffdynError("observe names no variable; leave it out to observe every column.")
    for name in names:
        if name not in variables:
            raise UnknownNameError(
                f"{label} has no variable {name!r} to observe (it has {', '.join(variables)})."
                f"{did_you_mean(name, variables)}"
            )
        if name not in columns:
            raise DataError(
                f"the data have no column {name!r} (they have {', '.join(columns)}); observe "
                "only variables the data hold."
            )
    return tuple(names)


def check_kind(system: AbstractSystem, segments: int) -> None:
    label = _label(system)
    if system.needs_key or (system.kind != "flow" and system.exog_variables):
        raise DiffdynError(
            f"{label} is driven by an input ({', '.join(system.exog_variables) or 'random'}): "
            "identify does not fit driven maps or delay systems; fit a flow with a forcing(t)."
        )
    if system.kind == "delay" and segments > 1:
        raise DiffdynError(
            f"{label} is a delay system: its state is its whole history, so multiple shooting "
            "cannot restart it from a state; use segments=1 (--segments 1)."
        )


def driven_by_data(system: AbstractSystem, series: Series) -> AbstractSystem:
    """A controlled flow fitted to data that hold its inputs (`Series.exog`, the columns named
    after its `control_names`): the flow driven by them (`AbstractControlledFlow.driven_by`,
    linear between samples). Any other system, or data without inputs, as it is (a controlled
    flow then runs free, u = 0). **Raises** `DataError` when the data have inputs but not
    every control among them."""
    if not isinstance(system, AbstractControlledFlow) or series.exog is None:
        return system
    controls, inputs = system.control_names, tuple(series.exog_variables)
    missing = [name for name in controls if name not in inputs]
    if missing:
        raise DataError(
            f"the data's inputs are {', '.join(inputs)} but {_label(system)}'s controls are "
            f"{', '.join(controls)}: name the input columns after the controls (missing: "
            f"{', '.join(missing)})."
        )
    columns = [inputs.index(name) for name in controls]
    exog = np.asarray(series.exog, dtype=np.float64)[:, columns]
    return system.driven_by(np.asarray(series.times, dtype=np.float64), exog)
