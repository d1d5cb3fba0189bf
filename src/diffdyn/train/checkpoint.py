"""Checkpoints: `eqx.tree_serialise_leaves` for arrays + a JSON sidecar, written atomically.

A model folder holds:

- `model.eqx`: the trained model's arrays;
- `model.json`: model name, hyperparameters, training options, scaler, data schema, diffdyn
  version and checkpoint format — written last, so its presence means the folder is complete;
- `resume/state.eqx` + `resume/state.json`: the training state after the last validation
  (model, best model, optimiser state, counters; written by `train.loop`), kept while
  training can still continue;
- `.lock` while a `diffdyn train` writes it (`files.folder_lock`).

A `--force` run trains beside the folder, in `.NAME.partial`, and swaps it in only when it
has a model (`training_folder`): until then the old folder stays as it was.

Any other module (a system with learnable fields, a task network, a controller) is saved with
`save_module(path, module, Recipe(builder, kwargs))`: the recipe names the builder, so loading
needs no registry.

Loading never runs code from the file (no pickle): the arrays are read into a model built from
the sidecar's name and hyperparameters, after every field of the sidecar has been checked
(`sidecar_problem`), and `model.eqx` is checked against the SHA-256 that `model.json` records.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import importlib
import inspect
import io
import json
import math
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from .. import __version__
from ..errors import DiffdynError
from ..files import LOCK_FILE, atomic_write, folder_lock
from ..models.base import AbstractForecaster
from ..models.registry import abstract_model, build_model, model_spec, resolve_hyperparameters
from .loop import signals_held

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


LOCK_WHAT = "diffdyn train"  # what a training's lock says holds the folder
PARTIAL = ".partial"  # `.NAME.partial`: a --force run's folder until it is swapped in
REPLACED = ".replaced-"  # `.NAME.replaced-XXXX`: the old folder on its way out


def partial_folder(folder: str | os.PathLike) -> Path:
    """Where a `--force` run of `folder` trains until it has a model: `.NAME.partial` beside it."""
    folder = Path(folder)
    return folder.with_name(f".{folder.name}{PARTIAL}")


def _resume_state(folder: Path) -> bool:
    from .loop import has_state

    return has_state(folder / RESUME)


def resume_folder(folder: str | os.PathLike) -> Path | None:
    """The folder holding the training state that `--resume` of `folder` continues: the
    partial folder of an interrupted `--force` run, else `folder` itself; `None` when there is
    none."""
    folder = Path(folder)
    for place in (partial_folder(folder), folder):
        if _resume_state(place):
            return place / RESUME
    return None


def _contents(folder: Path) -> list[Path]:
    """What a folder holds, but its lock and temporary files a killed write left."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name != LOCK_FILE and not p.name.endswith(".tmp")]


def _check_not_in_use(folder: Path) -> None:
    """Refuse when another live process holds `folder`'s lock (a stale one is taken over)."""
    if (folder / LOCK_FILE).exists():
        with folder_lock(folder, LOCK_WHAT):
            pass


def check_folder(folder: str | os.PathLike, *, force: bool = False, resume: bool = False) -> Path:
    """Check, changing nothing, that a model can be trained into `folder`.

    **Raises** `DiffdynError` when its parent is missing or is a file, it is a file, another
    process is training into it, it is not empty and neither `force` nor `resume` is given,
    an interrupted `--force` run waits beside it (`.NAME.partial`) and neither is given, or
    `resume` is given with no training state to continue.
    """
    folder = Path(folder)
    if folder.name in ("", ".", ".."):
        raise DiffdynError(f"{folder} is not a folder name; give one, e.g. runs/my-model.")
    parent = folder.parent
    if not parent.is_dir():
        above = next((p for p in parent.parents if p.exists()), None)
        blocker = parent if parent.exists() else above
        if blocker is not None and not blocker.is_dir():
            raise DiffdynError(f"{blocker} is a file, not a folder; give a folder to save in.")
        raise DiffdynError(f"folder {parent} does not exist; create it first.")
    if folder.exists() and not folder.is_dir():
        raise DiffdynError(f"{folder} is a file; give a folder name for the model.")
    partial = partial_folder(folder)
    for place in (folder, partial):
        if place.is_dir():
            _check_not_in_use(place)
    if resume:
        if not (_resume_state(partial) or _resume_state(folder)):
            raise CheckpointError(
                f"nothing to resume in {folder}: no unfinished training state there "
                "(it finished, or never started); train without --resume."
            )
        return folder
    if force:
        return folder
    if _contents(folder):
        raise DiffdynError(
            f"{folder} already exists; pass --force to replace it, --resume to continue "
            "its training, or choose another folder."
        )
    if _resume_state(partial):
        raise DiffdynError(
            f"an interrupted --force training of {folder} waits in {partial}; continue it with "
            "--resume, or start again with --force."
        )
    return folder


