"""Standard errors and correlations from the Gauss–Newton approximation of the Hessian.

At the optimum θ̂ of `S(θ) = Σ r_i(θ)²` (m residuals, p unknowns), the Hessian is
approximately `2 JᵀJ` with `J = ∂r/∂θ`, and the usual nonlinear least-squares covariance is
(Seber & Wild 1989, *Nonlinear Regression*, §2.1, eq. 2.21)

    Cov(θ̂) ≈ σ̂² (JᵀJ)⁻¹,   σ̂² = S(θ̂) / (m − p),

σ² estimated from the residuals. It is invariant to a common scale of the residuals, so the
standardisation by each variable's standard deviation and the `1/√N` of the objective change
nothing. The unknowns are the fitted parameters in their own units *and* every segment's
initial state, so the parameters' errors account for the initial states being fitted too
(the parameters' block of the full inverse, not the inverse of the parameters' block).
`J` comes from forward-mode differentiation through the solver (`diffrax.ForwardMode`); the
inverse is taken by an SVD in float64, and a direction whose singular value is below
`1e-6 · s_max` (float32 Jacobians) counts as unidentified: a parameter with weight on such a
direction gets a NaN standard error.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

RANK_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class Uncertainty:
    """What `gauss_newton_uncertainty` returns.

    - `names`: one label per fitted parameter entry (`"rho"`, `"w[1]"`), in order.
    - `standard_errors`: `[q]` one per entry (NaN where unidentified).
    - `correlation`: `[q, q]` the parameters' correlation matrix.
    - `state_errors`: `[K, d]` standard errors of the segments' initial states.
    - `sigma2`: σ̂² of the (standardised) residuals; `dof`: m − p.
    - `rank`, `unknowns`: the numerical rank of `J` and its number of columns p.
    """

    names: tuple[str, ...]
    standard_errors: np.ndarray
    correlation: np.ndarray
    state_errors: np.ndarray
    sigma2: float
    dof: int
    rank: int
    unknowns: int


def entry_names(values: dict[str, np.ndarray]) -> tuple[str, ...]:
    """`"rho"` for a scalar, `"w[0]"`, `"w[1]"` ... for the entries of an array."""
    out: list[str] = []
    for name, value in values.items():
        value = np.asarray(value)
        if value.ndim == 0:
            out.append(name)
        else:
            out.extend(f"{name}[{', '.join(map(str, i))}]" for i in np.ndindex(value.shape))
    return tuple(out)


def gauss_newton_uncertainty(
    jacobian: np.ndarray,
    residuals: np.ndarray,
    residual_count: int,
    names: tuple[str, ...],
    state_shape: tuple[int, ...],
) -> Uncertainty | None:
    """Standard errors and correlations at the optimum from the Jacobian of the residuals.

    **Arguments:**

    - `jacobian`: `[m, p]`, `∂r/∂(values, states)` in the unknowns' own units, the `q`
      parameter entries first, then the initial states row by row.
    - `residuals`: `[m]` the residual vector at the optimum.
    - `residual_count`: the residuals that are data or continuity gaps (the masked zeros of
      the residual vector do not count): m of σ̂² = S/(m − p).
    - `names`: the `q` parameter entries' labels (`entry_names`).
    - `state_shape`: `(K, d)`.

    **Returns:** an `Uncertainty`, or `None` when there are no more residuals than unknowns or
    the Jacobian is not finite.

    **Example:** for a straight line `y = a + b t` (a `[m, 2]` Jacobian `[1, t]`) the errors
    are ordinary least squares': `σ̂ · sqrt(diag((XᵀX)⁻¹))`.
    """
    jac = np.asarray(jacobian, dtype=np.float64)
    r = np.asarray(residuals, dtype=np.float64)
    unknowns = jac.shape[1]
    dof = residual_count - unknowns
    if dof <= 0 or not np.isfinite(jac).all() or not np.isfinite(r).all():
        return None
    sigma2 = float(r @ r) / dof
    _, s, vt = np.linalg.svd(jac, full_matrices=False)
    kept = s > RANK_TOLERANCE * s[0] if s.size and s[0] > 0 else np.zeros(s.shape, bool)
    inverse_s2 = np.where(kept, 1.0 / np.where(kept, s, 1.0) ** 2, 0.0)
    covariance = sigma2 * (vt.T * inverse_s2) @ vt
    variance = np.diag(covariance).copy()
    # A coordinate with weight on an unidentified direction has no finite error.
    null_weight = (vt[~kept] ** 2).sum(axis=0) if (~kept).any() else np.zeros(unknowns)
    variance[null_weight > 1e-6] = math.nan
    errors = np.sqrt(np.maximum(variance, 0.0))
    q = len(names)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = covariance[:q, :q] / np.outer(errors[:q], errors[:q])
    return Uncertainty(
        names=tuple(names),
        standard_errors=errors[:q],
        correlation=correlation,
        state_errors=errors[q:].reshape(state_shape),
        sigma2=sigma2,
        dof=dof,
        rank=int(kept.sum()),
        unknowns=unknowns,
    )
