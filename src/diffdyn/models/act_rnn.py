"""ACT recurrent forecaster: a recurrent cell that ponders as many steps as each input needs.

Graves (2016), "Adaptive computation time for recurrent neural networks", §2: at every time
step t the cell runs N(t) times on the same input, x_t ⊕ δ_{n,1} (a flag set on the first
ponder step only),

    s^n_t = S(s^{n-1}_t, x_t ⊕ δ_{n,1}),  s^0_t = s_{t-1},   h^n_t = σ(w_h · s^n_t + b_h),

until the halting probabilities add up to 1 − ε (at most `max_steps`), and moves on with the
halting-weighted mean state s_t = Σ_n p^n_t s^n_t (`diffdyn.nn.halting_loop`). The readout
predicts the increment, ŷ_{t+1} = y_t + V s_t + c, rolled out closed loop as in
`models.rnn`. Training adds the ponder cost τ·mean_t (N(t) + R(t)) to the loss
(`aux["penalty"]`), so the model ponders more only where that lowers the error more.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import DiffdynError
from ..nn import AbstractRecurrentCell, Halting, halting_loop
from .base import AbstractForecaster
from .inputs import check_inputs, step_exog
from .registry import ModelSpec, register_model
from .rnn import make_cell

State = Any


class ACTForecaster(AbstractForecaster):
    """A recurrent cell with adaptive computation time, read out as increments.

    **Arguments:**

    - `dim`, `exog_dim`: number of state variables and of exogenous inputs.
    - `key`: PRNG key for the initial weights.
    - `cell`: `"gru"`, `"lstm"` or `"rnn"`.
    - `hidden`: width of the cell's hidden state.
    - `max_steps`: M ≥ 1, the most ponder steps per time step (M = 1 is the plain cell).
    - `ponder_cost`: τ ≥ 0, the weight of the ponder cost N + R in the training loss.
    - `epsilon`: ε ∈ [0, 1), so that a single ponder step can halt.

    **Returns** `(forecast [horizon, dim], aux)` with `aux["ponder"]` `[horizon]`, the ponder
    steps N behind each forecast step; `aux["gates"]` `[horizon, max_steps]`, their halting
    weights p^n (rows sum to 1); `aux["penalty"]`, the ponder cost τ · mean (N + R) over every
    step read or forecast.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.models import ACTForecaster

    model = ACTForecaster(3, key=jax.random.key(0), hidden=16, max_steps=4)
    forecast, aux = model(jnp.zeros((32, 3)), horizon=20)  # aux["ponder"]: [20], 1 … 4
    ```
    """

    name: ClassVar[str] = "act-rnn"
    has_gates: ClassVar[bool] = True
    gate_label: ClassVar[str] = "ponder step"
    cell: AbstractRecurrentCell
    halting: eqx.nn.Linear
    readout: eqx.nn.Linear
    cell_name: str = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    ponder_cost: float = eqx.field(static=True)
    epsilon: float = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key,
        cell: str = "gru",
        hidden: int = 32,
        max_steps: int = 3,
        ponder_cost: float = 1e-3,
        epsilon: float = 0.01,
    ):
        if max_steps < 1:
            raise DiffdynError(
                f"max_steps must be at least 1 (the ponder steps allowed per time step); got "
                f"{max_steps}."
            )
        if not 0 <= epsilon < 1:
            raise DiffdynError(f"epsilon must lie in [0, 1); got {epsilon}.")
        if not ponder_cost >= 0:
            raise DiffdynError(f"ponder_cost must be 0 or more; got {ponder_cost}.")
        k_cell, k_halt, k_out = jax.random.split(key, 3)
        self.cell = make_cell(cell, dim + 2 * exog_dim + 1, hidden, key=k_cell)
        halting = eqx.nn.Linear(hidden, "scalar", key=k_halt)
        # A positive halting bias: σ(1) ≈ 0.73, so pondering starts at one or two steps.
        self.halting = eqx.tree_at(lambda m: m.bias, halting, jnp.ones(()))
        self.readout = eqx.nn.Linear(hidden, dim, key=k_out)
        self.cell_name = cell
        self.max_steps = max_steps
        self.ponder_cost = float(ponder_cost)
        self.epsilon = float(epsilon)
        self.dim = dim
        self.exog_dim = exog_dim

    def ponder(self, state: State, projected: Float[Array, " gates"]) -> Halting:
        """The halting loop on one input whose input projection (flag 0) is `projected`."""
        flag = self.cell.input_weight[:, -1]  # the first-step flag's column

        def step(s, n):
            p = projected + jnp.where(n == 0, 1.0, 0.0) * flag
            return self.cell.update(p, self.cell.recurrent_input(s), s)

        def halt(s):
            return self.halting(self.cell.hidden(s))

        return halting_loop(step, halt, state, max_steps=self.max_steps, epsilon=self.epsilon)

    def _project(self, inputs: Float[Array, "time input"]) -> Float[Array, "time gates"]:
        flags = jnp.zeros((inputs.shape[0], 1), inputs.dtype)
        return self.cell.project_inputs(jnp.concatenate([inputs, flags], axis=1))

    def read(self, inputs: Float[Array, "time input"], state: State | None = None):
        """Read a sequence of inputs (y_t ⊕ u_t ⊕ u_{t+1}); returns the final state and the
        `Halting` of every step (stacked)."""
        state = self.cell.initial_state() if state is None else state

        def body(s, p):
            halted = self.ponder(s, p)
            return halted.state, halted

        return jax.lax.scan(body, state, self._project(inputs))

    def step(self, state: State, y: Float[Array, " dim"], exog_t: Float[Array, " 2m"]):
        """One closed-loop step: `(state, ŷ_{t+1}, halting)` after reading y_t ⊕ u_t ⊕ u_{t+1}."""
        halted = self.ponder(state, self._project(jnp.concatenate([y, exog_t])[None])[0])
        return halted.state, y + self.readout(self.cell.hidden(halted.state)), halted

    def __call__(self, context, exog=None, *, horizon, key=None):
        exog = check_inputs(context, exog, horizon, dim=self.dim, exog_dim=self.exog_dim)
        inputs_exog = step_exog(exog)  # row t: u_t ⊕ u_{t+1}
        n_context = context.shape[0]
        # One scan over context and forecast, so that the ponder loop is compiled once: step t
        # reads the observed y_t while t < C, then its own previous prediction.
        length = n_context + horizon - 1
        observed = jnp.concatenate([context, jnp.zeros((horizon - 1, self.dim), context.dtype)])
        is_observed = jnp.arange(length) < n_context

        def body(carry, inputs):
            state, predicted = carry
            y, exog_t, read_y = inputs
            state, predicted, halted = self.step(state, jnp.where(read_y, y, predicted), exog_t)
            return (state, predicted), (
                predicted,
                halted.steps,
                halted.weights,
                halted.ponder_cost,
            )

        init = (self.cell.initial_state(), context[-1])
        _, (predictions, steps, weights, cost) = jax.lax.scan(
            body, init, (observed, inputs_exog[:length], is_observed)
        )
        # Forecast step k + 1 came from the ponder on the input before it (step C - 1 + k).
        aux = {
            "ponder": steps[n_context - 1 :],
            "gates": weights[n_context - 1 :],
            "penalty": self.ponder_cost * jnp.mean(cost),
        }
        return predictions[n_context - 1 :], aux


register_model(
    ModelSpec(
        "act-rnn",
        ACTForecaster,
        {"hidden": 32, "max_steps": 3, "ponder_cost": 1e-3, "epsilon": 0.01},
        "GRU with adaptive computation time (Graves 2016): ponders more steps where needed",
        training={"context": 48, "horizon": 10, "strategy": "curriculum", "learning_rate": 3e-3},
        fixed={"cell": "gru"},
    )
)
