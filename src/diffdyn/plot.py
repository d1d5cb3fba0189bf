"""Figures of a `Series` (a 3-D attractor, stacked time series, a space–time image), of a
forecast beside its history and truth, of an attention model's alignment matrix and of a
gated model's branch weights.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas, never through `pyplot`, so
plotting leaves no global state behind (no open-figure registry, no backend switch) and works
without a display.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .data import Series
from .errors import DataError
from .files import atomic_write, check_output_path

PlotKind = Literal["auto", "attractor", "timeseries", "spacetime"]
PLOT_KINDS: tuple[str, ...] = ("auto", "attractor", "timeseries", "spacetime")

# Above this many variables a series reads better as an image than as an attractor of its
# first three variables (Lorenz-96's 40 sites, a PDE's grid).
MANY_VARIABLES = 8
# A forecast figure shows this much history before the forecast, and at most this many panels.
FORECAST_HISTORY = 300
FORECAST_PANELS = 6


def choose_plot_kind(series: Series) -> str:
    """The figure `plot_series` draws for `series` when not told.

    A space–time image for PDE output (`metadata["kind"] == "pde"`) or more than
    `MANY_VARIABLES` variables, a 3-D attractor of the first three variables for 3 or more,
    stacked time series for 1 or 2.
    """
    if series.metadata.get("kind") == "pde" or series.dim > MANY_VARIABLES:
        return "spacetime"
    if series.dim >= 3:
        return "attractor"
    return "timeseries"


def format_parameters(parameters: dict[str, Any], sep: str = " ") -> str:
    """`{"sigma": 10.0, "beta": 8/3}` → `"sigma=10 beta=2.667"` (4 significant digits)."""
    parts = []
    for name, value in parameters.items():
        a = np.asarray(value)
        text = f"{a.item():.4g}" if a.ndim == 0 else f"[{a.size} values]"
        parts.append(f"{name}={text}")
    return sep.join(parts)


def check_figure_path(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Check, before any work, that a figure can be written to `path`.

    **Raises** `DataError` when the format (the suffix) is not one Matplotlib writes, the
    folder does not exist, or the file exists and `force` is false.
    """
    supported = FigureCanvasAgg.get_supported_filetypes()
    return check_output_path(path, force=force, suffixes=["." + s for s in sorted(supported)])


