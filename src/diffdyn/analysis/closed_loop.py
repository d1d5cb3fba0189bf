"""A trained forecaster run closed loop, written as an autonomous map s_{n+1} = F(s_n).

A forecaster fed its own predictions *is* a dynamical system; its state is everything its next
prediction depends on: the window of the last values it fed back and any hidden state it
carries (a recurrent cell's, a reservoir's, a DNC's memory). `closed_loop` writes a model as
such a map on a flat state vector, so that `jax.linearize` gives the tangent map that
Benettin's method needs (`model_lyapunov_spectrum`).

- **Window models** (a model whose next value depends only on the last m values it produced:
  TDNN, NG-RC, the Transformer, persistence, a neural ODE on the observed state): s is that
  window, F shifts the new prediction in. m is read off the model's own gradients — the
  oldest lag whose ∂ŷ/∂y is not exactly zero — so no lag it ignores enters the state (such
  a lag would be a direction F annihilates, an exponent of −∞).
- **Re-encoding decoders** (`seq2seq-attention` with `reencode = p`): the model encodes its
  latest window afresh every p steps, so F is one chunk of p forecast steps on that window.
- **Models that carry a hidden state** (RNN/LSTM/GRU, ESN, DNC, encoder–decoders, DA-RNN,
  MTNet, the ACT forecaster, a neural ODE with augmented dimensions): s = (hidden state,
  last value), with F the model's own closed-loop step. What an
  encoder computed once from the first context (a summary vector, annotations, a memory of
  past blocks) never changes in closed loop: it is held fixed as part of F, not of s, so
  that its neutral directions do not add zero exponents.

Every map is checked against the model itself: iterated from the state after a context, it
must reproduce the model's forecast from that context. A model that fails (a new model whose
hidden state this module cannot see) is refused with `NotAMapError`, one line saying why.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from ..errors import DiffdynError
from ..models.base import AbstractForecaster
from ..nn import masked_softmax, run_sequence
from ..systems.flow import rk4_step

CHECK_STEPS = 12  # forecast steps (or chunks) over which a map must reproduce the model


class NotAMapError(DiffdynError):
    """A model whose closed loop cannot be written as a map of a state this module can see."""


class AbstractClosedLoop(eqx.Module):
    """A closed-loop forecaster as an autonomous map on a flat state vector.

    - `step(state) -> state`: one application of F (`steps` forecast steps).
    - `observe(state) -> [steps, dim]`: the forecast values the step into `state` produced.
    - `describe`: what the state is, in words.
    - `steps`: forecast steps per application of F (1 but for re-encoding decoders).

    Hidden states that are pytrees (an LSTM's (h, c), a DNC's memory) are flattened with
    `ravel_pytree` of a template of the same structure.
    """

    steps: eqx.AbstractVar[int]
    describe: eqx.AbstractVar[str]

    @abc.abstractmethod
    def step(self, state: Float[Array, " n"]) -> Float[Array, " n"]:
        """The next state."""

    @abc.abstractmethod
    def observe(self, state: Float[Array, " n"]) -> Float[Array, "steps dim"]:
        """The forecast values emitted by the step that produced `state`."""


# -- window models -----------------------------------------------------------------------------
class WindowLoop(AbstractClosedLoop):
    """s = the last `window` values (flattened); F forecasts `steps` values from them and
    shifts them in (`steps` > 1: a decoder that re-encodes its window every `steps` steps)."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: AbstractForecaster
    window: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    def step(self, state):
        values = state.reshape(self.window, self.dim)
        forecast, _ = self.model(values, None, horizon=self.steps)
        return jnp.concatenate([values, forecast])[-self.window :].reshape(-1)

    def observe(self, state):
        return state.reshape(self.window, self.dim)[-self.steps :]


def memory_length(
    model: AbstractForecaster, contexts: Float[Array, "windows context dim"], horizon: int = 1
) -> int:
    """How many of the newest context rows the model's forecast depends on: one more than the
    oldest lag k at which ∂ŷ_{t+1..t+horizon}/∂y_{t−k} is not exactly zero, for any of
    `contexts`."""
    jacobians = jax.vmap(jax.jacrev(lambda c: model(c, None, horizon=horizon)[0]))(contexts)
    per_row = np.asarray(jnp.any(jacobians != 0, axis=(0, 1, 2, 4)))  # [context]
    used = np.nonzero(per_row)[0]
    return 1 if used.size == 0 else int(contexts.shape[1] - used.min())


