"""Recurrent cells (Elman, LSTM, GRU) on one example, and `run_sequence` to scan them.

Each cell splits its step into three parts, so that a sequence costs one matmul outside the
loop and one inside it:

- `project_inputs(inputs [T, n_in]) -> [T, G]`: the input weights and bias applied to the whole
  sequence at once (G = gates × hidden);
- `recurrent_input(state) -> [G]`: the recurrent weights of every gate fused in one `[G, hidden]`
  matrix, the only matmul inside the loop;
- `update(projected, recurrent, state) -> state`: the gate nonlinearities, which hold no
  parameters.

Weights are stored `[out, in]`, as in `eqx.nn.Linear` and PyTorch (a PyTorch LSTM's
`weight_ih_l0`, `weight_hh_l0` copy over as they are; its two biases add up to `bias`).

A single step, `cell(state, x)`, composes the same three parts; closed-loop rollouts, whose
next input is not known in advance, use it.
"""

from __future__ import annotations

import abc
import math
from functools import partial
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

State = Any  # an array `[hidden]`, or a tuple of them (the LSTM's `(h, c)`)


def _uniform(key: PRNGKeyArray, shape: tuple[int, ...], bound: float) -> Array:
    return jax.random.uniform(key, shape, minval=-bound, maxval=bound)


def _sigmoid_tanh_scales(tanh_gates: tuple[bool, ...], hidden_size: int) -> tuple[Array, Array]:
    """Scale and shift turning one `tanh` over all gates into σ or tanh gate by gate.

    σ(z) = (1 + tanh(z/2)) / 2, so `tanh(z · a) · a + b` with (a, b) = (½, ½) is a sigmoid and
    with (1, 0) a tanh. One elementwise `tanh` over the fused pre-activations is much faster on
    XLA's CPU backend than separate σ and tanh on slices of them (measured in
    bench/lstm_train_step.py).
    """
    scale = jnp.repeat(jnp.array([1.0 if t else 0.5 for t in tanh_gates]), hidden_size)
    shift = jnp.repeat(jnp.array([0.0 if t else 0.5 for t in tanh_gates]), hidden_size)
    return scale, shift


class AbstractRecurrentCell(eqx.Module):
    """A recurrent cell whose input projection can be hoisted out of the time loop.

    Concrete cells declare `input_weight [G, n_in]`, `recurrent_weight [G, hidden]`,
    `bias [G]` and `hidden_size`, and implement `update`, `hidden` and `initial_state`.
    `update` must use only its arguments (and static fields): every parameter the recurrence
    sees is `recurrent_weight`. A cell whose `update` reads its two inputs only through their
    sum `projected + recurrent` may set `additive_recurrence = True` (Elman, LSTM), which lets
    `run_sequence`'s derivative merge their two tangents.
    """

    additive_recurrence: ClassVar[bool] = False

    input_weight: eqx.AbstractVar[Float[Array, "gates input"]]
    recurrent_weight: eqx.AbstractVar[Float[Array, "gates hidden"]]
    bias: eqx.AbstractVar[Float[Array, " gates"]]
    hidden_size: eqx.AbstractVar[int]

    def project_inputs(self, inputs: Float[Array, "time input"]) -> Float[Array, "time gates"]:
        """The input part of every gate's pre-activation: for a whole sequence, one matmul."""
        return inputs @ self.input_weight.T + self.bias[None, :]

    def recurrent_input(self, state: State) -> Float[Array, " gates"]:
        """The recurrent part of every gate's pre-activation: one fused matmul."""
        return self.hidden(state) @ self.recurrent_weight.T

    @abc.abstractmethod
    def update(
        self, projected: Float[Array, " gates"], recurrent: Float[Array, " gates"], state: State
    ) -> State:
        """The next state from `project_inputs`, `recurrent_input` and the state."""

    @abc.abstractmethod
    def hidden(self, state: State) -> Float[Array, " hidden"]:
        """The hidden vector h_t of a state (what the next layer and the readout see)."""

    @abc.abstractmethod
    def initial_state(self) -> State:
        """The zero state."""

    def __call__(self, state: State, x: Float[Array, " input"]) -> State:
        """One step: the next state after input `x`."""
        return self.update(self.project_inputs(x[None])[0], self.recurrent_input(state), state)


class ElmanCell(AbstractRecurrentCell):
    """Elman (1990) recurrent cell, tutorial eq. (2): h_t = tanh(W x_t + U h_{t-1} + b).

    **Arguments:**

    - `input_size`, `hidden_size`: widths of x_t and h_t.
    - `key`: PRNG key for the initial weights, uniform in ±1/√hidden.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import ElmanCell, run_sequence

    cell = ElmanCell(3, 16, key=jax.random.key(0))
    hiddens, last = run_sequence(cell, jnp.ones((10, 3)))  # [10, 16], [16]
    ```
    """

    additive_recurrence: ClassVar[bool] = True
    input_weight: Float[Array, "hidden input"]
    recurrent_weight: Float[Array, "hidden hidden"]
    bias: Float[Array, " hidden"]
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray):
        k_in, k_rec, k_b = jax.random.split(key, 3)
        bound = 1 / math.sqrt(hidden_size)
        self.input_weight = _uniform(k_in, (hidden_size, input_size), bound)
        self.recurrent_weight = _uniform(k_rec, (hidden_size, hidden_size), bound)
        self.bias = _uniform(k_b, (hidden_size,), bound)
        self.hidden_size = hidden_size

    def update(self, projected, recurrent, state):
        return jnp.tanh(projected + recurrent)

    def hidden(self, state):
        return state

    def initial_state(self):
        return jnp.zeros(self.hidden_size)


