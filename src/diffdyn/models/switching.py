"""Switching forecaster: K local experts on the last lags, chosen by a soft switch on the state.

Tutorial (Hernández & Amigó) §2, a learned `switch` made differentiable: each expert f_k is a
small map of the last D states (a NARX step, tutorial eq. 1), the gate scores the current
state, and the step is their softmax mixture (`diffdyn.nn.soft_switch`):

    w(y_t) = softmax(g(y_t) / T),   ŷ_{t+1} = y_t + Σ_k w_k(y_t) f_k(y_{t-D+1..t} ⊕ u),

a mixture of experts gated by the state (Jacobs, Jordan, Nowlan & Hinton 1991) — the
learned counterpart of a piecewise model such as Chua's circuit, linear in each of three
regions of x. The gate weights of every forecast step are returned in `aux["gates"]`
`[horizon, K]`, which `diffdyn explain` draws.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import DiffdynError
from ..nn import soft_switch
from .base import AbstractForecaster
from .inputs import check_inputs
from .registry import ModelSpec, register_model


def _mlp(n_in: int, n_out: int, width: int, *, key) -> eqx.nn.MLP:
    # width 0: an affine map (a local linear model).
    return eqx.nn.MLP(
        n_in, n_out, width_size=max(width, 1), depth=1 if width else 0, activation=jnp.tanh,
        key=key,
    )  # fmt: skip


class SwitchingForecaster(AbstractForecaster):
    """ŷ_{t+1} = y_t + Σ_k w_k(y_t) f_k(window), w = soft_switch(g(y_t) / T), closed loop.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key for the initial weights.
    - `experts`: K ≥ 2, the number of local experts (one expert alone is `tdnn`).
    - `delays`: D, how many past states each expert sees.
    - `width`: hidden width of each expert (one tanh layer); 0 makes each expert affine, a
      local linear model.
    - `gate_width`: hidden width of the gate's score network g (one tanh layer); 0 makes the
      scores affine in the state, which splits the state space by hyperplanes.
    - `temperature`: T > 0 of the softmax; the gate's weights are learned, so it can sharpen
      itself at any T.
    - `straight_through`: use only the top-scoring expert in the forward pass, with the
      softmax's gradient (straight-through estimator).
    - `competition`: λ ≥ 0. With λ > 0 the model adds to `fit`'s training loss
      (`aux["penalty"]`) λ times the competitive error of Jacobs, Jordan, Nowlan & Hinton
      (1991, "Adaptive mixtures of local experts") on the context's own one-step
      transitions (observed values only):
      −log Σ_k w_k(y_t) exp(−‖Δy_t − f_k‖² / 2σ²), with σ² the mixture's mean squared error
      there (held constant). The blended forecast error makes the experts cooperate — each
      can cover several regimes — while this error makes them compete, so that each state
      is given to the one expert that predicts it best. On Chua's circuit, with affine
      experts and gate, λ = 0.3 made the gate separate the three linear regions on 3 of 3
      seeds (normalised mutual information 0.88–0.91, against 0.0–0.70 without;
      `experiments/switching_chua.py`, docs/control-flow.md). 0 (off) by default.

    **Returns** `(forecast [horizon, dim], {"gates": [horizon, K]})`: row k holds the weight of
    each expert in forecast step k + 1 (rows sum to 1).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models import SwitchingForecaster

    model = SwitchingForecaster(3, key=jax.random.key(0), experts=3, delays=2)
    forecast, aux = model(jnp.zeros((16, 3)), horizon=25)  # [25, 3], aux["gates"]: [25, 3]
    ```
    """

    name: ClassVar[str] = "switching"
    has_gates: ClassVar[bool] = True
    gate_label: ClassVar[str] = "expert"
    experts: eqx.nn.MLP  # K experts stacked: every array leaf has a leading axis of K
    gate: eqx.nn.MLP
    count: int = eqx.field(static=True)
    delays: int = eqx.field(static=True)
    temperature: float = eqx.field(static=True)
    straight_through: bool = eqx.field(static=True)
    competition: float = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key,
        experts: int = 3,
        delays: int = 2,
        width: int = 16,
        gate_width: int = 16,
        temperature: float = 1.0,
        straight_through: bool = False,
        competition: float = 0.0,
    ):
        if experts < 2:
            raise DiffdynError(
                f"the switching forecaster needs at least 2 experts to switch between; got "
                f"experts={experts} (one expert alone is the tdnn model)."
            )
        if delays < 1:
            raise DiffdynError(f"delays must be a positive whole number; got {delays}.")
        if not temperature > 0:
            raise DiffdynError(f"temperature must be positive; got {temperature}.")
        if not competition >= 0:
            raise DiffdynError(f"competition must be 0 (off) or positive; got {competition}.")
        k_experts, k_gate = jax.random.split(key)
        n_in = delays * dim + (delays + 1) * exog_dim
        self.experts = eqx.filter_vmap(lambda k: _mlp(n_in, dim, width, key=k))(
            jax.random.split(k_experts, experts)
        )
        self.gate = _mlp(dim, experts, gate_width, key=k_gate)
        self.count = experts
        self.delays = delays
        self.temperature = float(temperature)
        self.straight_through = bool(straight_through)
        self.competition = float(competition)
        self.dim = dim
        self.exog_dim = exog_dim

    def weights(self, state: Float[Array, " dim"]) -> Float[Array, " experts"]:
        """The gate w(y) `[K]` at a (standardised) state: which expert the model uses there."""
        return soft_switch(
            self.gate(state), jnp.zeros((self.count, 1)), temperature=self.temperature,
            straight_through=self.straight_through,
        )[1]  # fmt: skip

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        n_context = context.shape[0]
        if n_context < self.delays:
            raise DiffdynError(
                f"the context ({n_context} steps) is shorter than the model's delays "
                f"({self.delays}): pass a context of at least {self.delays} steps."
            )
        # Step k predicts time C + k from states C-D+k..C+k-1 and inputs C-D+k..C+k.
        lags = jnp.arange(self.delays + 1)[None, :]
        rows = n_context - self.delays + jnp.arange(horizon)[:, None] + lags
        exog_windows = exog[rows]  # [horizon, D + 1, m]

        def step(window, exog_window):
            features = jnp.concatenate([window.ravel(), exog_window.ravel()])
            increments = eqx.filter_vmap(lambda expert: expert(features))(self.experts)
            increment, weights = soft_switch(
                self.gate(window[-1]), increments, temperature=self.temperature,
                straight_through=self.straight_through,
            )  # fmt: skip
            y = window[-1] + increment
            return jnp.concatenate([window[1:], y[None]]), (y, weights)

        _, (forecast, gates) = jax.lax.scan(
            step, context[-self.delays :], exog_windows, length=horizon
        )
        if self.competition == 0:
            return forecast, {"gates": gates}
        penalty = self.competition * self._competitive_loss(context, exog)
        return forecast, {"gates": gates, "penalty": penalty}

    def _competitive_loss(self, context, exog):
        """Jacobs et al. 1991's mixture-of-experts error on the context's own one-step
        transitions: −log Σ_k w_k exp(−‖Δy − f_k‖² / 2σ²), σ² the mixture's mean squared
        error (held constant), with the gate of the state the window ends at."""
        n_context, depth = context.shape[0], self.delays
        ends = jnp.arange(depth - 1, n_context - 1)  # the window ends at t, predicts t + 1
        rows = ends[:, None] - depth + 1 + jnp.arange(depth)[None, :]
        windows = context[rows]  # [N, D, d]
        exog_rows = ends[:, None] - depth + 1 + jnp.arange(depth + 1)[None, :]
        features = jnp.concatenate(
            [windows.reshape(len(ends), -1), exog[exog_rows].reshape(len(ends), -1)], axis=1
        )
        increments = context[ends + 1] - context[ends]  # [N, d]
        predicted = jax.vmap(lambda f: eqx.filter_vmap(lambda e: e(f))(self.experts))(features)
        errors = jnp.sum((predicted - increments[:, None]) ** 2, axis=-1)  # [N, K]
        weights = jax.vmap(self.weights)(context[ends])  # [N, K]
        mixed = jnp.sum(weights[..., None] * predicted, axis=1)
        scale = jax.lax.stop_gradient(jnp.mean(jnp.sum((mixed - increments) ** 2, -1))) + 1e-12
        log_like = jax.nn.logsumexp(-errors / (2 * scale), b=weights, axis=1)
        return -jnp.mean(log_like)


register_model(
    ModelSpec(
        "switching",
        SwitchingForecaster,
        {
            "experts": 3,
            "delays": 2,
            "width": 16,
            "gate_width": 16,
            "temperature": 1.0,
            "straight_through": False,
            "competition": 0.0,
        },
        "K local experts on the last lags mixed by a soft switch on the state (tutorial §2)",
        training={"context": 32, "horizon": 10, "strategy": "curriculum", "learning_rate": 3e-3},
    )
)