# -- hidden-state models -----------------------------------------------------------------------
class RecurrentLoop(AbstractClosedLoop):
    """`rnn`, `lstm`, `gru` (`RecurrentForecaster`): s = (every layer's cell state, y);
    F: h^l ← cell^l(h^l, h^{l−1}), y ← y + V h^L + c (tutorial eqs. 2–3, increment readout)."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: Any
    unravel: Callable = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    @classmethod
    def build(cls, model, context):
        x = context[:-1]
        states = []
        for cell in model.cells:
            if x.shape[0]:
                x, state = run_sequence(cell, x)
            else:
                state = cell.initial_state()
            states.append(state)
        flat, unravel = ravel_pytree((tuple(states), context[-1]))
        describe = (
            f"the hidden state of {len(model.cells)} {model.cell} layer(s) and the last value"
        )
        return cls(1, describe, model, unravel, model.dim), flat

    def step(self, state):
        states, y = self.unravel(state)
        x, new = y, []
        for cell, s in zip(self.model.cells, states):
            s = cell(s, x)
            x = cell.hidden(s)
            new.append(s)
        return ravel_pytree((tuple(new), y + self.model.readout(x)))[0]

    def observe(self, state):
        return self.unravel(state)[1][None]


class PlasticLoop(AbstractClosedLoop):
    """`plastic-rnn`: s = (hidden state h, Hebbian trace H, last value y); F is the model's own
    closed-loop step, in which the trace keeps adapting (tutorial eqs. 12–13)."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: Any
    unravel: Callable = eqx.field(static=True)

    @classmethod
    def build(cls, model, context):
        if context.shape[0] > 1:
            state, _ = model.read_context(context[:-1], jnp.zeros((context.shape[0] - 1, 0)))
        else:
            state = model.cell.initial_state()
        flat, unravel = ravel_pytree((state, context[-1]))
        describe = "the hidden state, the Hebbian trace and the last value"
        return cls(1, describe, model, unravel), flat

    def step(self, state):
        s, y = self.unravel(state)
        return ravel_pytree(self.model.step(s, y, jnp.zeros(0, y.dtype)))[0]

    def observe(self, state):
        return self.unravel(state)[1][None]


class ReservoirLoop(AbstractClosedLoop):
    """`esn`: s = (reservoir r, last value y); F: y' = y + W_out [1; r; y],
    r' = (1 − a) r + a tanh(W r + W_in y' + b) (Lukoševičius 2012, eqs. 2–4)."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: Any
    dim: int = eqx.field(static=True)

    @classmethod
    def build(cls, model, context):
        reservoir, _ = model._drive(context)
        describe = f"the reservoir state ({model.size} units) and the last value"
        return cls(1, describe, model, model.dim), jnp.concatenate([reservoir, context[-1]])

    def step(self, state):
        m = self.model
        reservoir, y = state[: m.size], state[m.size :]
        y = y + m._readout_features(reservoir, y) @ m.readout
        return jnp.concatenate([m._update(reservoir, m._input_drive(y)), y])

    def observe(self, state):
        return state[-self.dim :][None]


class DecoderLoop(AbstractClosedLoop):
    """`seq2seq` (`EncoderDecoder`): s = (decoder state, y); F: s ← g(s, y ⊕ c),
    y ← y + V s + b (tutorial eq. 5), with the encoder's summary c of the first context fixed."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: Any
    summary: Array
    unravel: Callable = eqx.field(static=True)

    @classmethod
    def build(cls, model, context):
        _, state = run_sequence(model.encoder, context)
        flat, unravel = ravel_pytree((state, context[-1]))
        describe = (
            "the decoder state and the last value (the encoder's summary of the first "
            "context is fixed)"
        )
        return cls(1, describe, model, model.encoder.hidden(state), unravel), flat

    def step(self, state):
        s, y = self.unravel(state)
        s = self.model.decoder(s, jnp.concatenate([y, self.summary]))
        return ravel_pytree((s, y + self.model.readout(self.model.decoder.hidden(s))))[0]

    def observe(self, state):
        return self.unravel(state)[1][None]


