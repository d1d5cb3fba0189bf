"""Training losses for multi-step forecasts beyond the mean squared error.

- **soft-DTW** (Cuturi & Blondel 2017, "Soft-DTW: a differentiable loss function for
  time-series", eq. (1) and Algorithm 1): the dynamic-time-warping cost with the hard minimum
  replaced by the soft minimum min_γ(a₁, …) = −γ log Σᵢ exp(−aᵢ/γ),

      R_{i,j} = δ(xᵢ, yⱼ) + min_γ(R_{i−1,j−1}, R_{i−1,j}, R_{i,j−1}),   sdtw_γ(x, y) = R_{n,m},

  δ the squared Euclidean distance. Cells of one anti-diagonal i + j = k depend only on the
  two before, so the recursion is a `lax.scan` over anti-diagonals with every cell of one
  diagonal computed at once; it is differentiated by autodiff through that scan (the paper's
  backward recursion computes the same gradient). As a training loss the *divergence*
  sdtw(x, y) − ½ sdtw(x, x) − ½ sdtw(y, y) (Blondel, Mensch & Vert 2021, "Differentiable
  divergences between time series", eq. (4)) is used: it is 0 at x = y, whereas sdtw_γ(x, x)
  is negative and its minimiser is not x.
- **soft valid prediction time**: with eₜ the error of forecast step t (the NRMSE of
  `metrics.nrmse` on standardised data: sqrt(mean over variables of the squared error)),
  the hard VPT in steps is Σₜ Πₛ≤ₜ 1[eₛ ≤ ε] (the steps before the first one whose error
  exceeds ε; `metrics.valid_prediction_time` times dt). Its smooth surrogate replaces the
  indicator by a sigmoid of temperature τ,

      soft_vpt(e) = Σₜ Πₛ≤ₜ σ((ε − eₛ)/τ)  →  the hard count as τ → 0 (for eₛ ≠ ε),

  computed in log space (Σ log σ) so that long products do not underflow. Its training loss is
  −soft_vpt / (scored steps): training maximises the fraction of the horizon that stays valid.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..errors import DiffdynError
from .config import LOSSES

# Stands in for the +∞ border of the DTW table: finite, so that no gradient is NaN.
_FAR = 1e10


def _soft_min(values: Float[Array, "three n"], gamma) -> Float[Array, " n"]:
    return -gamma * jax.nn.logsumexp(-values / gamma, axis=0)


def soft_dtw_table(
    x: Float[Array, "n d"], y: Float[Array, "m d"], gamma: float
) -> Float[Array, "diagonals n1"]:
    """The soft-DTW table R by anti-diagonals: row k holds R_{i, k−i} for i = 0…n (borders and
    cells outside the table hold a large finite number, R_{0,0} = 0).

    **Returns:** `[n + m + 1, n + 1]`; R_{i,j} is `table[i + j, i]`.
    """
    n, m = x.shape[0], y.shape[0]
    cost = jnp.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)  # δ(xᵢ, yⱼ), [n, m]
    rows = jnp.arange(n + 1)
    far = jnp.full(n + 1, _FAR, x.dtype)
    first = far.at[0].set(0.0)  # diagonal 0: R_{0,0}

    def diagonal(carry, k):
        before, last = carry  # diagonals k − 2 and k − 1
        cols = k - rows
        inside = (rows >= 1) & (cols >= 1) & (cols <= m)
        delta = cost[jnp.clip(rows - 1, 0, n - 1), jnp.clip(cols - 1, 0, m - 1)]
        shift = lambda a: jnp.concatenate([far[:1], a[:-1]])  # noqa: E731  (entry i ← i − 1)
        # R_{i−1,j−1} (diagonal k−2, row i−1), R_{i−1,j} (k−1, row i−1), R_{i,j−1} (k−1, row i)
        options = jnp.stack([shift(before), shift(last), last])
        new = jnp.where(inside, delta + _soft_min(options, gamma), _FAR)
        return (last, new), new

    _, rest = jax.lax.scan(diagonal, (far, first), jnp.arange(1, n + m + 1))
    return jnp.concatenate([first[None], rest])


def _check_gamma(gamma) -> None:
    if isinstance(gamma, int | float) and not gamma > 0:
        raise DiffdynError(f"soft-DTW needs a smoothing gamma > 0; got {gamma!r}.")


def soft_dtw(
    x: Float[ArrayLike, "n d"], y: Float[ArrayLike, "m d"], *, gamma: float = 1.0
) -> Float[Array, ""]:
    """Soft-DTW sdtw_γ(x, y) = R_{n,m} (Cuturi & Blondel 2017, eq. 1; squared Euclidean cost).

    As γ → 0 it is the DTW cost (the minimum over alignments of the summed squared distances).

    **Arguments:**

    - `x`, `y`: two series `[n, d]` and `[m, d]` (one example; batch with `jax.vmap`).
    - `gamma`: the smoothing γ > 0.

    **Returns:** a scalar.

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.train.losses import soft_dtw

    x = jnp.array([[0.0], [1.0], [2.0]])
    soft_dtw(x, x + 0.1, gamma=0.01)  # ≈ DTW = 3 × 0.01 (aligned step by step)
    ```
    """
    _check_gamma(gamma)
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise DiffdynError(
            f"soft_dtw takes two series [time, dim] of one dim; got {x.shape} and {y.shape}."
        )
    return soft_dtw_table(x, y, gamma)[-1, -1]


def soft_dtw_divergence(
    x: Float[ArrayLike, "n d"], y: Float[ArrayLike, "n d"], *, gamma: float = 1.0, used=None
) -> Float[Array, ""]:
    """The soft-DTW divergence sdtw(x, y) − ½ sdtw(x, x) − ½ sdtw(y, y) (Blondel, Mensch & Vert
    2021, eq. 4), 0 when x = y; of the first `used` steps of both series when `used` is given
    (a traced integer: R_{u,u} of the full tables, which depends on those steps only).

    **Arguments:**

    - `x`, `y`: two series `[n, d]`.
    - `gamma`: the smoothing γ > 0.
    - `used`: how many leading steps to compare (default all).

    **Returns:** a scalar.
    """
    _check_gamma(gamma)
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.shape != y.shape or x.ndim != 2:
        raise DiffdynError(
            f"expected two series of one shape [time, dim]; got {x.shape}, {y.shape}."
        )
    u = x.shape[0] if used is None else jnp.asarray(used, jnp.int32)

    def corner(a, b):
        return soft_dtw_table(a, b, gamma)[2 * u, u]

    return corner(x, y) - 0.5 * corner(x, x) - 0.5 * corner(y, y)


def step_errors(
    forecast: Float[ArrayLike, "horizon dim"], target: Float[ArrayLike, "horizon dim"]
) -> Float[Array, " horizon"]:
    """eₜ = sqrt(mean over variables of (ŷₜ − yₜ)²): the NRMSE of standardised data per step."""
    squared = jnp.mean((jnp.asarray(forecast) - jnp.asarray(target)) ** 2, axis=-1)
    # The tiny shift keeps the square root's derivative finite at a perfect step.
    return jnp.sqrt(squared + 1e-12)


def hard_valid_steps(errors: Float[ArrayLike, " horizon"], epsilon: float) -> Array:
    """Σₜ Πₛ≤ₜ 1[eₛ ≤ ε]: the forecast steps before the first whose error exceeds ε."""
    valid = jnp.asarray(errors) <= epsilon
    return jnp.sum(jnp.cumprod(valid))


def soft_valid_steps(
    errors: Float[ArrayLike, " horizon"],
    *,
    epsilon: float = 0.5,
    temperature: float = 0.1,
    used=None,
) -> Float[Array, ""]:
    """The soft count Σₜ Πₛ≤ₜ σ((ε − eₛ)/τ) of forecast steps whose error stays under ε (over
    the first `used` steps when given); → `hard_valid_steps` as τ → 0.

    **Arguments:**

    - `errors`: per-step errors eₜ `[horizon]` (`step_errors`).
    - `epsilon`: the threshold ε (the VPT's, default 0.5).
    - `temperature`: τ > 0, in units of error.
    - `used`: how many leading steps count (a traced integer allowed).

    **Returns:** a scalar in [0, horizon].

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.train.losses import hard_valid_steps, soft_valid_steps

    e = jnp.array([0.1, 0.2, 0.7, 0.1])
    hard_valid_steps(e, 0.5), soft_valid_steps(e, temperature=0.01)  # 2, ≈ 2.0
    ```
    """
    if isinstance(temperature, int | float) and not temperature > 0:
        raise DiffdynError(f"the soft-VPT temperature must be > 0; got {temperature!r}.")
    errors = jnp.asarray(errors)
    survival = jnp.exp(jnp.cumsum(jax.nn.log_sigmoid((epsilon - errors) / temperature)))
    if used is not None:
        survival = survival * (jnp.arange(errors.shape[0]) < used)
    return jnp.sum(survival)


class ForecastLoss(eqx.Module):
    """The training loss of one forecast over its first `used` steps (`TrainConfig.loss`):
    `"soft-dtw"`, the soft-DTW divergence per scored step, or `"soft-vpt"`, −(soft valid
    steps)/(scored steps). (`"mse"` is computed by `fit.forecast_loss` itself.)"""

    name: str = eqx.field(static=True)
    soft_dtw_gamma: float = eqx.field(static=True, default=0.1)
    soft_vpt_epsilon: float = eqx.field(static=True, default=0.5)
    soft_vpt_temperature: float = eqx.field(static=True, default=0.1)

    def __call__(
        self, forecast: Float[Array, "rollout dim"], target: Float[Array, "rollout dim"], used
    ) -> Float[Array, ""]:
        if self.name == "soft-dtw":
            divergence = soft_dtw_divergence(
                forecast, target, gamma=self.soft_dtw_gamma, used=used
            )
            return divergence / used
        if self.name == "soft-vpt":
            count = soft_valid_steps(
                step_errors(forecast, target),
                epsilon=self.soft_vpt_epsilon,
                temperature=self.soft_vpt_temperature,
                used=used,
            )
            return -count / used
        raise DiffdynError(f"unknown loss {self.name!r}; choose one of {', '.join(LOSSES)}.")
