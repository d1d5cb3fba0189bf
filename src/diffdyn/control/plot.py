"""Figures of a controller: its cost curve, evaluation trajectories, and an animation of the
pendulum or cart-pole (Matplotlib's `FuncAnimation` written by `PillowWriter`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..plot import save_figure
from ..systems.cartpole import CartPole
from ..systems.pendulum import Pendulum
from .result import ControlResult
from .rollout import Rollout

MAX_FRAMES = 150


def plot_cost(result: ControlResult, path: str | os.PathLike) -> Figure:
    """The cost curve: training cost and validation cost against iterations (log scale)."""
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    ax = figure.add_subplot()
    steps = [p.iteration for p in result.cost_curve]
    ax.plot(steps, [p.cost for p in result.cost_curve], label="training batch", lw=1)
    ax.plot(steps, [p.validation_cost for p in result.cost_curve], label="validation starts",
            lw=1.5)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost")
    rate = 100 * result.evaluation.success_rate
    ax.set_title(f"{result.task} {result.system}: {result.policy_kind} policy, success "
                 f"{rate:.0f} % of {result.evaluation.episodes}", fontsize=10)  # fmt: skip
    ax.legend(fontsize=8)
    save_figure(figure, path)
    return figure


def plot_trajectories(
    runs: Rollout,
    variables: tuple[str, ...],
    controls: tuple[str, ...],
    path: str | os.PathLike,
    *,
    references=None,
    limit: float | None = None,
    episodes: int = 8,
) -> Figure:
    """States and control against time for the first `episodes` evaluation rollouts."""
    states = np.asarray(runs.states)[:episodes]
    u = np.asarray(runs.controls)[:episodes]
    times = np.asarray(runs.times)[0]
    rows = len(variables) + len(controls)
    figure = Figure(figsize=(7, 1.6 * rows + 0.5), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    for i, name in enumerate(variables):
        axes[i].plot(times, states[..., i].T, lw=0.8, alpha=0.8)
        if references is not None:
            axes[i].plot(times, np.asarray(references)[:, i], "k--", lw=1, label="target")
        axes[i].set_ylabel(name)
    for j, name in enumerate(controls):
        ax = axes[len(variables) + j]
        ax.step(times[:-1], u[..., j].T, where="post", lw=0.8, alpha=0.8)
        if limit is not None:
            for side in (-limit, limit):
                ax.axhline(side, color="k", lw=0.6, ls=":")
        ax.set_ylabel(name)
    axes[-1].set_xlabel("time")
    save_figure(figure, path)
    return figure


def can_animate(system) -> bool:
    """Whether `animate` draws this system (the pendulum and the cart-pole)."""
    return isinstance(system, Pendulum | CartPole)


def animate(system, runs: Rollout, path: str | os.PathLike, *, episode: int = 0) -> Path:
    """A GIF of one evaluation rollout of the pendulum or cart-pole (at most 150 frames)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    states = np.asarray(runs.states)[episode]
    times = np.asarray(runs.times)[episode]
    every = max(1, int(np.ceil(len(times) / MAX_FRAMES)))
    frames = list(range(0, len(times), every))
    figure = Figure(figsize=(4, 3), dpi=60)
    FigureCanvasAgg(figure)  # the writer draws through the figure's canvas
    ax = figure.add_subplot()
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if isinstance(system, CartPole):
        pole = 2 * float(system.half_length)
        span = max(2.5, float(np.abs(states[:, 0]).max()) + pole + 0.3)
        ax.set_xlim(-span, span)
        ax.set_ylim(-pole - 0.3, pole + 0.3)
        ax.axhline(0, color="0.6", lw=1)
        (cart,) = ax.plot([], [], "s", color="tab:blue", ms=14)

        def ends(s) -> tuple[tuple[float, float], tuple[float, float]]:  # θ = 0 upright
            x, theta = s[0], s[2]
            return (x, 0.0), (x + pole * np.sin(theta), pole * np.cos(theta))
    else:
        pole = float(system.length)
        ax.set_xlim(-1.3 * pole, 1.3 * pole)
        ax.set_ylim(-1.3 * pole, 1.3 * pole)
        cart = None

        def ends(s) -> tuple[tuple[float, float], tuple[float, float]]:  # θ = 0 hanging down
            return (0.0, 0.0), (pole * np.sin(s[0]), -pole * np.cos(s[0]))

    (rod,) = ax.plot([], [], "-o", color="tab:red", lw=3, ms=5)
    label = ax.text(0.02, 0.95, "", transform=ax.transAxes, va="top", fontsize=9)

    def draw(k):
        (x0, y0), (x1, y1) = ends(states[k])
        rod.set_data([x0, x1], [y0, y1])
        if cart is not None:
            cart.set_data([x0], [y0])
        label.set_text(f"t = {times[k]:.1f}")
        return (rod, label)

    path = Path(path)
    dt = float(times[1] - times[0]) * every
    animation = FuncAnimation(figure, draw, frames=frames, blit=False)
    animation.save(str(path), writer=PillowWriter(fps=max(1, round(1 / dt))))
    return path
