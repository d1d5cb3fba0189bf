"""`make_windows`: cut a series into (context, target) training examples."""

from __future__ import annotations

import numbers

import equinox as eqx
import numpy as np
from jaxtyping import Float, Int

from ..errors import DataError
from .series import ArrayLike, Series


class Windows(eqx.Module):
    """Training examples cut from one series: a context to read and the horizon after it.

    **Arguments:**

    - `context`: the observed stretch of each window, shape `[N, context, d]`.
    - `target`: the values that follow it, shape `[N, horizon, d]`.
    - `exog`: the exogenous inputs over context and horizon, shape `[N, context + horizon, m]`,
        or `None`.
    - `start`: the row of the series where each window's context begins, shape `[N]`.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.data import make_windows

    w = make_windows(np.arange(10.0)[:, None], context=3, horizon=2)
    w.context.shape, w.target.shape, w.start[:3]  # (6, 3, 1), (6, 2, 1), [0 1 2]
    ```
    """

    context: Float[ArrayLike, "window context dim"]
    target: Float[ArrayLike, "window horizon dim"]
    exog: Float[ArrayLike, "window context+horizon m"] | None
    start: Int[np.ndarray, " window"]


def make_windows(
    series_or_values: Series | Float[ArrayLike, "time dim"],
    context: int,
    horizon: int,
    stride: int = 1,
    exog: Float[ArrayLike, "time m"] | None = None,
) -> Windows:
    """Cut every window of `context` rows followed by `horizon` rows, `stride` rows apart.

    A series of `T` rows gives `floor((T - context - horizon) / stride) + 1` windows.

    **Arguments:**

    - `series_or_values`: a `Series` (its exogenous inputs come along) or an array `[T, d]`.
    - `context`: how many rows the model reads.
    - `horizon`: how many rows after them it predicts.
    - `stride`: the step between the starts of consecutive windows.
    - `exog`: exogenous inputs `[T, m]` for an array; a `Series` carries its own.

    **Returns:** a `Windows`, with arrays of the same kind (NumPy or JAX) as the input.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.data import make_windows

    w = make_windows(np.zeros((100, 2)), context=20, horizon=10, stride=5)
    w.context.shape, w.target.shape  # (15, 20, 2), (15, 10, 2)
    ```
    """
    for name, size in (("context", context), ("horizon", horizon), ("stride", stride)):
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise DataError(f"{name} must be a positive whole number of rows; got {size!r}.")
    if isinstance(series_or_values, Series):
        if exog is not None:
            raise DataError(
                "a Series carries its own exogenous inputs; pass exog only with a plain array."
            )
        values, exog = series_or_values.values, series_or_values.exog
    else:
        values = series_or_values
    if values.ndim != 2:
        raise DataError(f"windows are cut from values shaped [time, dim]; got {values.shape}.")
    n_rows, span = values.shape[0], context + horizon
    if exog is not None and (exog.ndim != 2 or exog.shape[0] != n_rows):
        raise DataError(
            f"exog must be shaped [time, m] with the {n_rows} rows of the values; got "
            f"{exog.shape}."
        )
    if n_rows < span:
        raise DataError(
            f"the series has {n_rows} samples, fewer than one window needs (context {context} "
            f"+ horizon {horizon} = {span}); use a longer series or shorter windows."
        )
    start = np.arange(0, n_rows - span + 1, stride)
    rows = start[:, None] + np.arange(span)[None, :]
    cut = values[rows]
    return Windows(
        context=cut[:, :context],
        target=cut[:, context:],
        exog=None if exog is None else exog[rows],
        start=start,
    )
