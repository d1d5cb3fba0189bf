"""Differentiable plasticity: connections with a fixed weight and a Hebbian trace that keeps
learning from the activity it sees (tutorial §3.3, eqs. 12–13; Miconi, Clune & Stanley 2018).

A plastic connection from neuron i to neuron j carries a fixed weight w_ij, a plasticity
coefficient α_ij and a Hebbian trace H_ij(t):

- tutorial eq. (12): y_j(t) = tanh(Σ_i (w_ij + α_ij H_ij(t)) y_i(t−1) [+ x_j(t)]);
- tutorial eq. (13): H_ij(t+1) = η y_i(t−1) y_j(t) + (1 − η) H_ij(t).

w, α and η are parameters, trained by backpropagation through the whole episode; H is state,
reset at the start of an episode and changed by the activity within it, so that a trained
network keeps adapting after training without any gradient step. The rules for H:

- `hebbian_update`: eq. (13), a decaying average of co-activity;
- `oja_update`: Oja's rule (Oja 1982; Miconi et al. 2018, sec. 2), H_ij ← H_ij + η y_j (y_i −
  y_j H_ij), whose decay grows with post-synaptic activity and keeps the trace bounded;
- `neuromodulated_update`: Backpropamine (Miconi et al. 2019, eq. 3): H ← clip(H + M(t) y_i y_j,
  −1, 1), where the network outputs its own plasticity rate M(t) = η(t) at every step.

Matrices are stored `[post, pre]` like every weight in diffdyn (`eqx.nn.Linear`, PyTorch): a
row holds the connections into one neuron, so H_{ji} of a matrix here is H_ij of the equations.

The blocks: `PlasticLinear` (one plastic layer, eq. 12 on a given input), `PlasticCell` (a
plastic recurrent cell with the contract of the cells in `diffdyn.nn.recurrent`; its state is
`(h, H)`) with `run_plastic_sequence`, and `PlasticNetwork`, the fully recurrent network of
Miconi et al. 2018 sec. 4.1 (one neuron per pattern bit), whose episode (`plastic_episode`) has
a hand-written reverse pass that stores the trace only every few steps.
"""

from __future__ import annotations

import math
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import DiffdynError

RULES = ("hebbian", "oja", "neuromodulated")


def check_plasticity_rate(eta: float) -> None:
    """Refuse a plasticity rate outside (0, 1] in one sentence."""
    if not (isinstance(eta, int | float) and math.isfinite(eta) and 0 < eta <= 1):
        raise DiffdynError(
            f"the plasticity rate eta must lie in (0, 1] (the trace is a decaying average, "
            f"eq. 13); got {eta!r}."
        )


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise DiffdynError(f"unknown plasticity rule {rule!r}; choose one of {', '.join(RULES)}.")


def hebbian_update(
    trace: Float[Array, "post pre"],
    pre: Float[Array, " pre"],
    post: Float[Array, " post"],
    eta: Float[Array, ""] | float,
) -> Float[Array, "post pre"]:
    """Tutorial eq. (13): H_ij ← η y_i y_j + (1 − η) H_ij (`pre` = y_i, `post` = y_j).

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import hebbian_update

    hebbian_update(jnp.zeros((2, 2)), jnp.array([1.0, -1.0]), jnp.array([0.5, 0.5]), 0.1)
    # [[0.05, -0.05], [0.05, -0.05]]
    ```
    """
    return eta * jnp.outer(post, pre) + (1 - eta) * trace


def oja_update(
    trace: Float[Array, "post pre"],
    pre: Float[Array, " pre"],
    post: Float[Array, " post"],
    eta: Float[Array, ""] | float,
) -> Float[Array, "post pre"]:
    """Oja's rule (Oja 1982, as in Miconi et al. 2018 sec. 2): H_ij ← H_ij + η y_j (y_i − y_j
    H_ij). The decay term η y_j² H_ij keeps the trace of each neuron bounded (for a linear
    neuron, its incoming trace converges to unit norm).

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import oja_update

    oja_update(jnp.ones((1, 2)), jnp.array([1.0, 0.0]), jnp.array([1.0]), 0.5)  # [[1., 0.5]]
    ```
    """
    return trace + eta * post[:, None] * (pre[None, :] - post[:, None] * trace)


