"""Where an attention model looks (its alignment on one context window), or which branch a
soft-control-flow model takes (its gate weights), checked against the `aux` contract of
`AbstractForecaster`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..data.scale import Scaler
from ..data.series import Series
from ..errors import DataError, DiffdynError
from ..models.base import AbstractForecaster
from ..models.registry import MODELS, model_spec
from . import checkpoint
from .data_source import DataSource, evaluation_part, model_part
from .results import Explanation


def attention_models() -> list[str]:
    """The registered models whose forecasts come with an alignment matrix (`has_attention`)."""
    model_spec("persistence")  # loads the built-in registry
    return sorted(name for name, spec in MODELS.items() if spec.cls.has_attention)


def gate_models() -> list[str]:
    """The registered models whose forecasts come with soft-control-flow gates (`has_gates`)."""
    model_spec("persistence")  # loads the built-in registry
    return sorted(name for name, spec in MODELS.items() if spec.cls.has_gates)


def check_explainable(sidecar: dict[str, Any]) -> None:
    """Raise `DiffdynError` (naming the models that have attention or gates) for a model with
    neither."""
    cls = model_spec(sidecar["model"]).cls
    if not (cls.has_attention or cls.has_gates):
        having = ", ".join(attention_models() + gate_models()) or "none is registered"
        raise DiffdynError(
            f"model {sidecar['model']} has no attention and no gates, so there is nothing to "
            f"draw; train a model that has them ({having})."
        )


def check_explain_request(folder: str | Path) -> dict[str, Any]:
    """Check, before any data are loaded, that `folder` holds a model with attention or gates.

    Returns the sidecar; raises `CheckpointError` for a missing or unfinished model folder and
    `DiffdynError` (naming the models that have attention or gates) for a model with neither.
    """
    sidecar = checkpoint.read_sidecar(folder)
    check_explainable(sidecar)
    return sidecar


@eqx.filter_jit
def _run_once(model, context, exog, horizon):
    return model(context, exog, horizon=horizon)


def explain_trained(
    model: AbstractForecaster,
    sidecar: dict[str, Any],
    series: Series,
    source: DataSource,
    *,
    horizon: int | None = None,
    start: int | None = None,
) -> Explanation:
    """`explain_model` for a model in memory with its description (`model.json` content)."""
    check_explainable(sidecar)
    training = sidecar["training"]
    context = int(training["context"])
    horizon = int(training["horizon"]) if horizon is None else horizon
    start = 0 if start is None else start
    if horizon < 1:
        raise DiffdynError(f"--horizon must be at least 1; got {horizon}.")
    if start < 0:
        raise DiffdynError(f"--start must be 0 or more; got {start}.")
    part, held_out = evaluation_part(model_part(series, sidecar), source, sidecar, context)
    last = len(part) - context - horizon
    if start > last:
        where = "its held-out end has" if held_out else "they have"
        raise DataError(
            f"the data are too short for a window at --start {start} with context {context} and "
            f"horizon {horizon}: {where} {len(part)} samples, so --start can be at most "
            f"{max(last, 0)} and --horizon at most {max(len(part) - context - start, 0)}."
        )
    scaler = Scaler.from_dict(sidecar["scaler"])
    window = np.asarray(scaler.transform(np.asarray(part.values)[start : start + context]))
    exog = None
    if part.exog is not None:
        exog = jnp.asarray(np.asarray(part.exog)[start : start + context + horizon])
    forecast, aux = _run_once(model, jnp.asarray(window), exog, horizon)
    names = (*sidecar["variables"], *sidecar.get("exog_variables", []))
    gates = _gates(sidecar["model"], aux, horizon) if type(model).has_gates else None
    ponder = None
    if gates is not None and "ponder" in aux:
        ponder = np.asarray(aux["ponder"], float)
        if ponder.shape != (horizon,) or not np.all(ponder >= 1):
            raise DiffdynError(
                f"model {sidecar['model']} returned ponder counts of shape {ponder.shape}, not "
                f"[horizon] = ({horizon},) of at least 1; the model breaks the aux contract."
            )
    attention = np.asarray(aux.get("attention", np.zeros(0)), float)
    if not type(model).has_attention:
        attention = None
    # A sliding-window model (the Transformer) may attend over its newest W <= C inputs.
    elif (
        attention.ndim != 2
        or attention.shape[0] != horizon
        or not (1 <= attention.shape[1] <= context)
    ):
        raise DiffdynError(
            f"model {sidecar['model']} returned attention of shape {attention.shape}, not "
            f"[horizon, context] = ({horizon}, {context}); the model breaks the aux contract."
        )
    inputs = aux.get("input_attention")
    if inputs is not None:
        inputs = np.asarray(inputs, float)
        if inputs.shape != (context, len(names)):
            raise DiffdynError(
                f"model {sidecar['model']} returned input attention of shape {inputs.shape}, "
                f"not [context, driving series] = ({context}, {len(names)})."
            )
    memory = aux.get("memory_attention")
    block_length = None
    if memory is not None:
        memory = np.asarray(memory, float)
        block_length = int(getattr(model, "block_length", 0))
        # n blocks of `block_length` steps, older than the query window of as many steps.
        if (
            memory.ndim != 2
            or memory.shape[0] != horizon
            or block_length < 1
            or (memory.shape[1] + 1) * block_length > context
        ):
            raise DiffdynError(
                f"model {sidecar['model']} returned memory attention of shape {memory.shape} "
                f"with blocks of {block_length} steps, which do not fit [horizon, blocks] in a "
                f"context of {context}; the model breaks the aux contract."
            )
    return Explanation(
        model=sidecar["model"],
        data=source,
        held_out=held_out,
        start=start,
        first_sample=len(series) - len(part) + start,
        context=context,
        horizon=horizon,
        attention=attention,
        driving_series=names,
        input_attention=inputs,
        memory_attention=memory,
        block_length=block_length,
        gates=gates,
        gate_label=type(model).gate_label if gates is not None else None,
        ponder=ponder,
        forecast=np.asarray(scaler.inverse_transform(np.asarray(forecast)), float),
    )


def _gates(model: str, aux: dict[str, Any], horizon: int) -> np.ndarray:
    gates = np.asarray(aux.get("gates", np.zeros(0)), float)
    if (
        gates.ndim != 2
        or gates.shape[0] != horizon
        or gates.shape[1] < 1
        or not np.all(np.isfinite(gates))
        or not np.allclose(gates.sum(axis=1), 1.0, atol=1e-3)
    ):
        raise DiffdynError(
            f"model {model} returned gates of shape {gates.shape}, not [horizon, branches] = "
            f"({horizon}, K) with rows summing to 1; the model breaks the aux contract."
        )
    return gates


def explain_model(
    folder: str | Path,
    series: Series,
    source: DataSource,
    *,
    horizon: int | None = None,
    start: int | None = None,
) -> Explanation:
    """Run a saved attention or gated model on one context window and return its alignment
    or its gate weights.

    The window is taken from the evaluation data as `evaluate_model` takes them (the held-out
    end of the training file, any other series whole); `start` counts samples from the start
    of that part (default 0, its first window) and `horizon` defaults to the training horizon.
    The `Explanation` holds the alignment `[horizon, context]`, DA-RNN's input attention and
    MTNet's memory attention when the model gives them, and ranks lags, driving series and
    memory blocks by weight; for a model with gates (`has_gates`: the switching forecaster's
    experts, the ACT forecaster's ponder steps), the weight of each branch per forecast step,
    the ponder counts and the forecast itself.

    **Example:**

    ```python
    from diffdyn.train import explain_model, load_data

    series, source = load_data(system="lorenz63", fresh=True)
    result = explain_model("runs/lorenz63-seq2seq-attention", series, source)
    result.peaks[0]  # LagWeight(lag=..., weight=...): where forecast step 1 looks most
    ```
    """
    sidecar = check_explain_request(folder)
    model, _ = checkpoint.load_model(folder)
    return explain_trained(model, sidecar, series, source, horizon=horizon, start=start)
