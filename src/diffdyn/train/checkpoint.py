"""Checkpoints: `eqx.tree_serialise_leaves` for arrays + a JSON sidecar, written atomically.

A model folder holds:

- `model.eqx`: the trained model's arrays;
- `model.json`: model name, hyperparameters, training options, scaler, data schema, diffdyn
  version and checkpoint format — written last, so its presence means the folder is complete;
- `resume/state.eqx` + `resume/state.json`: the training state after the last validation
  (model, best model, optimiser state, counters; written by `train.loop`), kept while
  training can still continue.

Any other module (a system with learnable fields, a task network, a controller) is saved with
`save_module(path, module, Recipe(builder, kwargs))`: the recipe names the builder, so loading
needs no registry.

Loading never runs code from the file (no pickle): the arrays are read into a model built from
the sidecar's name and hyperparameters.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import math
import os
import shutil
import sys
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


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to rebuild a module: a builder `"package.module:callable"` and its JSON arguments.

    `build()` imports the builder only from diffdyn itself or from a module already imported
    (a user's own code, imported by the user), so a file can never make diffdyn import code.

    **Example:** `Recipe("diffdyn.tasks.runner:LSTMSequenceModel", [9, 8], {"hidden": 32})`
    """

    builder: str
    args: list[Any] = dataclasses.field(default_factory=list)
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"builder": self.builder, "args": list(self.args), "kwargs": dict(self.kwargs)}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Recipe:
        return cls(str(stored["builder"]), list(stored.get("args", [])),
                   dict(stored.get("kwargs", {})))  # fmt: skip

    @classmethod
    def of(cls, builder: Any, *args: Any, **kwargs: Any) -> Recipe:
        """The recipe calling `builder(*args, **kwargs)` (and `key=` when it takes one)."""
        return cls(f"{builder.__module__}:{builder.__qualname__}", list(args), kwargs)

    def build(self, key: jax.Array | None = None) -> Any:
        module_name, _, name = self.builder.partition(":")
        own = module_name.split(".")[0] == "diffdyn"
        if not own and module_name not in sys.modules:
            raise CheckpointError(
                f"the module is built by {self.builder}, which is neither part of diffdyn nor "
                f"imported; import {module_name} first (diffdyn never imports code a file names)."
            )
        try:
            target: Any = importlib.import_module(module_name)
            for part in name.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as error:
            raise CheckpointError(
                f"cannot rebuild the module with {self.builder} ({error}); it was saved by "
                "another version of the code."
            ) from None
        if not own and not (isinstance(target, type) and issubclass(target, eqx.Module)):
            raise CheckpointError(
                f"{self.builder} is neither part of diffdyn nor an Equinox module class; "
                "a saved module is rebuilt only by one of those."
            )
        kwargs = dict(self.kwargs)
        try:
            if "key" in inspect.signature(target).parameters:
                kwargs["key"] = jax.random.key(0) if key is None else key
            return target(*self.args, **kwargs)
        except (TypeError, ValueError) as error:
            raise CheckpointError(
                f"cannot rebuild the module with {self.builder} ({error}); it was saved by "
                "another version of the code."
            ) from None


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
            dt=float(sidecar.get("dt") or 1.0),
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
    return deserialise(path, template_model(sidecar)), sidecar


def deserialise(path: Path, like):
    """Read arrays saved by `eqx.tree_serialise_leaves` into `like`; `CheckpointError` on a
    truncated or mismatched file."""
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


def save_module(path: str | os.PathLike, module: Any, recipe: Recipe) -> None:
    """Save any module: its arrays to `path` (`.eqx`) and how to rebuild it to `path.json`.

    The sidecar names the builder (`"package.module:callable"`) and its JSON arguments;
    `load_module` calls it to get a template and reads the arrays into it. Nothing in the file
    is executed: the builder must live in diffdyn or in a module already imported.
    """
    path = Path(path)
    atomic_write(path, lambda f: eqx.tree_serialise_leaves(f, module))
    write_json(path.with_suffix(".json"), {"format": FORMAT, "diffdyn_version": __version__,
                                           "recipe": recipe.to_json()})  # fmt: skip


def load_module(path: str | os.PathLike) -> Any:
    """Load a module saved by `save_module`."""
    path = Path(path)
    try:
        stored = json.loads(path.with_suffix(".json").read_text())
        recipe = Recipe.from_json(stored["recipe"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(
            f"{path.with_suffix('.json')} is missing or unreadable ({type(error).__name__}); "
            "save the module again."
        ) from None
    return deserialise(path, recipe.build())


def clear_train_state(folder: Path) -> None:
    shutil.rmtree(folder / RESUME, ignore_errors=True)
