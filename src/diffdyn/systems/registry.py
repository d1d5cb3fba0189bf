"""The catalogue: system names → classes, and building a system from text parameters.

Wherever a system name is taken, `path/to/file.py:ClassName` names a user's own system class
instead (`system_class`, `load_system_file`): the file is run (imported) only for that explicit
syntax, never because some other text looks like a path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import math
import re
import sys
from pathlib import Path
from types import ModuleType

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from .base import AbstractSystem
from .cartpole import CartPole
from .chua import Chua
from .double_pendulum import DoublePendulum
from .duffing import Duffing
from .henon import Henon
from .ikeda import Ikeda
from .kuramoto_sivashinsky import KuramotoSivashinsky
from .logistic import Logistic
from .lorenz63 import Lorenz63
from .lorenz63_control import Lorenz63Control
from .lorenz96 import Lorenz96
from .lotka_volterra import LotkaVolterra
from .mackey_glass import MackeyGlass
from .narma import Narma10
from .pendulum import Pendulum
from .rossler import Rossler
from .van_der_pol import VanDerPol

SYSTEMS: dict[str, type[AbstractSystem]] = {
    cls.name: cls
    for cls in (
        Lorenz63,
        Rossler,
        Chua,
        Lorenz96,
        DoublePendulum,
        LotkaVolterra,
        Duffing,
        VanDerPol,
        Logistic,
        Henon,
        Ikeda,
        Narma10,
        MackeyGlass,
        KuramotoSivashinsky,
        Pendulum,
        CartPole,
        Lorenz63Control,
    )
}

_ALIASES = {"ks": "kuramoto-sivashinsky", "narma": "narma10", "lorenz": "lorenz63"}


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def register_system(cls: type[AbstractSystem]) -> type[AbstractSystem]:
    """Add a system class to the catalogue under `cls.name` (usable as a decorator)."""
    if not cls.name:
        raise DiffdynError(f"{cls.__name__} needs a class attribute `name` to be registered.")
    SYSTEMS[cls.name] = cls
    return cls


def is_file_reference(name: str) -> bool:
    """Whether `name` is a `path/to/file.py:ClassName` reference to a user's system class."""
    path, sep, _ = name.rpartition(":")
    return bool(sep) and path.endswith(".py")


def file_reference(name: str) -> str:
    """A `FILE.py:CLASS` reference with the file's absolute path, so that it names the same
    class from any working folder (the compare grid's worker processes)."""
    path, _, class_name = name.rpartition(":")
    return f"{Path(path).expanduser().resolve()}:{class_name}"


def _user_module_name(path: Path) -> str:
    # One module name per file (its absolute path's hash): a saved system's `Recipe` names it,
    # and loading the same file again in another process gives the same name.
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    return f"diffdyn_user_{stem}_{digest}"


def _import_user_file(path: Path, shown: str) -> ModuleType:
    path = path.resolve()
    name = _user_module_name(path)
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__diffdyn_stamp__", None) == stamp:
        return loaded  # the same file, unchanged: its classes stay the same objects
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DiffdynError(f"{shown} cannot be loaded as a Python file; check the path.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses (so Equinox modules) look their module up here
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise DiffdynError(
            f"running {shown} failed ({type(error).__name__}: {error}); fix the file."
        ) from None
    module.__diffdyn_stamp__ = stamp  # type: ignore[attr-defined]
    return module


def load_system_file(reference: str) -> type[AbstractSystem]:
    """The user's system class named by `"path/to/file.py:ClassName"`.

    The file is run as a module (as `import` would), once per content: loading it again while
    it is unchanged returns the same class. One-line errors (`DiffdynError`) for a missing
    file, a file that fails to run, a missing class, a class that is not a system, and an
    abstract one.

    **Example:** `cls = load_system_file("my_systems.py:Brusselator")`
    """
    shown, _, class_name = reference.rpartition(":")
    if not class_name.isidentifier():
        raise DiffdynError(
            f"{reference!r} names no class: write FILE.py:CLASS, e.g. {shown}:MySystem."
        )
    path = Path(shown).expanduser()
    if not path.is_file():
        raise DiffdynError(f"no file {shown} (in {reference!r}); check the path.")
    module = _import_user_file(path, shown)
    found = getattr(module, class_name, None)
    if found is None:
        systems = sorted(
            n
            for n, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, AbstractSystem) and not inspect.isabstract(v)
        )
        listed = f" (it defines {', '.join(systems)})" if systems else " (it defines no system)"
        raise UnknownNameError(
            f"{shown} defines no class {class_name}{listed}.{did_you_mean(class_name, systems)}"
        )
    if not (isinstance(found, type) and issubclass(found, AbstractSystem)):
        raise DiffdynError(
            f"{reference} is not a diffdyn system: {class_name} must be a class subclassing "
            "AbstractFlow, AbstractMap, AbstractDelayFlow or AbstractSemilinearPDE "
            "(from diffdyn.systems)."
        )
    if inspect.isabstract(found):
        missing = ", ".join(sorted(getattr(found, "__abstractmethods__", ())))
        raise DiffdynError(
            f"{reference} is abstract: {class_name} must define {missing or 'its methods'}."
        )
    return found


def system_class(name: str) -> type[AbstractSystem]:
    """The class registered under `name` (case, hyphens and underscores are ignored), or the
    user's class named by `path/to/file.py:ClassName` (`load_system_file`)."""
    if is_file_reference(name):
        return load_system_file(name)
    wanted = _normalise(name)
    wanted = _normalise(_ALIASES.get(wanted, wanted))
    for key, cls in SYSTEMS.items():
        if _normalise(key) == wanted:
            return cls
    raise UnknownNameError(
        f"unknown system {name!r}.{did_you_mean(name, list(SYSTEMS))} "
        "Run `diffdyn systems` to list them."
    )


def get_system(name: str, **params: float | int | str) -> AbstractSystem:
    """Build a catalogue system by name (or a user's, `path/to/file.py:ClassName`), with some
    parameters changed.

    Parameter values may be numbers or text (as typed on the command line).

    **Example:**

    ```python
    from diffdyn.systems import get_system

    lorenz = get_system("lorenz63", rho=35)
    ks = get_system("kuramoto-sivashinsky", length=35, n=128)
    ```
    """
    cls = system_class(name)
    label = cls.name or cls.__name__
    array_names = cls.parameter_names()
    structural = cls.structural_names()
    allowed = array_names + structural
    kwargs: dict[str, float | int] = {}
    for key, raw in params.items():
        if key not in allowed:
            raise UnknownNameError(
                f"{label} has no parameter {key!r} (it has {', '.join(allowed)})."
                f"{did_you_mean(key, allowed)}"
            )
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise DiffdynError(
                f"parameter {key} of {label} must be a number; got {raw!r}."
            ) from None
        if not math.isfinite(value):
            raise DiffdynError(f"parameter {key} of {label} must be finite; got {raw!r}.")
        if key in structural and isinstance(cls.__dataclass_fields__[key].default, int):
            if value != int(value):
                raise DiffdynError(
                    f"parameter {key} of {label} sets a size and must be an integer; got {raw!r}."
                )
            kwargs[key] = int(value)
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise DiffdynError(str(exc)) from None
