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
__all__ = ["__version__", *_LAZY]


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("diffdyn")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0"


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