def save_figure(figure: Figure, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write `figure` to `path` atomically (format from the suffix); returns the path."""
    path = check_figure_path(path, force=force)
    fmt = path.suffix.lower().lstrip(".")
    return atomic_write(path, lambda file: figure.savefig(file, format=fmt, dpi=150))


def plot_series(
    series: Series,
    path: str | os.PathLike | None = None,
    *,
    kind: PlotKind = "auto",
    title: str | None = None,
    force: bool = False,
) -> Figure:
    """Draw a series the way its shape suggests, and save it when given a path.

    **Arguments:**

    - `series`: an unbatched `Series` (values `[time, dim]`).
    - `path`: where to save the figure (format from the suffix: `.png`, `.pdf`, `.svg` ...);
      `None` only returns it.
    - `kind`: `"attractor"` (3-D, first three variables), `"timeseries"` (one panel per
      variable, then the exogenous inputs), `"spacetime"` (time × variable index image), or
      `"auto"` to let `choose_plot_kind` decide.
    - `title`: default: the system name and its parameters from `series.metadata`.
    - `force`: replace an existing file at `path`.

    **Returns:** the `matplotlib.figure.Figure` (no `pyplot` state is touched).

    **Example:**

    ```python
    from diffdyn.plot import plot_series
    from diffdyn.systems import get_system, simulate

    plot_series(simulate(get_system("lorenz63"), steps=2000), "lorenz63.png")
    ```
    """
    if kind not in PLOT_KINDS:
        raise DataError(f"unknown plot kind {kind!r}; choose one of {', '.join(PLOT_KINDS)}.")
    if np.ndim(series.values) != 2:
        raise DataError(
            f"plot_series draws one trajectory (values [time, dim]); got shape "
            f"{tuple(np.shape(series.values))}: index the batch first, e.g. "
            "jax.tree_util.tree_map(lambda a: a[0], series)."
        )
    if path is not None:
        check_figure_path(path, force=force)
    if kind == "auto":
        kind = choose_plot_kind(series)  # type: ignore[assignment]
    if kind == "attractor" and series.dim < 3:
        raise DataError(f"an attractor plot needs 3 variables; this series has {series.dim}.")

    draw = {"attractor": _attractor, "timeseries": _timeseries, "spacetime": _spacetime}[kind]
    figure = draw(series)
    figure.suptitle(_title(series) if title is None else title)
    if path is not None:
        save_figure(figure, path, force=force)
    return figure


def plot_forecast(
    history: Series,
    forecast: Series,
    truth: Series | None,
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    force: bool = False,
) -> Figure:
    """Draw a forecast after the history it started from, beside the truth when known.

    One panel per variable (the first `FORECAST_PANELS`): history before the forecast starts in
    grey (as many samples as the forecast, at least 50 and at most `FORECAST_HISTORY`), the
    forecast in colour, the truth dashed; the top axis counts Lyapunov times from the start.

    **Arguments:**

    - `history`: the series the forecast continues (only samples before its start are drawn).
    - `forecast`: the forecast (`forecast_model(...).forecast`), variables as in `history`.
    - `truth`: what really followed, or `None`.
    - `path`: where to save the figure (format from the suffix); `None` only returns it.
    - `title`: default: the model and the system or file from `forecast.metadata`.
    - `force`: replace an existing file at `path`.

    **Returns:** the `matplotlib.figure.Figure`.

    **Example:**

    ```python
    from diffdyn.plot import plot_forecast
    from diffdyn.train import forecast_model, load_data

    history, _ = load_data(system="lorenz63", fresh=True)
    result = forecast_model("runs/lorenz63-lstm", history, 500)
    plot_forecast(history, result.forecast, result.truth, "forecast.png")
    ```
    """
    for name, series in (("history", history), ("forecast", forecast), ("truth", truth)):
        if series is not None and np.ndim(series.values) != 2:
            raise DataError(
                f"plot_forecast draws one trajectory; the {name} has values of shape "
                f"{tuple(np.shape(series.values))}, not [time, dim]."
            )
    if path is not None:
        check_figure_path(path, force=force)
    start = float(np.asarray(forecast.times)[0])
    before = int((np.asarray(history.times) < start).sum())
    shown = min(FORECAST_HISTORY, max(50, len(forecast)))
    past = history.slice(max(0, before - shown), before)
    names = list(forecast.variables[:FORECAST_PANELS])
    figure = _new_figure(8.0, 1.2 + 1.6 * len(names))
    axes = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    # A map's iterates are points; lines between them only guide the eye.
    dots = {"marker": ".", "ms": 3} if history.metadata.get("kind") == "map" else {}
    curves = [(past, {"color": "tab:gray", "lw": 0.8}, "history")]
    if truth is not None:
        curves.append((truth, {"color": "black", "lw": 1.0, "ls": "--"}, "truth"))
    curves.append((forecast, {"color": "tab:orange", "lw": 1.0}, "forecast"))
    for ax, name in zip(axes, names):
        for series, style, label in curves:
            if name in series.variables:
                column = np.asarray(series.values)[:, series.variables.index(name)]
                ax.plot(series.times, column, label=label, **style, **dots)
        ax.axvline(start, color="tab:gray", lw=0.6, ls=":")
        ax.set_ylabel(name)
    figure.legend(
        *axes[0].get_legend_handles_labels(),
        loc="outside lower center",
        ncols=len(curves),
        frameon=False,
        fontsize="small",
    )
    axes[-1].set_xlabel(_time_label(history))
    _lyapunov_axis(axes[0], history, origin=start)
    if title is None:
        meta = forecast.metadata
        title = f"{meta.get('model', 'model')} forecast"
        if meta.get("system"):
            title += f" of {meta['system']}"
    figure.suptitle(title)
    if path is not None:
        save_figure(figure, path, force=force)
    return figure


def plot_attention(
    weights: np.ndarray,
    path: str | os.PathLike | None = None,
    *,
    input_attention: np.ndarray | None = None,
    variable_names: list[str] | tuple[str, ...] | None = None,
    memory_attention: np.ndarray | None = None,
    block_length: int | None = None,
    title: str | None = None,
    force: bool = False,
) -> Figure:
    """Draw an attention model's alignment matrix: forecast step × context step.

    Tutorial Fig. 5 (after Bahdanau et al. 2015, Fig. 3) for time series: row `k` is forecast
    step `k` (from the top), column `i` the context sample `C - i` steps before the forecast
    start (the right edge, −1, is the most recent observation); the colour is the alignment
    weight α_ki (tutorial eq. 9), from 0 to the largest weight. With `input_attention`
    (DA-RNN, Qin et al. 2017, eq. 8), a panel shows the mean input-attention weight of
    each driving series over the encoder steps. With `memory_attention` (MTNet, Chang et al.
    2018: p_i = softmax(uᵀ m_i) over memory blocks), a panel shows forecast step × memory
    block, the oldest block on the left, each labelled by the steps it covers before the
    forecast (e.g. `−16…−9` for the newest of 8-step blocks, which sits just before the 8-step
    query window).

    **Arguments:**

    - `weights`: `[horizon, context]` alignment weights, each row summing to 1.
    - `path`: where to save the figure (format from the suffix); `None` only returns it.
    - `input_attention`: `[context, n]` input-attention weights of the `n` driving series
      (state variables, then exogenous inputs), or `None`.
    - `variable_names`: the `n` names of the driving series (default `series 1 … n`).
    - `memory_attention`: `[horizon, blocks]` weights over memory blocks, oldest first, each
      row summing to 1, or `None`.
    - `block_length`: steps per memory block (and in the query window), to label the blocks
      by their lags; `None` labels them `block 1 … n`.
    - `title`: the figure title (default: "attention").
    - `force`: replace an existing file at `path`.

    **Returns:** the `matplotlib.figure.Figure`.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.plot import plot_attention

    scores = np.random.default_rng(0).normal(size=(20, 50))
    weights = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    plot_attention(weights, "attention.png")
    ```
    """
    weights = np.asarray(weights, float)
    if weights.ndim != 2 or 0 in weights.shape:
        raise DataError(
            f"plot_attention draws a [horizon, context] alignment matrix; got shape "
            f"{weights.shape}."
        )
    if not np.all(np.isfinite(weights)):
        raise DataError("the alignment weights contain NaN or infinite values.")
    names: list[str] = []
    if input_attention is not None:
        input_attention = np.asarray(input_attention, float)
        if input_attention.ndim != 2 or not np.all(np.isfinite(input_attention)):
            raise DataError(
                "input_attention must be a finite [context, n] matrix; got shape "
                f"{input_attention.shape}."
            )
        n = input_attention.shape[1]
        names = list(variable_names or [f"series {j + 1}" for j in range(n)])
        if len(names) != n:
            raise DataError(
                f"input_attention weighs {n} driving series but {len(names)} names were given."
            )
    horizon, context = weights.shape
    if memory_attention is not None:
        memory_attention = np.asarray(memory_attention, float)
        if (
            memory_attention.ndim != 2
            or memory_attention.shape[0] != horizon
            or 0 in memory_attention.shape
            or not np.all(np.isfinite(memory_attention))
        ):
            raise DataError(
                f"memory_attention must be a finite [horizon, blocks] = [{horizon}, n] matrix; "
                f"got shape {memory_attention.shape}."
            )
        if block_length is not None and (
            block_length < 1 or (memory_attention.shape[1] + 1) * block_length > context
        ):
            raise DataError(
                f"{memory_attention.shape[1]} memory blocks of {block_length} steps and the "
                f"query window do not fit in a context of {context} steps."
            )
    if path is not None:
        check_figure_path(path, force=force)
    height = 3.0 + 3.0 * min(horizon, 100) / 100
    ratios = [3.0]
    if memory_attention is not None:
        ratios.append(2.0)
    if input_attention is not None:
        ratios.append(1.0)
        height = max(height, 1.6 + 0.16 * len(names))
    figure = _new_figure(8.0 + 4.0 * (len(ratios) - 1), height)
    panels = list(figure.subplots(1, len(ratios), width_ratios=ratios, squeeze=False)[0])
    heat = panels.pop(0)
    memory_panel = panels.pop(0) if memory_attention is not None else None
    if input_attention is not None:
        _input_attention_bars(panels.pop(0), input_attention, names)
    # Cells centred on -C … -1 (context) and 1 … H (forecast step, step 1 at the top).
    image = heat.imshow(
        weights,
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        vmin=0.0,
        vmax=max(float(weights.max()), 1e-12),
        extent=(-context - 0.5, -0.5, horizon + 0.5, 0.5),
    )
    heat.set_xticks(_integer_ticks(-context, -1, always=-1))  # −1: the most recent sample
    heat.set_yticks(_integer_ticks(1, horizon, always=1))
    heat.set_xlabel("input (context) step, samples before the forecast  (−1 = most recent)")
    heat.set_ylabel("output (forecast) step")
    colourbar = figure.colorbar(image, ax=heat)
    colourbar.set_label("attention weight α")
    if memory_panel is not None and memory_attention is not None:
        _memory_attention_heat(figure, memory_panel, memory_attention, block_length)
    figure.suptitle("attention" if title is None else title)
    if path is not None:
        save_figure(figure, path, force=force)
    return figure


def _integer_ticks(low: int, high: int, always: int) -> list[int]:
    """About ten integer ticks in `low … high`, always with `always` (an end of the range)."""
    if low >= high:
        return [always]
    ticks = [int(t) for t in MaxNLocator(nbins=10, integer=True).tick_values(low, high)]
    step = ticks[1] - ticks[0]
    # A tick crowding `always` gives way to it.
    ticks = [t for t in ticks if low <= t <= high and abs(t - always) >= 0.6 * step]
    return sorted([*ticks, always])


def memory_block_labels(blocks: int, block_length: int | None) -> list[str]:
    """Labels of `blocks` memory blocks, oldest first: the steps each covers before the
    forecast (`−16…−9`, with minus signs U+2212 as on the axes, is the newest of 8-step
    blocks, just before the 8-step query window), or `block 1 … n` without a block length."""
    if block_length is None:
        return [f"block {i + 1}" for i in range(blocks)]
    out = []
    for i in range(blocks):
        newest_lag = (blocks - i) * block_length + 1
        out.append(f"−{newest_lag + block_length - 1}…−{newest_lag}")
    return out


def _memory_attention_heat(
    figure: Figure, ax, memory_attention: np.ndarray, block_length: int | None
) -> None:
    horizon, blocks = memory_attention.shape
    image = ax.imshow(
        memory_attention,
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        vmin=0.0,
        vmax=max(float(memory_attention.max()), 1e-12),
        extent=(0.5, blocks + 0.5, horizon + 0.5, 0.5),
    )
    labels = memory_block_labels(blocks, block_length)
    shown = _integer_ticks(1, blocks, always=blocks)  # the newest block always labelled
    ax.set_xticks(shown, [labels[i - 1] for i in shown], rotation=45, ha="right")
    ax.set_yticks(_integer_ticks(1, horizon, always=1))
    ax.set_xlabel("memory block, steps before the forecast (oldest left)")
    ax.set_ylabel("output (forecast) step")
    colourbar = figure.colorbar(image, ax=ax)
    colourbar.set_label("memory attention weight p")


def _input_attention_bars(ax, input_attention: np.ndarray, names: list[str]) -> None:
    mean = input_attention.mean(axis=0)
    rows = np.arange(len(names))
    ax.barh(rows, mean, color="tab:blue")
    ax.set_yticks(rows, names, fontsize="small" if len(names) <= 20 else "x-small")
    ax.invert_yaxis()  # the first series at the top, as listed
    ax.set_xlim(0, max(float(mean.max()), 1e-12) * 1.1)
    ax.set_xlabel("mean input-attention weight")
    ax.set_title("driving series", fontsize="medium")


def plot_gates(
    gates: np.ndarray,
    path: str | os.PathLike | None = None,
    *,
    label: str = "branch",
    ponder: np.ndarray | None = None,
    forecast: np.ndarray | None = None,
    variable_names: list[str] | tuple[str, ...] | None = None,
    title: str | None = None,
    force: bool = False,
) -> Figure:
    """Draw a soft-control-flow model's gate usage over its forecast steps.

    The top panel stacks the weight of each of the K branches (tutorial §2: a soft switch's
    w_k, or a halting loop's p^n over ponder steps) per forecast step, so every column sums
    to 1. With `forecast`, a panel draws the forecast's first variable with each step's dot
    coloured by its heaviest branch (gate against state). With `ponder`, a panel shows the
    ponder steps behind each forecast step (Graves 2016's N(t)).

    **Arguments:**

    - `gates`: `[horizon, K]` branch weights, each row summing to 1.
    - `path`: where to save the figure (format from the suffix); `None` only returns it.
    - `label`: what a branch is, for the legend (`"expert"` → `expert 1 … K`).
    - `ponder`: `[horizon]` ponder steps per forecast step, or `None`.
    - `forecast`: `[horizon, d]` the forecast, or `None`.
    - `variable_names`: names of the forecast's variables (the first one is drawn).
    - `title`: the figure title (default: "gate usage").
    - `force`: replace an existing file at `path`.

    **Returns:** the `matplotlib.figure.Figure`.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.plot import plot_gates

    scores = np.random.default_rng(0).normal(size=(30, 3))
    gates = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    plot_gates(gates, "gates.png", label="expert")
    ```
    """
    gates = np.asarray(gates, float)
    if gates.ndim != 2 or 0 in gates.shape or not np.all(np.isfinite(gates)):
        raise DataError(
            f"plot_gates draws a finite [horizon, branches] matrix of weights; got shape "
            f"{gates.shape}."
        )
    horizon, count = gates.shape
    for name, extra, shape in (
        ("ponder", ponder, (horizon,)),
        ("forecast", forecast, None),
    ):
        if extra is None:
            continue
        extra = np.asarray(extra, float)
        if (
            (shape is not None and extra.shape != shape)
            or (shape is None and (extra.ndim != 2 or extra.shape[0] != horizon))
            or not np.all(np.isfinite(extra))
        ):
            raise DataError(
                f"{name} must be finite with one row per forecast step ({horizon}); got shape "
                f"{extra.shape}."
            )
    if path is not None:
        check_figure_path(path, force=force)
    panels = 1 + (forecast is not None) + (ponder is not None)
    figure = _new_figure(8.0, 2.6 * panels + 0.6)
    axes = list(figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0])
    steps = np.arange(1, horizon + 1)
    colours = [f"C{k % 10}" for k in range(count)]
    names = [f"{label} {k + 1}" for k in range(count)]
    usage = axes.pop(0)
    usage.stackplot(steps, gates.T, labels=names, colors=colours, step="mid")
    usage.set_ylim(0, 1)
    usage.set_ylabel("gate weight")
    usage.legend(loc="upper right", ncols=min(count, 6), fontsize="small", framealpha=0.9)
    if forecast is not None:
        ax = axes.pop(0)
        values = np.asarray(forecast, float)[:, 0]
        ax.plot(steps, values, color="0.6", lw=0.8)
        heaviest = gates.argmax(axis=1)
        for k in range(count):
            chosen = heaviest == k
            if chosen.any():
                ax.scatter(steps[chosen], values[chosen], s=10, color=colours[k], label=names[k])
        first = (variable_names or ["variable 1"])[0]
        ax.set_ylabel(f"forecast {first}")
        ax.legend(loc="upper right", fontsize="small", frameon=False, title="heaviest")
    if ponder is not None:
        ax = axes.pop(0)
        ax.bar(steps, np.asarray(ponder, float), color="tab:gray", width=1.0)
        ax.set_ylabel("ponder steps N")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.axes[-1].set_xlabel("forecast step")
    figure.suptitle("gate usage" if title is None else title)
    if path is not None:
        save_figure(figure, path, force=force)
    return figure


# -- the three figures -----------------------------------------------------------------------
def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _attractor(series: Series) -> Figure:
    figure = _new_figure(6.5, 6.0)
    ax = figure.add_subplot(projection="3d")
    values = np.asarray(series.values)
    ax.plot(values[:, 0], values[:, 1], values[:, 2], lw=0.5, color="tab:blue")
    ax.scatter(*values[0, :3], color="tab:red", s=12, label=_time_text(series, 0))
    ax.set_xlabel(series.variables[0])
    ax.set_ylabel(series.variables[1])
    ax.set_zlabel(series.variables[2])
    ax.legend(loc="upper left", frameon=False, fontsize="small", title="start")
    return figure


def _timeseries(series: Series) -> Figure:
    values = np.asarray(series.values)
    panels = [(name, values[:, i], "tab:blue") for i, name in enumerate(series.variables)]
    if series.exog is not None:
        exog = np.asarray(series.exog)
        panels += [
            (f"{name} (input)", exog[:, i], "tab:gray")
            for i, name in enumerate(series.exog_variables)
        ]
    figure = _new_figure(8.0, 1.2 + 1.6 * min(len(panels), 12))
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    times = np.asarray(series.times)
    marker = "." if series.metadata.get("kind") == "map" else None
    for ax, (name, column, colour) in zip(axes, panels):
        ax.plot(
            times, column, lw=0.8, color=colour, marker=marker, ms=2, ls="-" if marker else None
        )
        ax.set_ylabel(name)
    axes[-1].set_xlabel(_time_label(series))
    _lyapunov_axis(axes[0], series)
    return figure


def _spacetime(series: Series) -> Figure:
    values = np.asarray(series.values)
    times = np.asarray(series.times)
    figure = _new_figure(9.0, 4.5)
    ax = figure.add_subplot()
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    if low < 0 < high:
        # Signed fields (Kuramoto–Sivashinsky) read best on a diverging map centred on zero.
        cmap, low, high = "RdBu_r", -max(-low, high), max(-low, high)
    else:
        cmap = "viridis"
    image = ax.pcolormesh(
        times,
        np.arange(series.dim),
        values.T,
        shading="nearest",
        rasterized=True,
        cmap=cmap,
        vmin=low,
        vmax=high,
    )
    ax.set_xlabel(_time_label(series))
    first, last = series.variables[0], series.variables[-1]
    ax.set_ylabel(f"space index ({first} … {last})")
    colourbar = figure.colorbar(image, ax=ax)
    colourbar.set_label(_field_name(series.variables))
    _lyapunov_axis(ax, series)
    return figure


# -- labels ----------------------------------------------------------------------------------
def _title(series: Series) -> str:
    meta = series.metadata
    name = meta.get("system") or meta.get("source") or "series"
    parameters = meta.get("parameters")
    if parameters:
        return f"{name}  ({format_parameters(parameters, sep=', ')})"
    return str(name)


def _time_label(series: Series) -> str:
    meta = series.metadata
    if meta.get("kind") == "map":
        return "iteration n"
    if meta.get("time_unit"):
        return f"time [{meta['time_unit']}]"
    if meta.get("source") == "simulation":
        return "time t [model time units]"
    return "time"


def _time_text(series: Series, index: int) -> str:
    return f"t = {float(np.asarray(series.times)[index]):.4g}"


def _lyapunov_axis(ax, series: Series, origin: float | None = None) -> None:
    """A second time axis on top counting Lyapunov times from `origin` (default: the series'
    first sample)."""
    lyapunov_time = series.lyapunov_time
    if lyapunov_time is None or not math.isfinite(lyapunov_time):
        return
    start = float(np.asarray(series.times)[0]) if origin is None else origin
    top = ax.secondary_xaxis(
        "top",
        functions=(
            lambda t: (t - start) / lyapunov_time,
            lambda n: start + n * lyapunov_time,
        ),
    )
    since = "" if origin is None else " since the forecast start"
    top.set_xlabel(f"Lyapunov times{since} (1/λ₁ = {lyapunov_time:.3g})")


def _field_name(variables: tuple[str, ...]) -> str:
    """`("u0", "u1", ...)` → `"u"`: the name the variables share without their index."""
    stems = {name.rstrip("0123456789") for name in variables}
    if len(stems) == 1 and (stem := stems.pop()):
        return stem
    return "value"
