"""NG-RC: next-generation reservoir computing (Gauthier, Bollt, Griffith & Barbosa 2021).

A nonlinear vector autoregression: the feature vector at time t is a constant, k delayed
states spaced s steps apart, and their unique monomials of degree `order`; a ridge readout maps
it to the increment y_{t+1} − y_t. Nothing but the readout is learned, in one linear solve.

Gauthier et al. 2021, Nat. Commun. 12:5564, "Next generation reservoir computing".
"""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import DiffdynError
from ..nn.ridge import (
    MIN_SELECTION_ROWS,
    closed_loop_bound,
    parse_ridge,
)
from .registry import ModelSpec, register_model
from .reservoir import AbstractReservoir, parse_tune


class NGRC(AbstractReservoir):
    """Next-generation reservoir computer: y_{t+1} = y_t + W_out O_total(t).

    Features (Gauthier et al. 2021, Methods), with z_t = y_t ⊕ u_t (the state and, when
    there are any, the exogenous inputs at time t):

    - O_lin(t) = c · (z_t ⊕ z_{t−s} ⊕ … ⊕ z_{t−(k−1)s})  (k·(d+m) numbers; c the
      `feature_scaling`, 1 by default);
    - O_nonlin(t) = the unique monomials of degree `order` of O_lin(t) (i ≤ j [≤ l]);
    - O_total(t) = 1 ⊕ O_lin(t) ⊕ O_nonlin(t).

    The readout is fitted by ridge regression on the increments y_{t+1} − y_t (the paper's
    "integrator" form X_{i+1} = X_i + W_out O_total,i, used there for Lorenz-63); the constant
    is not penalised. Before fitting W_out is zero,
    so an unfitted model forecasts persistence.

    **Arguments:**

    - `dim`, `exog_dim`: d and m.
    - `delays`: k, the number of delayed states (≥ 1).
    - `spacing`: s, the number of steps between them (≥ 1).
    - `ridge`: the ridge parameter α (on the unnormalised sum of squares), or `"auto"` (the
      default): chosen by `fit_closed_form` on held-out training data (below).
    - `order`: degree of the nonlinear monomials, 2 (quadratic, as for Lorenz-63 in the
      paper) or 3 (cubic, as for the double-scroll circuit there).
    - `feature_scaling`: c > 0, which multiplies the linear features, so the monomials of
      degree n by cⁿ: with the ridge it sets how strongly each degree is penalised
      (α/c² for the linear, α/c^{2n} for the nonlinear weights).
    - `tune`: `"auto"` (the default), `"on"` or `"off"`: whether the training pipeline
      (`train.train_model`, `diffdyn train`) tunes α and c by gradient before fitting
      (`train.reservoir_tuning`; `docs/reservoir-tuning.md` says where it pays). The tuned
      values are the array fields `ridge` and `feature_scaling`, saved with the model.
    - `key`: unused (the model has no random parts); accepted for the common signature.

    The context of a forecast must hold at least (k−1)·s + 1 rows.

    **The ridge.** No fixed α suits every series: on Lorenz-63 at dt = 0.025 with 400
    training points VPT is flat for α = 1e-8 … 3e-7 and collapses below 3e-9
    (`experiments/ngrc_lorenz63.py`), while the former fixed default 1e-7 made every forecast
    of Rössler at dt = 0.05 diverge (`tests/test_models_reservoir.py`).
    With `ridge="auto"`, `fit_closed_form` fits on the first 80 % of the training series,
    keeps the α of 1e-10, 1e-9, …, 1 whose closed-loop forecasts of the last 20 % are best
    (`nn.ridge.choose_ridge`) and refits on the whole series with it. The α used is the
    array field `ridge` (NaN until fitted), so it is saved and loaded with the readout; an
    explicit number is used as given, and `0` means no penalty.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.models import NGRC

    t = np.arange(600) * 0.1
    series = np.stack([np.sin(t), np.cos(t)], axis=1)
    model = NGRC(2).fit_closed_form(series[:500])
    forecast, aux = model(series[498:500], horizon=100)  # forecast: [100, 2]
    ```
    """

    name: ClassVar[str] = "ngrc"
    fit_kind: ClassVar[str] = "closed_form"
    tunable: ClassVar[tuple[str, ...]] = ("ridge", "feature_scaling")

    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)
    delays: int = eqx.field(static=True)
    spacing: int = eqx.field(static=True)
    order: int = eqx.field(static=True)
    auto_ridge: bool = eqx.field(static=True)
    tune: str = eqx.field(static=True)
    ridge: Float[Array, ""]
    feature_scaling: Float[Array, ""]
    readout: Float[Array, "features dim"]

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key: PRNGKeyArray | None = None,
        delays: int = 2,
        spacing: int = 1,
        ridge: float | str = "auto",
        order: int = 2,
        feature_scaling: float = 1.0,
        tune: str = "auto",
    ):
        if delays < 1 or spacing < 1:
            raise DiffdynError(f"ngrc needs delays ≥ 1 and spacing ≥ 1; got {delays}, {spacing}.")
        if order not in (2, 3):
            raise DiffdynError(f"ngrc supports order 2 or 3 (monomial degree); got {order}.")
        if not feature_scaling > 0:
            raise DiffdynError(f"ngrc needs feature_scaling > 0; got {feature_scaling}.")
        alpha = parse_ridge(ridge, "ngrc")
        self.dim = dim
        self.exog_dim = exog_dim
        self.delays = delays
        self.spacing = spacing
        self.order = order
        self.auto_ridge = alpha is None
        self.tune = parse_tune(tune, "ngrc")
        self.ridge = jnp.asarray(math.nan if alpha is None else alpha, dtype=float)
        self.feature_scaling = jnp.asarray(feature_scaling, dtype=float)
        self.readout = jnp.zeros((self.feature_count, dim))

    @property
    def span(self) -> int:
        """(k−1)·s + 1: the rows of history one feature vector needs."""
        return (self.delays - 1) * self.spacing + 1

    @property
    def feature_count(self) -> int:
        """1 + k(d+m) + C(k(d+m) + order − 1, order)."""
        linear = self.delays * (self.dim + self.exog_dim)
        return 1 + linear + math.comb(linear + self.order - 1, self.order)

    def features(self, history: Float[Array, "span dim_plus_m"]) -> Float[Array, " features"]:
        """O_total from the last `span` rows of z (oldest first)."""
        # O_lin,t = z_t ⊕ z_{t−s} ⊕ … ⊕ z_{t−(k−1)s} (Gauthier et al. 2021): newest first
        linear = self.feature_scaling * history[::-1][:: self.spacing].reshape(-1)
        # unique monomials of degree `order`: index tuples i ≤ j (≤ l), fixed at trace time
        index = np.array(
            list(itertools.combinations_with_replacement(range(linear.shape[0]), self.order))
        )
        nonlinear = jnp.prod(linear[index], axis=1)
        return jnp.concatenate([jnp.ones(1, linear.dtype), linear, nonlinear])

    def _joined(self, values, exog):
        if self.exog_dim == 0:
            return values
        if exog is None or exog.ndim != 2 or exog.shape[1] != self.exog_dim:
            got = "none" if exog is None else exog.shape
            raise DiffdynError(
                f"this ngrc model was built for {self.exog_dim} exogenous inputs; got {got}."
            )
        if exog.shape[0] < values.shape[0]:
            raise DiffdynError(
                f"ngrc needs a row of exogenous inputs for each of the {values.shape[0]} rows; "
                f"got {exog.shape[0]}."
            )
        return jnp.concatenate([values, exog[: values.shape[0]]], axis=-1)

    def _check_training(self, values, choose: bool):
        if values.ndim != 2 or values.shape[1] != self.dim:
            raise DiffdynError(
                f"ngrc expects training values [time, {self.dim}]; got {values.shape}."
            )
        if values.shape[0] < self.span + 1:
            raise DiffdynError(
                f"ngrc with delays={self.delays}, spacing={self.spacing} needs at least "
                f"{self.span + 1} training rows; got {values.shape[0]}."
            )
        if choose and values.shape[0] < self.span + MIN_SELECTION_ROWS:
            raise DiffdynError(
                f"ngrc with ridge=auto and delays={self.delays}, spacing={self.spacing} needs "
                f"at least {self.span + MIN_SELECTION_ROWS} training rows to choose its ridge; "
                f"got {values.shape[0]}. Give more data or an explicit ridge (-p ridge=1e-6)."
            )

    def _driving(self, values, exog):
        """z = [y_t ; u_t] of every training row, from which the features are built."""
        return self._joined(values, exog)

    def _regression(self, values, z):
        """The readout's regression (design O_total(t), increments, y_{t+1}) and the closed
        loop from its row i, as `nn.ridge.choose_ridge` takes them."""
        starts = jnp.arange(values.shape[0] - self.span)
        windows = jax.vmap(lambda i: jax.lax.dynamic_slice_in_dim(z, i, self.span))(starts)
        design = jax.vmap(self.features)(windows)
        increments = values[self.span :] - values[self.span - 1 : -1]  # X_{i+1} − X_i
        inputs = z[:, self.dim :]
        bound = closed_loop_bound(values)

        def closed_loop(readout, row, horizon):
            # design row `row` saw z up to t = row + span − 1 and forecasts y_{t+1} …
            history = jax.lax.dynamic_slice_in_dim(z, row, self.span)
            future = jax.lax.dynamic_slice_in_dim(inputs, row + self.span, horizon)
            return self._closed_loop(history, future, readout, bound)

        return design, increments, values[self.span :], closed_loop

    def __call__(
        self,
        context: Float[Array, "context dim"],
        exog: Float[Array, "context_plus_horizon m"] | None = None,
        *,
        horizon: int,
        key: PRNGKeyArray | None = None,
    ) -> tuple[Float[Array, "horizon dim"], dict[str, Any]]:
        """Closed loop: y_{t+1} = y_t + W_outᵀ O_total(t), fed back for `horizon` steps."""
        context = jnp.asarray(context)
        exog = None if exog is None else jnp.asarray(exog)
        if context.shape[0] < self.span:
            raise DiffdynError(
                f"ngrc with delays={self.delays}, spacing={self.spacing} needs a context of at "
                f"least {self.span} rows; got {context.shape[0]}."
            )
        if self.exog_dim and (exog is None or exog.shape[0] < context.shape[0] + horizon):
            got = "none" if exog is None else exog.shape[0]
            raise DiffdynError(
                f"ngrc needs exogenous inputs for the context and the horizon "
                f"({context.shape[0] + horizon} rows); got {got}."
            )
        history = self._joined(context, exog)[-self.span :]
        future = (
            exog[context.shape[0] : context.shape[0] + horizon]
            if self.exog_dim and exog is not None
            else jnp.zeros((horizon, 0), context.dtype)
        )
        return self._closed_loop(history, future, self.readout), {}

    def _closed_loop(self, history, future, readout, bound=None):
        # one row of `future` (the next exogenous inputs, possibly none) per forecast step; a
        # validation run clips the state at ±bound (`closed_loop_bound`)
        def step(history, future_input):
            state = history[-1, : self.dim] + self.features(history) @ readout
            if bound is not None:
                state = jnp.clip(state, -bound, bound)
            row = jnp.concatenate([state, future_input])
            return jnp.concatenate([history[1:], row[None]]), state

        _, forecast = jax.lax.scan(step, history, future)
        return forecast


register_model(
    ModelSpec(
        "ngrc",
        NGRC,
        {
            "delays": 2,
            "spacing": 1,
            "ridge": "auto",
            "order": 2,
            "feature_scaling": 1.0,
            "tune": "auto",
        },
        "next-generation reservoir computing: constant, delayed and quadratic features, "
        "ridge readout of the increment (Gauthier et al. 2021)",
    )
)