def neuromodulated_update(
    trace: Float[Array, "post pre"],
    pre: Float[Array, " pre"],
    post: Float[Array, " post"],
    modulation: Float[Array, ""] | float,
) -> Float[Array, "post pre"]:
    """Backpropamine (Miconi et al. 2019, eq. 3): H_ij ← clip(H_ij + M(t) y_i y_j, −1, 1), with
    M(t) the network's own output at step t (any sign: it may also un-learn).

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import neuromodulated_update

    neuromodulated_update(jnp.zeros((1, 1)), jnp.ones(1), jnp.ones(1), -2.0)  # [[-1.]]
    ```
    """
    return jnp.clip(trace + modulation * jnp.outer(post, pre), -1.0, 1.0)


def _update(rule: str, trace, pre, post, eta):
    if rule == "hebbian":
        return hebbian_update(trace, pre, post, eta)
    if rule == "oja":
        return oja_update(trace, pre, post, eta)
    return neuromodulated_update(trace, pre, post, eta)


class PlasticLinear(eqx.Module):
    """One plastic layer, tutorial eq. (12): y = tanh((w + α ⊙ H) x + b), followed by the
    trace's update from (x, y) by `rule`.

    **Arguments:**

    - `in_size`, `out_size`: widths of x and y.
    - `key`: PRNG key; w and α start normal with standard deviation 0.01 · √(1000 / in_size)
      (Miconi et al. 2018 use 0.01 for 1000 inputs).
    - `rule`: `"hebbian"` (eq. 13), `"oja"` or `"neuromodulated"` (then `__call__` takes the
      modulation M(t)).
    - `eta`: initial plasticity rate in (0, 1], trained with w and α.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import PlasticLinear

    layer = PlasticLinear(4, 3, key=jax.random.key(0))
    y, trace = layer(layer.initial_trace(), jnp.ones(4))  # [3], [3, 4]
    ```
    """

    weight: Float[Array, "out in"]
    alpha: Float[Array, "out in"]
    bias: Float[Array, " out"]
    eta: Float[Array, ""]
    rule: str = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        *,
        key: PRNGKeyArray,
        rule: str = "hebbian",
        eta: float = 0.01,
    ):
        _check_rule(rule)
        check_plasticity_rate(eta)
        k_w, k_a = jax.random.split(key)
        scale = 0.01 * math.sqrt(1000 / in_size)
        self.weight = scale * jax.random.normal(k_w, (out_size, in_size))
        self.alpha = scale * jax.random.normal(k_a, (out_size, in_size))
        self.bias = jnp.zeros(out_size)
        self.eta = jnp.asarray(eta, float)
        self.rule = rule

    def initial_trace(self) -> Float[Array, "out in"]:
        return jnp.zeros_like(self.weight)

    def __call__(
        self,
        trace: Float[Array, "out in"],
        x: Float[Array, " in"],
        modulation: Float[Array, ""] | None = None,
    ) -> tuple[Float[Array, " out"], Float[Array, "out in"]]:
        """`(y, next trace)`. `modulation` is M(t) for the neuromodulated rule (else unused)."""
        y = jnp.tanh((self.weight + self.alpha * trace) @ x + self.bias)  # eq. (12)
        if self.rule == "neuromodulated":
            if modulation is None:
                raise DiffdynError("the neuromodulated rule needs modulation=M(t) at each call.")
            return y, neuromodulated_update(trace, x, y, modulation)
        return y, _update(self.rule, trace, x, y, jnp.clip(self.eta, 0.0, 1.0))


