"""diffdyn: differentiable programming applied to dynamical systems."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("diffdyn")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

from .data import Series as Series  # noqa: E402  (after __version__, which checkpoints read)
from .errors import DiffdynError as DiffdynError  # noqa: E402
from .systems import get_system as get_system, simulate as simulate  # noqa: E402
from .train import Forecaster as Forecaster  # noqa: E402
