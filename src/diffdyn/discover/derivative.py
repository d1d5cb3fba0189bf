"""Rates from sampled states: smoothed finite differences, and the weak (integral) form.

- **Finite differences.** Without smoothing, second-order central differences (one-sided
  second-order stencils at the two ends; `numpy.gradient(edge_order=2)`, the same stencils as
  PySINDy's `FiniteDifference`). With smoothing, the Savitzky–Golay derivative (Savitzky &
  Golay 1964, Anal. Chem. 36(8)): a quintic fitted by least squares to each window of
  `window` samples, differentiated at the window's centre — smoothing and differencing in one
  convolution; the first and last half-windows take the derivative of the first and last
  window's quintic at their own positions. The window can be chosen from the data by
  leave-one-out cross-validation of the smoother (Craven & Wahba 1979, Numer. Math. 31: the
  smallest prediction error of each sample from its neighbours).
- **Weak form** (Messenger & Bortz 2021, "Weak SINDy for ODEs", J. Comput. Phys. 443, eqs.
  2.3–2.5). For test functions φ_k supported on [a_k, b_k] and vanishing at both ends,
  integrating by parts gives ∫ φ_k ẋ dt = −∫ φ̇_k x dt, so the regression
  −∫ φ̇_k x dt = (∫ φ_k Θ(x) dt) ξ needs no derivative of the (noisy) data. The φ_k are
  translates of φ(u) = (1 − u²)^p on u ∈ [−1, 1] (their eq. 3.1 with p = q), the integrals
  the trapezoidal rule, which is spectrally accurate here because φ and its first p − 1
  derivatives vanish at the ends.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import DataError

# Savitzky–Golay: quintics. A centre derivative is the same for orders 2k − 1 and 2k; measured
# on Lorenz-63, Rössler and Lotka–Volterra, clean and noisy, quintics over the window chosen by
# cross-validation gave smaller rate errors than cubics over theirs (e.g. 0.3 % against 1 %
# on Lotka–Volterra at dt = 0.1, 1.1 % against 2 % on Lorenz-63 with 1 % noise).
POLYORDER = 5
MIN_WINDOW = 7
# Leave-one-out scoring of a window uses at most this many rows (the middle of the series):
# enough to rank windows, and bounded time on long series.
SCORED_ROWS = 100_000
# Weak form: φ(u) = (1 − u²)^p, and test functions centred every support / TEST_SPACING.
TEST_POWER = 8
TEST_SPACING = 4
MIN_SUPPORT = 4  # the smallest half-width, in samples


def central_differences(values: np.ndarray, dt: float) -> np.ndarray:
    """dx/dt by second-order central differences (second-order one-sided at the ends).

    **Arguments:** `values` `[N, d]` with N ≥ 3, `dt` the sampling step.

    **Returns:** `[N, d]`.
    """
    return np.gradient(values, dt, axis=0, edge_order=2)


def _savitzky_golay_rows(half: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares polynomial fit (degree `POLYORDER`) on the window u = i / half, i = −half
    … half: the matrix mapping a window to the coefficients, `[POLYORDER + 1, window]`, and
    the positions u."""
    u = np.arange(-half, half + 1) / half
    vandermonde = u[:, None] ** np.arange(POLYORDER + 1)[None, :]
    return np.linalg.pinv(vandermonde), u


def savitzky_golay_derivative(values: np.ndarray, dt: float, window: int) -> np.ndarray:
    """dx/dt from a quintic least-squares fit over each `window` (odd, ≥ 7, ≤ N) samples.

    **Arguments:** `values` `[N, d]`, `dt` the sampling step, `window` the samples per fit.

    **Returns:** `[N, d]`.
    """
    half = window // 2
    fit, u = _savitzky_golay_rows(half)
    n = values.shape[0]
    out = np.empty_like(values)
    centre = fit[1] / (half * dt)  # d/dt of c0 + c1 u + … at u = 0, u = (t − t_i) / (half dt)
    for j in range(values.shape[1]):
        out[half : n - half, j] = np.correlate(values[:, j], centre, mode="valid")
    # d/du of the polynomial at each position u of the window
    slope = np.arange(1, POLYORDER + 1)[None, :] * u[:, None] ** np.arange(POLYORDER)[None, :]
    edge = slope @ fit[1:] / (half * dt)  # [window, window]
    out[:half] = edge[:half] @ values[:window]
    out[n - half :] = edge[half + 1 :] @ values[n - window :]
    return out


