"""Soft sorting and ranking by projection onto the permutahedron (Blondel et al. 2020).

Blondel, Teboul, Berthet & Djolonga, "Fast differentiable sorting and ranking", ICML 2020.
The permutahedron P(w) is the convex hull of the permutations of a vector w. With quadratic
regularisation of strength ε, the soft versions of sorting and ranking are Euclidean
projections onto it (paper eqs. 5–6; ρ = (n, n − 1, …, 1)):

    soft rank:  r_ε(θ) = P(θ / ε, ρ)          (ascending: the largest value gets rank n)
    soft sort:  s_ε(θ) = P(ρ / ε, θ)          (descending order; ascending sorts −θ)

where P(z, w) = argmin_{μ ∈ P(w)} ½‖μ − z‖². As ε → 0 they become the hard rank and sort; as
ε → ∞ every rank tends to (n + 1)/2 and every sorted value to the mean of θ.

The projection reduces to isotonic regression (paper Prop. 3): with σ the permutation sorting z
in descending order and w sorted in descending order,

    P(z, w) = z − v(z_σ − w)_{σ⁻¹},   v(y) = argmin_{v₁ ≥ … ≥ vₙ} ½‖v − y‖²,

and v is piecewise constant: each block of equal values is the mean of y over the block. Its
Jacobian averages within blocks (paper Lemma 1), which is the custom VJP here.

Pool-adjacent-violators is sequential; here it runs in rounds instead, each a few vectorised
operations: every maximal run of blocks whose means violate the order is pooled at once. That
is a valid PAV schedule — pooling adjacent violators in any order reaches the one solution
(Best & Chakravarti 1990), and a strictly violating run stays violating while it is pooled
left to right — so the rounds stop at the exact isotonic solution. The number of rounds is data
dependent: a few for most inputs; a cascade, where a pooled block absorbs one neighbour a round,
would take a round per block, so once at most `FINISH_BLOCKS` (64) blocks are left and a round
stops halving their number, one exact step at block level (the min–max formula of isotonic
regression, O(64²) per vector) ends it. An adversarial input whose cascade runs over more
blocks than that still takes up to n rounds. Only quadratic (L2) regularisation is implemented;
the paper's entropic (KL) variant is not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ..errors import DiffdynError


def _check_strength(strength) -> None:
    # A JAX scalar (e.g. ε under `jax.vmap`) is taken as it is: its value is not known here.
    number = isinstance(strength, int | float) and not isinstance(strength, bool)
    if not (number and strength > 0) and not isinstance(strength, jax.Array):
        raise DiffdynError(f"regularisation strength must be a positive number; got {strength!r}.")


def _descending_order(z: Float[Array, " n"]) -> Int[Array, " n"]:
    """The permutation sorting `z` in descending order (stable: ties keep their order), a
    constant of the derivative.

    XLA:CPU's general sort (`jnp.argsort`) costs about 10 ms for a batch of 64 vectors of 1000;
    this bitonic network does the same in about 2 ms: a fixed schedule of compare-exchange
    stages, each a few elementwise operations over the whole batch (`_bitonic_order`). A NumPy
    argsort through `jax.pure_callback` was tried too: half the time of XLA's sort for the
    batch, ten times slower for one vector (the callback's round trip)."""
    return _bitonic_descending(lax.stop_gradient(z))


def _bitonic_order(keys: Float[Array, "n batch"]) -> Int[Array, "n batch"]:
    """Per column of `keys`, the indices that sort it in descending order, ties by index:
    Batcher's bitonic sorting network (Batcher 1968, "Sorting networks and their
    applications") on the strict total order (value descending, index ascending).

    The length is padded to the next power of two m with −∞ (which, by index, fall behind any
    real −∞). Stage (k, j), for k = 2, 4, …, m and j = k/2, …, 1, compares each position i
    having bit j clear with its partner i + j; the pair is put in descending order where
    bit k of i is clear and in ascending order where it is set. The batch is the last axis, so
    that every stage is a contiguous elementwise pass. NaNs are not ordered (the output is
    still a permutation)."""
    n, batch = keys.shape
    m = 1 << max(n - 1, 0).bit_length()
    pad = jnp.full((m - n, batch), -jnp.inf, keys.dtype)
    key = jnp.concatenate([keys, pad])
    index = jnp.broadcast_to(jnp.arange(m, dtype=jnp.int32)[:, None], (m, batch))
    position = np.arange(m)
    k = 2
    while k <= m:
        j = k // 2
        while j >= 1:
            key4 = key.reshape(m // (2 * j), 2, j, batch)
            index4 = index.reshape(m // (2 * j), 2, j, batch)
            a, b, ia, ib = key4[:, 0], key4[:, 1], index4[:, 0], index4[:, 1]
            first = position.reshape(m // (2 * j), 2, j)[:, 0]
            descending = jnp.asarray((first & k) == 0)[:, :, None]
            a_first = (a > b) | ((a == b) & (ia < ib))
            swap = descending ^ a_first
            key = jnp.stack([jnp.where(swap, b, a), jnp.where(swap, a, b)], 1).reshape(m, batch)
            index = jnp.stack([jnp.where(swap, ib, ia), jnp.where(swap, ia, ib)], 1)
            index = index.reshape(m, batch)
            j //= 2
        k *= 2
    return index[:n]


@jax.custom_batching.custom_vmap
def _bitonic_descending(z: Float[Array, " n"]) -> Int[Array, " n"]:
    return _bitonic_order(z[:, None])[:, 0]


@_bitonic_descending.def_vmap
def _bitonic_descending_batched(axis_size, in_batched, z):
    # Under `jax.vmap` the batch comes first; the network wants it last (a contiguous pass
    # per stage: 2 ms against 3.6 ms for the batch-first layout, 64 × 1000).
    del axis_size, in_batched
    return _bitonic_order(z.T).T, True


# With at most this many blocks left, the pooling finishes in one exact step at block level
# (`_finish_blocks`, O(m²) per vector) instead of round after round.
FINISH_BLOCKS = 64


def _block_ids(y: Float[Array, " n"]) -> tuple[Int[Array, " n"], Float[Array, " n"]]:
    """Blocks of the decreasing isotonic regression of `y`: per element its block index, and
    per block its size (0 beyond the last block)."""
    block, counts = _batched_block_ids(y[None])
    return block[0], counts[0]


def _violations(start, value):
    # A block boundary violates the order when the block on its left has a mean no larger than
    # the one on its right.
    return jnp.concatenate([jnp.zeros(1, bool), value[:-1] <= value[1:]]) & start


def _blocks_of(y, start):
    """Block index per element, block sizes, and the boundaries that violate the order, of
    the partition whose blocks begin where `start` is set."""
    n = y.shape[0]
    block = _count_prefix(start) - 1
    ones = jnp.ones_like(y)
    totals = jax.ops.segment_sum(jnp.stack([y, ones], -1), block, n, indices_are_sorted=True)
    value = (totals[:, 0] / jnp.maximum(totals[:, 1], 1))[block]
    return block, totals[:, 1], _violations(start, value)


def _pool_round(y, start, violates):
    """One round: pool every violating boundary at once."""
    start = start & ~violates
    return (start, *_blocks_of(y, start))


def _finish_blocks(y, start, block, counts):
    """The exact pooling of a partition of at most `FINISH_BLOCKS` blocks, in one step.

    The blocks so far are unions of the solution's blocks (pooling adjacent violators never
    pools what the solution separates), so the solution is the weighted decreasing isotonic
    regression of the blocks' means, whose min–max form (Barlow, Bartholomew, Bremner & Brunk
    1972, *Statistical Inference under Order Restrictions*, ch. 1) is
    v_b = min_{a ≤ b} max_{e ≥ b} M(a, e), M(a, e) the mean of y over blocks a … e. The sums of
    M are running sums from each a (no differences of prefix sums, which would lose digits in
    float32). Blocks whose v are equal are pooled; a boundary the rounding leaves violating is
    pooled by the round after it."""
    m = FINISH_BLOCKS
    n = y.shape[0]
    sums = jax.ops.segment_sum(y, block, n, indices_are_sorted=True)[:m]
    sizes = counts[:m]
    if n < m:  # fewer elements than the finishing size: pad with empty blocks
        sums = jnp.concatenate([sums, jnp.zeros(m - n, sums.dtype)])
        sizes = jnp.concatenate([sizes, jnp.zeros(m - n, sizes.dtype)])
    index = jnp.arange(m)
    upper = index[None, :] >= index[:, None]  # [a, e]: e ≥ a
    run_sums = jnp.cumsum(jnp.where(upper, sums[None, :], 0), axis=1)
    run_sizes = jnp.cumsum(jnp.where(upper, sizes[None, :], 0), axis=1)
    real = upper & (sizes[None, :] > 0)
    means = jnp.where(real, run_sums / jnp.maximum(run_sizes, 1), -jnp.inf)
    # max over e ≥ b of M(a, e), then the min over a ≤ b
    right_max = lax.cummax(means, axis=1, reverse=True)
    value = jnp.min(jnp.where(upper, right_max, jnp.inf), axis=0)
    keep = jnp.concatenate([jnp.ones(1, bool), value[1:] < value[:-1]])
    start = start & keep[jnp.minimum(block, m - 1)]
    return (start, *_blocks_of(y, start))


@jax.custom_batching.custom_vmap
def _batched_block_ids(
    y: Float[Array, "batch n"],
) -> tuple[Int[Array, "batch n"], Float[Array, "batch n"]]:
    """`_block_ids` of each row of `y`.

    Pooling runs in rounds; each round pools every maximal run of violating boundaries at
    once: the block count falls geometrically while rounds make progress, but a cascade (a
    pooled block absorbing one neighbour a round) takes a round per block (θ ~ N(0, 1),
    n = 1000, ε = 0.01, float32: 40 rounds, 139 blocks after the first, 71 after the second,
    then about 2 fewer a round). Once every row has at most `FINISH_BLOCKS` blocks and the
    last round removed less than half of them, one exact block-level step (`_finish_blocks`)
    ends the cascade. The choice is made for the whole batch (a `lax.cond` on the batch's
    largest block count), so that a batch under `jax.vmap` does not pay for both
    (`custom_vmap`)."""
    rows, n = y.shape
    start = jnp.ones((rows, n), bool)
    block = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (rows, n))
    state = (start, block, jnp.ones_like(y), jax.vmap(_violations)(start, y))
    pool = jax.vmap(_pool_round)

    def finish_then_pool(state):
        start, _, _, violates = jax.vmap(_finish_blocks)(y, *state[:3])
        return pool(y, start, violates)

    def step(carry):
        state, before = carry
        blocks = jnp.max(jnp.sum(state[0], axis=1, dtype=jnp.int32))
        # Finish once few blocks are left and the last round removed less than half of them
        # (a cascade: rounds then pool about one block each).
        stalled = (blocks <= FINISH_BLOCKS) & (2 * blocks > before)
        state = lax.cond(stalled, finish_then_pool, lambda s: pool(y, s[0], s[3]), state)
        return state, blocks

    state, _ = lax.while_loop(lambda c: jnp.any(c[0][3]), step, (state, jnp.int32(2 * n + 1)))
    _, block, counts, _ = state
    return block, counts


@_batched_block_ids.def_vmap
def _batched_block_ids_vmap(axis_size, in_batched, y):
    # Under `jax.vmap` of `_block_ids` the rows of the batch are the vectors: one batch.
    del axis_size, in_batched
    n = y.shape[-1]
    block, counts = _batched_block_ids(y.reshape(-1, n))
    return (block.reshape(y.shape), counts.reshape(y.shape)), (True, True)


def _count_prefix(
    flags: Bool[Array, " n"] | Float[Array, " n"], chunk: int = 32
) -> Int[Array, " n"]:
    """`jnp.cumsum(flags)` as products with a 32 × 32 triangle of ones: prefix counts within
    chunks of 32, plus the chunks' own prefix counts (recursively). XLA:CPU lowers `cumsum` to an
    associative scan of ~20 passes (0.4 ms for 64 × 1000); this is half that. Exact: the counts
    stay integers below 2²⁴ in float32, at the highest matmul precision."""
    n = flags.shape[0]
    m = -(-n // chunk) * chunk
    x = jnp.concatenate([flags.astype(jnp.float32), jnp.zeros(m - n, jnp.float32)])
    triangle = jnp.triu(jnp.ones((chunk, chunk), jnp.float32))
    local = jnp.matmul(x.reshape(m // chunk, chunk), triangle, precision=lax.Precision.HIGHEST)
    totals = local[:, -1]
    before = _count_prefix(totals, chunk) - totals if m > chunk else jnp.zeros_like(totals)
    return (local + before[:, None]).reshape(m)[:n].astype(jnp.int32)


def _block_mean(x, block, counts):
    """The mean of `x` `[n, ...]` over each element's block, per trailing column."""
    n = x.shape[0]
    sums = jax.ops.segment_sum(x, block, n, indices_are_sorted=True)
    sizes = jnp.maximum(counts, 1).reshape((n,) + (1,) * (x.ndim - 1))
    return (sums / sizes)[block]


@jax.custom_vjp
def isotonic_decreasing(y: Float[Array, " n"]) -> Float[Array, " n"]:
    """The isotonic regression argmin_{v₁ ≥ … ≥ vₙ} ½‖v − y‖² (by pooling adjacent violators).

    Its VJP averages the cotangent over each block of the solution (Blondel et al. 2020,
    Lemma 1).

    **Arguments:**

    - `y`: a vector `[n]`.

    **Returns:** the decreasing vector `[n]` closest to `y`.

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import isotonic_decreasing

    isotonic_decreasing(jnp.array([3.0, 1.0, 2.0]))  # [3.0, 1.5, 1.5]
    ```
    """
    block, counts = _block_ids(y)
    return _block_mean(y, block, counts)


def _isotonic_forward(y):
    block, counts = _block_ids(y)
    return _block_mean(y, block, counts), (block, counts)


def _isotonic_backward(residual, cotangent):
    block, counts = residual
    return (_block_mean(cotangent, block, counts),)


isotonic_decreasing.defvjp(_isotonic_forward, _isotonic_backward)


def permutahedron_projection(
    z: Float[ArrayLike, " n"], w: Float[ArrayLike, " n"]
) -> Float[Array, " n"]:
    """The Euclidean projection of `z` onto the permutahedron of `w` (Blondel et al. 2020,
    Prop. 3): P(z, w) = z − v(z_σ − w_↓)_{σ⁻¹}, with σ sorting z in descending order, w_↓ the
    values of w in descending order and v the decreasing isotonic regression.

    Differentiable in `z` and `w`: the permutation and the blocks of v are locally constant,
    and v averages within blocks, so the derivative is the block average of Lemma 1.

    **Arguments:**

    - `z`: the point to project `[n]`.
    - `w`: the vector whose permutations span the permutahedron `[n]` (any order).

    **Returns:** the projection `[n]`, in the order of `z`.
    """
    z, w = jnp.asarray(z), jnp.asarray(w)
    if z.ndim != 1 or z.shape != w.shape:
        raise DiffdynError(
            f"permutahedron_projection takes two vectors of one length; got shapes {z.shape} "
            f"and {w.shape} (batch with jax.vmap)."
        )
    return _project(z, w[_descending_order(w)])


def _project(z: Float[Array, " n"], w_sorted: Float[Array, " n"]) -> Float[Array, " n"]:
    """`permutahedron_projection` for a `w` already in descending order."""
    order = _descending_order(z)
    return jnp.zeros_like(z).at[order].set(_minus_pooled(z[order], w_sorted))


@jax.custom_vjp
def _minus_pooled(a: Float[Array, " n"], b: Float[Array, " n"]) -> Float[Array, " n"]:
    """a − v(a − b), v the decreasing isotonic regression, written a − mean_B(a) + mean_B(b)
    over each block B of v: with a = θ/ε or ρ/ε large (small ε), the direct difference loses
    every digit of the result in float32; the block-centred one keeps them. The blocks are
    locally constant, so the derivative is the block average M (Blondel et al. 2020, Lemma 1):
    the VJP of a cotangent g is (g − M g, M g), one block mean."""
    return _minus_pooled_forward(a, b)[0]


def _minus_pooled_forward(a, b):
    block, counts = _block_ids(lax.stop_gradient(a - b))
    means = _block_mean(jnp.stack([a, b], -1), block, counts)  # one segment sum for both
    return a - means[:, 0] + means[:, 1], (block, counts)


def _minus_pooled_backward(residual, cotangent):
    block, counts = residual
    pooled = _block_mean(cotangent, block, counts)
    return cotangent - pooled, pooled


_minus_pooled.defvjp(_minus_pooled_forward, _minus_pooled_backward)


def _check_vector(name: str, values) -> Array:
    values = jnp.asarray(values)
    if values.ndim != 1 or values.shape[0] == 0:
        raise DiffdynError(
            f"{name} takes one non-empty vector; got shape {values.shape} (batch with jax.vmap)."
        )
    if not jnp.issubdtype(values.dtype, jnp.floating):
        values = values.astype(jnp.result_type(float))
    return values


def soft_rank(
    values: Float[ArrayLike, " n"], *, strength: float = 1.0, descending: bool = False
) -> Float[Array, " n"]:
    """Soft ranks r_ε(θ) = P(θ/ε, ρ), ρ = (n, …, 1) (Blondel et al. 2020, eq. 6).

    Ranks start at 1: ascending, the smallest value gets rank 1 (as the hard
    `argsort(argsort(θ)) + 1`); `descending=True` ranks −θ. As `strength` ε → 0 they are the
    hard ranks; as ε → ∞ they all tend to (n + 1)/2. Same values and conventions as
    `fast_soft_sort.numpy_ops.soft_rank(values, direction, regularization_strength=ε)`.

    **Arguments:**

    - `values`: a vector `[n]` (one example; batch with `jax.vmap`).
    - `strength`: the regularisation strength ε > 0 (a number, or a JAX scalar).
    - `descending`: rank the largest value 1.

    **Returns:** the soft ranks `[n]`, summing to n(n + 1)/2.

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import soft_rank

    soft_rank(jnp.array([0.3, -1.0, 2.0]), strength=0.01)  # [2., 1., 3.]
    soft_rank(jnp.array([0.3, -1.0, 2.0]), strength=100.0)  # ≈ [2., 2., 2.]
    ```
    """
    _check_strength(strength)
    values = _check_vector("soft_rank", values)
    n = values.shape[0]
    rho = jnp.arange(n, 0, -1, dtype=values.dtype)
    sign = -1.0 if descending else 1.0
    return _project(sign * values / strength, rho)


def soft_sort(
    values: Float[ArrayLike, " n"], *, strength: float = 1.0, descending: bool = False
) -> Float[Array, " n"]:
    """Soft sort s_ε(θ) = P(ρ/ε, θ) (Blondel et al. 2020, eq. 5), ascending by default.

    As `strength` ε → 0 it is the hard sort; as ε → ∞ every entry tends to the mean of θ. Since
    ρ/ε is already in descending order, no sort of the output is needed: s_ε(θ) = ρ/ε −
    v(ρ/ε − θ_↓). Same values and conventions as
    `fast_soft_sort.numpy_ops.soft_sort(values, direction, regularization_strength=ε)`.

    **Arguments:**

    - `values`: a vector `[n]` (one example; batch with `jax.vmap`).
    - `strength`: the regularisation strength ε > 0 (a number, or a JAX scalar).
    - `descending`: sort from the largest value.

    **Returns:** the soft-sorted values `[n]` (their sum is the sum of `values`).

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import soft_sort

    soft_sort(jnp.array([0.3, -1.0, 2.0]), strength=0.01)  # [-1., 0.3, 2.]
    ```
    """
    _check_strength(strength)
    values = _check_vector("soft_sort", values)
    n = values.shape[0]
    sign = 1.0 if descending else -1.0
    rho = jnp.arange(n, 0, -1, dtype=values.dtype) / strength
    theta_sorted = (sign * values)[_descending_order(sign * values)]
    return sign * _minus_pooled(rho, theta_sorted)


def soft_top_k(
    values: Float[ArrayLike, " n"], k: int, *, strength: float = 1.0
) -> Float[Array, " n"]:
    """A soft top-k mask: the projection of θ/ε onto the permutahedron of w = (1,…,1, 0,…,0)
    (k ones), the capped simplex {μ ∈ [0, 1]ⁿ : Σμ = k} (Blondel et al. 2020, §3 and the
    permutahedron's special cases).

    As ε → 0 it is the hard indicator of the k largest values; as ε → ∞ every entry tends to
    k/n.

    **Arguments:**

    - `values`: a vector `[n]`.
    - `k`: how many entries to select, 1 ≤ k ≤ n.
    - `strength`: the regularisation strength ε > 0 (a number, or a JAX scalar).

    **Returns:** a mask `[n]` in [0, 1] summing to k.

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import soft_top_k

    soft_top_k(jnp.array([0.3, -1.0, 2.0]), 2, strength=0.01)  # [1., 0., 1.]
    ```
    """
    _check_strength(strength)
    values = _check_vector("soft_top_k", values)
    n = values.shape[0]
    if not (isinstance(k, int) and 1 <= k <= n):
        raise DiffdynError(f"soft_top_k needs a whole k between 1 and {n}; got {k!r}.")
    w = (jnp.arange(n) < k).astype(values.dtype)  # descending already
    return _project(values / strength, w)


def soft_quantile(
    values: Float[ArrayLike, " n"], q: float, *, strength: float = 1.0
) -> Float[Array, ""]:
    """A soft q-quantile: the ascending soft sort read at position q·(n − 1), linearly
    interpolated between its neighbours (NumPy's default "linear" quantile of the hard sort).

    As ε → 0 it is `numpy.quantile(values, q)`; as ε → ∞ it tends to the mean.

    **Arguments:**

    - `values`: a vector `[n]`.
    - `q`: the quantile level in [0, 1].
    - `strength`: the regularisation strength ε > 0 (a number, or a JAX scalar).

    **Returns:** a scalar.

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn import soft_quantile

    soft_quantile(jnp.array([3.0, 1.0, 2.0, 4.0]), 0.5, strength=1e-3)  # 2.5
    ```
    """
    if not (isinstance(q, int | float) and 0 <= q <= 1):
        raise DiffdynError(f"soft_quantile needs a level q between 0 and 1; got {q!r}.")
    sorted_ = soft_sort(values, strength=strength)
    position = q * (sorted_.shape[0] - 1)
    low = int(position // 1)
    high = min(low + 1, sorted_.shape[0] - 1)
    frac = position - low
    return (1 - frac) * sorted_[low] + frac * sorted_[high]
