"""`split_series`: cut a series into consecutive parts in time (train, validation, test...)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DataError
from .series import Series

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


def split_series(
    series: Series,
    fractions: Sequence[float] | None = None,
    *,
    indices: Sequence[int] | None = None,
) -> tuple[Series, ...]:
    """Cut `series` into consecutive parts in time, by fractions of its length or at indices.

    Parts never overlap and keep time order, so a model fitted on the first part is tested on
    a later stretch that it has never seen.

    **Arguments:**

    - `series`: the series to cut; its rows are its time axis.
    - `fractions`: the share of rows in each part, in order, each positive, summing to at most
        1 (rows beyond the sum are dropped); default `(0.7, 0.15, 0.15)`.
    - `indices`: instead of `fractions`, the increasing row indices where parts begin:
        `[700, 850]` gives rows `0:700`, `700:850` and `850:`.

    **Returns:** a tuple of `Series`, one per part, each with at least 2 rows.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.data import Series, split_series

    s = Series(np.zeros((100, 1)), np.arange(100.0), ("x",), dt=1.0)
    train, test = split_series(s, (0.8, 0.2))
    len(train), len(test), float(test.times[0])  # (80, 20, 80.0)
    ```
    """
    n = len(series)
    if fractions is not None and indices is not None:
        raise DataError("split by fractions or by indices, not both; pass only one of them.")
    if indices is not None:
        bounds = [int(i) for i in indices]
        if any(not 0 < i < n for i in bounds) or any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise DataError(
                f"split indices must increase strictly and lie between 1 and {n - 1} for a "
                f"series of {n} rows; got {list(indices)}."
            )
        bounds = [0, *bounds, n]
        shares = None
    else:
        shares = [float(f) for f in (DEFAULT_FRACTIONS if fractions is None else fractions)]
        if not shares or any(not f > 0 for f in shares) or sum(shares) > 1 + 1e-9:
            raise DataError(
                f"split fractions must be positive and sum to at most 1; got {shares}."
            )
        bounds = [0, *(min(round(c * n), n) for c in np.cumsum(shares))]
    for k, (start, stop) in enumerate(zip(bounds, bounds[1:])):
        if stop - start < 2:
            share = "" if shares is None else f" (fraction {shares[k]:g})"
            raise DataError(
                f"part {k + 1} of the split{share} gets {stop - start} of the {n} rows but "
                "needs at least 2; use a longer series or larger parts."
            )
    return tuple(series.slice(start, stop) for start, stop in zip(bounds, bounds[1:]))


def held_out_start(n_rows: int, fraction: float, min_rows: int = 1) -> int:
    """The first row of the held-out end of a series of `n_rows`: the one time split of diffdyn.

    The last `round(fraction · n_rows)` rows are held out (the test end of a user's file, the
    validation end of a training span), unless either part would then have fewer than
    `min_rows` rows (e.g. one window) or `fraction` is 0: then nothing is held out and the
    result is `n_rows`.

    **Example:** `held_out_start(1000, 0.2)` is 800; `held_out_start(10, 0.2, min_rows=5)` is 10.
    """
    if not 0 <= fraction < 1:
        raise DataError(f"the held-out fraction must be in [0, 1); got {fraction}.")
    n_hold = int(round(n_rows * fraction))
    if fraction == 0 or n_hold < min_rows or n_rows - n_hold < min_rows:
        return n_rows
    return n_rows - n_hold
