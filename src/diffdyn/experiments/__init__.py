"""Experiment grids: the `compare` runner, its SQLite results store and the report writer.

Only the command line imports this package; the rest of the library never does.
"""

from .compare import DEFAULT_MODELS as DEFAULT_MODELS, run_compare as run_compare
from .report import leaderboards as leaderboards, write_report as write_report
from .store import ResultsStore as ResultsStore
