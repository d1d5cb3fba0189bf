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
    implicit: bool = True,
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
    float32, the QR solve is accurate to ≈ 10⁻³). Cost O((N + p)(p + d)²). Jittable.

    **Gradients** (in `X`, `Y` and `α`) are implicit by default: W is defined by the normal
    equations A W = XᵀY, A = XᵀX + αP, so for a cotangent W̄ one more solve with the same
    factor, Λ = A⁻¹ W̄ = R⁻¹ R⁻ᵀ W̄ (two triangular solves), gives them all (differentiating
    A W = XᵀY; e.g. Blondel et al. 2022, "Efficient and modular implicit differentiation"):

    - Ȳ = X Λ;
    - X̄ = (Y − X W) Λᵀ − X Λ Wᵀ;
    - ᾱ = −Σ_ij P_ii Λ_ij W_ij.

    The backward pass then costs O((N + p) p d) instead of differentiating through the QR
    factorisation (O(N p²) again, and its derivative is undefined where R has a zero on its
    diagonal). With `implicit=False` reverse- and forward-mode differentiate the QR itself
    (same values; `tests/test_reservoir_tuning.py` checks both against finite differences).
    The implicit rule is reverse-mode only (`jax.custom_vjp`).

    **Arguments:**

    - `features`: `X`, `[N, p]`.
    - `targets`: `Y`, `[N, d]`.
    - `alpha`: `α ≥ 0`; with `α = 0` (or a column unpenalised), `X` must have full column
      rank (in those columns).
    - `unpenalised`: indices of columns that are not penalised (static).
    - `implicit`: differentiate by the normal equations (above) rather than through the QR.

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
    alpha = jnp.asarray(alpha, dtype)
    penalty = jnp.ones(x.shape[1], dtype).at[jnp.asarray(list(unpenalised), dtype=int)].set(0.0)
    if implicit:
        return _ridge_implicit(x, y, alpha, penalty)
    return _ridge_factor_and_solve(x, y, alpha, penalty)[0]


def _ridge_factor_and_solve(x, y, alpha, penalty):
    """(W, R): the QR solve of the stacked system (`ridge_regression`)."""
    p, d = x.shape[1], y.shape[1]
    stacked = jnp.concatenate(
        [
            jnp.concatenate([x, y], axis=1),
            # √(αP) = √α P (P is 0 or 1): √ at the unpenalised zeros would make dW/dα NaN
            jnp.concatenate([jnp.diag(jnp.sqrt(alpha) * penalty), jnp.zeros((p, d), x.dtype)], 1),
        ]
    )
    r = jnp.linalg.qr(stacked, mode="r")
    return jsl.solve_triangular(r[:p, :p], r[:p, p:], lower=False), r[:p, :p]


@jax.custom_vjp
def _ridge_implicit(x, y, alpha, penalty):
    return _ridge_factor_and_solve(x, y, alpha, penalty)[0]


def _ridge_implicit_forward(x, y, alpha, penalty):
    weights, factor = _ridge_factor_and_solve(x, y, alpha, penalty)
    return weights, (x, y, alpha, penalty, weights, factor)


def _ridge_implicit_backward(residuals, cotangent):
    x, y, alpha, penalty, weights, factor = residuals
    # Λ = A⁻¹ W̄ with A = RᵀR: the factor of the forward solve, no new factorisation
    adjoint = jsl.solve_triangular(
        factor, jsl.solve_triangular(factor, cotangent, trans="T", lower=False), lower=False
    )
    x_adjoint = x @ adjoint
    x_bar = (y - x @ weights) @ adjoint.T - x_adjoint @ weights.T
    weighted = jnp.sum(adjoint * weights, axis=1)
    alpha_bar = -jnp.sum(penalty * weighted)
    return x_bar, x_adjoint, alpha_bar.astype(alpha.dtype), -alpha * weighted


_ridge_implicit.defvjp(_ridge_implicit_forward, _ridge_implicit_backward)


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
    # R has min(N, p + d) rows: with fewer samples than features (an ESN on a short series)
    # its SVD is the thin one
    u, s, vt = jnp.linalg.svd(r_full[:p, :p], full_matrices=False)
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
# a validation forecast beyond this many times the training series' largest magnitude has
# diverged; the models' validation closed loops clip there (`closed_loop_bound`)
DIVERGENCE_FACTOR = 100.0


def closed_loop_bound(values: Float[Array, "time dim"]) -> Float[Array, ""]:
    """Where a validation closed loop (`choose_ridge`, `cross_validated_forecasts`) clips the
    state it feeds back: `DIVERGENCE_FACTOR` = 100 times the largest |value| of the training
    series. A forecast there scores the capped error anyway; clipped, a diverging rollout
    stays finite (no inf, whose gradient is NaN) and its gradient is zero."""
    return jax.lax.stop_gradient(DIVERGENCE_FACTOR * jnp.max(jnp.abs(values)))


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
    starts, horizon = validation_plan(features.shape[0], fit_rows)
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