class PlasticCell(eqx.Module):
    """A plastic recurrent cell (tutorial eqs. 12–13 with an input; Miconi et al. 2018,
    2019): h_t = tanh(W x_t + (U + α ⊙ H_{t−1}) h_{t−1} + b), then H_t from (h_{t−1}, h_t).

    The state is `(h, H)`: the trace is part of the recurrent state, so it keeps adapting to
    whatever the cell reads — during a context and during a closed-loop forecast — with no
    gradient step. With `plastic=False` the cell is its non-plastic twin, an Elman cell with
    the same parameters (α and η unused, H stays zero).

    It keeps the contract of `diffdyn.nn.recurrent`'s cells (`input_weight [H, n_in]`,
    `recurrent_weight [H, H]`, `bias`, `hidden_size`, `project_inputs`, `hidden`,
    `initial_state`, `cell(state, x)`), but its recurrence reads α and η as well as the
    recurrent weights, so a sequence is run with `run_plastic_sequence` (plain reverse-mode
    through `lax.scan`), not `run_sequence`.

    **Arguments:**

    - `input_size`, `hidden_size`: widths of x_t and h_t.
    - `key`: PRNG key; W, U uniform in ±1/√hidden, α uniform in ±0.1/√hidden.
    - `rule`: `"hebbian"` (eq. 13), `"oja"` or `"neuromodulated"` (Backpropamine: the cell
      outputs its own rate η(t) = tanh(v · h_t + c) at each step).
    - `eta`: initial plasticity rate in (0, 1] (trained; the neuromodulated rule starts its
      output at this rate).
    - `plastic`: `False` for the non-plastic twin.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import PlasticCell, run_plastic_sequence

    cell = PlasticCell(3, 8, key=jax.random.key(0))
    hiddens, (h, trace) = run_plastic_sequence(cell, jnp.ones((10, 3)))  # [10, 8], [8], [8, 8]
    ```
    """

    input_weight: Float[Array, "hidden input"]
    recurrent_weight: Float[Array, "hidden hidden"]
    bias: Float[Array, " hidden"]
    alpha: Float[Array, "hidden hidden"]
    eta: Float[Array, ""]
    modulator: Float[Array, " hidden_plus_1"]
    hidden_size: int = eqx.field(static=True)
    rule: str = eqx.field(static=True)
    plastic: bool = eqx.field(static=True)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        key: PRNGKeyArray,
        rule: str = "hebbian",
        eta: float = 0.1,
        plastic: bool = True,
    ):
        _check_rule(rule)
        check_plasticity_rate(eta)
        if hidden_size < 1:
            raise DiffdynError(f"hidden must be a positive whole number; got {hidden_size}.")
        k_in, k_rec, k_b, k_a = jax.random.split(key, 4)
        bound = 1 / math.sqrt(hidden_size)
        uniform = partial(jax.random.uniform, minval=-bound, maxval=bound)
        self.input_weight = uniform(k_in, (hidden_size, input_size))
        self.recurrent_weight = uniform(k_rec, (hidden_size, hidden_size))
        self.bias = uniform(k_b, (hidden_size,))
        self.alpha = 0.1 * uniform(k_a, (hidden_size, hidden_size))
        self.eta = jnp.asarray(eta, float)
        # η(t) = tanh(v · h + c), starting at tanh(c) = eta.
        self.modulator = jnp.zeros(hidden_size + 1).at[-1].set(math.atanh(min(eta, 0.99)))
        self.hidden_size = hidden_size
        self.rule = rule
        self.plastic = plastic

    def project_inputs(self, inputs: Float[Array, "time input"]) -> Float[Array, "time hidden"]:
        """W x_t + b for a whole sequence: one matmul."""
        return inputs @ self.input_weight.T + self.bias[None, :]

    def hidden(self, state) -> Float[Array, " hidden"]:
        return state[0]

    def initial_state(self):
        return jnp.zeros(self.hidden_size), jnp.zeros((self.hidden_size, self.hidden_size))

    def step_projected(self, state, projected: Float[Array, " hidden"]):
        """One step from W x_t + b (`project_inputs`)."""
        h, trace = state
        if not self.plastic:
            return jnp.tanh(projected + self.recurrent_weight @ h), trace
        weights = self.recurrent_weight + self.alpha * trace  # eq. (12)
        h_new = jnp.tanh(projected + weights @ h)
        if self.rule == "neuromodulated":
            rate = jnp.tanh(self.modulator[:-1] @ h_new + self.modulator[-1])  # η(t)
        else:
            rate = jnp.clip(self.eta, 0.0, 1.0)
        return h_new, _update(self.rule, trace, h, h_new, rate)  # eq. (13) or its variants

    def __call__(self, state, x: Float[Array, " input"]):
        """One step: the next state `(h, H)` after input `x`."""
        return self.step_projected(state, self.project_inputs(x[None])[0])


