"""`AbstractReservoir`: a forecaster with a closed-form ridge readout whose hyperparameters
are array fields, so that a validation loss is differentiable in them (ESN, NG-RC).

`train.tune_reservoir` tunes them by gradient through the readout; this file holds what the
models share: the names of the tunable values, reading and replacing them, the `tune`
hyperparameter, and the readout's fit (`fit_closed_form`, `regression`), each model giving
its rows (`_driving`), its checks and its regression (`_regression`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..data.split import held_out_start
from ..errors import DiffdynError
from ..nn.ridge import HELD_OUT_FRACTION, choose_ridge as select_ridge, ridge_regression
from .base import AbstractForecaster

TUNE_CHOICES = ("auto", "on", "off")


def parse_tune(tune: str, model: str) -> str:
    """A reservoir's `tune` hyperparameter, checked: `"auto"`, `"on"` or `"off"`."""
    text = str(tune).strip().lower()
    if text not in TUNE_CHOICES:
        raise DiffdynError(f"{model} needs tune=auto, on or off; got {tune!r}.")
    return text


class AbstractReservoir(AbstractForecaster):
    """A closed-form forecaster whose `tunable` hyperparameters are positive scalar array
    fields (`ridge` among them), and whose readout regression is a differentiable function of
    them (`regression`).

    Class attribute `tunable`: the names of those fields; field `tune`: the model's
    `tune=auto|on|off` setting, which the training pipeline reads (`train.reservoir_tuning`).
    """

    tunable: ClassVar[tuple[str, ...]] = ()
    tune: eqx.AbstractVar[str]
    auto_ridge: eqx.AbstractVar[bool]
    ridge: eqx.AbstractVar[Float[Array, ""]]
    readout: eqx.AbstractVar[Array]

    def tunable_values(self) -> dict[str, Float[Array, ""]]:
        """The current `tunable` values, by name."""
        return {name: getattr(self, name) for name in self.tunable}

    def tunable_member(self) -> AbstractReservoir:
        """The reservoir whose readout the tuning differentiates through: the model itself
        (an ensemble names one of its members)."""
        return self

    def with_values(self, values: Mapping[str, Float[ArrayLike, ""]]) -> AbstractReservoir:
        """A copy with some `tunable` values replaced (the rest, the readout included, kept)."""
        unknown = set(values) - set(self.tunable)
        if unknown:
            raise DiffdynError(
                f"{self.name} tunes {', '.join(self.tunable)}; got {', '.join(sorted(unknown))}."
            )
        names = list(values)
        return eqx.tree_at(
            lambda m: [getattr(m, n) for n in names],
            self,
            [jnp.asarray(values[n], getattr(self, n).dtype) for n in names],
        )

    @abc.abstractmethod
    def _check_training(self, values: Array, choose: bool) -> None:
        """Refuse (one sentence) a training series too short for the model (and, when
        `choose`, for choosing α on held-out rows)."""

    @abc.abstractmethod
    def _driving(self, values: Array, exog: Array | None) -> Array:
        """What the model reads of a training series, row by row (`[y_t ; u_t]`)."""

    @abc.abstractmethod
    def _regression(
        self, values: Array, driving: Array
    ) -> tuple[Array, Array, Array, Callable[[Array, Array, int], Array]]:
        """`regression`'s work on the checked series and its `_driving` rows."""

    def fit_closed_form(
        self,
        values: Float[Array, "time dim"],
        exog: Float[Array, "time m"] | None = None,
        *,
        choose_ridge: bool | None = None,
    ) -> AbstractReservoir:
        """Fit the readout: ridge regression of the increments y_{t+1} − y_t on the design
        (`regression`). The α is chosen first, on held-out training data
        (`nn.ridge.choose_ridge`), when `choose_ridge` (default: the model was built with
        `ridge="auto"`); otherwise the field `ridge` is used (a tuned α, for one)."""
        values = jnp.asarray(values)
        choose = self.auto_ridge if choose_ridge is None else choose_ridge
        self._check_training(values, choose)
        return self._fit(values, self._driving(values, exog), choose)

    @eqx.filter_jit
    def _fit(self, values, driving, choose: bool):
        # compiled once per shape and hyperparameters; a refit with new data reuses it
        design, increments, next_values, closed_loop = self._regression(values, driving)
        ridge = self.ridge
        if choose:
            ridge = select_ridge(
                design,
                increments,
                next_values,
                closed_loop,
                fit_rows=held_out_start(design.shape[0], HELD_OUT_FRACTION),
                unpenalised=[0],
            )
        readout = ridge_regression(design, increments, ridge, unpenalised=[0])
        return eqx.tree_at(
            lambda m: (m.ridge, m.readout), self, (ridge.astype(self.ridge.dtype), readout)
        )

    def regression(
        self, values: Float[Array, "time dim"], exog: Float[Array, "time m"] | None = None
    ) -> tuple[Array, Array, Array, Callable[[Array, Array, int], Array]]:
        """The readout's regression of a training series at the current values: `(design,
        increments, next states, closed_loop)` as `nn.ridge.choose_ridge` takes them, column
        0 of the design the unpenalised constant; differentiable in the array fields.
        Jittable."""
        values = jnp.asarray(values)
        self._check_training(values, False)
        return self._regression(values, self._driving(values, exog))
