"""ESN: the leaky echo-state network (Jaeger 2001; Lukoševičius 2012, "A practical guide").

A fixed random recurrent reservoir is driven by the series; only a linear readout of its
state is fitted, by ridge regression, in one linear solve.

Lukoševičius, M. (2012). A practical guide to applying echo state networks. In Neural
Networks: Tricks of the Trade, LNCS 7700, 659–686. Equation numbers below are that chapter's.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..errors import DiffdynError
from ..nn.ridge import (
    MIN_SELECTION_ROWS,
    closed_loop_bound,
    parse_ridge,
)
from ..options import check_number
from ..resources import check_memory
from .registry import ModelSpec, register_model
from .reservoir import AbstractReservoir, parse_tune


class ESN(AbstractReservoir):
    """Leaky echo-state network with a sparse reservoir and a ridge readout of the increment.

    With u_t = y_t ⊕ x_t (the state and, when there are any, the exogenous inputs at t):

    - reservoir, eqs. (2)–(3): r_{t+1} = (1 − a) r_t + a tanh(W r_t + W_in u_t + b);
    - readout, eq. (4) on the increment: y_{t+1} = y_t + W_out [1; r_{t+1}; u_t].

    Predicting the increment rather than y_{t+1} itself makes the ridge shrink the forecast
    towards persistence instead of towards zero (the mean); on Lorenz-63 it gives the longer
    valid prediction time (see `experiments/ngrc_lorenz63.py`). Before fitting W_out is zero,
    so an unfitted ESN forecasts persistence.

    **Only W_out is fitted.** W, W_in and b are drawn once from `key` (on the host, by a NumPy
    generator seeded with the key's bits) and stay fixed:

    - W (`size × size`): every unit receives exactly K = max(1, round(connectivity · size))
      connections (Lukoševičius advises a small fixed number of connections per unit, ≈ 10,
      whatever the size), with independent N(0, 1) weights rescaled so that the spectral
      radius of W is `spectral_radius`. Unit i receives from units (i + s_k) mod N
      for K distinct offsets s_k drawn at random: a random circulant graph, so that W r is K
      contiguous slices of [r; r] instead of a gather (10× faster on CPU). The topology
      matters little next to ρ, the input scaling and the leak (Lukoševičius 2012; a plain
      cycle does as well as random graphs, Rodan & Tiňo 2011); the weights stay random per
      connection. One step costs O(size · K), not O(size²). The largest eigenvalue is
      computed on the host (ARPACK on the sparse W, in float64) when the model is built, so
      an ESN is built outside `jax.jit`/`jax.vmap`; build ensembles in a Python loop.
    - W_in (`size × (d + m)`) and b (`size`): dense, uniform on [−input_scaling,
      input_scaling] and [−bias_scaling, bias_scaling] (the bias is the weight of the
      constant input 1 in eq. (2); by default scaled alike).

    The draws are stored at unit scale (ρ = 1, ranges [−1, 1]) and the scales as array fields
    `spectral_radius`, `input_scaling`, `bias_scaling`, `leak` (and `ridge`), so that the
    reservoir is a differentiable function of them: `train.tune_reservoir` tunes them by
    gradient of a closed-loop validation loss through the readout (`tune`, below), and the
    tuned values are saved and loaded with the model. `input_weight`, `bias` and
    `recurrent_matrix()` give the scaled matrices.

    Fitting runs the reservoir over the training series from r_0 = 0, discards the first
    `washout` states (the initial transient), and solves for W_out by ridge regression
    (eq. (9)); the constant is not penalised. With `ridge="auto"` (the default) the α is
    chosen first: the readout is fitted on the first 80 % of those states for each α of
    1e-10, 1e-9, …, 1, each runs closed loop from states in the last 20 % (the reservoir
    there is the teacher-forced one, computed once), the α with the best forecasts is kept
    (`nn.ridge.choose_ridge`) and the readout refitted on all states with it. The α used is
    the array field `ridge` (NaN until fitted), saved and loaded with the readout; an explicit
    number is used as given. A forecast runs the reservoir over the context,
    teacher-forced, from r_0 = 0, then closed loop; the context should be long enough to
    forget r_0 (tens of steps; about `washout`).

    **Arguments:**

    - `dim`, `exog_dim`: d and m.
    - `key`: draws W, W_in and b.
    - `size`: reservoir units.
    - `spectral_radius`: ρ(W).
    - `input_scaling`: range of W_in and b.
    - `leak`: leak rate a ∈ (0, 1].
    - `ridge`: ridge parameter α (on the unnormalised sum of squares), or `"auto"` (above).
    - `connectivity`: fraction of units feeding each unit.
    - `washout`: training steps discarded before the readout is fitted.
    - `bias_scaling`: range of b; `None` or `"input_scaling"` (the default on the command
      line): the same as `input_scaling`. Text is accepted (`-p bias_scaling=0.3`), so that
      tuned values can be given back.
    - `tune`: `"auto"` (the default), `"on"` or `"off"`: whether the training pipeline
      (`train.train_model`, `diffdyn train`) tunes ρ, a, the input and bias scalings and α by
      gradient before fitting (`train.reservoir_tuning`; `docs/reservoir-tuning.md` says where
      it pays). `fit_closed_form` itself fits the readout at the model's current values.

    The defaults are generic (ρ = 0.9 keeps a long memory). For a fully observed flow such as
    Lorenz-63 at dt = 0.025, `experiments/ngrc_lorenz63.py` tuned ρ = 0.3, input scaling 0.1,
    ridge 1e-10 (VPT 7.0 Lyapunov times from 400 training points, against 3.6 with the
    defaults and the former fixed ridge 1e-6); noisy data need a larger ridge.
    The automatic α is chosen for 100-step forecasts and can leave the closed loop slowly
    decaying modes of its own, above the attractor's third Lyapunov exponent; to reproduce the
    attractor's spectrum too, start from `ridge=1e-5` (with `tune`: on Lorenz-63 the third
    exponent is then λ₃ on 5 of 5 seeds, against 2 of 5; `docs/analysis.md` §2).

    **Example:**

    ```python
    import jax
    import numpy as np
    from diffdyn.models import ESN

    t = np.arange(600) * 0.1
    series = np.stack([np.sin(t), np.cos(t)], axis=1)
    model = ESN(2, key=jax.random.key(0), size=100).fit_closed_form(series[:500])
    forecast, aux = model(series[400:500], horizon=50)  # forecast: [50, 2]
    ```
    """

    name: ClassVar[str] = "esn"
    fit_kind: ClassVar[str] = "closed_form"

    tunable: ClassVar[tuple[str, ...]] = (
        "spectral_radius",
        "leak",
        "input_scaling",
        "bias_scaling",
        "ridge",
    )

    dim: int = eqx.field(static=True)
    exog_dim: int = eqx.field(static=True)
    size: int = eqx.field(static=True)
    connectivity: float = eqx.field(static=True)
    washout: int = eqx.field(static=True)
    auto_ridge: bool = eqx.field(static=True)
    tune: str = eqx.field(static=True)
    spectral_radius: Float[Array, ""]
    input_scaling: Float[Array, ""]
    bias_scaling: Float[Array, ""]
    leak: Float[Array, ""]
    ridge: Float[Array, ""]
    recurrent_offset: Int[Array, " fan_in"]
    recurrent_unit: Float[Array, "fan_in size"]
    input_unit: Float[Array, "size inputs"]
    bias_unit: Float[Array, " size"]
    readout: Float[Array, "features dim"]

    def __init__(
        self,
        dim: int,
        exog_dim: int = 0,
        *,
        key: PRNGKeyArray,
        size: int = 500,
        spectral_radius: float = 0.9,
        input_scaling: float = 0.5,
        leak: float = 1.0,
        ridge: float | str = "auto",
        connectivity: float = 0.02,
        washout: int = 100,
        bias_scaling: float | str | None = None,
        tune: str = "auto",
    ):
        if size < 1:
            raise DiffdynError(f"esn needs size ≥ 1; got {size}.")
        if not 0 < leak <= 1:
            raise DiffdynError(f"esn needs a leak rate in (0, 1]; got {leak}.")
        if not 0 < connectivity <= 1:
            raise DiffdynError(f"esn needs connectivity in (0, 1]; got {connectivity}.")
        if bias_scaling is None or str(bias_scaling).strip().lower() == "input_scaling":
            bias_scaling = input_scaling
        try:
            bias_range = float(check_number("bias_scaling", bias_scaling))
        except DiffdynError:
            raise DiffdynError(
                f"esn needs bias_scaling ≥ 0 or 'input_scaling'; got {bias_scaling!r}."
            ) from None
        if not spectral_radius > 0 or not input_scaling >= 0 or not bias_range >= 0 or washout < 0:
            raise DiffdynError(
                "esn needs spectral_radius > 0, input_scaling ≥ 0, bias_scaling ≥ 0 and "
                f"washout ≥ 0; got {spectral_radius}, {input_scaling}, {bias_range}, {washout}."
            )
        alpha = parse_ridge(ridge, "esn")
        self.dim = dim
        self.exog_dim = exog_dim
        self.size = size
        self.connectivity = float(connectivity)
        self.washout = washout
        self.auto_ridge = alpha is None
        self.tune = parse_tune(tune, "esn")
        self.spectral_radius = jnp.asarray(spectral_radius, dtype=float)
        self.input_scaling = jnp.asarray(input_scaling, dtype=float)
        self.bias_scaling = jnp.asarray(bias_range, dtype=float)
        self.leak = jnp.asarray(leak, dtype=float)
        self.ridge = jnp.asarray(math.nan if alpha is None else alpha, dtype=float)

        fan_in = max(1, round(connectivity * size))
        inputs = dim + exog_dim
        # The readout's normal equations (size × size, float64) dominate; then the reservoir.
        check_memory(
            8.0 * size * size + 24.0 * size * fan_in,
            f"esn with size={size}",
            "give a smaller -p size=N (500–5000 is usual).",
        )
        offset, weight, input_weight, bias = _draw_reservoir(key, size, fan_in, inputs)
        radius = _spectral_radius(offset, weight)
        if not radius > 1e-12:
            raise DiffdynError(
                f"the random reservoir (size {size}, {fan_in} connections per unit) has "
                "spectral radius 0 and cannot be rescaled; raise connectivity or change key."
            )
        self.recurrent_offset = jnp.asarray(offset, dtype=jnp.int32)
        self.recurrent_unit = jnp.asarray(weight / radius)
        self.input_unit = jnp.asarray(input_weight)
        self.bias_unit = jnp.asarray(bias)
        self.readout = jnp.zeros((1 + size + inputs, dim))

    @property
    def input_weight(self) -> Float[Array, "size inputs"]:
        """W_in, scaled by `input_scaling`."""
        return self.input_scaling * self.input_unit

    @property
    def bias(self) -> Float[Array, " size"]:
        """b, scaled by `bias_scaling`."""
        return self.bias_scaling * self.bias_unit

    def recurrent_matrix(self) -> Float[Array, "size size"]:
        """W as a dense matrix (for inspection, e.g. its spectral radius)."""
        rows = jnp.arange(self.size)[None, :]
        columns = (rows + self.recurrent_offset[:, None]) % self.size
        dense = jnp.zeros((self.size, self.size), self.recurrent_unit.dtype)
        return dense.at[rows, columns].add(self.spectral_radius * self.recurrent_unit)

    def _input_drive(self, inputs: Float[Array, "... inputs"]) -> Float[Array, "... size"]:
        # W_in u + b: for a teacher-forced run, all rows in one matrix product before the loop
        return inputs @ self.input_weight.T + self.bias.reshape((1,) * (inputs.ndim - 1) + (-1,))

    def _update(self, reservoir: Float[Array, " size"], input_drive: Float[Array, " size"]):
        # eqs. (2)–(3): r ← (1 − a) r + a tanh(W r + W_in u + b), with
        # (W r)_i = Σ_k w_ki r_{(i + s_k) mod N}: K contiguous slices of [r; r], which XLA
        # vectorises (a gather of N·K arbitrary entries was 10× slower on CPU)
        doubled = jnp.concatenate([reservoir, reservoir])
        recurrent = self.spectral_radius * sum(
            self.recurrent_unit[k]
            * jax.lax.dynamic_slice_in_dim(doubled, self.recurrent_offset[k], self.size)
            for k in range(self.recurrent_offset.shape[0])
        )
        return (1 - self.leak) * reservoir + self.leak * jnp.tanh(recurrent + input_drive)

    def _readout_features(self, reservoir, inputs):
        # eq. (4): [1; r_{t+1}; u_t]
        return jnp.concatenate([jnp.ones(1, reservoir.dtype), reservoir, inputs])

    def _inputs(self, values, exog, rows: int):
        if self.exog_dim == 0:
            return values
        if exog is None or exog.ndim != 2 or exog.shape[1] != self.exog_dim:
            got = "none" if exog is None else exog.shape
            raise DiffdynError(
                f"this esn was built for {self.exog_dim} exogenous inputs; got {got}."
            )
        if exog.shape[0] < rows:
            raise DiffdynError(f"esn needs {rows} rows of exogenous inputs; got {exog.shape[0]}.")
        return jnp.concatenate([values, exog[: values.shape[0]]], axis=1)

    def _drive(self, inputs: Float[Array, "time inputs"]):
        """Teacher-forced run from r_0 = 0: the states r_1 … r_T."""

        def step(reservoir, input_drive):
            reservoir = self._update(reservoir, input_drive)
            return reservoir, reservoir

        start = jnp.zeros(self.size, self.recurrent_unit.dtype)
        return jax.lax.scan(step, start, self._input_drive(inputs))

    def _check_training(self, values, choose: bool):
        if values.ndim != 2 or values.shape[1] != self.dim:
            raise DiffdynError(
                f"esn expects training values [time, {self.dim}]; got {values.shape}."
            )
        if values.shape[0] < self.washout + 2:
            raise DiffdynError(
                f"esn with washout={self.washout} needs at least {self.washout + 2} training "
                f"rows; got {values.shape[0]}. Lower washout or give more data."
            )
        if choose and values.shape[0] < self.washout + 1 + MIN_SELECTION_ROWS:
            raise DiffdynError(
                f"esn with ridge=auto and washout={self.washout} needs at least "
                f"{self.washout + 1 + MIN_SELECTION_ROWS} training rows to choose its ridge; "
                f"got {values.shape[0]}. Give more data or an explicit ridge (-p ridge=1e-6)."
            )

    def _driving(self, values, exog):
        """[y_t ; u_t] of every training row: what the reservoir is driven by."""
        return self._inputs(values, exog, values.shape[0])

    def _regression(self, values, inputs):
        """The readout's regression (design [1; r_{t+1}; u_t], increments, y_{t+1}, t ≥ washout)
        and the closed loop from its row i, as `nn.ridge.choose_ridge` takes them."""
        _, states = self._drive(inputs[:-1])  # states[t] = r_{t+1}
        design = jax.vmap(self._readout_features)(states, inputs[:-1])[self.washout :]
        increments = (values[1:] - values[:-1])[self.washout :]
        bound = closed_loop_bound(values)

        def closed_loop(readout, row, horizon):
            # design row `row` is time t = washout + row: from r_{t+1} and u_t, y_{t+1} …
            t = self.washout + row
            future = jax.lax.dynamic_slice_in_dim(inputs[:, self.dim :], t + 1, horizon)
            return self._closed_loop(states[t], inputs[t], future, readout, bound)

        return design, increments, values[self.washout + 1 :], closed_loop

    def __call__(
        self,
        context: Float[Array, "context dim"],
        exog: Float[Array, "context_plus_horizon m"] | None = None,
        *,
        horizon: int,
        key: PRNGKeyArray | None = None,
    ) -> tuple[Float[Array, "horizon dim"], dict[str, Any]]:
        """Warm the reservoir up on the context (teacher forced), then run closed loop."""
        context = jnp.asarray(context)
        exog = None if exog is None else jnp.asarray(exog)
        if context.ndim != 2 or context.shape[0] < 1 or context.shape[1] != self.dim:
            raise DiffdynError(
                f"esn expects a context [time ≥ 1, {self.dim}]; got {context.shape}."
            )
        length = context.shape[0]
        inputs = self._inputs(context, exog, length + horizon)
        reservoir, _ = self._drive(inputs)
        future = (
            exog[length : length + horizon]
            if self.exog_dim and exog is not None
            else jnp.zeros((horizon, 0))
        )
        future = future.astype(context.dtype)
        return self._closed_loop(reservoir, inputs[-1], future, self.readout), {}

    def _closed_loop(self, reservoir, last_inputs, future, readout, bound=None):
        # from r_{t+1} and u_t; one row of `future` (the next exogenous inputs, possibly none)
        # per forecast step; a validation run clips the state at ±bound (`closed_loop_bound`)
        def step(carry, future_input):
            reservoir, last_inputs = carry
            state = last_inputs[: self.dim] + (
                self._readout_features(reservoir, last_inputs) @ readout
            )
            if bound is not None:
                state = jnp.clip(state, -bound, bound)
            inputs = jnp.concatenate([state, future_input])
            return (self._update(reservoir, self._input_drive(inputs)), inputs), state

        _, forecast = jax.lax.scan(step, (reservoir, last_inputs), future)
        return forecast


def _spectral_radius(offset: np.ndarray, weight: np.ndarray) -> float:
    """max |λ(W)| of the sparse W, in float64 on the host.

    ARPACK (SciPy, which JAX itself depends on) on the sparse matrix: O(size · fan_in) per
    iteration; measured 0.07–0.3 s at 500 and 2000 units, where the dense eigenvalues
    (`numpy.linalg.eigvals`, O(size³)) took 0.3–1.6 s and 2.6–4 s. Small reservoirs, and the
    rare case where ARPACK does not converge, use the dense eigenvalues.
    """
    size = weight.shape[1]
    rows = np.broadcast_to(np.arange(size)[None, :], weight.shape).ravel()
    columns = ((np.arange(size)[None, :] + offset[:, None]) % size).ravel()
    if size > 32:
        matrix = scipy.sparse.csr_array((weight.ravel(), (rows, columns)), (size, size))
        try:
            eigenvalue = scipy.sparse.linalg.eigs(
                matrix, k=1, which="LM", v0=np.ones(size), return_eigenvectors=False
            )
            return float(np.abs(eigenvalue).max())
        except scipy.sparse.linalg.ArpackNoConvergence:
            pass
    dense = np.zeros((size, size))
    np.add.at(dense, (rows, columns), weight.ravel())
    return float(np.max(np.abs(np.linalg.eigvals(dense))))


def _draw_reservoir(key, size: int, fan_in: int, inputs: int):
    """Offsets and N(0, 1) weights of W (before rescaling), W_in and b (on [−1, 1], before
    scaling), drawn on the host.

    A NumPy generator seeded with the key's bits: the same key gives the same reservoir, and
    nothing is compiled (XLA would compile this one-off draw for every new size).
    """
    bits = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    rng = np.random.default_rng(np.asarray(bits, dtype=np.uint32).ravel().tolist())
    offset = np.sort(rng.choice(size, fan_in, replace=False))
    weight = rng.standard_normal((fan_in, size))
    input_weight = rng.uniform(-1.0, 1.0, (size, inputs))
    bias = rng.uniform(-1.0, 1.0, size)
    return offset, weight, input_weight, bias


register_model(
    ModelSpec(
        "esn",
        ESN,
        {
            "size": 500,
            "spectral_radius": 0.9,
            "input_scaling": 0.5,
            "leak": 1.0,
            "ridge": "auto",
            "connectivity": 0.02,
            "washout": 100,
            "bias_scaling": "input_scaling",
            "tune": "auto",
        },
        "echo-state network: fixed sparse random reservoir, ridge readout of the increment "
        "(Jaeger 2001)",
    )
)
