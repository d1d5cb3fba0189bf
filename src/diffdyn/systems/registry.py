"""The catalogue: system names → classes, and building a system from text parameters."""

from __future__ import annotations

import math

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from .base import AbstractSystem
from .double_pendulum import DoublePendulum
from .duffing import Duffing
from .henon import Henon
from .ikeda import Ikeda
from .kuramoto_sivashinsky import KuramotoSivashinsky
from .logistic import Logistic
from .lorenz63 import Lorenz63
from .lorenz96 import Lorenz96
from .lotka_volterra import LotkaVolterra
from .mackey_glass import MackeyGlass
from .narma import Narma10
from .rossler import Rossler
from .van_der_pol import VanDerPol

SYSTEMS: dict[str, type[AbstractSystem]] = {
    cls.name: cls
    for cls in (
        Lorenz63,
        Rossler,
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


def system_class(name: str) -> type[AbstractSystem]:
    """The class registered under `name` (case, hyphens and underscores are ignored)."""
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
    """Build a catalogue system by name, with some parameters changed.

    Parameter values may be numbers or text (as typed on the command line).

    **Example:**

    ```python
    from diffdyn.systems import get_system

    lorenz = get_system("lorenz63", rho=35)
    ks = get_system("kuramoto-sivashinsky", length=35, n=128)
    ```
    """
    cls = system_class(name)
    array_names = cls.parameter_names()
    structural = cls.structural_names()
    allowed = array_names + structural
    kwargs: dict[str, float | int] = {}
    for key, raw in params.items():
        if key not in allowed:
            raise UnknownNameError(
                f"{cls.name} has no parameter {key!r} (it has {', '.join(allowed)})."
                f"{did_you_mean(key, allowed)}"
            )
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise DiffdynError(
                f"parameter {key} of {cls.name} must be a number; got {raw!r}."
            ) from None
        if not math.isfinite(value):
            raise DiffdynError(f"parameter {key} of {cls.name} must be finite; got {raw!r}.")
        if key in structural and isinstance(cls.__dataclass_fields__[key].default, int):
            if value != int(value):
                raise DiffdynError(
                    f"parameter {key} of {cls.name} sets a size and must be an integer; "
                    f"got {raw!r}."
                )
            kwargs[key] = int(value)
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise DiffdynError(str(exc)) from None
