"""Sparse regression: sequentially thresholded least squares, its threshold, and bagging.

- **STLSQ** (Brunton, Proctor & Kutz 2016, PNAS, Code 1): fit every term by ridge
  regression, zero the coefficients below the threshold, refit the rest, until the set of
  terms stops changing; then refit the kept terms by plain least squares (as PySINDy's
  `unbias=True`). The columns are scaled to unit RMS first, so the ridge (`ridge` times the
  identity on the scaled normal equations) acts alike on every term whatever its units; it
  decides only which terms are kept, never the final coefficients.
- **The threshold.** Given, it is on the coefficients in the data's units, |ξ_jk| ≥ λ (as in
  the paper and PySINDy). Not given, it is chosen per equation on held-out rows: a term's
  *importance* is |ξ_jk| · rms(θ_j) / rms(rate_k), the share of the rate's size it carries;
  STLSQ runs on the first 80 % of the rows (`data.held_out_start`, diffdyn's one time split)
  for importance thresholds τ from 1e-5 to 10 and each ridge of `RIDGES`; the fits whose
  relative error on the last 20 %, ‖b − Gξ‖ / ‖b‖, is within `HELD_OUT_SLACK` of the
  smallest plus `HELD_OUT_FLOOR` are accepted, and the accepted fit with the fewest terms
  wins, refitted on all rows: a term that improves the held-out fit by less than about 1 %
  of the rate is not kept.
- **Bagging** (E-SINDy: Fasel, Kutz, Brunton & Brunton 2022, Proc. R. Soc. A 478, §2b):
  STLSQ on `bagging` bootstrap resamples of the rows (with replacement), the coefficient of
  each term the median over the resamples ("bragging"), its inclusion probability the share
  of resamples that kept it; terms kept by fewer than half are dropped.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..data.split import held_out_start
from ..errors import DiffdynError

HELD_OUT_FRACTION = 0.2
HELD_OUT_SLACK = 0.1
HELD_OUT_FLOOR = 0.01
IMPORTANCE_GRID = np.geomspace(1e-5, 10.0, 49)
RIDGES = (1e-10, 1e-6, 1e-4, 1e-2)  # searched with the threshold when neither is given
MAX_ITERATIONS = 20
INCLUSION_CUTOFF = 0.5


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A regression b ≈ G ξ with G's columns scaled to unit RMS.

    - `scaled`: G / scale, `[rows, P]`; `scale`: rms of each column (1 for a zero column).
    - `targets`: b, `[rows, d]`; `target_scale`: rms of each target column.
    """

    scaled: np.ndarray
    scale: np.ndarray
    targets: np.ndarray
    target_scale: np.ndarray

    @classmethod
    def build(cls, features: np.ndarray, targets: np.ndarray) -> Problem:
        scale = np.sqrt(np.mean(features**2, axis=0))
        scale = np.where(scale > 0, scale, 1.0)
        return cls(features / scale, scale, targets, np.sqrt(np.mean(targets**2, axis=0)))

    def rows(self, start: int, stop: int | None = None) -> Problem:
        """The same regression on rows `start:stop`, with the full problem's scaling."""
        return Problem(
            self.scaled[start:stop], self.scale, self.targets[start:stop], self.target_scale
        )

    def normal_equations(self, weights: np.ndarray | None = None):
        """`(GᵀWG / n, GᵀWb / n)` on the scaled columns (W the row weights, default 1)."""
        weighted = self.scaled if weights is None else self.scaled * weights[:, None]
        n = self.scaled.shape[0] if weights is None else float(weights.sum())
        return weighted.T @ self.scaled / n, weighted.T @ self.targets / n


