"""ESN ensemble: several echo-state networks with independent random reservoirs, their
closed-loop forecasts combined by the median at every step.

A single ESN's forecast depends much on its random reservoir, and the members' errors are far
from perfectly correlated, so combining their forecasts removes some of that luck (forecast
combination: Bates & Granger 1969, "The combination of forecasts"). The median, not the
mean, because a member that drifts off the attractor pulls a mean off with it but not a
median. Measured under the dysts protocol (univariate, fine granularity, systems 1–30, seeds
0, 1, 2; `experiments/dysts_esn_ensemble.py`): median sMAPE over the systems 63.1, 49.1 and
70.0 for the members' median, against 70.6, 68.1 and 78.3 for the typical member alone (the
median of the 7 members' figures; 50.6 to 99.4 over all 21) and 102.4, 86.7 and 94.0 for the
members' mean.

With `tune` (default `"auto"`, the ESN's rule) the training pipeline tunes the first member's
scales and α by gradient through its readout (`train.reservoir_tuning`, as for one `esn`) and
gives the tuned values to every member before fitting them: one tuning, `members` fits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..errors import DiffdynError
from .base import AbstractForecaster
from .esn import ESN
from .registry import MODELS, ModelSpec, register_model
from .reservoir import parse_tune

MAX_MEMBERS = 64


class ESNEnsemble(AbstractForecaster):
    """`members` ESNs (`models.ESN`) with the same hyperparameters and independent reservoirs
    (member i drawn from the i-th of `members` keys split from `key`); each readout is fitted
    on its own (with `ridge="auto"`, each member chooses its own α), each member forecasts
    closed loop on its own, and the forecast is the median over members at every step and
    variable. A member whose forecast goes non-finite is left out of the median from then on
    (`jnp.nanmedian`); the forecast is non-finite only when every member's is.

    **Tuning.** The members share their hyperparameters. With `tune` the training pipeline
    (`train.train_model`, `diffdyn train`) tunes them once, by gradient through the first
    member's readout (`train.reservoir_tuning.fit_reservoir`, the same loss, budget share and
    `auto` rule as for one `esn`), and every member is then fitted with the tuned values; the
    members themselves never tune. Fitting and forecasting cost `members` times one ESN's.

    **Arguments:** `dim`, `exog_dim`, `key`; `members` (≥ 1); `tune` (`"auto"`, `"on"` or
    `"off"`, as for `models.ESN`); the rest as `models.ESN` (`size`, `spectral_radius`,
    `input_scaling`, `leak`, `ridge`, `connectivity`, `washout`, `bias_scaling`).

    **Example:**

    ```python
    import jax
    import numpy as np
    from diffdyn.models import ESNEnsemble

    t = np.arange(600) * 0.1
    series = np.stack([np.sin(t), np.cos(t)], axis=1)
    model = ESNEnsemble(2, key=jax.random.key(0), members=3, size=100)
    model = model.fit_closed_form(series[:500])
    forecast, aux = model(series[400:500], horizon=50)  # the members' median, [50, 2]
    ```
    """

    name: ClassVar[str] = "esn-ensemble"
    fit_kind: ClassVar[str] = "closed_form"

    members: tuple[ESN, ...]
    tune: str = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key: PRNGKeyArray,
        members: int = 7,
        tune: str = "auto",
        **esn: Any,
    ):
        if not 1 <= members <= MAX_MEMBERS:
            raise DiffdynError(f"esn-ensemble needs 1 to {MAX_MEMBERS} members; got {members}.")
        self.tune = parse_tune(tune, "esn-ensemble")
        keys = jax.random.split(key, members)
        self.members = tuple(ESN(dim, exog_dim, key=k, tune="off", **esn) for k in keys)

    def tunable_member(self) -> ESN:
        """The member whose readout the tuning differentiates through (the first)."""
        return self.members[0]

    def with_values(self, values: Mapping[str, Float[ArrayLike, ""]]) -> ESNEnsemble:
        """A copy whose every member has these tunable values (`ESN.with_values`)."""
        changed = tuple(member.with_values(values) for member in self.members)
        return eqx.tree_at(lambda m: m.members, self, changed)

    def fit_closed_form(
        self,
        values: Float[Array, "time dim"],
        exog: Float[Array, "time m"] | None = None,
        *,
        choose_ridge: bool | None = None,
    ) -> ESNEnsemble:
        """Fit every member's readout to the (scaled) training series (`choose_ridge` as
        `ESN.fit_closed_form`: `False` keeps the members' α, a tuned one for instance)."""
        fitted = tuple(
            member.fit_closed_form(values, exog, choose_ridge=choose_ridge)
            for member in self.members
        )
        return eqx.tree_at(lambda m: m.members, self, fitted)

    def __call__(
        self,
        context: Float[Array, "context dim"],
        exog: Float[Array, "context_plus_horizon m"] | None = None,
        *,
        horizon: int,
        key: PRNGKeyArray | None = None,
    ) -> tuple[Float[Array, "horizon dim"], dict[str, Any]]:
        """Every member forecasts closed loop from the context; the median over members."""
        forecasts = jnp.stack(
            [member(context, exog, horizon=horizon)[0] for member in self.members]
        )
        # a member whose forecast went non-finite drops out of the median from that step on
        return jnp.nanmedian(forecasts, axis=0), {}


register_model(
    ModelSpec(
        "esn-ensemble",
        ESNEnsemble,
        # the ESN's own defaults (registered when `.esn` was imported), `tune` among them
        {"members": 7, **MODELS["esn"].defaults},
        "median of several echo-state networks' forecasts, each with its own random "
        "reservoir (Bates & Granger 1969)",
    )
)
