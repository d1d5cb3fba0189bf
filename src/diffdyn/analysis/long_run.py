"""Long-run statistics ("climate") of a closed-loop run against a long true trajectory.

A model can lose track of the truth after a few Lyapunov times and still have learned the
right attractor; these numbers say whether it has (dysts, Gilpin 2021, scores the first two):

- **power-spectrum distance**, per variable: the Hellinger distance between the two power
  spectra normalised to sum to 1 (Welch's averaged periodogram; 0 identical, 1 disjoint);
- **state-density distance**: the sliced Wasserstein-1 distance between the two clouds of
  states (Bonneel et al. 2015: the mean over random directions of the 1-D Wasserstein
  distance of the projections), in the units of the data given (standardised: σ = 1);
- **correlation dimension** of each (Grassberger & Procaccia 1983: the slope of log C(r)
  against log r, C(r) the fraction of pairs of states closer than r);
- **behaviour** in words: diverges, collapses to a fixed point, settles on a cycle, or stays
  bounded and aperiodic.

Everything here works on NumPy arrays on the host: these are statistics of finished runs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..errors import DiffdynError

BEHAVIOURS = ("diverges", "fixed point", "cycle", "bounded aperiodic")
SETTLE_FRACTION = 0.1  # the start of a run left out of every statistic (its transient)
FIXED_POINT_SPREAD = 1e-3  # tail spread, relative to the truth's, below which it is a point
CYCLE_RETURN = 0.05  # mean return distance, relative to the spread, that makes a cycle
ESCAPE_FACTOR = 10.0  # leaving the truth's range by this factor counts as diverging
SEGMENT = 1024  # samples per Welch segment (fewer for short runs)
DIRECTIONS = 64  # random projections of the sliced Wasserstein distance
DIMENSION_POINTS = 1500  # states sampled for the correlation sum


def _floats(values) -> list:
    out = []
    for v in np.asarray(values, float).ravel():
        out.append(float(v) if math.isfinite(v) else None)
    return out


def power_spectrum(
    values: np.ndarray, dt: float, segment: int = SEGMENT
) -> tuple[np.ndarray, np.ndarray]:
    """Welch's averaged periodogram of each variable: `(frequencies [F], power [F, d])`.

    Hann-windowed segments of `segment` samples (at most a quarter of the series), half
    overlapping, each with its mean removed; frequencies in cycles per time unit.
    """
    values = np.asarray(values, float)
    length = len(values)
    segment = int(min(segment, max(8, length // 4)))
    if length < segment:
        raise DiffdynError(f"a power spectrum needs at least {segment} samples; got {length}.")
    window = np.hanning(segment)
    starts = range(0, length - segment + 1, segment // 2)
    power = np.zeros((segment // 2 + 1, values.shape[1]))
    for start in starts:
        piece = values[start : start + segment]
        piece = (piece - piece.mean(axis=0)) * window[:, None]
        power += np.abs(np.fft.rfft(piece, axis=0)) ** 2
    return np.fft.rfftfreq(segment, dt), power / len(starts)


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """H(p, q) = sqrt(1 − Σ sqrt(p_i q_i)) of two non-negative vectors normalised to sum 1;
    1 when either has no mass (a constant series has no spectrum to share)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if not (p.sum() > 0 and q.sum() > 0) or not (np.isfinite(p).all() and np.isfinite(q).all()):
        return 1.0
    overlap = float(np.sum(np.sqrt((p / p.sum()) * (q / q.sum()))))
    return math.sqrt(max(0.0, 1.0 - overlap))


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, directions: int = DIRECTIONS, seed: int = 0
) -> float:
    """Sliced Wasserstein-1 distance of two clouds of points `[N, d]`, `[M, d]`.

    Mean over `directions` random unit vectors θ (a fixed seed: the same clouds give the same
    number) of W₁ of the projections, ∫|F⁻¹_a(u) − F⁻¹_b(u)| du, from 512 quantiles each.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((a.shape[1], directions))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    levels = (np.arange(512) + 0.5) / 512
    qa = np.quantile(a @ theta, levels, axis=0)
    qb = np.quantile(b @ theta, levels, axis=0)
    return float(np.mean(np.abs(qa - qb)))


def correlation_dimension(
    values: np.ndarray, points: int = DIMENSION_POINTS, theiler: int = 10
) -> float | None:
    """Grassberger–Procaccia correlation dimension of a cloud of states `[N, d]`.

    `points` states evenly spaced in time; the correlation sum C(r) over pairs more than
    `theiler` of them apart (Theiler 1986: neighbours in time are not neighbours on the
    attractor); the dimension is the least-squares slope of log C against log r over the
    scaling range C ∈ [10⁻³, 10⁻¹]. 0 for a cloud with no spread (a fixed point); `None`
    when too few pairs fall in the range.
    """
    values = np.asarray(values, float)
    index = np.unique(np.linspace(0, len(values) - 1, min(points, len(values))).astype(int))
    x = values[index]
    spread = float(np.max(np.std(x, axis=0))) if len(x) > 1 else 0.0
    if spread == 0.0:
        return 0.0
    i, j = np.triu_indices(len(x), k=theiler + 1)
    distances = np.sort(np.linalg.norm(x[i] - x[j], axis=1))
    if len(distances) < 2000:
        return None
    fractions = np.geomspace(1e-3, 1e-1, 12)
    radii = distances[(fractions * len(distances)).astype(int)]
    if not radii[0] > 0 or radii[0] <= spread * 1e-9:
        return 0.0
    slope = np.polyfit(np.log(radii), np.log(fractions), 1)[0]
    return float(slope)


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """What a long closed-loop run does, in one of `BEHAVIOURS`, with its words.

    - `kind`: `"diverges"`, `"fixed point"`, `"cycle"` or `"bounded aperiodic"`.
    - `words`: one sentence for a table.
    - `step`: for `"diverges"`, the first step (from 1) that is not finite or leaves the
      truth's range by `ESCAPE_FACTOR`; else `None`.
    - `period`: for `"cycle"`, the period in time units; else `None`.
    """

    kind: str
    words: str
    step: int | None = None
    period: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def long_run_behaviour(run: np.ndarray, truth: np.ndarray, dt: float) -> Behaviour:
    """Classify a closed-loop run `[N, d]` against the truth `[M, d]` (same units).

    In order: **diverges** (a non-finite value, or one beyond `ESCAPE_FACTOR` × the truth's
    largest distance from its mean); **fixed point** (over the last half, every variable's
    spread is below `FIXED_POINT_SPREAD` of the truth's); **cycle** (over the last half,
    shifting the run by some lag τ brings it back within `CYCLE_RETURN` of its spread on
    average; τ is the period); else **bounded aperiodic**.
    """
    run, truth = np.asarray(run, float), np.asarray(truth, float)
    centre = truth.mean(axis=0)
    reach = float(np.max(np.linalg.norm(truth - centre, axis=1)))
    with np.errstate(invalid="ignore", over="ignore"):
        distance = np.linalg.norm(run - centre, axis=1)
        bad = ~np.isfinite(distance) | (distance > ESCAPE_FACTOR * max(reach, 1e-12))
    if bad.any():
        step = int(np.argmax(bad)) + 1
        finite = np.isfinite(distance[step - 1])
        how = f"leaves {ESCAPE_FACTOR:g}× the true attractor's range" if finite else "overflows"
        return Behaviour("diverges", f"diverges: {how} at step {step}", step=step)
    tail = run[len(run) // 2 :]
    true_spread = np.std(truth, axis=0)
    spread = np.std(tail, axis=0)
    if np.all(spread <= FIXED_POINT_SPREAD * np.maximum(true_spread, 1e-12)):
        point = ", ".join(f"{v:.3g}" for v in tail[-1])
        return Behaviour("fixed point", f"collapses to a fixed point ({point})")
    period = _period(tail)
    if period is not None:
        return Behaviour(
            "cycle",
            f"settles on a cycle of period {period * dt:.4g} time units ({period} samples)",
            period=period * dt,
        )
    return Behaviour("bounded aperiodic", "stays bounded and aperiodic")


def _period(tail: np.ndarray) -> int | None:
    # D(τ) = mean_t |x_{t+τ} − x_t| / spread; a cycle returns (D ≈ 0) after D first rose.
    scale = float(np.sqrt(np.sum(np.var(tail, axis=0))))
    if scale == 0:
        return None
    lags = np.arange(1, len(tail) // 3)
    returns = np.array(
        [np.mean(np.linalg.norm(tail[lag:] - tail[:-lag], axis=1)) / scale for lag in lags]
    )
    risen = np.nonzero(returns > 0.5)[0]
    if risen.size == 0:
        return None
    later = returns[risen[0] :]
    best = int(np.argmin(later))
    if later[best] >= CYCLE_RETURN:
        return None
    return int(lags[risen[0] + best])


@dataclasses.dataclass(frozen=True, eq=False)
class LongRun:
    """Long-run statistics of a model's closed-loop run against a true trajectory.

    - `steps`: forecast steps of the model's run; `truth_steps`: samples of the truth.
    - `dt`: sampling step (time units); `lyapunov_times`: the run's length in Lyapunov times
      (`None` when λ₁ is unknown).
    - `variables`: names; all statistics are in the space given (standardised: σ = 1).
    - `behaviour`: a `Behaviour` (what the run does, in words).
    - `power_spectrum_distance`: Hellinger distance per variable (`None` for a diverged run).
    - `density_distance`: sliced Wasserstein-1 of the states (`None` for a diverged run).
    - `correlation_dimension`, `true_correlation_dimension`: Grassberger–Procaccia.
    - `frequencies`, `power`, `true_power`: the spectra, for the figure.
    - `run`, `truth`: the trajectories after their transients (kept for the figure).
    """

    steps: int
    truth_steps: int
    dt: float
    lyapunov_times: float | None
    variables: tuple[str, ...]
    behaviour: Behaviour
    power_spectrum_distance: tuple[float, ...] | None
    density_distance: float | None
    correlation_dimension: float | None
    true_correlation_dimension: float | None
    frequencies: np.ndarray
    power: np.ndarray | None
    true_power: np.ndarray
    run: np.ndarray
    truth: np.ndarray

    @property
    def mean_power_spectrum_distance(self) -> float | None:
        """The mean over variables of the Hellinger distance."""
        d = self.power_spectrum_distance
        return None if d is None else float(np.mean(d))

    def to_json(self, arrays: bool = False) -> dict[str, Any]:
        """Every number; with `arrays`, also the spectra."""
        out: dict[str, Any] = {
            "steps": self.steps,
            "truth_steps": self.truth_steps,
            "dt": self.dt,
            "lyapunov_times": self.lyapunov_times,
            "variables": list(self.variables),
            "behaviour": self.behaviour.to_json(),
            "power_spectrum_distance": (
                None
                if self.power_spectrum_distance is None
                else dict(zip(self.variables, self.power_spectrum_distance))
            ),
            "mean_power_spectrum_distance": self.mean_power_spectrum_distance,
            "density_distance": self.density_distance,
            "correlation_dimension": self.correlation_dimension,
            "true_correlation_dimension": self.true_correlation_dimension,
        }
        if arrays:
            out["frequencies"] = _floats(self.frequencies)
            out["power"] = None if self.power is None else self.power.tolist()
            out["true_power"] = self.true_power.tolist()
        return out


def long_run_statistics(
    run: np.ndarray,
    truth: np.ndarray,
    *,
    dt: float,
    variables: tuple[str, ...] | list[str] | None = None,
    lyapunov_exponent: float | None = None,
) -> LongRun:
    """Compare a long closed-loop run with a long true trajectory (same space, same `dt`).

    The first `SETTLE_FRACTION` of each is left out (the model's transient from its context,
    the truth's alike). The run diverging is a result, not an error: its distances are `None`
    and its `behaviour` says at which step.

    **Arguments:**

    - `run`: the model's closed-loop forecast `[N, d]`.
    - `truth`: a true trajectory `[M, d]`, ideally at least as long.
    - `dt`: the sampling step of both.
    - `variables`: names of the d variables (default x0, x1, ...).
    - `lyapunov_exponent`: λ₁ of the truth, to state the run's length in Lyapunov times.

    **Returns:** a `LongRun`.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.analysis import long_run_statistics

    t = np.arange(4000) * 0.05
    truth = np.stack([np.sin(t), np.cos(t)], axis=1)
    result = long_run_statistics(0.5 * truth, truth, dt=0.05)
    result.behaviour.kind  # "cycle"
    ```
    """
    run, truth = np.asarray(run, float), np.asarray(truth, float)
    if run.ndim != 2 or truth.ndim != 2 or run.shape[1] != truth.shape[1]:
        raise DiffdynError(
            f"the run and the truth must be [time, d] with the same d; got {run.shape} and "
            f"{truth.shape}."
        )
    dim = run.shape[1]
    variables = tuple(variables) if variables is not None else tuple(f"x{i}" for i in range(dim))
    if len(truth) < 64:
        raise DiffdynError(
            f"long-run statistics need a true trajectory of at least 64 samples; got "
            f"{len(truth)}: give a longer series."
        )
    steps, truth_steps = len(run), len(truth)
    lyapunov_times = steps * dt * lyapunov_exponent if lyapunov_exponent else None
    truth = truth[int(SETTLE_FRACTION * len(truth)) :]
    behaviour = long_run_behaviour(run, truth, dt)  # steps counted from the run's start
    run = run[int(SETTLE_FRACTION * len(run)) :]
    segment = min(SEGMENT, max(8, min(len(run), len(truth)) // 4))
    frequencies, true_power = power_spectrum(truth, dt, segment)
    if behaviour.kind == "diverges":
        return LongRun(
            steps, truth_steps, dt, lyapunov_times, variables, behaviour, None, None, None,
            correlation_dimension(truth), frequencies, None, true_power, run, truth,
        )  # fmt: skip
    _, power = power_spectrum(run, dt, segment)
    distances = tuple(hellinger(power[:, i], true_power[:, i]) for i in range(dim))
    return LongRun(
        steps=steps,
        truth_steps=truth_steps,
        dt=dt,
        lyapunov_times=lyapunov_times,
        variables=variables,
        behaviour=behaviour,
        power_spectrum_distance=distances,
        density_distance=sliced_wasserstein(run, truth),
        # a run classified as settling on a point has dimension 0, whatever its transient
        correlation_dimension=(
            0.0 if behaviour.kind == "fixed point" else correlation_dimension(run)
        ),
        true_correlation_dimension=correlation_dimension(truth),
        frequencies=frequencies,
        power=power,
        true_power=true_power,
        run=run,
        truth=truth,
    )