def prepare_folder(
    folder: str | os.PathLike, *, force: bool = False, resume: bool = False
) -> Path:
    """Check (`check_folder`) and create a model folder, emptying it when `force` is given.

    For saving a model made in memory (`Forecaster.save`); training goes through
    `training_folder`, which never empties a folder before the new model is there.
    """
    folder = check_folder(folder, force=force, resume=resume)
    if resume:
        return folder
    if folder.exists() and any(folder.iterdir()):
        shutil.rmtree(folder)
    folder.mkdir(exist_ok=True)
    return folder


@dataclasses.dataclass
class TrainingFolder:
    """Where `training_folder` lets a run write: `path` (the model folder itself, or
    `.NAME.partial` beside it) and whether a training state there is to be resumed."""

    path: Path
    resume: bool
    target: Path


@contextlib.contextmanager
def training_folder(
    folder: str | os.PathLike, *, force: bool = False, resume: bool = False
) -> Iterator[TrainingFolder]:
    """The folder a training writes in, locked, and put in place only when it succeeds.

    - A new folder (or an empty one) is made and trained in directly. On an error it is
      removed again (an empty folder that was there stays, emptied); on `KeyboardInterrupt`
      (Ctrl-C, SIGTERM) it is kept when it holds a training state to resume, else removed.
    - `force` with a non-empty folder trains in `.NAME.partial` beside it; only when the block
      ends normally is it swapped in for the old folder (one atomic exchange where the
      filesystem offers one, `renameat2(RENAME_EXCHANGE)` on Linux; else two renames with
      Ctrl-C and SIGTERM held off between them) and the old folder removed. On an error the
      partial folder is removed and the old folder is as it was. On `KeyboardInterrupt` the
      partial folder is kept when it holds a training state: `resume` then continues *it*
      (the old model is still in place, and is replaced when that resumed run succeeds); a
      later `force` discards it.
    - `resume` continues `.NAME.partial` when it holds a state (an interrupted `force` run),
      else the state in the folder itself, in place. Nothing is removed on an error: the
      state is the last good one.

    The model folder (and the partial one, when used) holds `folder_lock` for the whole block,
    so a second training into the same folder is refused while this one runs.
    """
    folder = check_folder(folder, force=force, resume=resume)
    partial = partial_folder(folder)
    if resume and _resume_state(partial):
        with contextlib.ExitStack() as outer:
            if folder.is_dir():
                outer.enter_context(folder_lock(folder, LOCK_WHAT))
            _remove_replaced(folder)
            with folder_lock(partial, LOCK_WHAT):  # released before the swap moves it
                _remove_temporaries(partial)
                yield TrainingFolder(partial, True, folder)
            _swap_in(partial, folder)
    elif resume:
        with folder_lock(folder, LOCK_WHAT):
            _discard(partial)  # what a --force run killed before its first checkpoint left
            _remove_temporaries(folder)
            yield TrainingFolder(folder, True, folder)
    elif force and _contents(folder):
        with folder_lock(folder, LOCK_WHAT):
            _remove_replaced(folder)
            _discard(partial)
            partial.mkdir()
            try:
                with folder_lock(partial, LOCK_WHAT):
                    yield TrainingFolder(partial, False, folder)
            except KeyboardInterrupt:
                if not _resume_state(partial):
                    _discard(partial)
                raise
            except BaseException:
                _discard(partial)
                raise
            _swap_in(partial, folder)
    else:
        created = not folder.exists()
        folder.mkdir(exist_ok=True)
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(folder_lock(folder, LOCK_WHAT))
            except BaseException:
                if created:  # unless the run holding the lock is in it already
                    with contextlib.suppress(OSError):
                        folder.rmdir()
                raise
            if _contents(folder):  # another run got here first, and finished: untouched
                raise DiffdynError(
                    f"{folder} already exists; pass --force to replace it, or choose another "
                    "folder."
                )
            _remove_replaced(folder)
            _remove_temporaries(folder)
            if force or not _resume_state(partial):
                _discard(partial)
            try:
                yield TrainingFolder(folder, False, folder)
            except BaseException as error:
                keep = isinstance(error, KeyboardInterrupt) and _resume_state(folder)
                stack.close()  # the lock released first, so that the folder can go
                if not keep:
                    _empty(folder, remove=created)
                raise