def stlsq(
    gram: np.ndarray, moments: np.ndarray, thresholds: np.ndarray, ridge: float | np.ndarray
) -> np.ndarray:
    """STLSQ on scaled normal equations: coefficients `[P, d]` (scaled units).

    **Arguments:**

    - `gram`: GᵀG / n `[P, P]`; `moments`: Gᵀb / n `[P, d]`.
    - `thresholds`: `[P, d]`, the least magnitude a scaled coefficient keeps.
    - `ridge`: added to the diagonal while terms are being selected (one value, or one per
      equation).
    """
    terms, dim = moments.shape
    out = np.zeros((terms, dim))
    eye = np.eye(terms)
    ridges = np.broadcast_to(np.asarray(ridge, dtype=float), (dim,))
    for k in range(dim):
        ridge_k = ridges[k]
        active = np.ones(terms, dtype=bool)
        for _ in range(MAX_ITERATIONS):
            index = np.flatnonzero(active)
            sub = gram[np.ix_(index, index)] + ridge_k * eye[: index.size, : index.size]
            full = np.zeros(terms)
            try:
                full[index] = np.linalg.solve(sub, moments[index, k])
            except np.linalg.LinAlgError:  # singular without a ridge: duplicated terms
                full[index] = np.linalg.lstsq(sub, moments[index, k], rcond=None)[0]
            kept = np.abs(full) >= thresholds[:, k]
            if np.array_equal(kept, active):
                break
            active = kept
            if not active.any():
                break
        index = np.flatnonzero(active)
        if index.size:
            # Unbiased refit of the kept terms (lstsq: a rank-deficient set is still solved).
            sub = gram[np.ix_(index, index)]
            out[index, k] = np.linalg.lstsq(sub, moments[index, k], rcond=None)[0]
    return out


def absolute_thresholds(problem: Problem, threshold: float) -> np.ndarray:
    """|ξ| ≥ λ in the data's units is |ξ̃_j| ≥ λ · scale_j on the scaled columns."""
    dim = problem.targets.shape[1]
    return np.repeat((threshold * problem.scale)[:, None], dim, axis=1)


def importance_thresholds(problem: Problem, importance: np.ndarray) -> np.ndarray:
    """Importance |ξ_j| scale_j / rms(b_k) ≥ τ_k is |ξ̃_j| ≥ τ_k · rms(b_k)."""
    terms = problem.scaled.shape[1]
    return np.repeat((np.asarray(importance) * problem.target_scale)[None, :], terms, axis=0)


def relative_errors(problem: Problem, scaled_coefficients: np.ndarray) -> np.ndarray:
    """‖b_k − G̃ ξ̃_k‖ / ‖b_k‖ per equation (0 where b_k is 0 and fitted exactly)."""
    residual = problem.targets - problem.scaled @ scaled_coefficients
    norm = np.linalg.norm(problem.targets, axis=0)
    error = np.linalg.norm(residual, axis=0)
    return np.divide(error, norm, out=np.where(error > 0, np.inf, 0.0), where=norm > 0)


@dataclasses.dataclass(frozen=True)
class Selection:
    """Per equation: the importance threshold τ_k and ridge chosen, and the held-out error."""

    importance: tuple[float, ...]
    ridges: tuple[float, ...]
    held_out_error: tuple[float, ...]
    train_rows: int
    support: np.ndarray  # [P, d]: the terms of each equation's chosen fit


