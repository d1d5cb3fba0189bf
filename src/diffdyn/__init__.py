"""diffdyn: differentiable programming applied to dynamical systems.

The names below (and `__version__`) are looked up on first use (PEP 562), so that
`import diffdyn` takes milliseconds: the `diffdyn` command installs its signal handlers
(`diffdyn.entry`) before JAX is imported.
"""

from importlib import import_module

_LAZY = {
    "Series": ".data",
    "DiffdynError": ".errors",
    "get_system": ".systems",
    "simulate": ".systems",
    "Forecaster": ".train",
}
# Spelled out (the keys of `_LAZY`) so that type checkers can read it.
__all__ = ["__version__", "Series", "DiffdynError", "get_system", "simulate", "Forecaster"]


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("diffdyn")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0"


# For type checkers only: at run time these names come from `__getattr__` below. A plain
# `TYPE_CHECKING = False` (not `typing`'s) keeps `import typing` out of `import diffdyn`;
# it is deleted again so that the module's names are unchanged.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .data import Series
    from .errors import DiffdynError
    from .systems import get_system, simulate
    from .train import Forecaster

    __version__ = _package_version()
del TYPE_CHECKING


def __getattr__(name: str):
    if name == "__version__":
        value = globals()["__version__"] = _package_version()
        return value
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'diffdyn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