def _discard(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink(missing_ok=True)


def _empty(folder: Path, *, remove: bool) -> None:
    if remove:
        _discard(folder)
    elif folder.is_dir():
        for path in folder.iterdir():
            _discard(path)


def _remove_temporaries(folder: Path) -> None:
    """Temporary files that killed writes left in a model folder we hold the lock of."""
    for place in (folder, folder / RESUME):
        if place.is_dir():
            for leftover in place.glob(".*.tmp"):
                leftover.unlink(missing_ok=True)


def _remove_replaced(folder: Path) -> None:
    """Old folders a killed swap left behind (`.NAME.replaced-XXXX`)."""
    for old in folder.parent.glob(f".{folder.name}{REPLACED}*"):
        _discard(old)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux `renameat2(RENAME_EXCHANGE)`); whether it did."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _swap_in(new: Path, folder: Path) -> None:
    """Put the folder `new` in place of `folder` (which may not exist) and remove the old one."""
    old = folder.with_name(f".{folder.name}{REPLACED}{secrets.token_hex(4)}")
    try:
        with signals_held():
            if not folder.exists():
                os.rename(new, folder)
                return
            if _exchange(new, folder):
                os.rename(new, old)  # the old folder, now at `new`'s name
            else:
                os.rename(folder, old)
                os.rename(new, folder)
    except OSError as error:
        raise CheckpointError(
            f"could not put the new model in place of {folder} ({error.strerror or error}); "
            f"it is in {new}."
        ) from None
    _discard(old)


def save_model(folder: Path, model: AbstractForecaster, sidecar: dict[str, Any]) -> None:
    """Write `model.eqx` then `model.json` (atomically each; the JSON marks completion and
    records the SHA-256 of the arrays, so that a `model.eqx` that does not belong to it is
    told from one that does)."""
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, model)
    data = buffer.getvalue()
    atomic_write(folder / MODEL_FILE, lambda f: f.write(data))
    content = {
        "format": FORMAT,
        "diffdyn_version": __version__,
        **sidecar,
        "model_sha256": hashlib.sha256(data).hexdigest(),
    }
    write_json(folder / SIDECAR, content)