class LSTMCell(AbstractRecurrentCell):
    """Long short-term memory cell with a forget gate (Hochreiter & Schmidhuber 1997; Gers et
    al. 2000).

    i, f, o = σ(W_{i,f,o} x_t + U_{i,f,o} h_{t-1} + b_{i,f,o}),
    g = tanh(W_g x_t + U_g h_{t-1} + b_g),
    c_t = f ⊙ c_{t-1} + i ⊙ g,   h_t = o ⊙ tanh(c_t).

    The four gates are fused, in PyTorch's order i, f, g, o: `input_weight [4H, n_in]`,
    `recurrent_weight [4H, H]`, `bias [4H]`. The state is `(h, c)`.

    **Arguments:**

    - `input_size`, `hidden_size`: widths of x_t and h_t.
    - `key`: PRNG key. Weights are uniform in ±1/√hidden; the forget-gate bias starts at 1 so
      that the cell remembers by default (Gers et al. 2000; Jozefowicz et al. 2015).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import LSTMCell, run_sequence

    cell = LSTMCell(3, 16, key=jax.random.key(0))
    hiddens, (h, c) = run_sequence(cell, jnp.ones((10, 3)))  # [10, 16], ([16], [16])
    ```
    """

    additive_recurrence: ClassVar[bool] = True
    input_weight: Float[Array, "4*hidden input"]
    recurrent_weight: Float[Array, "4*hidden hidden"]
    bias: Float[Array, " 4*hidden"]
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray):
        k_in, k_rec, k_b = jax.random.split(key, 3)
        bound = 1 / math.sqrt(hidden_size)
        self.input_weight = _uniform(k_in, (4 * hidden_size, input_size), bound)
        self.recurrent_weight = _uniform(k_rec, (4 * hidden_size, hidden_size), bound)
        bias = _uniform(k_b, (4 * hidden_size,), bound)
        self.bias = bias.at[hidden_size : 2 * hidden_size].add(1.0)
        self.hidden_size = hidden_size

    def update(self, projected, recurrent, state):
        _, c = state
        scale, shift = _sigmoid_tanh_scales((False, False, True, False), self.hidden_size)
        gates = jnp.tanh((projected + recurrent) * scale) * scale + shift
        i, f, g, o = jnp.split(gates, 4)
        c = f * c + i * g
        return o * jnp.tanh(c), c

    def hidden(self, state):
        return state[0]

    def initial_state(self):
        return jnp.zeros(self.hidden_size), jnp.zeros(self.hidden_size)


class GRUCell(AbstractRecurrentCell):
    """Gated recurrent unit (Cho et al. 2014, eqs. 5–8), with the reset gate applied after the
    recurrent product (the cuDNN form).

    r, z = σ(W_{r,z} x_t + U_{r,z} h_{t-1} + b_{r,z}),
    n = tanh(W_n x_t + b_n + r ⊙ (U_n h_{t-1})),
    h_t = z ⊙ h_{t-1} + (1 − z) ⊙ n.

    Cho et al. write U_n (r ⊙ h_{t-1}); applying r after the product lets all three recurrent
    products be one fused `[3H, H]` matmul (gate order r, z, n, as in PyTorch).

    **Arguments:**

    - `input_size`, `hidden_size`: widths of x_t and h_t.
    - `key`: PRNG key for the initial weights, uniform in ±1/√hidden.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import GRUCell, run_sequence

    cell = GRUCell(3, 16, key=jax.random.key(0))
    hiddens, h = run_sequence(cell, jnp.ones((10, 3)))  # [10, 16], [16]
    ```
    """

    input_weight: Float[Array, "3*hidden input"]
    recurrent_weight: Float[Array, "3*hidden hidden"]
    bias: Float[Array, " 3*hidden"]
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: PRNGKeyArray):
        k_in, k_rec, k_b = jax.random.split(key, 3)
        bound = 1 / math.sqrt(hidden_size)
        self.input_weight = _uniform(k_in, (3 * hidden_size, input_size), bound)
        self.recurrent_weight = _uniform(k_rec, (3 * hidden_size, hidden_size), bound)
        self.bias = _uniform(k_b, (3 * hidden_size,), bound)
        self.hidden_size = hidden_size

    def update(self, projected, recurrent, state):
        size = self.hidden_size
        scale, shift = _sigmoid_tanh_scales((False, False), size)
        gates = jnp.tanh((projected[: 2 * size] + recurrent[: 2 * size]) * scale) * scale + shift
        r, z = jnp.split(gates, 2)
        n = jnp.tanh(projected[2 * size :] + r * recurrent[2 * size :])
        return z * state + (1 - z) * n

    def hidden(self, state):
        return state

    def initial_state(self):
        return jnp.zeros(self.hidden_size)