def candidate_windows(n: int) -> list[int]:
    """Odd windows from `MIN_WINDOW` up to a fifth of the series (at most 401), ≈ 1.3× apart."""
    largest = min(401, max(MIN_WINDOW, n // 5))
    out, w = [], MIN_WINDOW
    while w <= largest:
        out.append(w)
        w = max(w + 2, int(round(w * 1.3)) | 1)
    return out


def leave_one_out_error(values: np.ndarray, window: int) -> float:
    """The mean squared error of predicting each sample from the polynomial fitted to its
    window without it, each variable scaled by its variance, summed over variables (Craven & Wahba
    1979: for a linear smoother with weight h on the sample itself, the leave-one-out
    residual is (x − x̂) / (1 − h)). Long series are scored on their middle `SCORED_ROWS`."""
    n = values.shape[0]
    if n > SCORED_ROWS:
        start = (n - SCORED_ROWS) // 2
        values = values[start : start + SCORED_ROWS]
    half = window // 2
    weights = _savitzky_golay_rows(half)[0][0]  # the polynomial's value at the centre
    total = 0.0
    for column in values.T:
        smoothed = np.correlate(column, weights, mode="valid")
        residual = (column[half : column.size - half] - smoothed) / (1.0 - weights[half])
        variance = np.var(column)
        total += float(np.mean(residual**2) / (variance if variance > 0 else 1.0))
    return total


def choose_window(values: np.ndarray) -> int:
    """The Savitzky–Golay window with the smallest leave-one-out error (`candidate_windows`)."""
    windows = candidate_windows(values.shape[0])
    errors = [leave_one_out_error(values, w) for w in windows]
    return windows[int(np.argmin(errors))]


def finite_difference_rates(
    values: np.ndarray, dt: float, smoothing: int | str | None
) -> tuple[np.ndarray, int | None]:
    """dx/dt `[N, d]` and the window used (`None`: plain central differences).

    `smoothing`: `"auto"` (the window from `choose_window`; plain central differences when
    the series is too short for the smallest window), `None` (plain central differences) or
    an odd window of at least `MIN_WINDOW` samples.
    """
    n = values.shape[0]
    if n < 3:
        raise DataError(
            f"finite differences need at least 3 samples; the series has {n}. Give a longer "
            "series."
        )
    if smoothing == "auto":
        smoothing = choose_window(values) if n >= 5 * MIN_WINDOW else None
    if smoothing is None:
        return central_differences(values, dt), None
    window = int(smoothing)
    if window > n:
        raise DataError(
            f"the smoothing window ({window} samples) is longer than the series ({n} samples); "
            "give a smaller --smoothing or a longer series."
        )
    return savitzky_golay_derivative(values, dt, window), window


def dominant_period(values: np.ndarray, dt: float) -> float:
    """The period of the strongest Fourier component of the standardised series (the mean
    removed, powers summed over variables), ignoring components with fewer than 2 cycles."""
    n = values.shape[0]
    scale = np.std(values, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    spectrum = np.abs(np.fft.rfft((values - values.mean(axis=0)) / scale, axis=0)) ** 2
    power = spectrum.sum(axis=1)
    if power.shape[0] <= 3:
        return n * dt
    k = 2 + int(np.argmax(power[2:]))
    return n * dt / k


def choose_support(values: np.ndarray, dt: float) -> int:
    """The default half-width of the test functions, in samples: a quarter of the dominant
    period (so each support spans half a cycle), within [4, (N − 1) / 4]."""
    n = values.shape[0]
    wanted = int(round(dominant_period(values, dt) / (4 * dt)))
    return max(MIN_SUPPORT, min(wanted, (n - 1) // 4))


def weak_form(
    values: np.ndarray, features: np.ndarray, dt: float, support: int, *, rows_needed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The weak-form regression: `(G, b)` with G_kj = ∫ φ_k θ_j dt and b_k = −∫ φ̇_k x dt.

    **Arguments:**

    - `values`: the states `[N, d]`; `features`: Θ(states) `[N, P]`; `dt`: the step.
    - `support`: the half-width m of each test function in samples (support 2m + 1 samples).
    - `rows_needed`: the least number of test functions wanted (at least the number of
      terms): the centres are `m / 4` samples apart, closer when that gives too few.

    **Returns:** `G` `[K, P]`, `b` `[K, d]`, test functions in time order. Each φ_k is scaled
    so that ∫ φ_k dt = 1: the rows are weighted averages, on the scale of the data.
    """
    n = values.shape[0]
    width = 2 * support + 1
    if n < width:
        raise DataError(
            f"the weak form's test functions span {width} samples but the series has {n}; "
            "give a longer series or a smaller --support."
        )
    u = np.linspace(-1.0, 1.0, width)
    phi = (1.0 - u**2) ** TEST_POWER
    dphi = -2.0 * TEST_POWER * u * (1.0 - u**2) ** (TEST_POWER - 1) / (support * dt)
    area = phi.sum() * dt  # the trapezoidal rule: φ vanishes at both ends
    phi, dphi = phi * dt / area, dphi * dt / area
    spacing = max(1, support // TEST_SPACING)
    available = n - width + 1
    if math.ceil(available / spacing) < rows_needed:
        spacing = max(1, available // max(rows_needed, 1))
    starts = np.arange(0, available, spacing)
    gram = sliding_window_view(features, width, axis=0)[starts] @ phi  # [K, P]
    rhs = -(sliding_window_view(values, width, axis=0)[starts] @ dphi)  # [K, d]
    return gram, rhs