def read_sidecar(folder: str | os.PathLike) -> dict[str, Any]:
    """The sidecar of a model folder, checked for completeness and compatibility."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} is a file, not a model folder; give the folder.")
    if not folder.is_dir():
        hint = (
            "; its training was interrupted: continue it with `diffdyn train ... --resume`"
            if _resume_state(partial_folder(folder))
            else "; train one with `diffdyn train`"
        )
        raise CheckpointError(f"no model folder {folder}{hint}.")
    path = folder / SIDECAR
    if not path.exists():
        hint = (
            " (its training was interrupted: continue it with --resume)"
            if (folder / RESUME).exists()
            else ""
        )
        raise CheckpointError(f"{folder} holds no finished model: {SIDECAR} is missing{hint}.")
    try:
        sidecar = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(
            f"{path} is damaged: it is not readable JSON ({error}); retrain the model."
        ) from None
    if not isinstance(sidecar, dict) or "model" not in sidecar:
        raise CheckpointError(f"{path} is not a diffdyn model description; retrain the model.")
    if sidecar.get("format") != FORMAT:
        raise CheckpointError(
            f"{folder} was written in checkpoint format {sidecar.get('format')!r} (diffdyn "
            f"{sidecar.get('diffdyn_version', '?')}); this diffdyn {__version__} reads format "
            f"{FORMAT}: retrain the model."
        )
    problem = sidecar_problem(sidecar)
    if problem:
        raise CheckpointError(f"{path} is damaged: {problem}; retrain the model.")
    return sidecar


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_names(value: Any, length: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == length
        and all(isinstance(v, str) and v for v in value)
        and len(set(value)) == length
    )


def sidecar_problem(sidecar: dict[str, Any]) -> str:
    """What is wrong with a model description (`model.json`), in words, or `""`.

    Every field a loader reads is checked for presence, type and range, so that a damaged or
    hand-edited file is refused with what is wrong instead of failing somewhere later.
    """
    from ..data.scale import Scaler
    from .config import TrainConfig
    from .data_source import KINDS

    name = sidecar.get("model")
    if not isinstance(name, str):
        return f"model is {name!r}, not a model name"
    try:
        spec = model_spec(name)
    except DiffdynError:
        return f"it names model {name!r}, which this diffdyn does not have"
    for key in ("dim", "exog_dim", "variables", "scaler", "training", "hyperparameters", "data"):
        if key not in sidecar:
            return f"{key!r} is missing"
    dim, exog_dim = sidecar["dim"], sidecar["exog_dim"]
    if not _is_int(dim, 1):
        return f"dim is {dim!r}, not a whole number of at least 1"
    if not _is_int(exog_dim, 0):
        return f"exog_dim is {exog_dim!r}, not a whole number of at least 0"
    if not _is_names(sidecar["variables"], dim):
        return f"variables is {sidecar['variables']!r}, not {dim} distinct names"
    if not _is_names(sidecar.get("exog_variables", []), exog_dim):
        return f"exog_variables is {sidecar.get('exog_variables')!r}, not {exog_dim} names"
    dt = sidecar.get("dt")
    if dt is not None and not (_is_number(dt) and dt > 0):
        return f"dt is {dt!r}, not a positive sampling step"
    lam = sidecar.get("lyapunov_exponent")
    if lam is not None and not (_is_number(lam) and lam > 0):
        return f"lyapunov_exponent is {lam!r}, not a positive number"
    scaler = sidecar["scaler"]
    if not isinstance(scaler, dict):
        return f"scaler is {scaler!r}, not a record of mean and scale"
    try:
        mean = np.asarray(scaler.get("mean"), dtype=np.float64)
        scale = np.asarray(scaler.get("scale"), dtype=np.float64)
    except (TypeError, ValueError):
        return "the scaler's mean and scale are not lists of numbers"
    if mean.shape != (dim,) or scale.shape != (dim,):
        return f"the scaler has {mean.size} means and {scale.size} scales for {dim} variables"
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        return "the scaler's mean and scale must be finite, and every scale positive"
    try:
        Scaler.from_dict(scaler)
    except DiffdynError as error:
        return str(error).rstrip(".")
    hyper = sidecar["hyperparameters"]
    if not isinstance(hyper, dict):
        return f"hyperparameters is {hyper!r}, not a record"
    try:
        resolved = resolve_hyperparameters(name, hyper)
    except DiffdynError as error:
        return f"its hyperparameters are wrong ({str(error).rstrip('.')})"
    if set(resolved) != set(spec.defaults) or any(
        type(resolved[k]) is not type(hyper.get(k, resolved[k])) for k in resolved
    ):
        return f"its hyperparameters {hyper!r} are not those of model {name}"
    training = sidecar["training"]
    if not isinstance(training, dict):
        return f"training is {training!r}, not a record of training options"
    try:
        TrainConfig.from_options(training)
    except (DiffdynError, TypeError) as error:
        return f"its stored training configuration is wrong ({str(error).rstrip('.')})"
    data = sidecar["data"]
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        return f"data is {data!r}, not a record of the data trained on"
    rows, train_rows = data.get("rows"), data.get("train_rows")
    if not (
        isinstance(rows, int)
        and isinstance(train_rows, int)
        and _is_int(rows, 1)
        and _is_int(train_rows, 1)
        and train_rows <= rows
    ):
        return f"data rows {rows!r} and train_rows {train_rows!r} are not row counts"
    if not isinstance(data.get("fingerprint", ""), str):
        return "the data fingerprint is not text"
    for key, check, what in (
        ("seed", lambda v: _is_int(v, -(2**63)), "a whole number"),
        ("parameters", lambda v: _is_int(v, 0), "a parameter count"),
        ("train_seconds", lambda v: _is_number(v) and v >= 0, "a number of seconds"),
        ("stop_reason", lambda v: isinstance(v, str), "text"),
        ("finished", lambda v: isinstance(v, bool), "true or false"),
    ):
        if key not in sidecar:
            return f"{key!r} is missing"
        if not check(sidecar[key]):
            return f"{key} is {sidecar[key]!r}, not {what}"
    steps = sidecar.get("steps")
    if steps is not None and not _is_int(steps, 0):
        return f"steps is {steps!r}, not a step count"
    best = sidecar.get("best_val_loss")
    if best is not None and not isinstance(best, int | float):
        return f"best_val_loss is {best!r}, not a number"
    history = sidecar.get("history", [])
    fields = {"step", "loss", "val_loss", "progress", "seconds"}
    if not isinstance(history, list) or not all(
        isinstance(r, dict)
        and set(r) == fields
        and all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool))
            for v in r.values()
        )  # fmt: skip
        for r in history
    ):
        return "its training history is not a list of validation records"
    digest = sidecar.get("model_sha256")
    if digest is not None and not isinstance(digest, str):
        return "model_sha256 is not text"
    return ""


def template_model(sidecar: dict[str, Any]) -> AbstractForecaster:
    """An untrained model of the sidecar's kind and shape, to read arrays into: abstract (its
    arrays `jax.ShapeDtypeStruct`s, nothing drawn or compiled) unless it is drawn on the host."""

    def construct():
        return build_model(
            sidecar["model"],
            int(sidecar["dim"]),
            int(sidecar["exog_dim"]),
            dt=float(sidecar.get("dt") or 1.0),
            key=jax.random.key(0),
            **sidecar["hyperparameters"],
        )

    try:
        abstract = abstract_model(construct)
        return construct() if abstract is None else abstract
    except KeyError as error:
        raise CheckpointError(f"the model description lacks {error}; retrain the model.") from None
    except (DiffdynError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"the model description does not build a {sidecar.get('model')} model ({error}); "
            "retrain the model."
        ) from None


def load_model(folder: str | os.PathLike) -> tuple[AbstractForecaster, dict[str, Any]]:
    """Load a trained model and its sidecar from a model folder.

    **Example:** `model, sidecar = load_model("runs/lstm")`
    """
    folder = Path(folder)
    sidecar = read_sidecar(folder)
    path = folder / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; retrain the model.")
    digest = sidecar.get("model_sha256")
    if digest is not None:
        try:
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as error:
            raise CheckpointError(f"cannot read {path} ({error.strerror}).") from None
        if actual != digest:
            raise CheckpointError(
                f"{path} is truncated or damaged: it is not the file {SIDECAR} was written "
                "with; retrain the model."
            )
    try:
        template = template_model(sidecar)
    except CheckpointError as error:
        raise CheckpointError(f"{folder / SIDECAR} is damaged: {error}") from None
    return deserialise(path, template), sidecar


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
    """Remove the resume state of a finished training (its description first, so that an
    interrupted removal never leaves something that looks resumable)."""
    from .loop import clear_state

    clear_state(folder / RESUME)
    shutil.rmtree(folder / RESUME, ignore_errors=True)