def run_sequence(
    cell: AbstractRecurrentCell,
    inputs: Float[Array, "time input"],
    state: State | None = None,
) -> tuple[Float[Array, "time hidden"], State]:
    """Run `cell` over a sequence: every hidden vector, and the final state.

    The input projection of the whole sequence is one matmul before the loop; the loop
    (`jax.lax.scan`) does the recurrent matmul and the gate nonlinearities only.

    Differentiation goes through a custom JVP (`jax.custom_jvp`, so forward mode, reverse
    mode and their compositions all work): the tangent that a change of the recurrent weights
    U causes, h_{t-1} dUᵀ, is computed for all steps at once outside the loop, from the stored
    hidden states. In reverse mode the gradient of U is then one `[G, T] · [T, hidden]` product
    after the loop instead of a sum accumulated step by step inside it; with the batch split
    over several devices (`train(..., devices=N)`) the step-by-step sum cost one all-reduce
    per time step, now there is one per training step. The backward loop recomputes the cheap
    gate nonlinearities from the stored state and recurrent product instead of storing their
    intermediates (`jax.checkpoint`): on XLA's CPU backend every stored per-step array costs a
    kernel launch (bench/lstm_train_step.py).

    **Arguments:**

    - `cell`: an `ElmanCell`, `LSTMCell`, `GRUCell` or other `AbstractRecurrentCell`.
    - `inputs`: the sequence, `[T, input_size]`.
    - `state`: the state before the first input; `None` for `cell.initial_state()`.

    **Returns:** `(hiddens [T, hidden], final_state)`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import LSTMCell, run_sequence

    cell = LSTMCell(2, 8, key=jax.random.key(0))
    hiddens, state = run_sequence(cell, jnp.zeros((5, 2)))
    hiddens.shape  # (5, 8)
    ```
    """
    if inputs.ndim != 2:
        raise ValueError(
            f"run_sequence takes one sequence [time, input]; got shape {inputs.shape}. "
            "Batch with jax.vmap."
        )
    if state is None:
        state = cell.initial_state()
    # Only arrays are differentiated; anything else a cell holds (a callable, say) is static.
    arrays, static = eqx.partition(cell, eqx.is_array)
    return _recur(static, arrays, cell.project_inputs(inputs), state)


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _recur(static, arrays, projected, state):
    """The recurrence of `run_sequence` on projected inputs `[T, G]`: `(hiddens, final)`."""
    cell = eqx.combine(arrays, static)

    def step(state, projected_t):
        state = cell.update(projected_t, cell.recurrent_input(state), state)
        return state, cell.hidden(state)

    state, hiddens = jax.lax.scan(step, state, projected)
    return hiddens, state


@_recur.defjvp
def _recur_jvp(static, primals, tangents):
    arrays, projected, state0 = primals
    d_cell, d_projected, d_state0 = tangents
    cell = eqx.combine(arrays, static)

    def step(state, projected_t):
        recurrent = cell.recurrent_input(state)
        state = cell.update(projected_t, recurrent, state)
        return state, (state, recurrent)

    final, (states, recurrents) = jax.lax.scan(step, state0, projected)
    hiddens = jax.vmap(cell.hidden)(states)
    previous = jax.tree_util.tree_map(
        lambda first, rest: jnp.concatenate([first[None], rest[:-1]]), state0, states
    )
    # What a change of U does to every step's recurrent product, outside the loop.
    from_weight = jax.vmap(cell.hidden)(previous) @ d_cell.recurrent_weight.T
    weight = cell.recurrent_weight
    update = jax.checkpoint(lambda s, p, r: cell.update(p, r, s))  # recomputed going back
    if cell.additive_recurrence:
        # The pre-activation is projected + recurrent: the weight's term joins the input's
        # tangent (one stacked cotangent in reverse mode instead of two equal ones).
        def tangent_step(d_state, xs):
            s, p_t, r_t, dp_t = xs
            d_recurrent = cell.hidden(d_state) @ weight.T
            _, d_new = jax.jvp(update, (s, p_t, r_t), (d_state, dp_t, d_recurrent))
            return d_new, cell.hidden(d_new)

        xs = (previous, projected, recurrents, d_projected + from_weight)
    else:

        def tangent_step(d_state, xs):
            s, p_t, r_t, dp_t, e_t = xs
            d_recurrent = cell.hidden(d_state) @ weight.T + e_t
            _, d_new = jax.jvp(update, (s, p_t, r_t), (d_state, dp_t, d_recurrent))
            return d_new, cell.hidden(d_new)

        xs = (previous, projected, recurrents, d_projected, from_weight)
    d_final, d_hiddens = jax.lax.scan(tangent_step, d_state0, xs)
    return (hiddens, final), (d_hiddens, d_final)
