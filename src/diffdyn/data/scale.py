"""`Scaler`: standardise each variable to zero mean and unit variance, and back."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from jaxtyping import Array, Float

from ..errors import DataError
from .series import ArrayLike, Series


class Scaler(eqx.Module):
    """Per-variable standardisation `(x - mean) / scale`, fitted on training data only.

    Fit it on the training part of a split (`Scaler.fit(train)`), never on validation or test
    data, or their statistics leak into the model.

    **Arguments:**

    - `mean`: the mean of each variable, shape `[d]`.
    - `scale`: the standard deviation of each variable, shape `[d]`; 1 for a constant one.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.data import Scaler

    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    scaler = Scaler.fit(train)
    scaler.transform(train)  # [[-1, 0], [1, 0]]: the constant column keeps scale 1
    ```
    """

    mean: Float[Array, " dim"]
    scale: Float[Array, " dim"]

    @classmethod
    def fit(cls, data: Series | Float[ArrayLike, "... dim"]) -> Scaler:
        """Fit mean and scale per variable on TRAINING data only (never on test data).

        **Arguments:**

        - `data`: a `Series` (its values) or an array `[..., d]`; every axis but the last is
            pooled.

        **Returns:** a `Scaler`.

        **Example:**

        ```python
        import numpy as np
        from diffdyn.data import Scaler

        Scaler.fit(np.array([[0.0], [2.0]])).mean  # [1.]
        ```
        """
        values = data.values if isinstance(data, Series) else data
        if values.ndim < 2 or values.shape[-2] == 0:
            raise DataError(
                f"a Scaler is fitted on data shaped [..., time, dim]; got shape {values.shape}."
            )
        axes = tuple(range(values.ndim - 1))
        if isinstance(values, Tracer):
            xp = jnp
        else:
            # Statistics in float64 on the host; the fitted arrays use JAX's default float.
            xp, values = np, np.asarray(values, dtype=np.float64)
            if not np.all(np.isfinite(values)):
                raise DataError("cannot fit a Scaler on data with NaN or infinite values.")
        mean, std = xp.mean(values, axis=axes), xp.std(values, axis=axes)
        mean, std = jnp.asarray(mean), jnp.asarray(std)
        # A constant variable (std zero up to rounding, or below the float type's smallest
        # normal number) keeps scale 1 rather than blowing up to inf or NaN.
        usable = (std > 1e-10 * jnp.abs(mean)) & (std >= jnp.finfo(std.dtype).tiny)
        return cls(mean, jnp.where(usable & jnp.isfinite(std), std, 1.0))

    def transform(self, x: Series | Float[ArrayLike, "... dim"]) -> Any:
        """Standardise `x`: `(x - mean) / scale` per variable.

        **Arguments:**

        - `x`: a `Series` (its values are scaled, exogenous inputs left alone) or an array
            `[..., d]`.

        **Returns:** the same kind of object as `x` (`Series`, NumPy or JAX array), scaled.

        **Example:**

        ```python
        import numpy as np
        from diffdyn.data import Scaler

        Scaler(np.array([1.0]), np.array([2.0])).transform(np.array([[5.0]]))  # [[2.]]
        ```
        """
        return self._apply(x, lambda v, mean, scale: (v - mean) / scale)

    def inverse_transform(self, x: Series | Float[ArrayLike, "... dim"]) -> Any:
        """Undo `transform`: `x * scale + mean` per variable, e.g. for a scaled forecast.

        **Arguments:**

        - `x`: a `Series` or an array `[..., d]` in scaled units.

        **Returns:** the same kind of object as `x`, in the original units.

        **Example:**

        ```python
        import numpy as np
        from diffdyn.data import Scaler

        Scaler(np.array([1.0]), np.array([2.0])).inverse_transform(np.array([[2.0]]))  # [[5.]]
        ```
        """
        return self._apply(x, lambda v, mean, scale: v * scale + mean)

    def _apply(self, x, operation):
        values = x.values if isinstance(x, Series) else x
        dim = self.mean.shape[-1]
        if values.ndim < 1 or values.shape[-1] != dim:
            got = values.shape[-1] if values.ndim else 0
            raise DataError(
                f"the data have {got} variables but the scaler was fitted on {dim}; fit and "
                "apply it to the same variables."
            )
        shape = (1,) * (values.ndim - 1) + (dim,)
        on_host = isinstance(values, np.ndarray) and not isinstance(self.mean, Tracer)
        xp = np if on_host else jnp
        mean, scale = xp.asarray(self.mean), xp.asarray(self.scale)
        out = operation(xp.asarray(values), mean.reshape(shape), scale.reshape(shape))
        return x.replace(values=out) if isinstance(x, Series) else out

    def to_dict(self) -> dict[str, list[float]]:
        """The fitted statistics as plain lists, for a JSON sidecar.

        **Returns:** `{"mean": [...], "scale": [...]}`.

        **Example:**

        ```python
        import json
        import numpy as np
        from diffdyn.data import Scaler

        json.dumps(Scaler.fit(np.array([[0.0], [2.0]])).to_dict())  # '{"mean": [1.0], ...}'
        ```
        """
        return {"mean": np.asarray(self.mean).tolist(), "scale": np.asarray(self.scale).tolist()}

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Scaler:
        """Rebuild a `Scaler` from `to_dict()` output.

        **Arguments:**

        - `stored`: a dict with equally long lists `mean` and `scale`.

        **Returns:** a `Scaler`.

        **Example:**

        ```python
        from diffdyn.data import Scaler

        Scaler.from_dict({"mean": [1.0], "scale": [2.0]}).scale  # [2.]
        ```
        """
        try:
            mean = np.asarray(stored["mean"], dtype=np.float64)
            scale = np.asarray(stored["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(
                f"a stored scaler needs lists of numbers 'mean' and 'scale' ({error})."
            ) from error
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise DataError(
                f"a stored scaler needs 'mean' and 'scale' of equal length; got {mean.shape} "
                f"and {scale.shape}."
            )
        if not np.all(scale > 0):
            raise DataError("a stored scaler needs every 'scale' to be positive.")
        return cls(jnp.asarray(mean), jnp.asarray(scale))