def run_plastic_sequence(
    cell: PlasticCell, inputs: Float[Array, "time input"], state=None
) -> tuple[Float[Array, "time hidden"], tuple[Array, Array]]:
    """Run a `PlasticCell` over a sequence (the plastic counterpart of `run_sequence`): every
    hidden vector and the final state `(h, H)`. The input projection is one matmul before the
    loop.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import PlasticCell, run_plastic_sequence

    cell = PlasticCell(2, 4, key=jax.random.key(0))
    hiddens, state = run_plastic_sequence(cell, jnp.zeros((5, 2)))
    hiddens.shape  # (5, 4)
    ```
    """
    if inputs.ndim != 2:
        raise ValueError(
            f"run_plastic_sequence takes one sequence [time, input]; got shape {inputs.shape}. "
            "Batch with jax.vmap."
        )
    state = cell.initial_state() if state is None else state

    def step(state, projected_t):
        state = cell.step_projected(state, projected_t)
        return state, state[0]

    state, hiddens = jax.lax.scan(step, state, cell.project_inputs(inputs))
    return hiddens, state


# -- the fully recurrent plastic network of Miconi et al. 2018, sec. 4.1 --------------------------
def _segment_length(steps: int) -> int:
    """Steps between stored traces in the reverse pass: about √T (memory ∝ T/k + k)."""
    return max(1, round(math.sqrt(steps)))


def _step(weight, alpha, eta):
    """One step of eqs. (12)–(13) on the carry (y_{t−1}, H_{t−1}); emits z_t."""

    def step(carry, x):
        y, trace = carry
        z = weight @ y + (alpha * trace) @ y + x  # eq. (12)
        y_new = jnp.tanh(z)
        return (y_new, hebbian_update(trace, y, y_new, eta)), z  # eq. (13)

    return step


def _zero_state(weight):
    return jnp.zeros(weight.shape[0], weight.dtype), jnp.zeros_like(weight)


@jax.custom_vjp
def plastic_episode(
    weight: Float[Array, "n n"],
    alpha: Float[Array, "n n"],
    eta: Float[Array, ""],
    inputs: Float[Array, "time n"],
) -> Float[Array, "time n"]:
    """One episode of a fully recurrent plastic network from the zero state (y = 0, H = 0):
    z_t = (w + α ⊙ H_{t−1}) y_{t−1} + x_t, y_t = tanh(z_t) (eq. 12), H_t = η y_t y_{t−1}ᵀ +
    (1 − η) H_{t−1} (eq. 13, `[post, pre]`). Returns every pre-activation z_t.

    The reverse pass is written by hand (checked against finite differences in float64): the
    forward pass keeps the outputs and the trace only every k ≈ √T steps; the reverse pass
    takes a segment at a time, writing the segment's traces and their cotangents as the stored
    matrices plus low-rank sums of the segment's outputs (`_episode_bwd`). Autodiff through the
    scan stores all T traces of n × n (224 MB for one
    episode of the task's defaults) and took 1.6–2.3× longer (measured interleaved at n = 1000,
    T = 56 on a loaded 2-core machine). ∂/∂w is one [n, T] · [T, n] product after the loop.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import plastic_episode

    w = 0.01 * jax.random.normal(jax.random.key(0), (6, 6))
    plastic_episode(w, w, jnp.array(0.01), jnp.ones((4, 6))).shape  # (4, 6)
    ```
    """
    return jax.lax.scan(_step(weight, alpha, eta), _zero_state(weight), inputs)[1]


