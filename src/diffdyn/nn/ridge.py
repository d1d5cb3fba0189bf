"""Ridge regression (Tikhonov-regularised least squares) in closed form."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, ArrayLike, Float


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
