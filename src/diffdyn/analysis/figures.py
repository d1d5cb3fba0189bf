"""The figures of `diffdyn analyze`: model against true spectrum, power spectra overlaid, the
model's attractor beside the truth's, and sensitivity against lag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..plot import save_figure
from .analyze import Analysis
from .sensitivity import MEMORY_FRACTION

FIGURES = {
    "spectrum": "spectrum.png",
    "power_spectra": "power_spectra.png",
    "attractor": "attractor.png",
    "sensitivity": "sensitivity.png",
}


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def spectrum_figure(result: Analysis) -> Figure:
    """The model's Lyapunov exponents beside the system's (index against λ_i)."""
    figure = _figure(6.0, 4.0)
    ax = figure.add_subplot()
    if result.spectrum is not None:
        model = result.spectrum.exponents
        index = np.arange(1, len(model) + 1)
        ax.plot(index - 0.08, model, "o", color="tab:blue", label=f"{result.model} (model)")
    if result.system_spectrum is not None:
        true = result.system_spectrum.exponents
        index = np.arange(1, len(true) + 1)
        ax.plot(index + 0.08, true, "s", mfc="none", color="k", label=f"{result.system} (true)")
    if result.spectrum is None:
        ax.text(0.5, 0.5, "no spectrum:\n" + _wrap(result.spectrum_problem or ""),
                transform=ax.transAxes, ha="center", va="center", fontsize=8)  # fmt: skip
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel("exponent index i")
    ax.set_ylabel("λ_i (per time unit)")
    ax.set_title(f"Lyapunov spectrum of {result.model}'s closed loop")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure


def _wrap(text: str, width: int = 60) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def power_spectra_figure(result: Analysis) -> Figure:
    """Per variable, the power spectrum of the model's long run over the truth's."""
    run = result.long_run
    dim = len(run.variables)
    figure = _figure(6.5, 1.9 * dim + 0.6)
    axes = figure.subplots(dim, 1, sharex=True, squeeze=False)[:, 0]
    keep = run.frequencies > 0
    for i, ax in enumerate(axes):
        ax.semilogy(run.frequencies[keep], run.true_power[keep, i], color="k", lw=1.0,
                    label="truth")  # fmt: skip
        if run.power is not None:
            distance = (run.power_spectrum_distance or [float("nan")] * dim)[i]
            ax.semilogy(run.frequencies[keep], run.power[keep, i], color="tab:blue", lw=1.0,
                        label=f"{result.model} (Hellinger {distance:.3g})")  # fmt: skip
        ax.set_ylabel(run.variables[i])
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("frequency (cycles per time unit)")
    axes[0].set_title(f"power spectra of the long run ({run.behaviour.words})", fontsize=9)
    return figure


def attractor_figure(result: Analysis) -> Figure:
    """The model's long run beside the truth: in 3-D (first three variables), in the plane
    (two), or in delay coordinates (y_t, y_{t−τ}) for one variable."""
    run = result.long_run
    figure = _figure(10.0, 4.8)
    pairs = [(run.truth, "truth", "k"), (run.run, result.model, "tab:blue")]
    dim = len(run.variables)
    finite = np.isfinite(run.run).all(axis=1)
    for j, (values, title, colour) in enumerate(pairs):
        values = values[finite] if title != "truth" else values
        if dim >= 3:
            ax = figure.add_subplot(1, 2, j + 1, projection="3d")
            ax.plot(values[:, 0], values[:, 1], values[:, 2], lw=0.3, color=colour)
            ax.set_zlabel(run.variables[2])
            ax.set_xlabel(run.variables[0])
            ax.set_ylabel(run.variables[1])
        else:
            ax = figure.add_subplot(1, 2, j + 1)
            if dim == 2:
                x, y, labels = values[:, 0], values[:, 1], run.variables
            else:
                lag = _delay(run.truth[:, 0])
                x, y = values[lag:, 0], values[:-lag, 0]
                labels = (f"{run.variables[0]}(t)", f"{run.variables[0]}(t − {lag} samples)")
            ax.plot(x, y, lw=0.3, color=colour)
            ax.set_xlabel(labels[0])
            ax.set_ylabel(labels[1])
        ax.set_title(title if title == "truth" else f"{title}: {run.behaviour.words}", fontsize=9)
    return figure


def _delay(values: np.ndarray) -> int:
    # the first lag where the autocorrelation falls below 1/e: a usual embedding delay
    x = values - values.mean()
    if not np.any(x):
        return 1
    for lag in range(1, len(x) // 4):
        if np.dot(x[lag:], x[:-lag]) / np.dot(x, x) < np.exp(-1):
            return lag
    return 1


def sensitivity_figure(result: Analysis) -> Figure:
    """S(k) = ‖∂ŷ_{t+1}/∂y_{t−k}‖ against the lag k, with 1 % of its peak marked."""
    figure = _figure(6.0, 4.0)
    ax = figure.add_subplot()
    s = result.sensitivity
    if s is not None:
        positive = s.norms > 0
        ax.semilogy(s.lags[positive], s.norms[positive], "o-", ms=3, color="tab:blue",
                    label=result.model)  # fmt: skip
        ax.axhline(MEMORY_FRACTION * s.norms.max(), color="0.5", ls="--", lw=1,
                   label="1 % of the peak")  # fmt: skip
        if s.memory is not None:
            ax.axvline(s.memory, color="tab:red", lw=0.8, label=f"memory: lag {s.memory}")
        zero = int((~positive).sum())
        if zero:
            ax.text(0.99, 0.02, f"{zero} lag(s) with sensitivity exactly 0 not drawn",
                    transform=ax.transAxes, ha="right", fontsize=7)  # fmt: skip
        ax.legend(fontsize=8)
    ax.set_xlabel("lag k (0 = the newest value of the context)")
    ax.set_ylabel("‖∂ŷ(t+1) / ∂y(t−k)‖")
    ax.set_title(f"how far back {result.model} looks (mean over {s.windows if s else 0} windows)")
    ax.grid(alpha=0.3, which="both")
    return figure


def write_figures(result: Analysis, folder: str | Path, *, force: bool = False) -> list[Path]:
    """Draw the four figures into `folder` (atomically, each); return their paths."""
    folder = Path(folder)
    drawers = {
        "spectrum": spectrum_figure,
        "power_spectra": power_spectra_figure,
        "attractor": attractor_figure,
        "sensitivity": sensitivity_figure,
    }
    written = []
    for key, file in FIGURES.items():
        if key == "sensitivity" and result.sensitivity is None:
            continue
        written.append(save_figure(drawers[key](result), folder / file, force=force))
    return written
