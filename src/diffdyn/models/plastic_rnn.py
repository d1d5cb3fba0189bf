"""Plastic recurrent forecaster: an Elman network whose recurrent connections carry a Hebbian
trace that keeps learning from the data it reads (tutorial §3.3, eqs. 12–13; Miconi et al.
2018, 2019).

h_t = tanh(W x_t + (U + α ⊙ H_{t−1}) h_{t−1} + b),  H_t = η h_t h_{t−1}ᵀ + (1 − η) H_{t−1},
ŷ_{t+1} = y_t + V h_t + c (the increment readout of the `rnn` forecasters).

The trace is part of the recurrent state: it starts at zero, adapts while the model reads the
context and keeps adapting during the closed-loop forecast, with no gradient step — so a model
trained on one regime of a system can adjust to another from the context alone. W, U, α, η
(and V, c) are trained by backpropagation through the context and the rollout.
`-p plastic=false` is the non-plastic twin (α = 0: an Elman cell initialised like the `rnn`
forecaster's); `-p rule=oja` or `rule=neuromodulated` (Backpropamine: the network sets its
own rate η(t)) change the rule.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..nn.plasticity import PlasticCell, run_plastic_sequence
from .base import AbstractForecaster
from .inputs import check_inputs, step_exog
from .registry import ModelSpec, register_model


class PlasticRNNForecaster(AbstractForecaster):
    """One plastic recurrent layer (`nn.PlasticCell`) read out as increments.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key for the initial weights.
    - `hidden`: width of the hidden state (the trace is `hidden × hidden`).
    - `eta`: initial plasticity rate in (0, 1] (trained).
    - `rule`: `"hebbian"` (eq. 13), `"oja"` or `"neuromodulated"`.
    - `plastic`: `False` for the non-plastic twin.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models.plastic_rnn import PlasticRNNForecaster

    model = PlasticRNNForecaster(3, key=jax.random.key(0), hidden=16)
    forecast, aux = model(jnp.zeros((32, 3)), horizon=50)  # forecast: [50, 3]
    ```
    """

    name: ClassVar[str] = "plastic-rnn"
    cell: PlasticCell
    readout: eqx.nn.Linear
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key,
        hidden: int = 32,
        eta: float = 0.1,
        rule: str = "hebbian",
        plastic: bool = True,
    ):
        k_cell, k_out = jax.random.split(key)
        self.cell = PlasticCell(
            dim + 2 * exog_dim, hidden, key=k_cell, rule=rule, eta=eta, plastic=plastic
        )
        self.readout = eqx.nn.Linear(hidden, dim, key=k_out)
        self.dim = dim
        self.exog_dim = exog_dim

    def read_context(self, context, inputs_exog):
        """The state `(h, H)` after reading the context, and the first forecast."""
        x = jnp.concatenate([context, inputs_exog[: context.shape[0]]], axis=1)
        hiddens, state = run_plastic_sequence(self.cell, x)
        return state, context[-1] + self.readout(hiddens[-1])

    def step(self, state, y, exog_t):
        """One closed-loop step: the trace keeps adapting to the model's own forecast."""
        state = self.cell(state, jnp.concatenate([y, exog_t]))
        return state, y + self.readout(self.cell.hidden(state))

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        inputs_exog = step_exog(exog)  # row t: u_t ⊕ u_{t+1}
        state, first = self.read_context(context, inputs_exog)

        def body(carry, exog_t):
            state, y = carry
            state, y = self.step(state, y, exog_t)
            return (state, y), y

        _, rest = jax.lax.scan(
            body, (state, first), inputs_exog[context.shape[0] :], length=horizon - 1
        )
        return jnp.concatenate([first[None], rest]), {}


register_model(
    ModelSpec(
        "plastic-rnn",
        PlasticRNNForecaster,
        {"hidden": 32, "eta": 0.1, "rule": "hebbian", "plastic": True},
        "recurrent net with Hebbian plastic connections (Miconi et al. 2018), adapts in use",
        training={"context": 48, "horizon": 10, "strategy": "curriculum", "learning_rate": 3e-3},
    )
)
