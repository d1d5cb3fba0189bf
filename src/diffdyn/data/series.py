"""`Series`: a multivariate time series, the one currency of diffdyn.

Simulators return a `Series`, readers return a `Series`, and models are trained on windows cut
from a `Series`. It is an `eqx.Module`, so it is a pytree: `jax.vmap` over `simulate` returns a
`Series` whose arrays carry a leading batch axis, and gradients flow through its values.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float

from ..errors import DataError, UnknownNameError, did_you_mean

ArrayLike = Array | np.ndarray


class Series(eqx.Module):
    """A multivariate time series sampled at `times`.

    **Arguments:**

    - `values`: the observed variables, shape `[T, d]`.
    - `times`: the sampling times, shape `[T]`, strictly increasing.
    - `variables`: the `d` variable names.
    - `exog`: optional exogenous (driving) inputs aligned with `values`, shape `[T, m]`.
    - `exog_variables`: the `m` names of the exogenous inputs.
    - `dt`: the sampling step when sampling is regular, else `None`.
    - `metadata`: free-form facts about where the series comes from: `system`, `parameters`,
      `lyapunov_exponent`, `lyapunov_time`, `source` ...

    **Example:**

    ```python
    import numpy as np
    from diffdyn.data import Series

    s = Series(np.zeros((5, 2)), np.arange(5.0), ("x", "y"), dt=1.0)
    s.select(["y"]).values.shape  # (5, 1)
    ```
    """

    values: Float[ArrayLike, "time dim"]
    times: Float[ArrayLike, " time"]
    variables: tuple[str, ...] = eqx.field(static=True)
    exog: Float[ArrayLike, "time m"] | None = None
    exog_variables: tuple[str, ...] = eqx.field(static=True, default=())
    dt: float | None = eqx.field(static=True, default=None)
    metadata: dict[str, Any] = eqx.field(static=True, default_factory=dict)

    def __check_init__(self):
        shape = self.values.shape
        if len(shape) < 2:
            raise DataError(
                f"Series values must have shape [time, dim]; got shape {tuple(shape)}. "
                "Reshape a single variable with values[:, None]."
            )
        if self.times.shape[-1:] != shape[-2:-1]:
            raise DataError(
                f"Series has {shape[-2]} rows of values but {self.times.shape[-1]} times."
            )
        if len(self.variables) != shape[-1]:
            raise DataError(
                f"Series has {shape[-1]} variables but {len(self.variables)} names "
                f"({', '.join(self.variables)})."
            )
        if len(set(self.variables)) != len(self.variables):
            raise DataError(f"Series variable names repeat: {', '.join(self.variables)}.")
        if self.exog is not None:
            if self.exog.shape[-2:-1] != shape[-2:-1]:
                raise DataError(
                    f"exogenous inputs have {self.exog.shape[-2]} rows but values have "
                    f"{shape[-2]}."
                )
            if len(self.exog_variables) != self.exog.shape[-1]:
                raise DataError(
                    f"Series has {self.exog.shape[-1]} exogenous inputs but "
                    f"{len(self.exog_variables)} names."
                )
        elif self.exog_variables:
            raise DataError("exog_variables given without exog values.")

    # -- shape ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.values.shape[-2]

    @property
    def dim(self) -> int:
        """Number of observed variables `d`."""
        return self.values.shape[-1]

    @property
    def duration(self) -> float:
        """`times[-1] - times[0]` in the series' time units."""
        return float(self.times[..., -1] - self.times[..., 0])

    # -- dynamics facts --------------------------------------------------------------------
    @property
    def lyapunov_exponent(self) -> float | None:
        """The largest Lyapunov exponent of the source system, when known."""
        lam = self.metadata.get("lyapunov_exponent")
        return None if lam is None else float(lam)

    @property
    def lyapunov_time(self) -> float | None:
        """`1/λ₁` in time units, or `None` when λ₁ is unknown or not positive."""
        lam = self.lyapunov_exponent
        if lam is None or not lam > 0 or not math.isfinite(lam):
            return None
        return 1.0 / lam

    # -- views -----------------------------------------------------------------------------
    def select(self, variables: list[str] | tuple[str, ...]) -> Series:
        """Keep only the named variables, in the order given."""
        index = []
        for name in variables:
            if name not in self.variables:
                raise UnknownNameError(
                    f"no variable {name!r} in this series (it has "
                    f"{', '.join(self.variables)}).{did_you_mean(name, self.variables)}"
                )
            index.append(self.variables.index(name))
        return Series(
            self.values[..., index],
            self.times,
            tuple(variables),
            exog=self.exog,
            exog_variables=self.exog_variables,
            dt=self.dt,
            metadata=dict(self.metadata),
        )

    def slice(self, start: int | None = None, stop: int | None = None) -> Series:
        """Rows `start:stop` (time indices), keeping names and metadata."""
        sl = slice(start, stop)
        return Series(
            self.values[..., sl, :],
            self.times[..., sl],
            self.variables,
            exog=None if self.exog is None else self.exog[..., sl, :],
            exog_variables=self.exog_variables,
            dt=self.dt,
            metadata=dict(self.metadata),
        )

    def replace(self, **changes: Any) -> Series:
        """A copy with some fields replaced (`values`, `metadata`, ...)."""
        fields: dict[str, Any] = dict(
            values=self.values,
            times=self.times,
            variables=self.variables,
            exog=self.exog,
            exog_variables=self.exog_variables,
            dt=self.dt,
            metadata=dict(self.metadata),
        )
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"Series has no field(s) {', '.join(sorted(unknown))}.")
        fields.update(changes)
        return Series(**fields)

    def numpy(self) -> Series:
        """The same series with NumPy arrays (host memory), e.g. before writing a file."""
        return self.replace(
            values=np.asarray(self.values),
            times=np.asarray(self.times),
            exog=None if self.exog is None else np.asarray(self.exog),
        )

    def to_frame(self):
        """A `pandas.DataFrame` with a `time` column, the variables, then exogenous inputs."""
        import pandas as pd

        if self.values.ndim != 2:
            raise DataError("only an unbatched Series (values [time, dim]) becomes a table.")
        names = ["time", *self.variables, *self.exog_variables]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise DataError(
                f"the column name(s) {', '.join(repeated)} would repeat in a table (the time "
                "column is called 'time'); rename them with series.replace(variables=...)."
            )
        columns: dict[str, Any] = {"time": np.asarray(self.times)}
        values = np.asarray(self.values)
        for i, name in enumerate(self.variables):
            columns[name] = values[:, i]
        if self.exog is not None:
            exog = np.asarray(self.exog)
            for i, name in enumerate(self.exog_variables):
                columns[name] = exog[:, i]
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        shape = "×".join(str(s) for s in self.values.shape)
        where = self.metadata.get("system") or self.metadata.get("source") or "data"
        exog = f", exog {', '.join(self.exog_variables)}" if self.exog is not None else ""
        dt = f", dt={self.dt:g}" if self.dt is not None else ", irregular"
        names = self.variables
        shown = ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:3])}, …, {names[-1]}"
        return f"Series({where}: {shape} [{shown}]{exog}{dt})"