def _padded(inputs, k):
    # Zero inputs before the first step leave the zero state at zero (tanh 0 = 0, the trace
    # adds 0 ⊗ 0): padding at the front is exact, and makes T a multiple of k.
    pad = (-inputs.shape[0]) % k
    return jnp.concatenate([jnp.zeros((pad, inputs.shape[1]), inputs.dtype), inputs]), pad


def _episode_fwd(weight, alpha, eta, inputs):
    steps, n = inputs.shape
    k = _segment_length(steps)
    padded, _ = _padded(inputs, k)
    step = _step(weight, alpha, eta)

    def segment(carry, xs):
        # The k steps of a segment are unrolled: inside one XLA while-loop iteration, a trace
        # read and then updated forces a copy of it (measured: 3-10x slower per step).
        start, zs = carry, []
        for x in xs:
            carry, z = step(carry, x)
            zs.append(z)
        return carry, (jnp.stack(zs), start[1])

    _, (zs, starts) = jax.lax.scan(segment, _zero_state(weight), padded.reshape(-1, k, n))
    zs = zs.reshape(-1, n)
    return zs[zs.shape[0] - steps :], (weight, alpha, eta, zs, starts)


def _episode_bwd(residuals, z_bar):
    """The reverse pass of `plastic_episode`, a segment of k steps at a time, with no n × n
    matrix written per step.

    Within a segment that starts from the stored trace H_s (local steps j = 0 … k−1, y_j the
    step's output, p_j = y_{j−1} its input, ρ = 1 − η), the trace before step j and the
    cotangent of the trace after it are the segment's boundary matrices plus low-rank sums:

    - H_j = ρ^j H_s + Σ_{i<j} η ρ^{j−1−i} y_i p_iᵀ (eq. 13 unrolled);
    - H̄_j = ρ^{k−1−j} E + Σ_{u>j} ρ^{u−1−j} α ⊙ (g_u p_uᵀ), E the cotangent at the segment's
      end and g_u = ∂L/∂z_u.

    Every product the reverse pass needs is then a product with w, with B = α ⊙ H_s, with E
    or with α against the segment's vectors, using (α ⊙ a bᵀ) c = a ⊙ α(b ⊙ c) and
    (α ⊙ a bᵀ)ᵀ c = b ⊙ αᵀ(a ⊙ c): per step one pass over each of w, B and α (the last
    against the j vectors g ⊙ y_i, i < j); per segment a few passes to form B, E p_j, Eᵀ y_j,
    α(p_u ⊙ p_j), ∂L/∂α and the next E. The per-step form (H̄ updated as an n × n matrix every
    step) read and wrote about 13 n × n arrays per step; the episode's gradient took 1.6× as
    long at n = 1000, T = 56, and the training step of `bench/plastic_step.py` 1.35×. Checked
    against finite differences in float64 (tests/test_plasticity.py).
    """
    weight, alpha, eta, zs, starts = residuals
    n = weight.shape[0]
    k = zs.shape[0] // starts.shape[0]
    pad = zs.shape[0] - z_bar.shape[0]
    ys = jnp.tanh(zs)
    previous = jnp.concatenate([jnp.zeros((1, n), ys.dtype), ys[:-1]])  # y_{t−1}
    z_bar = jnp.concatenate([jnp.zeros((pad, n), z_bar.dtype), z_bar])
    rho = 1 - eta
    power = [rho**m for m in range(k + 1)]
    later = [(u, j) for j in range(k) for u in range(j + 1, k)]  # the pairs u > j
    earlier = [(i, j) for j in range(k) for i in range(j)]  # the pairs i < j

    def segment(carry, xs):
        y_bar, end_bar, alpha_bar, eta_bar = carry  # ∂L/∂y and E = ∂L/∂H after the segment
        start, y, p, zbar = xs  # H_s, y_j, p_j = y_{j−1}, ∂L/∂z_j directly: [k, n] each
        e_p = p @ end_bar.T  # row j: E p_j
        et_y = y @ end_bar  # row j: Eᵀ y_j
        e_h = jnp.sum(end_bar * start)  # ⟨E, H_s⟩
        b = alpha * start  # B = α ⊙ H_s
        if later:
            pairs = jnp.stack([p[u] * p[j] for u, j in later]) @ alpha.T
            a_pp = {pair: pairs[r] for r, pair in enumerate(later)}  # α(p_u ⊙ p_j)
        e_py = jnp.sum(y * e_p, axis=1)  # y_iᵀ E p_i
        gs, c, bg_p, s = [None] * k, [None] * k, [None] * k, {}
        for j in reversed(range(k)):
            # post = H̄_j p_j, the cotangent y_j gets through H_j = η y_j p_jᵀ + ρ H_{j−1}.
            post = power[k - 1 - j] * e_p[j]
            for u in range(j + 1, k):
                post = post + power[u - 1 - j] * gs[u] * a_pp[(u, j)]
            # ⟨H̄_j, H_j⟩, term by term of the two sums above.
            inner = power[k - 1] * e_h
            for i in range(j):
                inner = inner + eta * power[k - 2 - i] * e_py[i]
            for u in range(j + 1, k):
                inner = inner + power[u - 1] * bg_p[u]
                for i in range(j):
                    inner = inner + eta * power[u - 2 - i] * s[(u, i)]
            eta_bar = eta_bar + y[j] @ post - inner
            g = zbar[j] + (y_bar + eta * post) * (1 - y[j] * y[j])  # ∂L/∂z_j
            bg = g @ b  # Bᵀ g
            bg_p[j] = bg @ p[j]
            # ∂L/∂p_j = (w + α ⊙ H_j)ᵀ g + η H̄_jᵀ y_j
            y_bar = g @ weight + power[j] * bg + eta * power[k - 1 - j] * et_y[j]
            if j > 0:
                c[j] = (g[None, :] * y[:j]) @ alpha  # row i: αᵀ(g_j ⊙ y_i), i < j
                for i in range(j):
                    s[(j, i)] = c[j][i] @ (p[j] * p[i])
                    y_bar = y_bar + eta * power[j - 1 - i] * p[i] * c[j][i]
            for u in range(j + 1, k):
                y_bar = y_bar + eta * power[u - 1 - j] * p[u] * c[u][j]
            gs[j] = g
        g_seg = jnp.stack(gs)
        outer = (g_seg * jnp.stack(power[:k])[:, None]).T @ p  # Σ_j ρ^j g_j p_jᵀ
        # ∂L/∂α += Σ_j H_j ⊙ (g_j p_jᵀ); E before the segment = ρ^k E + Σ_j ρ^j α ⊙ g_j p_jᵀ.
        alpha_bar = alpha_bar + start * outer
        if earlier:
            left = jnp.stack([eta * power[j - 1 - i] * y[i] * g_seg[j] for i, j in earlier])
            right = jnp.stack([p[i] * p[j] for i, j in earlier])
            alpha_bar = alpha_bar + left.T @ right
        return (y_bar, power[k] * end_bar + alpha * outer, alpha_bar, eta_bar), g_seg

    shape = (-1, k, n)
    init = (jnp.zeros(n, ys.dtype), jnp.zeros_like(weight), jnp.zeros_like(alpha),
            jnp.zeros((), eta.dtype))  # fmt: skip
    (_, _, alpha_bar, eta_bar), gs = jax.lax.scan(
        segment, init,
        (starts, ys.reshape(shape), previous.reshape(shape), z_bar.reshape(shape)),
        reverse=True,
    )  # fmt: skip
    gs = gs.reshape(-1, n)
    weight_bar = gs.T @ previous  # ∂L/∂w: one product after the loop
    return weight_bar, alpha_bar, eta_bar, gs[pad:]


