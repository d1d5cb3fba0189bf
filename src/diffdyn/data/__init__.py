"""Time-series data: `Series`, readers and writers, splits, scalers and windows."""

from .dysts_source import (  # dysts itself is imported only when these functions run
    DystsNotInstalledError as DystsNotInstalledError,
    check_dysts_name as check_dysts_name,
    dysts_names as dysts_names,
    dysts_series as dysts_series,
)
from .io import (
    check_series_path as check_series_path,
    read_series as read_series,
    write_series as write_series,
)
from .sampling import SamplingReport as SamplingReport, sampling_report as sampling_report
from .scale import Scaler as Scaler
from .series import Series as Series
from .split import held_out_start as held_out_start, split_series as split_series
from .window import Windows as Windows, make_windows as make_windows
