"""Ridge regression (Tikhonov-regularised least squares) in closed form, and choosing its α."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ..errors import DiffdynError


def ridge_regression(
    features: Float[ArrayLike, "samples p"],
    targets: Float[ArrayLike, "samples d"],
    alpha: float | Float[ArrayLike, ""],
    *,
    unpenalised: Sequence[int] = (),
) -> Float[Array, "p d"]:
    """Solve min_W ‖X W − Y‖² + α ‖P W‖² in closed form, i.e. (XᵀX + α P) W = XᵀY.

    `P` is the identity except at the columns listed in `unpenalised` (e.g. a constant column
    of ones, so that the intercept is not shrunk towards zero), where it is 0. `α` multiplies
    the *unnormalised* sum of squares, as in Gauthier et al. 2021 and Lukoševičius 2012
    (eq. 9): the same `α` regularises less as the number of samples grows.

    The solution of the normal equations is computed without forming XᵀX: a QR factorisation
    of the stacked system [X  Y; √(αP)  0] = Q [R  c; 0  ·] gives R W = c (RᵀR = XᵀX + αP and
    Rᵀc = XᵀY). Its accuracy depends on cond(X), not on cond(XᵀX) = cond(X)², which is what
    lets float32 fit nonlinear autoregressions whose delayed features are nearly collinear
    (cond(X) ≈ 10⁷ for NG-RC on Lorenz-63 at dt = 0.025: the Gram matrix is singular in
    float32, the QR solve is accurate to ≈ 10⁻³). Cost O((N + p)(p + d)²). Jittable and
    differentiable.

    **Arguments:**

    - `features`: `X`, `[N, p]`.
    - `targets`: `Y`, `[N, d]`.
    - `alpha`: `α ≥ 0`; with `α = 0` (or a column unpenalised), `X` must have full column
      rank (in those columns).
    - `unpenalised`: indices of columns that are not penalised (static).

    **Returns:** `W`, `[p, d]`.

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.nn.ridge import ridge_regression

    x = jnp.stack([jnp.ones(5), jnp.arange(5.0)], axis=1)  # a constant column and a ramp
    y = (2.0 + 3.0 * jnp.arange(5.0))[:, None]
    ridge_regression(x, y, 1e-6, unpenalised=[0])  # ≈ [[2.], [3.]]
    ```
    """
    x, y = jnp.asarray(features), jnp.asarray(targets)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"ridge_regression needs features [N, p] and targets [N, d] with the same N; got "
            f"{x.shape} and {y.shape}."
        )
    dtype = jnp.result_type(x, y, jnp.float32)
    x, y = x.astype(dtype), y.astype(dtype)
    p, d = x.shape[1], y.shape[1]
    penalty = jnp.ones(p, dtype).at[jnp.asarray(list(unpenalised), dtype=int)].set(0.0)
    stacked = jnp.concatenate(
        [
            jnp.concatenate([x, y], axis=1),
            jnp.concatenate([jnp.diag(jnp.sqrt(alpha * penalty)), jnp.zeros((p, d), dtype)], 1),
        ]
    )
    r = jnp.linalg.qr(stacked, mode="r")
    return jsl.solve_triangular(r[:p, :p], r[:p, p:], lower=False)


def ridge_path(
    features: Float[ArrayLike, "samples p"],
    targets: Float[ArrayLike, "samples d"],
    alphas: Float[ArrayLike, " alphas"],
    *,
    unpenalised: Sequence[int] = (),
) -> Float[Array, "alphas p d"]:
    """`ridge_regression` for every α in `alphas`, from one factorisation.

    The unpenalised columns `X_u` are projected out first: at the optimum their weights are
    W_u = X_u⁺ (Y − X_p W_p), which leaves a plain ridge problem in the penalised columns
    `X_p` for the residuals X̃_p = (I − Q_u Q_uᵀ) X_p and Ỹ = (I − Q_u Q_uᵀ) Y (for a constant
    column: centring). A QR factorisation [X̃_p  Ỹ] = Q [R  c; 0  ·] reduces it to
    min ‖R W − c‖² + α ‖W‖², and with the SVD R = U diag(s) Vᵀ of the small p × p factor,
    W_p(α) = V diag(s / (s² + α)) Uᵀ c. Both factorisations are backward stable (XᵀX is never
    formed, as in `ridge_regression`), and they are shared: k values of α cost one
    O(N p²) QR, one O(p³) SVD and k products of O(p² d), against k QRs. (The SVD of the
    N × p matrix itself took 2–4 times as long as QR + SVD of R for an ESN's 8000 × 503 and
    16000 × 503 designs, 2 CPU cores.) Jittable.

    **Arguments:** as `ridge_regression`, with `alphas` (each ≥ 0) in place of `alpha`.

    **Returns:** `W` for each α, `[alphas, p, d]`.
    """
    x, y = jnp.asarray(features), jnp.asarray(targets)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"ridge_path needs features [N, p] and targets [N, d] with the same N; got "
            f"{x.shape} and {y.shape}."
        )
    dtype = jnp.result_type(x, y, jnp.float32)
    x, y = x.astype(dtype), y.astype(dtype)
    alphas = jnp.asarray(alphas, dtype)
    free = sorted(set(unpenalised))
    penalised = [i for i in range(x.shape[1]) if i not in free]
    x_free, x_penalised = x[:, free], x[:, penalised]
    if free:
        q, r = jnp.linalg.qr(x_free)
        x_penalised_residual = x_penalised - q @ (q.T @ x_penalised)
        y_residual = y - q @ (q.T @ y)
    else:
        x_penalised_residual, y_residual = x_penalised, y
    p = len(penalised)
    r_full = jnp.linalg.qr(jnp.concatenate([x_penalised_residual, y_residual], 1), mode="r")
    u, s, vt = jnp.linalg.svd(r_full[:p, :p])
    denominator = s[None] ** 2 + alphas[:, None]
    # a zero singular value with α = 0 contributes nothing (the minimum-norm solution)
    shrink = jnp.where(denominator > 0, s[None] / jnp.where(denominator > 0, denominator, 1), 0)
    weights_penalised = jnp.einsum("rk,ar,rd->akd", vt, shrink, u.T @ r_full[:p, p:])
    out = jnp.zeros((alphas.shape[0], x.shape[1], y.shape[1]), dtype)
    out = out.at[:, penalised].set(weights_penalised)
    if free:
        # R W_u = Qᵀ (Y − X_p W_p), for every α at once as columns of one right-hand side
        rhs = (q.T @ y)[None] - jnp.einsum("kp,apd->akd", q.T @ x_penalised, weights_penalised)
        rhs = jnp.moveaxis(rhs, 0, 1).reshape(len(free), -1)
        weights_free = jsl.solve_triangular(r, rhs).reshape(len(free), alphas.shape[0], -1)
        out = out.at[:, free].set(jnp.moveaxis(weights_free, 1, 0))
    return out


RIDGE_CANDIDATES = tuple(10.0**k for k in range(-10, 1))
"""The α that `choose_ridge` tries: 1e-10, 1e-9, …, 1 (on the unnormalised sum of squares)."""

# the share of the regression rows held out to choose the ridge (callers cut with
# `data.held_out_start`), choose_ridge's forecast length, start points and per-step error cap
# (its docstring says why), and the fewest rows worth splitting
HELD_OUT_FRACTION = 0.2
VALIDATION_HORIZON = 100
VALIDATION_STARTS = 64
ERROR_CAP = 1.0
MIN_SELECTION_ROWS = 10


def parse_ridge(ridge: float | str, model: str) -> float | None:
    """A closed-form model's `ridge` hyperparameter: `None` for `"auto"`, else α ≥ 0.

    Text is accepted (the registry passes command-line text through, e.g. `ridge=1e-6`).
    """
    if isinstance(ridge, str) and ridge.strip().lower() == "auto":
        return None
    try:
        alpha = float(ridge)
    except (TypeError, ValueError):
        alpha = math.nan
    if not alpha >= 0:
        raise DiffdynError(f"{model} needs ridge ≥ 0 or 'auto'; got {ridge!r}.")
    return alpha


def choose_ridge(
    features: Float[Array, "rows p"],
    targets: Float[Array, "rows d"],
    next_values: Float[Array, "rows d"],
    closed_loop: Callable[[Float[Array, "p d"], Int[Array, ""], int], Float[Array, "horizon d"]],
    *,
    fit_rows: int,
    unpenalised: Sequence[int] = (),
    candidates: Sequence[float] = RIDGE_CANDIDATES,
) -> Float[Array, ""]:
    """The α among `candidates` whose readout forecasts held-out data best, closed loop.

    Row i of `features` and `targets` is the regression of a closed-form forecaster at
    time t_i, with t_{i+1} = t_i + 1, and `next_values[i]` the state y_{t_i + 1} it forecasts;
    `closed_loop(readout, i, horizon)` must forecast y_{t_i + 1}, …, y_{t_i + horizon} from what
    row i saw, feeding its own outputs back. The rows before `fit_rows` are fitted, the others
    held out (the models cut `HELD_OUT_FRACTION` = 20 % with `data.held_out_start`).

    Validation on held-out data, as Lukoševičius 2012 (§4.2) recommends for the ESN's
    regularisation, on a logarithmic grid; the held-out part is the last block of the series
    ("last block" evaluation, Bergmeir & Benítez 2012), since a closed-loop forecast needs a
    contiguous truth; and the score is that of a forecast, multi-step in closed loop:

    1. fit the readout for every α on the first rows (`ridge_path`: one factorisation);
    2. from up to 64 start points spread over the held-out rows, forecast 100 steps (at most half
       the held-out rows) with each (on Mackey–Glass, 50 steps chose an NG-RC α whose
       forecasts diverged later on; on Rössler, 16 starts chose an ESN α with VPT 4.6
       Lyapunov times where 64 chose one with 5.7);
    3. score an α by the mean over starts and steps of the per-step NRMSE
       √(mean_j ((ŷ_j − y_j) / σ_j)²) (σ: the fitted rows' standard deviation), each term
       capped at 1 (what forecasting the mean scores) and a non-finite term counted as the
       cap, so that a diverging forecast loses, the earlier the more, and cannot turn the score
       into NaN;
    4. return the α with the lowest score; ties go to the larger α (the safer readout).

    The caller refits on all rows with it. Jittable (the shapes decide the split).

    **Raises** `DiffdynError` unless at least one row is fitted and two are held out.
    """
    rows = features.shape[0]
    if not 1 <= fit_rows <= rows - 2:
        raise DiffdynError(
            f"choosing the ridge needs at least one fitted and two held-out regression rows; "
            f"got {fit_rows} fitted of {rows}. Give more data or an explicit ridge (ridge=1e-6)."
        )
    horizon = min(VALIDATION_HORIZON, max(1, (rows - fit_rows) // 2))
    last_start = rows - horizon
    starts = np.unique(
        np.linspace(fit_rows, last_start, min(VALIDATION_STARTS, last_start - fit_rows + 1))
        .round()
        .astype(int)
    )
    # descending, so that argmin's first minimum is the largest α
    alphas = jnp.asarray(sorted(candidates, reverse=True), features.dtype)
    readouts = ridge_path(features[:fit_rows], targets[:fit_rows], alphas, unpenalised=unpenalised)
    spread = next_values[:fit_rows].std(axis=0)
    spread = jnp.where(spread > 0, spread, 1)[None, None]
    truths = next_values[starts[:, None] + np.arange(horizon)]  # [starts, horizon, d]

    def score(readout):
        forecasts = jax.vmap(lambda i: closed_loop(readout, i, horizon))(jnp.asarray(starts))
        error = jnp.sqrt(jnp.mean(((forecasts - truths) / spread) ** 2, axis=-1))
        return jnp.mean(jnp.where(jnp.isfinite(error), jnp.minimum(error, ERROR_CAP), ERROR_CAP))

    scores = jax.vmap(score)(readouts)
    return jax.lax.stop_gradient(alphas[jnp.argmin(scores)])
