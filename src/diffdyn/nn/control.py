"""Soft control flow: an `if`, a `switch` and a loop that learns when to stop, made
differentiable.

Tutorial (Hernández & Amigó), §2: a branch whose condition is learned becomes a convex
combination of both branches, a·y(x) + (1 − a)·z(x) with a ∈ (0, 1), and a loop can learn how
many times to run (adaptive computation time, Graves 2016):

- `soft_if` / `SoftIf`: a = σ(c(x) / T); as the temperature T → 0 it is `y if c(x) > 0 else z`.
- `soft_switch` / `SoftSwitch`: K branches weighted by w = softmax(s(x) / T); as T → 0 it is
  the branch of the largest score. With `straight_through=True` the forward pass takes that
  branch alone (w one-hot) and the backward pass differentiates the softmax (Bengio, Léonard &
  Courville 2013, the straight-through estimator).
- `halting_loop`: Graves (2016), "Adaptive computation time for recurrent neural networks",
  eqs. (5)–(14): run a step repeatedly, each intermediate state n emitting a halting
  probability h^n = σ(halt(s^n) / T); stop at N = min{n : Σ_{n' ≤ n} h^{n'} ≥ 1 − ε} (at most
  `max_steps`); the result is the mean state Σ_n p^n s^n with p^n = h^n for n < N and the
  remainder R = 1 − Σ_{n < N} h^n for n = N, so the weights sum to 1; the ponder cost is
  N + R. As T → 0 every h^n is 0 or 1 and the loop is `while halt(s) <= 0: s = step(s)`
  (at most `max_steps` times).

Each works on one unbatched example and stays jit-able: the loop is a `lax.scan` of
`max_steps` iterations whose steps after halting get weight 0 and leave the state as it was
(under `jax.vmap`, as in training, a `while_loop` would run every example to the longest one
anyway, and reverse-mode differentiation needs a bounded loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PyTree

from ..errors import DiffdynError


def _check_temperature(temperature) -> None:
    if isinstance(temperature, (int, float)) and not temperature > 0:
        raise DiffdynError(
            f"the temperature must be positive (small values approach the hard branch); got "
            f"{temperature}."
        )


def soft_if(
    condition: Float[Array, ""],
    then_value: PyTree[Array],
    else_value: PyTree[Array],
    *,
    temperature: float | Float[Array, ""] = 1.0,
) -> PyTree[Array]:
    """a·y + (1 − a)·z with a = σ(condition / temperature) (tutorial §2).

    **Arguments:**

    - `condition`: the score c(x); positive means "then".
    - `then_value`, `else_value`: y(x) and z(x), pytrees of the same structure.
    - `temperature`: T > 0; as T → 0 the result is `then_value if condition > 0 else
      else_value`.

    **Returns:** the mixed pytree.

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import soft_if

    soft_if(jnp.array(2.0), jnp.array(1.0), jnp.array(-1.0))  # ≈ 0.76
    ```
    """
    _check_temperature(temperature)
    a = jax.nn.sigmoid(condition / temperature)
    return jax.tree.map(lambda y, z: a * y + (1 - a) * z, then_value, else_value)


def soft_switch(
    scores: Float[Array, " branches"],
    values: PyTree[Array],
    *,
    temperature: float | Float[Array, ""] = 1.0,
    straight_through: bool = False,
) -> tuple[PyTree[Array], Float[Array, " branches"]]:
    """Σ_k w_k v_k with w = softmax(scores / temperature): a switch over K branches.

    **Arguments:**

    - `scores`: `[K]` the score of each branch.
    - `values`: the K branches' values, a pytree whose leaves have a leading axis of K.
    - `temperature`: T > 0; as T → 0 the result is the branch of the largest score.
    - `straight_through`: take the branch of the largest score alone in the forward pass
      (w one-hot) while gradients flow through the softmax.

    **Returns:** `(value, weights [K])`, the weights used (summing to 1).

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import soft_switch

    value, weights = soft_switch(jnp.array([0.0, 3.0]), jnp.array([[1.0], [2.0]]))
    ```
    """
    _check_temperature(temperature)
    if scores.ndim != 1 or scores.shape[0] < 2:
        raise DiffdynError(
            f"soft_switch needs a score per branch for at least 2 branches, shape [K]; got "
            f"{tuple(scores.shape)}."
        )
    weights = jax.nn.softmax(scores / temperature)
    if straight_through:
        hard = jax.nn.one_hot(jnp.argmax(scores), scores.shape[0], dtype=weights.dtype)
        weights = weights + jax.lax.stop_gradient(hard - weights)

    def mix(leaf):
        if leaf.shape[:1] != scores.shape:
            raise DiffdynError(
                f"every branch value needs a leading axis of {scores.shape[0]} (one per "
                f"branch); got shape {tuple(leaf.shape)}."
            )
        return jnp.tensordot(weights, leaf, axes=1)

    return jax.tree.map(mix, values), weights


class SoftIf(eqx.Module):
    """`if condition(x) > 0: then_branch(x) else: else_branch(x)`, with a learned condition,
    made differentiable: a·y(x) + (1 − a)·z(x), a = σ(condition(x) / T) (`soft_if`).

    **Arguments:**

    - `condition`: a module x → scalar score (e.g. `eqx.nn.Linear(n, "scalar", key=...)`).
    - `then_branch`, `else_branch`: modules x → y(x), z(x) of the same shape.
    - `temperature`: T > 0.

    **Returns** (call): `(value, a)`.

    **Example:**

    ```python
    import equinox as eqx, jax, jax.numpy as jnp
    from diffdyn.nn import SoftIf

    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    branch = SoftIf(eqx.nn.Linear(2, "scalar", key=k1), eqx.nn.Linear(2, 2, key=k2),
                    eqx.nn.Linear(2, 2, key=k3))
    value, a = branch(jnp.ones(2))
    ```
    """

    condition: Callable
    then_branch: Callable
    else_branch: Callable
    temperature: float = eqx.field(static=True, default=1.0)

    def __call__(self, x: Array) -> tuple[Array, Float[Array, ""]]:
        condition = self.condition(x)
        value = soft_if(
            condition, self.then_branch(x), self.else_branch(x), temperature=self.temperature
        )
        return value, jax.nn.sigmoid(condition / self.temperature)


class SoftSwitch(eqx.Module):
    """A switch over K branches of one architecture, with a learned score (`soft_switch`).

    `branches` is one module whose array leaves carry a leading axis of K (K modules stacked,
    e.g. `eqx.filter_vmap(lambda k: eqx.nn.MLP(..., key=k))(jax.random.split(key, K))`), so
    all K are evaluated in one vectorised call.

    **Arguments:**

    - `score`: a module x → `[K]` scores.
    - `branches`: the stacked branches, each x → value.
    - `temperature`: T > 0.
    - `straight_through`: forward with the top-scoring branch alone (see `soft_switch`).

    **Returns** (call): `(value, weights [K])`.

    **Example:**

    ```python
    import equinox as eqx, jax, jax.numpy as jnp
    from diffdyn.nn import SoftSwitch

    k1, k2 = jax.random.split(jax.random.key(0))
    experts = eqx.filter_vmap(lambda k: eqx.nn.Linear(2, 2, key=k))(jax.random.split(k2, 3))
    switch = SoftSwitch(eqx.nn.Linear(2, 3, key=k1), experts)
    value, weights = switch(jnp.ones(2))  # value [2], weights [3]
    ```
    """

    score: Callable
    branches: Any
    temperature: float = eqx.field(static=True, default=1.0)
    straight_through: bool = eqx.field(static=True, default=False)

    def __call__(self, x: Array) -> tuple[PyTree[Array], Float[Array, " branches"]]:
        values = eqx.filter_vmap(lambda branch: branch(x))(self.branches)
        return soft_switch(
            self.score(x), values,
            temperature=self.temperature, straight_through=self.straight_through,
        )  # fmt: skip


class Halting(NamedTuple):
    """What `halting_loop` returns.

    - `state`: Σ_n p^n s^n, the intermediate states weighted by the halting distribution.
    - `weights`: `[max_steps]` p^n (zero after the halting step; they sum to 1).
    - `steps`: N, the number of steps run (1 … `max_steps`).
    - `remainder`: R = 1 − Σ_{n < N} h^n, the weight of the last step.
    - `ponder_cost`: N + R (Graves 2016, eq. 11), whose gradient (through R) shortens the loop.
    """

    state: PyTree[Array]
    weights: Float[Array, " max_steps"]
    steps: Int[Array, ""]
    remainder: Float[Array, ""]
    ponder_cost: Float[Array, ""]


def halting_loop(
    step: Callable[[PyTree[Array], Int[Array, ""]], PyTree[Array]],
    halt: Callable[[PyTree[Array]], Float[Array, ""]],
    init: PyTree[Array],
    *,
    max_steps: int,
    epsilon: float = 0.01,
    temperature: float | Float[Array, ""] = 1.0,
) -> Halting:
    """Adaptive computation time (Graves 2016): repeat `step` until the halting probabilities
    add up to 1 − ε or `max_steps` steps ran; return the halting-weighted mean state.

    **Arguments:**

    - `step`: `(state, n) -> state`, the n-th step (n = 0, 1, …; Graves feeds a flag that is
      1 only at n = 0).
    - `halt`: `state -> score`; the halting probability is h = σ(score / temperature).
    - `init`: the state before the first step (a pytree of arrays).
    - `max_steps`: M ≥ 1, the most steps run (the last one takes the whole remainder).
    - `epsilon`: ε ∈ [0, 1), so that a single step can halt (h ≥ 1 − ε).
    - `temperature`: T > 0; as T → 0, h ∈ {0, 1} and the result is the state after the first
      step whose halting score is positive (or after M steps).

    **Returns:** a `Halting` (mean state, weights `[M]`, steps N, remainder R, ponder cost).

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import halting_loop

    out = halting_loop(lambda s, n: s + 1.0, lambda s: s - 2.5, jnp.array(0.0),
                       max_steps=5, temperature=1e-3)
    out.steps, out.state  # 3, 3.0: the first state above 2.5
    ```
    """
    if not isinstance(max_steps, int) or max_steps < 1:
        raise DiffdynError(
            f"the halting loop's maximum number of steps must be a whole number of at least 1; "
            f"got {max_steps!r}."
        )
    if not 0 <= epsilon < 1:
        raise DiffdynError(f"epsilon must lie in [0, 1); got {epsilon}.")
    _check_temperature(temperature)
    zero = jnp.zeros((), jnp.result_type(*jax.tree.leaves(init)))
    mean_state = jax.tree.map(jnp.zeros_like, init)

    def body(carry, n):
        state, mean_state, total, halted, steps, remainder = carry
        new = step(state, n)
        h = jax.nn.sigmoid(halt(new) / temperature)
        # Graves eq. (6)–(8): halt at the first n with Σ h ≥ 1 − ε; the last allowed step halts.
        stops = ~halted & ((total + h >= 1 - epsilon) | (n == max_steps - 1))
        p = jnp.where(halted, 0.0, jnp.where(stops, 1 - total, h))  # eqs. (9)–(10)
        mean_state = jax.tree.map(lambda m, s: m + p * s, mean_state, new)  # eq. (12)
        state = jax.tree.map(lambda old, s: jnp.where(halted, old, s), state, new)
        steps = jnp.where(stops, n + 1, steps)
        remainder = jnp.where(stops, 1 - total, remainder)
        total = jnp.where(halted, total, total + h)
        return (state, mean_state, total, halted | stops, steps, remainder), p

    init_carry = (init, mean_state, zero, jnp.array(False), jnp.array(0), zero)
    (_, mean_state, _, _, steps, remainder), weights = jax.lax.scan(
        body, init_carry, jnp.arange(max_steps)
    )
    return Halting(mean_state, weights, steps, remainder, steps + remainder)