class AttentionDecoderLoop(AbstractClosedLoop):
    """`seq2seq-attention` with `reencode = 0`: s = (decoder state, y); F is one step of the
    attention decoder (tutorial eqs. 7–10) over the annotations of the first context, fixed."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: Any
    annotations: Array
    prepared: Array
    unravel: Callable = eqx.field(static=True)

    @classmethod
    def build(cls, model, context):
        annotations = model.encode(context)
        flat, unravel = ravel_pytree((model._initial_state(annotations), context[-1]))
        describe = (
            "the decoder state and the last value (the annotations of the first context are "
            "fixed: the model never re-encodes)"
        )
        prepared = model.score.prepare(annotations)
        return cls(1, describe, model, annotations, prepared, unravel), flat

    def step(self, state):
        m = self.model
        s, y = self.unravel(state)
        weights = masked_softmax(m.score(m.decoder.hidden(s), self.prepared))  # eq. 9
        summary = weights @ self.annotations  # eq. 8
        s = m.decoder(s, jnp.concatenate([y, summary]))  # eq. 7
        y = y + m.readout(jnp.concatenate([m.decoder.hidden(s), summary]))
        return ravel_pytree((s, y))[0]

    def observe(self, state):
        return self.unravel(state)[1][None]


class DualStageLoop(AbstractClosedLoop):
    """`darnn`: s = (decoder LSTM state, y); F is the decoder's step (Qin et al. 2017, eqs.
    12–16, 22) with temporal attention over the encoder states of the first context, fixed."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: Any
    hiddens: Array
    keys: Array
    unravel: Callable = eqx.field(static=True)

    @classmethod
    def build(cls, model, context):
        hiddens, _ = model._encode(context)
        keys = model.temporal_attention.prepare(hiddens)

        def read(state, y):
            return _dual_stage_step(model, hiddens, keys, state, y)[0], None

        state, _ = jax.lax.scan(read, model.decoder.initial_state(), context[:-1])
        flat, unravel = ravel_pytree((state, context[-1]))
        describe = (
            "the decoder state and the last value (the encoder states of the first context "
            "are fixed)"
        )
        return cls(1, describe, model, hiddens, keys, unravel), flat

    def step(self, state):
        s, y = self.unravel(state)
        return ravel_pytree(_dual_stage_step(self.model, self.hiddens, self.keys, s, y))[0]

    def observe(self, state):
        return self.unravel(state)[1][None]


def _dual_stage_step(model, hiddens, keys, state, y):
    # eqs. (12)–(14): temporal attention of [d; s'] over h_1 … h_C; (15)–(16) and (22)
    d, s = state
    weights = masked_softmax(model.temporal_attention(jnp.concatenate([d, s]), keys))
    summary = weights @ hiddens
    state = model.decoder(state, model.decoder_input(jnp.concatenate([y, summary])))
    return state, y + model.readout(jnp.concatenate([model.decoder.hidden(state), summary]))


class MemoryLoop(AbstractClosedLoop):
    """`dnc`: s = (controller state, memory, usage, links, read weights and vectors, y);
    F: one DNC step on y, y ← y + output (Graves et al. 2016)."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: Any
    unravel: Callable = eqx.field(static=True)

    @classmethod
    def build(cls, model, context):
        def read(state, y):
            return model.dnc.step(state, y)[1], None

        state, _ = jax.lax.scan(read, model.dnc.initial_state(), context[:-1])
        flat, unravel = ravel_pytree((state, context[-1]))
        describe = "the DNC's controller, memory, links and reads, and the last value"
        return cls(1, describe, model, unravel), flat

    def step(self, state):
        s, y = self.unravel(state)
        out, s = self.model.dnc.step(s, y)
        return ravel_pytree((s, y + out))[0]

    def observe(self, state):
        return self.unravel(state)[1][None]


class BlockMemoryLoop(AbstractClosedLoop):
    """`mtnet`: s = the query window of the last T values; F is one forecast step (Chang et
    al. 2018) reading the memory blocks encoded from the first context, fixed."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: Any
    memory: Array
    outputs: Array

    @classmethod
    def build(cls, model, context):
        n, window = context.shape[0], model.window
        blocks_count = (n - window) // window
        first = n - window - blocks_count * window
        blocks = context[first : n - window].reshape(blocks_count, window, -1)
        memory = jax.vmap(model.memory_encoder)(blocks)
        outputs = jax.vmap(model.output_encoder)(blocks)
        describe = (
            f"the query window of the last {window} values (the {blocks_count} memory "
            "blocks of the first context are fixed)"
        )
        return cls(1, describe, model, memory, outputs), context[n - window :].reshape(-1)

    def step(self, state):
        m = self.model
        recent = state.reshape(m.window, m.dim)
        u = m.query_encoder(recent)
        weights = jax.nn.softmax(self.memory @ u)  # p_i = softmax(uᵀ m_i)
        nonlinear = m.readout(jnp.concatenate([weights @ self.outputs, u]))
        s = m.ar_weight.shape[0]
        y = recent[-1] + nonlinear + m.ar_weight @ recent[m.window - s :] + m.ar_bias
        return jnp.concatenate([recent[1:], y[None]]).reshape(-1)

    def observe(self, state):
        return state.reshape(self.model.window, self.model.dim)[-1:]


