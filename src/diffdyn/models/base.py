"""`AbstractForecaster`: the contract every forecasting model in diffdyn keeps.

A forecaster is an `eqx.Module` that, given a `context` window `[T_ctx, d]` (and exogenous
inputs `[T_ctx + horizon, m]` when the data has them), returns a closed-loop forecast
`[horizon, d]` for **any** horizon, plus a dict `aux` of interpretability outputs (empty when
there is nothing to show). It handles one unbatched example; callers batch with `jax.vmap`.

How a model is fitted is not its business: `train.fit` handles gradient training with any
strategy (one-step teacher forcing, free-running multi-step, curriculum); models fitted in closed
form (NG-RC, ESN readouts) implement `fit_closed_form`.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray

FIT_KINDS = ("gradient", "closed_form", "none")


class AbstractForecaster(eqx.Module):
    """A forecaster: `model(context, exog, horizon=H) -> (forecast [H, d], aux)`.

    Class attributes:

    - `name`: registry name.
    - `fit_kind`: `"gradient"` (trained by `train.fit`), `"closed_form"` (implements
      `fit_closed_form`) or `"none"` (nothing to fit, e.g. persistence).
    - `has_attention`: whether `aux` holds an alignment `aux["attention"]` `[horizon, context]`
      (rows sum to 1; DA-RNN adds `aux["input_attention"]` `[context, n]`), drawn by
      `diffdyn explain`.
    - `has_gates`: whether `aux` holds soft-control-flow weights `aux["gates"]` `[horizon, K]`
      (the weight of each of K branches in every forecast step, rows sum to 1; a branch is a
      `gate_label`, e.g. an expert or a ponder step) and, for a halting loop,
      `aux["ponder"]` `[horizon]` (steps run), drawn by `diffdyn explain`.

    A model may also return `aux["penalty"]`, a scalar that `train.fit` adds to its training
    loss (ACT's ponder cost).
    """

    name: ClassVar[str] = ""
    fit_kind: ClassVar[str] = "gradient"
    has_attention: ClassVar[bool] = False
    has_gates: ClassVar[bool] = False
    gate_label: ClassVar[str] = "branch"

    @abc.abstractmethod
    def __call__(
        self,
        context: Float[Array, "context dim"],
        exog: Float[Array, "context_plus_horizon m"] | None = None,
        *,
        horizon: int,
        key: PRNGKeyArray | None = None,
    ) -> tuple[Float[Array, "horizon dim"], dict[str, Any]]:
        """Forecast `horizon` steps after `context`, closed loop."""

    def fit_closed_form(
        self, values: Float[Array, "time dim"], exog: Float[Array, "time m"] | None = None
    ) -> AbstractForecaster:
        """Return a copy fitted in closed form to a (scaled) training series."""
        raise NotImplementedError(f"{type(self).__name__} is not fitted in closed form.")

    def for_training(self, budget: float | None) -> AbstractForecaster:
        """The model as `train.fit` trains it under `budget` seconds (`None`: no time limit).

        A model may compile a faster but longer-to-compile program when the budget can pay
        for it (seq2seq-attention unrolls its decoder only then); the parameters are the same.
        The default is the model itself.
        """
        return self
