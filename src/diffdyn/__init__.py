"""diffdyn: differentiable programming applied to dynamical systems."""

from importlib.metadata import PackageNotFoundError, version as _version

from .data import Series as Series
from .errors import DiffdynError as DiffdynError
from .systems import get_system as get_system, simulate as simulate

try:
    __version__ = _version("diffdyn")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