class ODELoop(AbstractClosedLoop):
    """`neural-ode` with an augmented state (Dupont et al. 2019): s = z = y ⊕ a; F integrates
    dz/dt = r · MLP(z) over one sampling step by the model's fixed-step RK4 (Chen et al. 2018).
    An adaptive solver integrates the whole horizon in one solve, not step by step: refused."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: Any

    @classmethod
    def build(cls, model, context):
        if model.solver != "rk4":
            raise NotAMapError(
                f"neural-ode with solver={model.solver} integrates the whole horizon in one "
                "adaptive solve, so one forecast step is not a fixed map of its state; analyze "
                "a model trained with -p solver=rk4."
            )
        if context.shape[0] < model.lags:
            raise DiffdynError(
                f"the context ({context.shape[0]} steps) is shorter than the model's lags "
                f"({model.lags}): pass a context of at least {model.lags} steps."
            )
        describe = f"the ODE state z = y ⊕ a ({model.dim} + {model.augment} numbers)"
        return cls(1, describe, model), model.initial_state(context)

    def step(self, state):
        m = self.model
        rate = jnp.exp(m.log_rate)
        h = m.dt / m.substeps

        def field(t, z):
            return rate * m.vector_field(z)

        for _ in range(m.substeps):
            state = rk4_step(field, jnp.zeros(()), state, h)  # autonomous: t is not read
        return state

    def observe(self, state):
        return state[: self.model.dim][None]


class PonderLoop(AbstractClosedLoop):
    """`act-rnn` (`ACTForecaster`): s = (cell state, y); F: the halting loop on y (Graves 2016,
    the mean state over the ponder steps), y ← y + V s + c. The ponder count N is piecewise
    constant in s, so F is smooth wherever it does not change."""

    steps: int = eqx.field(static=True)
    describe: str = eqx.field(static=True)
    model: Any
    unravel: Callable = eqx.field(static=True)

    @classmethod
    def build(cls, model, context):
        state, _ = model.read(context[:-1])
        flat, unravel = ravel_pytree((state, context[-1]))
        describe = (
            f"the {model.cell_name} state (pondered up to {model.max_steps} steps) and the "
            "last value"
        )
        return cls(1, describe, model, unravel), flat

    def step(self, state):
        s, y = self.unravel(state)
        s, y, _ = self.model.step(s, y, jnp.zeros(0, y.dtype))
        return ravel_pytree((s, y))[0]

    def observe(self, state):
        return self.unravel(state)[1][None]


# Models with a hidden state, by class name (the analysis reads the forecaster contract and
# these classes' fields; it does not import the model families).
HIDDEN_STATE_LOOPS: dict[str, Any] = {
    "RecurrentForecaster": RecurrentLoop,
    "PlasticRNNForecaster": PlasticLoop,
    "ESN": ReservoirLoop,
    "EncoderDecoder": DecoderLoop,
    "DARNN": DualStageLoop,
    "DNCForecaster": MemoryLoop,
    "MTNet": BlockMemoryLoop,
    "ACTForecaster": PonderLoop,
}
# A model of this class is a window model unless it carries more than the window (here: the
# neural ODE's augmented dimensions).
CARRYING_LOOPS: dict[str, tuple[str, Any]] = {"NeuralODE": ("augment", ODELoop)}


# -- choosing and checking -----------------------------------------------------------------------
def closed_loop(
    model: AbstractForecaster,
    context: Float[Array, "context dim"],
    *,
    name: str | None = None,
) -> tuple[AbstractClosedLoop, Float[Array, " n"]]:
    """The model's closed loop as a map, and its state after reading `context`.

    Iterating the map from that state reproduces `model(context, horizon=H)` (checked here
    over `CHECK_STEPS` forecast steps or chunks); a model whose forecast depends on more than
    this module can see raises `NotAMapError` saying why.

    **Arguments:**

    - `model`: a forecaster without exogenous inputs (an autonomous closed loop).
    - `context`: `[C, d]`, in the model's (standardised) units.
    - `name`: the model's registry name, for messages (default: its class's).

    **Returns:** `(loop, state)`: an `AbstractClosedLoop` and its flat initial state.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.analysis import closed_loop
    from diffdyn.models import build_model

    model = build_model("lstm", 3, key=jax.random.key(0), hidden=8)
    loop, state = closed_loop(model, jnp.ones((16, 3)))
    loop.observe(loop.step(state))  # = model(context, horizon=1)[0]
    ```
    """
    name = name or type(model).name or type(model).__name__
    inputs = int(getattr(model, "exog_dim", 0))
    if inputs:
        raise NotAMapError(
            f"{name} reads {inputs} exogenous input(s), so its closed loop is driven, "
            "not autonomous; analyze models of data without exogenous inputs."
        )
    context = jnp.asarray(context)
    kind = type(model).__name__
    reencode = int(getattr(model, "reencode", -1))
    carrying = CARRYING_LOOPS.get(kind)
    if kind in HIDDEN_STATE_LOOPS:
        loop, state = HIDDEN_STATE_LOOPS[kind].build(model, context)
    elif carrying is not None and getattr(model, carrying[0], 0):
        loop, state = carrying[1].build(model, context)
    elif kind == "AttentionEncoderDecoder" and reencode == 0:
        loop, state = AttentionDecoderLoop.build(model, context)
    else:
        steps = reencode if reencode > 0 else 1
        used = context.shape[0] if steps > 1 else memory_length(model, context[None], steps)
        window = _shortest_accepted(model, context, max(used, steps), steps)
        what = (
            f"the last {window} values (re-encoded every {steps} steps)"
            if steps > 1
            else f"the last {window} value{'s' if window > 1 else ''} it reads"
        )
        loop = WindowLoop(steps, what, model, window, context.shape[1])
        state = context[-window:].reshape(-1)
    _check_reproduces(loop, state, model, context, name)
    return loop, state


def _shortest_accepted(model, context, window: int, steps: int) -> int:
    # A model may refuse a context shorter than it was built for (NG-RC's span, while its
    # readout still ignores the oldest rows): the shortest window it accepts.
    for length in range(window, context.shape[0]):
        try:
            jax.eval_shape(lambda c: model(c, None, horizon=steps), context[-length:])
            return length
        except DiffdynError:
            continue
    return int(context.shape[0])


def _iterate(loop: AbstractClosedLoop, state, count: int):
    def body(s, _):
        s = loop.step(s)
        return s, loop.observe(s)

    _, emitted = jax.lax.scan(body, state, length=count)
    return emitted.reshape(-1, emitted.shape[-1])


@eqx.filter_jit
def _both(loop, state, model, context, count):
    forecast, _ = model(context, None, horizon=count * loop.steps)
    return _iterate(loop, state, count), forecast


def _check_reproduces(loop, state, model, context, name) -> None:
    emitted, forecast = (np.asarray(a) for a in _both(loop, state, model, context, CHECK_STEPS))
    if not np.all(np.isfinite(forecast)):
        raise NotAMapError(
            f"{name}'s forecast from the first context is not finite within "
            f"{len(forecast)} steps; its closed loop has no state to analyze."
        )
    scale = 1.0 + float(np.max(np.abs(forecast)))
    if not np.allclose(emitted, forecast, rtol=1e-3, atol=1e-3 * scale):
        raise NotAMapError(
            f"{name} cannot be written as a map of its window: its forecast depends on a "
            f"state it carries from step to step ({loop.describe} do not determine it), and "
            "diffdyn.analysis knows no closed-loop form for it."
        )