plastic_episode.defvjp(_episode_fwd, _episode_bwd)


class PlasticNetwork(eqx.Module):
    """The fully recurrent plastic network of Miconi et al. 2018 (sec. 4.1, the pattern
    completion task): `neurons` tanh units connected all-to-all by plastic connections
    (eqs. 12–13), the input added to the first `n_in` of them (scaled by `input_gain`; Miconi
    et al. use 20, so that a shown pattern clamps the activity), read out from the first
    `n_out`.

    The outputs are logits 2 z_t (z_t the pre-activations): σ(2z) = (1 + tanh z) / 2, so a bit
    reads 1 exactly when its neuron's activity is positive. With `plastic=False` it is the same
    network with α = 0: a plain fully recurrent network of the same size.

    **Arguments:**

    - `n_in`, `n_out`: pattern bits read and written (at most `neurons`).
    - `key`: PRNG key; w and α start normal with standard deviation 0.01 (Miconi et al.).
    - `neurons`: network size; 0 for one neuron per input bit (Miconi et al.).
    - `eta`: initial plasticity rate in (0, 1], trained with w and α.
    - `input_gain`: factor on the inputs.
    - `plastic`: `False` for the non-plastic network.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import PlasticNetwork

    net = PlasticNetwork(16, 16, key=jax.random.key(0))
    net(jnp.ones((10, 16))).shape  # (10, 16)
    ```
    """

    weight: Float[Array, "neurons neurons"]
    alpha: Float[Array, "neurons neurons"]
    eta: Float[Array, ""]
    n_in: int = eqx.field(static=True)
    n_out: int = eqx.field(static=True)
    input_gain: float = eqx.field(static=True)
    plastic: bool = eqx.field(static=True)

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        key: PRNGKeyArray,
        neurons: int = 0,
        eta: float = 0.01,
        input_gain: float = 20.0,
        plastic: bool = True,
    ):
        check_plasticity_rate(eta)
        size = neurons or max(n_in, n_out)
        if size < max(n_in, n_out):
            raise DiffdynError(
                f"a network of {size} neurons cannot hold patterns of {max(n_in, n_out)} bits "
                f"(one neuron per bit); use neurons >= {max(n_in, n_out)}, or 0 for one per bit."
            )
        k_w, k_a = jax.random.split(key)
        self.weight = 0.01 * jax.random.normal(k_w, (size, size))
        self.alpha = 0.01 * jax.random.normal(k_a, (size, size))
        self.eta = jnp.asarray(eta, float)
        self.n_in, self.n_out = n_in, n_out
        self.input_gain = float(input_gain)
        self.plastic = plastic

    def __call__(self, inputs: Float[Array, "time n_in"]) -> Float[Array, "time n_out"]:
        size = self.weight.shape[0]
        x = self.input_gain * jnp.pad(inputs, [(0, 0), (0, size - self.n_in)])
        if self.plastic:
            zs = plastic_episode(self.weight, self.alpha, jnp.clip(self.eta, 0.0, 1.0), x)
        else:

            def step(y, x_t):
                z = self.weight @ y + x_t
                return jnp.tanh(z), z

            _, zs = jax.lax.scan(step, jnp.zeros(size, x.dtype), x)
        return 2 * zs[:, : self.n_out]


__all__ = [
    "RULES", "PlasticCell", "PlasticLinear", "PlasticNetwork", "check_plasticity_rate",
    "hebbian_update", "neuromodulated_update", "oja_update", "plastic_episode",
    "run_plastic_sequence",
]  # fmt: skip
