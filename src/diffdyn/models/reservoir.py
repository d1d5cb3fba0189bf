"""`AbstractReservoir`: a forecaster with a closed-form ridge readout whose hyperparameters
are array fields, so that a validation loss is differentiable in them (ESN, NG-RC).

`train.tune_reservoir` tunes them by gradient through the readout; this file holds only what
the models share: the names of the tunable values, reading and replacing them, and the
`tune` hyperparameter.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..errors import DiffdynError
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

    def tunable_values(self) -> dict[str, Float[Array, ""]]:
        """The current `tunable` values, by name."""
        return {name: getattr(self, name) for name in self.tunable}

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
    def fit_closed_form(
        self,
        values: Float[Array, "time dim"],
        exog: Float[Array, "time m"] | None = None,
        *,
        choose_ridge: bool | None = None,
    ) -> AbstractReservoir:
        """Fit the readout at the current values; choose α on held-out data first when
        `choose_ridge` (default: the model was built with `ridge="auto"`)."""

    @abc.abstractmethod
    def regression(
        self, values: Float[Array, "time dim"], exog: Float[Array, "time m"] | None = None
    ) -> tuple[Array, Array, Array, Callable[[Array, Array, int], Array]]:
        """The readout's regression of a training series at the current values: `(design,
        increments, next states, closed_loop)` as `nn.ridge.choose_ridge` takes them, column
        0 of the design the unpenalised constant; differentiable in the array fields."""
