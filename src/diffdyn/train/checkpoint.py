"""Checkpoints: `eqx.tree_serialise_leaves` for arrays + a JSON sidecar, written atomically.

A model folder holds:

- `model.eqx`: the trained model's arrays;
- `model.json`: model name, hyperparameters, training options, scaler, data schema, diffdyn
  version and checkpoint format — written last, so its presence means the folder is complete;
- `resume/state.eqx` + `resume/state.json`: the training state after the last finished epoch
  (model, best model, optimiser state, counters), kept while training can still continue.

Loading never runs code from the file (no pickle): the arrays are read into a model built from
the sidecar's name and hyperparameters.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from .. import __version__
from ..errors import DiffdynError
from ..files import atomic_write
from ..models.base import AbstractForecaster
from ..models.registry import build_model

FORMAT = 1
MODEL_FILE, SIDECAR, RESUME = "model.eqx", "model.json", "resume"


class CheckpointError(DiffdynError):
    """A model folder that is missing, incomplete, corrupt or from an incompatible version."""


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def write_json(path: Path, content: dict[str, Any]) -> None:
    """Write JSON atomically (non-finite floats become null)."""
    text = json.dumps(_json_safe(content), indent=2, allow_nan=False)
    atomic_write(path, lambda f: f.write(text.encode()))


def check_folder(folder: str | os.PathLike, *, force: bool = False, resume: bool = False) -> Path:
    """Check, changing nothing, that a model can be trained into `folder`.

    **Raises** `DiffdynError` when its parent is missing, it is a file, it is not empty and
    neither `force` nor `resume` is given, or `resume` is given with no training state to
    continue.
    """
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise DiffdynError(f"folder {folder.parent} does not exist; create it first.")
    if folder.exists() and not folder.is_dir():
        raise DiffdynError(f"{folder} is a file; give a folder name for the model.")
    if resume:
        if not (folder / RESUME / "state.json").exists():
            raise CheckpointError(
                f"nothing to resume in {folder}: no unfinished training state there "
                "(it finished, or never started); train without --resume."
            )
        return folder
    if folder.exists() and any(folder.iterdir()) and not force:
        raise DiffdynError(
            f"{folder} already exists; pass --force to replace it, --resume to continue "
            "its training, or choose another folder."
        )
    return folder


def prepare_folder(
    folder: str | os.PathLike, *, force: bool = False, resume: bool = False
) -> Path:
    """Check (`check_folder`) and create a model folder, emptying it when `force` is given."""
    folder = check_folder(folder, force=force, resume=resume)
    if resume:
        return folder
    if folder.exists() and any(folder.iterdir()):
        shutil.rmtree(folder)
    folder.mkdir(exist_ok=True)
    return folder


def save_model(folder: Path, model: AbstractForecaster, sidecar: dict[str, Any]) -> None:
    """Write `model.eqx` then `model.json` (atomically each; the JSON marks completion)."""
    atomic_write(folder / MODEL_FILE, lambda f: eqx.tree_serialise_leaves(f, model))
    content = {"format": FORMAT, "diffdyn_version": __version__, **sidecar}
    write_json(folder / SIDECAR, content)


def read_sidecar(folder: str | os.PathLike) -> dict[str, Any]:
    """The sidecar of a model folder, checked for completeness and compatibility."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"no model folder {folder}; train one with `diffdyn train`.")
    path = folder / SIDECAR
    if not path.exists():
        hint = (
            " (its training was interrupted: continue it with --resume)"
            if (folder / RESUME).exists()
            else ""
        )
        raise CheckpointError(f"{folder} holds no finished model: {SIDECAR} is missing{hint}.")
    try:
        sidecar = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is corrupt ({error}); retrain the model.") from None
    if not isinstance(sidecar, dict) or "model" not in sidecar:
        raise CheckpointError(f"{path} is not a diffdyn model description; retrain the model.")
    if sidecar.get("format") != FORMAT:
        raise CheckpointError(
            f"{folder} was written in checkpoint format {sidecar.get('format')!r} (diffdyn "
            f"{sidecar.get('diffdyn_version', '?')}); this diffdyn {__version__} reads format "
            f"{FORMAT}: retrain the model."
        )
    return sidecar


def template_model(sidecar: dict[str, Any]) -> AbstractForecaster:
    """An untrained model of the sidecar's kind and shape, to read arrays into."""
    try:
        return build_model(
            sidecar["model"],
            int(sidecar["dim"]),
            int(sidecar["exog_dim"]),
            key=jax.random.key(0),
            **sidecar["hyperparameters"],
        )
    except KeyError as error:
        raise CheckpointError(f"the model description lacks {error}; retrain the model.") from None


def load_model(folder: str | os.PathLike) -> tuple[AbstractForecaster, dict[str, Any]]:
    """Load a trained model and its sidecar from a model folder.

    **Example:** `model, sidecar = load_model("runs/lstm")`
    """
    folder = Path(folder)
    sidecar = read_sidecar(folder)
    path = folder / MODEL_FILE
    if not path.exists():
        raise CheckpointError(f"{path} is missing; retrain the model.")
    return _deserialise(path, template_model(sidecar)), sidecar


def _deserialise(path: Path, like):
    try:
        with open(path, "rb") as f:
            out = eqx.tree_deserialise_leaves(f, like)
            if f.read(1):
                raise ValueError("trailing bytes")
        return out
    except Exception as error:  # numpy/equinox raise several kinds on bad bytes
        raise CheckpointError(
            f"{path} is truncated or does not match its description ({type(error).__name__}); "
            "retrain the model."
        ) from None


def save_train_state(folder: Path, state, sidecar: dict[str, Any]) -> None:
    """Write the resumable training state (arrays, then JSON)."""
    resume = folder / RESUME
    resume.mkdir(exist_ok=True)
    arrays = (state.model, state.best_model, state.opt_state)
    atomic_write(resume / "state.eqx", lambda f: eqx.tree_serialise_leaves(f, arrays))
    write_json(resume / "state.json", {"progress": state.progress(), "sidecar": sidecar})


def load_train_state(folder: Path, fresh_state) -> tuple[Any, dict[str, Any]]:
    """Read a training state into `fresh_state` (a `TrainState` built like the original)."""
    resume = folder / RESUME
    try:
        stored = json.loads((resume / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"the training state in {resume} is unreadable ({error}).") from None
    like = (fresh_state.model, fresh_state.best_model, fresh_state.opt_state)
    model, best, opt_state = _deserialise(resume / "state.eqx", like)
    fresh_state.model, fresh_state.best_model, fresh_state.opt_state = model, best, opt_state
    fresh_state.restore_progress(stored["progress"])
    return fresh_state, stored["sidecar"]


def clear_train_state(folder: Path) -> None:
    shutil.rmtree(folder / RESUME, ignore_errors=True)