def select_importance(problem: Problem, ridges: tuple[float, ...]) -> Selection:
    """Choose each equation's importance threshold τ_k (and ridge) on held-out rows.

    Every (ridge, τ) pair of `ridges` × `IMPORTANCE_GRID` gives a fit on the training rows;
    more ridges visit more sets of terms (a larger ridge steadies the first fit when the
    terms are nearly collinear or the rows few, a tiny one keeps exact data exact). The fits
    within tolerance of the best held-out error are accepted (module docstring); the one
    with the fewest terms wins (ties: the smaller held-out error), and τ_k is the geometric
    middle of the run of τ giving that very set of terms at that ridge (what bootstrap fits
    use). `support` is the chosen set of terms, which `refit` fits on all rows.
    """
    rows, terms = problem.scaled.shape
    cut = held_out_start(rows, HELD_OUT_FRACTION, min_rows=1)
    if cut >= rows or cut < terms:
        raise DiffdynError(
            f"{rows} regression rows are too few to choose the threshold on held-out "
            f"data for {terms} terms (the first 80 % must have at least as many rows as "
            "terms); give a threshold (--threshold), a lower degree or more samples."
        )
    train, test = problem.rows(0, cut), problem.rows(cut)
    gram, moments = train.normal_equations()
    dim = problem.targets.shape[1]
    shape = (len(ridges), IMPORTANCE_GRID.size)
    errors = np.empty((*shape, dim))
    supports = np.empty((*shape, terms, dim), dtype=bool)
    for r, ridge in enumerate(ridges):
        for i, tau in enumerate(IMPORTANCE_GRID):
            thresholds = importance_thresholds(train, np.full(dim, tau))
            fitted = stlsq(gram, moments, thresholds, ridge)
            errors[r, i] = relative_errors(test, fitted)
            supports[r, i] = fitted != 0
    errors = np.where(np.isfinite(errors), errors, np.inf)  # a singular fit counts as failed
    best = errors.reshape(-1, dim).min(axis=0)
    accepted = errors <= best * (1 + HELD_OUT_SLACK) + HELD_OUT_FLOOR
    importance, chosen_ridges, held_out = [], [], []
    support = np.zeros((terms, dim), dtype=bool)
    for k in range(dim):
        sizes = np.where(accepted[..., k], supports[..., k].sum(axis=-1), terms + 1)
        fewest = np.argwhere(sizes == sizes.min())
        r, i = min(fewest, key=lambda ri: (errors[ri[0], ri[1], k], -ri[1]))
        same = np.all(supports[r, :, :, k] == supports[r, i, :, k], axis=1)
        low, high = i, i
        while low > 0 and same[low - 1]:
            low -= 1
        while high < len(same) - 1 and same[high + 1]:
            high += 1
        importance.append(float(np.sqrt(IMPORTANCE_GRID[low] * IMPORTANCE_GRID[high])))
        chosen_ridges.append(float(ridges[r]))
        held_out.append(float(errors[r, i, k]))
        support[:, k] = supports[r, i, :, k]
    return Selection(
        tuple(importance), tuple(chosen_ridges), tuple(held_out), train_rows=cut, support=support
    )


def refit(problem: Problem, support: np.ndarray) -> np.ndarray:
    """Least squares on all rows of each equation's terms `support [P, d]`: coefficients in
    the data's units `[P, d]`."""
    gram, moments = problem.normal_equations()
    out = np.zeros(support.shape)
    for k in range(support.shape[1]):
        index = np.flatnonzero(support[:, k])
        if index.size:
            sub = gram[np.ix_(index, index)]
            out[index, k] = np.linalg.lstsq(sub, moments[index, k], rcond=None)[0]
    return out / problem.scale[:, None]


@dataclasses.dataclass(frozen=True, eq=False)
class Fit:
    """Coefficients in the data's units `[P, d]`, and inclusion probabilities (bagging)."""

    coefficients: np.ndarray
    inclusion: np.ndarray | None


def fit_sparse(
    problem: Problem,
    thresholds: np.ndarray,
    ridge: float | np.ndarray,
    *,
    bagging: int = 0,
    seed: int = 0,
) -> Fit:
    """STLSQ on all rows, or with `bagging` > 0 the median over that many bootstrap fits;
    `ridge` one value or one per equation."""
    if bagging <= 0:
        gram, moments = problem.normal_equations()
        return Fit(stlsq(gram, moments, thresholds, ridge) / problem.scale[:, None], None)
    rng = np.random.default_rng(seed)
    rows = problem.scaled.shape[0]
    fits = []
    for _ in range(bagging):
        counts = np.bincount(rng.integers(0, rows, rows), minlength=rows).astype(float)
        gram, moments = problem.normal_equations(counts)
        fits.append(stlsq(gram, moments, thresholds, ridge))
    stacked = np.stack(fits)  # [bagging, P, d]
    inclusion = np.mean(stacked != 0, axis=0)
    median = np.median(stacked, axis=0)
    median = np.where(inclusion >= INCLUSION_CUTOFF, median, 0.0)
    return Fit(median / problem.scale[:, None], inclusion)