def validation_plan(rows: int, fit_rows: int) -> tuple[np.ndarray, int]:
    """`choose_ridge`'s closed-loop validation: (start rows, horizon) among `rows` regression
    rows of which the first `fit_rows` are fitted.

    Up to `VALIDATION_STARTS` = 64 start rows spread evenly over the held-out rows, each
    forecasting `VALIDATION_HORIZON` = 100 steps (at most half the held-out rows).

    **Raises** `DiffdynError` unless at least one row is fitted and two are held out.
    """
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
    return starts, horizon


def held_out_forecasts(
    features: Float[Array, "rows p"],
    targets: Float[Array, "rows d"],
    next_values: Float[Array, "rows d"],
    closed_loop: Callable[[Float[Array, "p d"], Int[Array, ""], int], Float[Array, "horizon d"]],
    alpha: Float[ArrayLike, ""],
    *,
    fit_rows: int,
    unpenalised: Sequence[int] = (),
) -> tuple[Float[Array, "starts horizon d"], Float[Array, "starts horizon d"], Float[Array, " d"]]:
    """Closed-loop forecasts of held-out rows by the readout fitted at `alpha` on the rows
    before `fit_rows`: one solve, differentiable in the features, the targets and `alpha`
    (the readout's gradient is implicit, `ridge_regression`).

    The validation of `choose_ridge` at one α: the start rows and horizon of
    `validation_plan` (up to 64 starts spread over the held-out rows, 100 steps each, at most
    half the held-out rows), each forecast teacher-forced up to its start and free running
    after it. Arguments as `choose_ridge`.

    **Returns:** `(forecasts, truths, spread)` as `cross_validated_forecasts`, the spread being
    the fitted rows' standard deviation of `next_values` (zeros replaced by 1).

    **Raises** `DiffdynError` unless at least one row is fitted and two are held out.
    """
    starts, horizon = validation_plan(features.shape[0], fit_rows)
    readout = ridge_regression(
        features[:fit_rows], targets[:fit_rows], alpha, unpenalised=unpenalised
    )
    forecasts = jax.vmap(lambda i: closed_loop(readout, i, horizon))(jnp.asarray(starts))
    truths = next_values[starts[:, None] + np.arange(horizon)]
    spread = next_values[:fit_rows].std(axis=0)
    return forecasts, truths, jnp.where(spread > 0, spread, 1)


def cross_validated_forecasts(
    features: Float[Array, "rows p"],
    targets: Float[Array, "rows d"],
    next_values: Float[Array, "rows d"],
    closed_loop: Callable[[Float[Array, "p d"], Int[Array, ""], int], Float[Array, "horizon d"]],
    alpha: Float[ArrayLike, ""],
    *,
    folds: int,
    unpenalised: Sequence[int] = (),
    horizon: int = VALIDATION_HORIZON,
    starts: int = VALIDATION_STARTS,
) -> tuple[Float[Array, "starts horizon d"], Float[Array, "starts horizon d"], Float[Array, " d"]]:
    """Blocked cross-validation of a readout by its closed-loop forecasts, differentiable in
    the features, the targets and `alpha` (the readout's gradient is implicit,
    `ridge_regression`).

    Up to `starts` start rows are spread evenly over the rows, each forecasting `horizon` steps
    (at most a quarter of the rows), and cut into `folds` contiguous groups. Group k is
    forecast by the readout fitted at `alpha` on the rows outside [its first start, its last
    start + horizon): no forecast step was fitted, and every part of the series is forecast
    once (blocked cross-validation for time series, Bergmeir & Benítez 2012, with the forecast
    windows left out of each fit). A zero row adds nothing to XᵀX or XᵀY, so each fold is
    `ridge_regression` of the series with its block's rows zeroed: `folds` solves.

    Arguments as `choose_ridge`.

    **Returns:** `(forecasts, truths, spread)`: forecasts and the states they forecast
    `[starts, horizon, d]`, and the standard deviation of `next_values` `[d]` (zeros replaced
    by 1).

    **Raises** `DiffdynError` when there are fewer than 4 rows per fold.
    """
    rows = features.shape[0]
    if folds < 1 or rows < 4 * folds:
        raise DiffdynError(
            f"cross-validating a readout over {folds} folds needs at least {4 * folds} "
            f"regression rows; got {rows}. Give more data."
        )
    horizon = max(1, min(horizon, rows // 4))
    last = rows - horizon
    points = np.unique(np.linspace(0, last, min(starts, last + 1)).round().astype(int))
    groups = np.array_split(points, min(folds, len(points)))
    fold_of = np.concatenate([np.full(len(g), k) for k, g in enumerate(groups)])
    kept = np.ones((len(groups), rows))
    for k, group in enumerate(groups):
        kept[k, group[0] : group[-1] + horizon] = 0.0
    kept = jnp.asarray(kept, features.dtype)[:, :, None]
    readouts = jax.vmap(
        lambda w: ridge_regression(features * w, targets * w, alpha, unpenalised=unpenalised)
    )(kept)
    forecasts = jax.vmap(lambda i, k: closed_loop(readouts[k], i, horizon))(
        jnp.asarray(points), jnp.asarray(fold_of)
    )
    truths = next_values[points[:, None] + np.arange(horizon)]
    spread = next_values.std(axis=0)
    return forecasts, truths, jnp.where(spread > 0, spread, 1)
