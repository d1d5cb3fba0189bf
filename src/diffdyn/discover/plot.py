"""`plot_discovery`: the data beside the discovered system simulated from the same first state."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..plot import check_figure_path, save_figure
from .result import DiscoveryReport

PANELS = 6  # variables drawn, at most
# A trajectory that departs early (chaos) is drawn up to this many times its departure time.
SHOWN_DEPARTURES = 4


def plot_discovery(
    report: DiscoveryReport, path: str | os.PathLike | None = None, *, force: bool = False
) -> Figure:
    """One panel per variable (the first `PANELS`): the data in grey, the discovered system
    in colour (dashed), a dotted line where it departs (NRMSE > ε) and, if it does, where it
    blew up. A system that departs early is drawn up to `SHOWN_DEPARTURES` times that time.

    **Arguments:** `report` (from `discover_file`), `path` where to save the figure (format
    from the suffix; `None` only returns it), `force` to replace an existing file.

    **Returns:** the `matplotlib.figure.Figure`.
    """
    if path is not None:
        check_figure_path(path, force=force)
    data, reproduction = report.data, report.reproduction
    names = list(data.variables[:PANELS])
    figure = Figure(figsize=(8.0, 1.2 + 1.6 * len(names)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    times = np.asarray(data.times)
    values = np.asarray(data.values)
    departure = reproduction.departure_time
    if departure is not None and departure > 0:
        shown = times <= times[0] + SHOWN_DEPARTURES * departure
        if shown.sum() >= 2:
            times, values = times[shown], values[shown]
    dots = {"marker": ".", "ms": 3} if report.discovery.kind == "map" else {}
    simulated = reproduction.simulated
    for j, (ax, name) in enumerate(zip(axes, names)):
        ax.plot(times, values[:, j], color="tab:gray", lw=1.0, label="data", **dots)
        if simulated is not None:
            kept = np.asarray(simulated.times) <= times[-1]
            ax.plot(
                np.asarray(simulated.times)[kept],
                np.asarray(simulated.values)[kept, j],
                color="tab:orange",
                lw=1.0,
                ls="--",
                label="discovered system",
                **dots,
            )
        for at, style in (
            (reproduction.departure_time, {"color": "tab:blue", "ls": ":"}),
            (reproduction.diverged_at, {"color": "tab:red", "ls": "-."}),
        ):
            if at is not None and times[0] + at <= times[-1]:
                ax.axvline(times[0] + at, lw=0.8, **style)
        ax.set_ylabel(name)
    figure.legend(
        *axes[0].get_legend_handles_labels(),
        loc="outside lower center",
        ncols=2,
        frameon=False,
        fontsize="small",
    )
    axes[-1].set_xlabel("iteration n" if report.discovery.kind == "map" else "time")
    title = f"discovered equations simulated from the first state: {reproduction.summary()}"
    figure.suptitle(title, fontsize="small", wrap=True)
    if path is not None:
        save_figure(figure, path, force=force)
    return figure
