"""Where an attention model looks: its alignment on one context window, checked against the
`aux` contract of `AbstractForecaster`."""

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


def check_explainable(sidecar: dict[str, Any]) -> None:
    """Raise `DiffdynError` (naming the models that have attention) for a model without it."""
    if not model_spec(sidecar["model"]).cls.has_attention:
        having = ", ".join(attention_models()) or "none is registered"
        raise DiffdynError(
            f"model {sidecar['model']} has no attention, so there is no alignment to draw; "
            f"train a model that has it ({having})."
        )


def check_explain_request(folder: str | Path) -> dict[str, Any]:
    """Check, before any data are loaded, that `folder` holds a model with attention.

    Returns the sidecar; raises `CheckpointError` for a missing or unfinished model folder and
    `DiffdynError` (naming the models that have attention) for a model without it.
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
    _, aux = _run_once(model, jnp.asarray(window), exog, horizon)
    names = (*sidecar["variables"], *sidecar.get("exog_variables", []))
    attention = np.asarray(aux.get("attention", np.zeros(0)), float)
    # A sliding-window model (the Transformer) may attend over its newest W <= C inputs.
    if (
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
    )


def explain_model(
    folder: str | Path,
    series: Series,
    source: DataSource,
    *,
    horizon: int | None = None,
    start: int | None = None,
) -> Explanation:
    """Run a saved attention model on one context window and return its alignment.

    The window is taken from the evaluation data as `evaluate_model` takes them (the held-out
    end of the training file, any other series whole); `start` counts samples from the start
    of that part (default 0, its first window) and `horizon` defaults to the training horizon.
    The `Explanation` holds the alignment `[horizon, context]`, DA-RNN's input attention and
    MTNet's memory attention when the model gives them, and ranks lags, driving series and
    memory blocks by weight.

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
