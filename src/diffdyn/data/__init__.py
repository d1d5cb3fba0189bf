"""Time-series data: `Series`, readers and writers, splits, scalers and windows."""

from .series import Series as Series
