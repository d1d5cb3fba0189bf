"""`sampling_report`: is a series sampled at a regular step, and where are its gaps?"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Array, Float

from ..errors import DataError

# A step counts as a gap when it is longer than this many median steps.
GAP_FACTOR = 1.5


@dataclasses.dataclass(frozen=True)
class SamplingReport:
    """How a series is sampled in time.

    **Arguments:**

    - `regular`: whether every step equals the median step (to a relative tolerance).
    - `dt`: the step: the mean step when sampling is regular, else the median step; rounded
        to 12 significant digits (6 for float32 times) to drop floating-point noise.
    - `gaps`: for every step longer than 1.5 median steps, `(row, t_before, t_after)` where
        `row` is the index of the first sample after the gap.
    """

    regular: bool
    dt: float
    gaps: tuple[tuple[int, float, float], ...] = ()

    def __str__(self) -> str:
        if self.regular:
            return f"regular sampling: step {self.dt:g}"
        if not self.gaps:
            return f"irregular sampling: median step {self.dt:g}, no gaps"
        row, before, after = max(self.gaps, key=lambda gap: gap[2] - gap[1])
        count = f"{len(self.gaps)} gap" + ("s" if len(self.gaps) > 1 else "")
        return (
            f"irregular sampling: median step {self.dt:g}, {count} "
            f"(largest {after - before:g} at t={before:g})"
        )


def sampling_report(
    times: Float[Array, " time"] | np.ndarray, *, rtol: float = 1e-6
) -> SamplingReport:
    """Describe the sampling of strictly increasing `times`: regular or not, and its gaps.

    **Arguments:**

    - `times`: the sampling times, shape `[T]` with `T >= 2`, strictly increasing.
    - `rtol`: steps within `rtol × median step` of the median, or within the float resolution
        of `times`, count as equal. Times that are regular only up to float32 rounding (as
        float32 times of a long simulation are) count as regular too, with `dt` rounded to
        float32 precision.

    **Returns:** a `SamplingReport`; `str(report)` is a one-line summary.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.data import sampling_report

    report = sampling_report(np.array([0.0, 0.1, 0.2, 0.8, 0.9]))
    report.regular, report.dt, report.gaps  # (False, 0.1, ((3, 0.2, 0.8),))
    ```
    """
    given = np.asarray(times)
    dtype = given.dtype if np.issubdtype(given.dtype, np.floating) else np.dtype(np.float64)
    t = given.astype(np.float64)
    if t.ndim != 1 or t.shape[0] < 2:
        raise DataError(f"sampling needs a 1-D array of at least 2 times; got shape {t.shape}.")
    steps = np.diff(t)
    if not np.all(np.isfinite(t)) or not np.all(steps > 0):
        raise DataError("sampling times must be finite and strictly increasing; sort them first.")
    median = float(np.median(steps))
    largest = np.abs(t).max()
    deviation = float(np.abs(steps - median).max())
    regular = deviation <= rtol * median + float(np.spacing(largest.astype(dtype)))
    digits = min(12, np.finfo(dtype).precision)
    single = np.finfo(np.float32)
    if not regular and np.finfo(dtype).precision > single.precision:
        # diffdyn computes in float32 by default, so times often carry float32 rounding; up
        # to 1% of a step it is rounding, not irregular sampling.
        regular = deviation <= rtol * median + min(
            float(np.spacing(largest.astype(np.float32))), 0.01 * median
        )
        digits = single.precision
    gap_rows = np.flatnonzero(steps > GAP_FACTOR * median) + 1
    gaps = tuple((int(i), float(t[i - 1]), float(t[i])) for i in gap_rows)
    # For regular sampling the mean step, free of the rounding in single steps, is the step.
    step = (t[-1] - t[0]) / (t.shape[0] - 1) if regular else median
    return SamplingReport(regular=regular, dt=float(f"{step:.{digits}g}"), gaps=gaps)


# What a command does with an irregularly sampled file (`--irregular`).
IRREGULAR = ("refuse", "resample", "proceed")


def check_irregular(policy: str) -> str:
    """`policy` if it is one of `IRREGULAR`, else `DataError` naming the choices."""
    if policy not in IRREGULAR:
        raise DataError(f"--irregular must be one of {', '.join(IRREGULAR)}; got {policy!r}.")
    return policy


def regularise(series, policy: str = "refuse", *, name: str = "the series"):
    """A regularly sampled version of `series` (a `Series`), following `policy`.

    A regular series is returned as it is. Otherwise: `"refuse"` raises `DataError` with the
    sampling report and the two ways on; `"resample"` interpolates linearly onto the median
    step (`resample`); `"proceed"` keeps the rows as they are and treats them as equally
    spaced at the median step (a gap then counts as one step), noted in the metadata.
    """
    check_irregular(policy)
    if series.dt is not None:
        return series
    report = sampling_report(np.asarray(series.times))
    if policy == "refuse":
        raise DataError(
            f"{name} has {report}; the models assume a regular step: pass --irregular "
            f"resample (interpolate linearly onto step {report.dt:g}) or --irregular proceed "
            "(treat the rows as equally spaced)."
        )
    if policy == "resample":
        return resample(series, report.dt)
    metadata = {**series.metadata, "irregular": f"{report}; rows treated as equally spaced"}
    return series.replace(dt=report.dt, metadata=metadata)


def resample(series, dt: float):
    """`series` linearly interpolated onto `t0, t0 + dt, …` up to its last time."""
    times = np.asarray(series.times, np.float64)
    count = int(np.floor((times[-1] - times[0]) / dt + 1e-9)) + 1
    grid = times[0] + dt * np.arange(count)

    def interpolate(values):
        values = np.asarray(values, np.float64)
        return np.stack([np.interp(grid, times, values[:, j]) for j in range(values.shape[1])], 1)

    exog = None if series.exog is None else interpolate(series.exog)
    metadata = {
        **series.metadata,
        "resampled": f"linearly onto step {dt:g} from {len(times)} rows",
    }
    return series.replace(
        values=interpolate(series.values), times=grid, exog=exog, dt=float(dt), metadata=metadata
    )
