"""The figure of an identification: the data beside the fitted model's trajectory."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..data.series import Series
from ..plot import check_figure_path, format_parameters, save_figure
from .result import Identification

MAX_SEGMENT_LINES = 60  # above this many segments their boundaries would hide the data


def plot_identification(
    result: Identification,
    series: Series,
    path: str | os.PathLike | None = None,
    *,
    force: bool = False,
) -> Figure:
    """Draw each state variable: the data (dots, observed variables) and the fitted model
    (a line, segment by segment), with the segments' boundaries.

    **Arguments:**

    - `result`: what `identify` returned for `series`.
    - `series`: the data it was fitted to.
    - `path`: where to save the figure (format from the suffix), or `None` to only return it.
    - `force`: replace an existing file.

    **Returns:** the `matplotlib.figure.Figure`.

    **Example:** `plot_identification(result, data, "fit.png")`
    """
    if path is not None:
        check_figure_path(path, force=force)
    variables = list(result.trajectory.variables)
    figure = Figure(figsize=(9.0, 1.9 * len(variables) + 0.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(variables), 1, sharex=True, squeeze=False)[:, 0]
    times = np.asarray(result.trajectory.times)
    fitted = np.asarray(result.trajectory.values)
    starts = np.searchsorted(times, np.asarray(result.segment_times))
    for ax, name, column in zip(axes, variables, fitted.T, strict=True):
        if name in series.variables:
            data = np.asarray(series.values)[:, list(series.variables).index(name)]
            ax.plot(times, data, ".", ms=2.5, color="0.55", label="data")
        for k, begin in enumerate(starts):
            end = starts[k + 1] + 1 if k + 1 < len(starts) else len(times)
            ax.plot(times[begin:end], column[begin:end], color="C0", lw=1.2,
                    label="fitted" if k == 0 else None)  # fmt: skip
        if 1 < len(starts) <= MAX_SEGMENT_LINES:
            for t in times[starts[1:]]:
                ax.axvline(t, color="0.85", lw=0.6, zorder=0)
        ax.set_ylabel(name + ("" if name in result.observed else " (latent)"))
    axes[0].legend(loc="upper right", fontsize=8, frameon=False)
    axes[-1].set_xlabel("time")
    shooting = "single shooting" if result.segments == 1 else f"{result.segments} segments"
    fitted = [format_parameters(result.fitted)] if result.fitted else []
    fitted += [f"{name} ({weights} weights)" for name, weights in result.networks.items()]
    figure.suptitle(
        f"{result.trajectory.metadata.get('system', '')}: {' '.join(fitted)} ({shooting})"
    )
    if path is not None:
        save_figure(figure, path, force=force)
    return figure
