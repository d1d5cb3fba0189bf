"""Forecast metrics, with the definitions of `../shared/ANCHORS.md`.

- **NRMSE(t)** = sqrt(mean_i((ŷ_i(t) − y_i(t))² / σ_i²)), σ_i the per-variable standard
  deviation of the *training* data (Vlachas et al. 2020).
- **Valid prediction time (VPT)** = the lead time before NRMSE(t) first exceeds a threshold ε
  (default 0.5), in Lyapunov times λ₁·t when λ₁ is known, else in time units.
- **sMAPE** on the 0–200 scale (the dysts benchmark tables, darts' definition).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from jaxtyping import ArrayLike, Float

from .errors import DiffdynError


def _pair(forecast, truth) -> tuple[np.ndarray, np.ndarray]:
    forecast, truth = np.asarray(forecast, dtype=float), np.asarray(truth, dtype=float)
    if forecast.shape != truth.shape:
        raise DiffdynError(
            f"forecast and truth must have the same shape; got {forecast.shape} and {truth.shape}."
        )
    if forecast.ndim < 2:
        raise DiffdynError(f"expected arrays shaped [..., time, dim]; got {forecast.shape}.")
    return forecast, truth


def mse(forecast: Float[ArrayLike, "... time dim"], truth: Float[ArrayLike, "... time dim"]):
    """Mean squared error over every axis.

    **Example:** `mse([[1.0], [2.0]], [[1.0], [4.0]])  # 2.0`
    """
    forecast, truth = _pair(forecast, truth)
    return float(np.mean((forecast - truth) ** 2))


def rmse(forecast: Float[ArrayLike, "... time dim"], truth: Float[ArrayLike, "... time dim"]):
    """Root mean squared error over every axis."""
    return float(np.sqrt(mse(forecast, truth)))


def nrmse(
    forecast: Float[ArrayLike, "... time dim"],
    truth: Float[ArrayLike, "... time dim"],
    train_std: Float[ArrayLike, " dim"],
) -> np.ndarray:
    """NRMSE(t) = sqrt(mean_i((ŷ_i(t) − y_i(t))² / σ_i²)) at every lead time.

    **Arguments:**

    - `forecast`, `truth`: `[..., horizon, d]`.
    - `train_std`: σ_i, the per-variable standard deviation of the **training** data.

    **Returns:** NRMSE with the variable axis reduced: `[..., horizon]`.

    **Example:** `nrmse([[2.0, 0.0]], [[0.0, 0.0]], [2.0, 1.0])  # [sqrt(0.5)]`
    """
    forecast, truth = _pair(forecast, truth)
    sigma = np.asarray(train_std, dtype=float)
    if sigma.shape != (forecast.shape[-1],):
        raise DiffdynError(
            f"train_std must have one value per variable ({forecast.shape[-1]}); got shape "
            f"{sigma.shape}."
        )
    if np.any(sigma <= 0) or not np.all(np.isfinite(sigma)):
        raise DiffdynError("train_std must be positive and finite for every variable.")
    return np.sqrt(np.mean((forecast - truth) ** 2 / sigma**2, axis=-1))


def smape(forecast: Float[ArrayLike, "... time dim"], truth: Float[ArrayLike, "... time dim"]):
    """Symmetric mean absolute percentage error on the 0–200 scale.

    sMAPE = 200 · mean(|ŷ − y| / (|ŷ| + |y|)); points where both are zero count as 0.

    **Example:** `smape([[1.0]], [[3.0]])  # 100.0`
    """
    forecast, truth = _pair(forecast, truth)
    denominator = np.abs(forecast) + np.abs(truth)
    ratio = np.divide(
        np.abs(forecast - truth),
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    return float(200.0 * np.mean(ratio))


@dataclasses.dataclass(frozen=True)
class ValidPredictionTime:
    """Valid prediction time over many forecast start points.

    - `mean`, `std`: over start points, in `unit`.
    - `per_start`: the VPT of each start point, in `unit`.
    - `unit`: `"Lyapunov times"` when λ₁ was given, else `"time units"`.
    - `threshold`: ε.
    - `censored`: how many start points never crossed ε within the horizon (their VPT is the
      horizon: a lower bound).
    """

    mean: float
    std: float
    per_start: np.ndarray
    unit: str
    threshold: float
    censored: int

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            "unit": self.unit,
            "censored": self.censored,
            "per_start": np.asarray(self.per_start, float).tolist(),
            "threshold": self.threshold,
        }

    def __str__(self) -> str:
        text = f"VPT = {self.mean:.3g} ± {self.std:.2g} {self.unit} (ε = {self.threshold:g}"
        text += f", {len(self.per_start)} start points"
        if self.censored:
            text += f", {self.censored} never crossed ε: lower bound"
        return text + ")"


def valid_prediction_time(
    forecasts: Float[ArrayLike, "starts horizon dim"],
    truths: Float[ArrayLike, "starts horizon dim"],
    train_std: Float[ArrayLike, " dim"],
    dt: float,
    *,
    lyapunov_exponent: float | None = None,
    threshold: float = 0.5,
) -> ValidPredictionTime:
    """Valid prediction time, averaged over forecast start points (never one).

    Forecast step k (0-based) is the lead time (k + 1)·dt. The VPT of one start point is the
    lead time of its last step before the first step whose NRMSE exceeds `threshold`: 0 when
    the first step already fails, the whole horizon when none does (then counted as
    `censored`). With `lyapunov_exponent` λ₁ > 0 the result is in Lyapunov times λ₁·t.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.metrics import valid_prediction_time

    truth = np.zeros((2, 10, 1))
    forecast = truth + np.linspace(0, 1, 10)[None, :, None]  # error grows with lead time
    valid_prediction_time(forecast, truth, [1.0], dt=0.1).mean  # 0.5 (steps 1..5 valid)
    ```
    """
    forecasts, truths = _pair(forecasts, truths)
    if forecasts.ndim != 3:
        raise DiffdynError(
            f"expected forecasts shaped [start points, horizon, dim]; got {forecasts.shape}."
        )
    if not dt > 0:
        raise DiffdynError(f"dt must be positive; got {dt}.")
    if not threshold > 0:
        raise DiffdynError(f"threshold must be positive; got {threshold}.")
    errors = nrmse(forecasts, truths, train_std)  # [starts, horizon]
    failed = ~(errors <= threshold)  # NaN counts as failed
    horizon = errors.shape[1]
    first_failure = np.where(failed.any(axis=1), failed.argmax(axis=1), horizon)
    times = first_failure * dt
    unit = "time units"
    if lyapunov_exponent is not None:
        if not lyapunov_exponent > 0:
            raise DiffdynError(
                f"a Lyapunov time needs λ₁ > 0; got {lyapunov_exponent}. Leave it out to "
                "report VPT in time units."
            )
        times = times * lyapunov_exponent
        unit = "Lyapunov times"
    return ValidPredictionTime(
        mean=float(times.mean()),
        std=float(times.std()),
        per_start=times,
        unit=unit,
        threshold=threshold,
        censored=int((first_failure == horizon).sum()),
    )
