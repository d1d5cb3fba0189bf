"""Equation discovery: `diffdyn.discover.discover_series` against PySINDy, side by side.

The same problem on both sides, in this one process: Lorenz-63 (σ, ρ, β) = (10, 28, 8/3) from
x0 = (−8, 8, 27), dt = 0.002, t ∈ [0, 10) (5000 samples; PySINDy's feature-overview example),
simulated by `diffdyn.simulate` in float64 at rtol = atol = 1e-10, float64 on both sides.

- The same library: monomials of x, y, z to degree 3 (20 terms, the constant included;
  PySINDy's `PolynomialLibrary(degree=3)`); degree 2 (10 terms) in `variants`.
- The same derivative: second-order central differences, second-order one-sided at the ends
  (PySINDy's `FiniteDifference()`, diffdyn's `smoothing=None`).
- The same threshold: STLSQ with threshold 0.1 on the coefficients, then an unbiased
  least-squares refit of the kept terms (PySINDy's `STLSQ(threshold=0.1)`, `unbias=True` by
  default). The ridge while terms are selected differs in form (PySINDy α = 0.05 on the raw
  normal equations, diffdyn 1e-6 on the unit-RMS-scaled ones); it decides only which terms
  are kept, and `agreement` checks both keep the same terms with the same coefficients.

Timed: one whole fit from the samples (derivative, library, regression), `diffdyn
discover_series(series, degree=3, threshold=0.1, smoothing=None)` against `SINDy(...).fit(x,
t=dt)`, interleaved, 5 rounds of 10 calls. Target: ratio = PySINDy / diffdyn ≥ 1.0 ("at
least as fast"). `diagnostics` times diffdyn's defaults too (the Savitzky–Golay window and the
threshold chosen from the data: many more fits than one), and the weak form.

Run `python bench/discover_sindy.py` (writes `bench/results/discover_sindy.json`) or add
`--quick` for a smoke test on 1000 samples that writes nothing unless `--out DIR` is given.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pysindy

from diffdyn.discover import discover_series
from diffdyn.systems import get_system, simulate

sys.path.insert(0, str(Path(__file__).parent))
from _harness import comparison, interleaved, parse_arguments, print_table, write_result  # noqa: E402

DT = 0.002
Y0 = np.array([-8.0, 8.0, 27.0])
THRESHOLD = 0.1
FULL = {"samples": 5000, "rounds": 5, "repeats": 10}
QUICK = {"samples": 1000, "rounds": 2, "repeats": 3}
TRUTH = {
    "x": {"x": -10.0, "y": 10.0},
    "y": {"x": 28.0, "y": -1.0, "x z": -1.0},
    "z": {"z": -8.0 / 3.0, "x y": 1.0},
}


def lorenz(samples: int):
    with jax.enable_x64(True):
        series = simulate(
            get_system("lorenz63"), steps=samples, dt=DT, y0=Y0, transient=0.0,
            rtol=1e-10, atol=1e-10,
        )  # fmt: skip
    return series.numpy()


def peer_model(degree: int) -> pysindy.SINDy:
    return pysindy.SINDy(
        optimizer=pysindy.STLSQ(threshold=THRESHOLD),
        feature_library=pysindy.PolynomialLibrary(degree=degree),
        differentiation_method=pysindy.FiniteDifference(),
    )


def worst_error(table: dict[str, dict[str, float]]) -> float | None:
    worst = 0.0
    for variable, terms in TRUTH.items():
        kept = {t: c for t, c in table[variable].items() if c != 0}
        if set(kept) != set(terms):
            return None
        worst = max(worst, *(abs(kept[t] - c) / abs(c) for t, c in terms.items()))
    return worst


def compare_degree(series, degree: int, rounds: int, repeats: int) -> dict[str, Any]:
    values = np.asarray(series.values, dtype=np.float64)
    peer = peer_model(degree)

    def ours():
        return discover_series(series, degree=degree, threshold=THRESHOLD, smoothing=None)

    def theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return peer.fit(values, t=DT, feature_names=["x", "y", "z"])

    found, fitted = ours(), theirs()
    names = fitted.get_feature_names()
    if tuple(names) != found.terms:
        raise AssertionError(f"libraries differ: {names} against {found.terms}")
    peer_coefficients = np.asarray(fitted.coefficients()).T  # [terms, variables]
    difference = np.abs(peer_coefficients - found.coefficients)
    scale = np.abs(peer_coefficients).max()

    def table(coefficients):
        return {v: dict(zip(names, coefficients[:, j])) for j, v in enumerate("xyz")}

    agreement = {
        "same_terms_kept": bool(np.array_equal(peer_coefficients != 0, found.coefficients != 0)),
        "max_abs_coefficient_difference": float(difference.max()),
        "max_relative_coefficient_difference": float(difference.max() / scale),
        "diffdyn_equations": found.equations(4),
        "pysindy_equations": [f"d{v}/dt = {e}" for v, e in zip("xyz", fitted.equations(4))],
        "worst_relative_error_to_truth": {
            "diffdyn": worst_error(table(found.coefficients)),
            "pysindy": worst_error(table(peer_coefficients)),
        },
    }
    timings = interleaved({"diffdyn": ours, "peer": theirs}, rounds, repeats)
    return comparison(
        compares=(
            f"SINDy fit of {len(series)} Lorenz-63 samples (dt = {DT}), monomials of x, y, z "
            f"to degree {degree} ({found.library.size} terms), second-order central "
            f"differences, STLSQ threshold {THRESHOLD} + unbiased refit: diffdyn "
            "discover_series(threshold=0.1, smoothing=None) vs pysindy.SINDy(STLSQ(0.1), "
            "PolynomialLibrary, FiniteDifference()).fit, float64 on both sides"
        ),
        diffdyn=timings["diffdyn"],
        peer=timings["peer"],
        peer_name=f"PySINDy {pysindy.__version__}",
        ratio_at_least=1.0,
        target="PySINDy / diffdyn ≥ 1.0 (at least as fast), the same coefficients",
        settings={"samples": len(series), "dt": DT, "degree": degree, "threshold": THRESHOLD},
        agreement=agreement,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(__doc__, argv)
    sizes = QUICK if args.quick else FULL
    series = lorenz(sizes["samples"])
    rounds, repeats = sizes["rounds"], sizes["repeats"]
    headline = compare_degree(series, 3, rounds, repeats)
    variant = compare_degree(series, 2, rounds, repeats)
    extra = interleaved(
        {
            "defaults": lambda: discover_series(series, degree=3),
            "weak_form": lambda: discover_series(series, degree=3, derivative="weak"),
        },
        rounds,
        max(2, repeats // 3),
    )
    defaults = discover_series(series, degree=3)
    headline["variants"] = {"degree_2": variant}
    headline["diagnostics"] = {
        "diffdyn_defaults_s": extra["defaults"]["steady_median_s"],
        "diffdyn_defaults_equations": defaults.equations(4),
        "diffdyn_weak_form_s": extra["weak_form"]["steady_median_s"],
        "note": (
            "discover_series(series, degree=3) with its defaults chooses the Savitzky–Golay "
            "window by cross-validation and each equation's threshold on the held-out last "
            "20 % (4 ridges × 49 thresholds of STLSQ), so it runs ~200 fits where the timed "
            "comparison runs one; the weak form builds its test-function integrals first"
        ),
    }
    records = {"discover_sindy": headline, "discover_sindy (degree 2)": variant}
    print_table("equation discovery: diffdyn vs PySINDy", records)
    for name, record in records.items():
        a = record["agreement"]
        print(
            f"{name}: same terms {a['same_terms_kept']}, max |Δξ| "
            f"{a['max_abs_coefficient_difference']:.3g}, worst error to truth "
            f"{a['worst_relative_error_to_truth']}"
        )
    if args.quick and args.out is None:
        return
    path = write_result("discover_sindy", headline, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
