"""Comparing models: the `compare` grid runner (`grid`), its SQLite results store (`store`)
and the report writer (`report`).

Only the command line imports this package; the rest of the library never does. (Study
scripts live in the top-level `experiments/` folder, outside the library.)
"""

from .grid import (
    DEFAULT_MODELS as DEFAULT_MODELS,
    CompareSummary as CompareSummary,
    run_compare as run_compare,
)
from .report import (
    Leaderboard as Leaderboard,
    Report as Report,
    leaderboards as leaderboards,
    read_leaderboards as read_leaderboards,
    write_report as write_report,
)
from .store import ResultsStore as ResultsStore, export_csv as export_csv
