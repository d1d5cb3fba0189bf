"""The Differentiable Neural Computer: a controller network with the DNC memory access.

Graves et al. (2016), Methods, "Controller network": at step t the controller reads the input
x_t and the previous read vectors r_{t-1}, χ_t = [x_t; r_{t-1}^1; …; r_{t-1}^R]; its output h_t
emits the interface vector of `DNCMemory` (which writes, then reads, the memory); the network's
output is y_t = W_y [h_t; r_t^1; …; r_t^R] + b (the paper's υ_t + W_r [r_t]).

The controller is an LSTM by default (as in the paper) or a feed-forward layer, h_t =
tanh(W [χ_t] + b), whose only memory is then the external one.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import UnknownNameError, did_you_mean
from .memory import DNCMemory
from .recurrent import LSTMCell

CONTROLLERS = ("lstm", "feedforward")


class DNC(eqx.Module):
    """A DNC on one sequence: `dnc(inputs [T, n_in]) -> outputs [T, n_out]` (or step by step
    with `initial_state` and `step`).

    **Arguments:**

    - `n_in`, `n_out`: input and output widths.
    - `key`: PRNG key.
    - `hidden`: controller width; `controller`: `"lstm"` or `"feedforward"`.
    - `memory_size`, `word_size`, `read_heads`, `write_heads`: the memory (see `DNCMemory`).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import DNC

    dnc = DNC(9, 8, key=jax.random.key(0), hidden=32, memory_size=16, word_size=8)
    dnc(jnp.zeros((17, 9))).shape  # (17, 8)
    ```
    """

    controller: LSTMCell | eqx.nn.Linear
    memory: DNCMemory
    output: eqx.nn.Linear
    kind: str = eqx.field(static=True)

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        key: PRNGKeyArray,
        hidden: int = 64,
        controller: str = "lstm",
        memory_size: int = 32,
        word_size: int = 16,
        read_heads: int = 2,
        write_heads: int = 1,
    ):
        if controller not in CONTROLLERS:
            raise UnknownNameError(
                f"unknown controller {controller!r}; choose one of {', '.join(CONTROLLERS)}."
                f"{did_you_mean(controller, list(CONTROLLERS))}"
            )
        k_ctrl, k_mem, k_out = jax.random.split(key, 3)
        self.memory = DNCMemory(
            hidden,
            memory_size=memory_size,
            word_size=word_size,
            read_heads=read_heads,
            write_heads=write_heads,
            key=k_mem,
        )
        chi = n_in + read_heads * word_size
        if controller == "lstm":
            self.controller = LSTMCell(chi, hidden, key=k_ctrl)
        else:
            self.controller = eqx.nn.Linear(chi, hidden, key=k_ctrl)
        self.output = eqx.nn.Linear(hidden + read_heads * word_size, n_out, key=k_out)
        self.kind = controller

    def initial_state(self) -> tuple[Any, Any, Float[Array, "reads word"]]:
        """(controller state, memory state, read vectors), all zero."""
        if isinstance(self.controller, LSTMCell):
            ctrl = self.controller.initial_state()
        else:
            ctrl = jnp.zeros(0)
        reads = jnp.zeros((self.memory.read_heads, self.memory.word_size))
        return ctrl, self.memory.initial_state(), reads

    def step(self, state, x: Float[Array, " n_in"]):
        """One step: `(output [n_out], next state)`.

        Under reverse mode the step is rematerialised (`jax.checkpoint`, nothing saved): a
        `lax.scan` over steps then stores only the state between steps, and the backward pass
        recomputes each step's intermediates instead of writing and reading back about a
        hundred small arrays per step (bench/dnc_step.py).
        """
        return _remat_step(self, state, x)

    def _step(self, state, x: Float[Array, " n_in"]):
        ctrl, mem, reads = state
        chi = jnp.concatenate([x, reads.reshape(-1)])
        if isinstance(self.controller, LSTMCell):
            ctrl = self.controller(ctrl, chi)
            h = self.controller.hidden(ctrl)
        else:
            h = jnp.tanh(self.controller(chi))
        reads, mem = self.memory(mem, h)
        y = self.output(jnp.concatenate([h, reads.reshape(-1)]))
        return y, (ctrl, mem, reads)

    def __call__(self, inputs: Float[Array, "time n_in"]) -> Float[Array, "time n_out"]:
        def body(state, x):
            y, state = self.step(state, x)
            return state, y

        _, outputs = jax.lax.scan(body, self.initial_state(), inputs)
        return outputs


def _step(dnc: DNC, state, x):
    return dnc._step(state, x)


def _remat_step(dnc: DNC, state, x):
    # A module-level function, so that JAX's trace cache for `jax.checkpoint` is shared by all
    # calls (a fresh lambda per call would be traced again each time).
    return jax.checkpoint(_step, policy=jax.checkpoint_policies.nothing_saveable)(dnc, state, x)
