"""Equation discovery: `discover_series` (a measured series), `discover_terms` (given rates,
e.g. a fitted network term), `reproduce` (simulate what was found against the data) and
`discover_file` (all of it for one file: what `diffdyn discover` calls)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from jaxtyping import ArrayLike, Float

from ..data.io import read_series
from ..data.sampling import regularise
from ..data.series import Series
from ..errors import DataError, DiffdynError
from ..metrics import nrmse as nrmse_at
from ..options import check_number
from ..resources import check_memory
from .derivative import MIN_SUPPORT, MIN_WINDOW, choose_support, finite_difference_rates, weak_form
from .library import Library, library_size
from .regression import (
    RIDGES,
    Problem,
    absolute_thresholds,
    fit_sparse,
    importance_thresholds,
    refit,
    select_importance,
)
from .result import Discovery, DiscoveryReport, Reproduction

DERIVATIVES = ("finite-difference", "weak")
DEFAULT_DEGREE = 3
# The ridge with a given threshold; without one, `regression.RIDGES` are searched.
DEFAULT_RIDGE = 1e-6
DEPARTURE_THRESHOLD = 0.5  # ε of the reproduction, as the VPT default (ANCHORS.md)
# A simulation more than this many standard deviations from the data's mean has left it.
ESCAPE = 100.0
# Copies of the library held at once while fitting (the terms, their scaled copy, a
# bootstrap's weighted copy, the weak form's windows): the memory estimate's factor.
LIBRARY_COPIES = 4


def check_options(
    *,
    degree: Any = DEFAULT_DEGREE,
    threshold: Any = None,
    derivative: str = "finite-difference",
    smoothing: Any = "auto",
    support: Any = None,
    bagging: Any = 0,
    seed: Any = 0,
    ridge: Any = None,
) -> dict[str, Any]:
    """The options of a discovery, checked and typed (before any data are read).

    **Returns:** a dict of the same names with numbers as `int`/`float`, `smoothing` as
    `"auto"`, `None` or an odd `int` ≥ `MIN_WINDOW` (7).
    """
    if derivative not in DERIVATIVES:
        raise DiffdynError(
            f"derivative must be one of {', '.join(DERIVATIVES)}; got {derivative!r}."
        )
    if isinstance(smoothing, str) and smoothing.strip().lower() in ("auto", "none", "0"):
        smoothing = {"auto": "auto", "none": None, "0": None}[smoothing.strip().lower()]
    elif smoothing is not None and smoothing != 0:
        smoothing = check_number("smoothing window", smoothing, whole=True, low=MIN_WINDOW)
        if smoothing % 2 == 0:
            raise DiffdynError(
                f"the smoothing window must be an odd number of samples; got {smoothing} "
                f"(try {smoothing + 1})."
            )
    else:
        smoothing = None
    return {
        "degree": check_number("degree", degree, whole=True, low=1),
        "threshold": None if threshold is None else check_number("threshold", threshold, low=0),
        "derivative": derivative,
        "smoothing": smoothing,
        "support": None
        if support is None
        else check_number("support", support, whole=True, low=MIN_SUPPORT),
        "bagging": check_number("bagging", bagging, whole=True, low=0),
        "seed": check_number("seed", seed, whole=True, low=0),
        "ridge": None if ridge is None else check_number("ridge", ridge, low=0),
    }


def _check_values(name: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{name} has a non-finite value (row {row + 1}, column {column + 1}); remove or "
            "fill the missing values first."
        )


def _check_terms(features: np.ndarray, points: np.ndarray, library: Library) -> None:
    if not np.isfinite(features).all():
        raise DataError(
            f"the terms overflow (values up to {np.abs(points).max():.3g} raised to "
            f"degree {library.degree}); rescale the data or lower the degree."
        )


def _check_library(library: Library, rows: int) -> None:
    """Refuse a library too large for memory, or with more terms than rows to fit them."""
    size = library_size(len(library.variables), library.degree, library.trig)
    check_memory(
        float(size) * rows * 8 * LIBRARY_COPIES,
        f"a library of {size:.4g} terms (degree {library.degree} in "
        f"{len(library.variables)} variables) over {rows} rows",
        "lower the degree.",
    )
    if size > rows:
        raise DataError(
            f"the library has {size} terms but only {rows} regression rows; give more "
            "samples or a lower degree."
        )
    names = library.names
    if len(set(names)) != len(names):
        raise DataError(
            f"the variable names {', '.join(library.variables)} give two terms the "
            "same name; rename the variables (no spaces, no '^')."
        )


def _solve(
    problem: Problem, options: dict[str, Any], targets: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray | None, tuple | None, tuple | None, tuple[float, ...]]:
    """Coefficients, inclusion, importance thresholds, held-out errors and the ridge of each
    equation."""
    threshold, ridge = options["threshold"], options["ridge"]
    if threshold is None:
        ridges = RIDGES if ridge is None else (ridge,)
        selection = select_importance(problem, ridges)
        thresholds = importance_thresholds(problem, np.asarray(selection.importance))
        importance, held_out = selection.importance, selection.held_out_error
        ridge = np.asarray(selection.ridges)
    else:
        ridge = DEFAULT_RIDGE if ridge is None else ridge
        thresholds, importance, held_out = absolute_thresholds(problem, threshold), None, None
    if threshold is None and options["bagging"] == 0:
        # The fit chosen on held-out rows, refitted on all of them.
        coefficients, inclusion = refit(problem, selection.support), None
    else:
        fit = fit_sparse(
            problem, thresholds, ridge, bagging=options["bagging"], seed=options["seed"]
        )
        coefficients, inclusion = fit.coefficients, fit.inclusion
    if threshold is not None:
        emptied = [k for k in range(coefficients.shape[1]) if not coefficients[:, k].any()]
        if emptied and problem.target_scale[emptied].max() > 0:
            largest = np.abs(
                np.linalg.lstsq(problem.scaled, problem.targets, rcond=None)[0]
                / problem.scale[:, None]
            )
            k = emptied[0]
            raise DiffdynError(
                f"the threshold {threshold:g} removes every term of {targets[k]} (its largest "
                f"least-squares coefficient is {largest[:, k].max():.3g}); give a smaller "
                "threshold, or leave it out to choose one on held-out data."
            )
    ridges = np.broadcast_to(np.asarray(ridge, dtype=float), (problem.targets.shape[1],))
    return coefficients, inclusion, importance, held_out, tuple(ridges.tolist())


def discover_series(
    series: Series,
    *,
    degree: int = DEFAULT_DEGREE,
    threshold: float | None = None,
    trig: bool = False,
    derivative: str = "finite-difference",
    smoothing: int | str | None = "auto",
    support: int | None = None,
    bagging: int = 0,
    seed: int = 0,
    ridge: float | None = None,
    discrete: bool | None = None,
) -> Discovery:
    """Find sparse equations for a measured series: ẋ = Θ(x, u) ξ (flows) or x_{n+1} =
    Θ(x_n, u_n) ξ (maps), Θ polynomials to `degree` (and sin/cos with `trig`).

    **Arguments:**

    - `series`: a regularly sampled `Series` (`data.sampling.regularise` fixes an irregular
      one); its exogenous inputs, if any, enter the terms but get no equation.
    - `degree`: the largest total degree of the monomials (the constant included).
    - `threshold`: the least |coefficient| kept, in the data's units (STLSQ); default `None`
      chooses each equation's threshold on the last 20 % of the rows (`regression` module).
    - `trig`: add sin(v) and cos(v) of every variable.
    - `derivative`: `"finite-difference"` (rates from the samples) or `"weak"` (the integral
      form, Messenger & Bortz 2021, which takes no derivative of the data: use it on noisy
      data).
    - `smoothing`: finite differences only: `"auto"` (a Savitzky–Golay quintic over a window
      chosen by leave-one-out cross-validation), `None` (plain second-order central
      differences) or the window in samples (odd, ≥ 7).
    - `support`: weak form only: the half-width of the test functions in samples (default:
      a quarter of the dominant period, `derivative.choose_support`).
    - `bagging`: the number of bootstrap fits (E-SINDy); 0 fits once.
    - `seed`: the seed of the bootstrap resamples.
    - `ridge`: the ridge on the unit-RMS-scaled normal equations while terms are selected;
      default: searched among `regression.RIDGES` with the threshold, `DEFAULT_RIDGE` with a
      given threshold. It never changes the final (refitted) coefficients of a set of terms.
    - `discrete`: regress the next state instead of the rate (a map); default: when
      `series.metadata["kind"] == "map"`.

    **Returns:** a `Discovery`: `equations()`, `to_json()`, `as_system()`.

    **Example:**

    ```python
    from diffdyn.discover import discover_series
    from diffdyn.systems import get_system, simulate

    data = simulate(get_system("lorenz63"), steps=5000, dt=0.002)
    print("\\n".join(discover_series(data, degree=2).equations()))
    # dx/dt = -10.00 x + 10.00 y
    # dy/dt = 28.00 x - 1.00 y - 1.00 x z
    # dz/dt = -2.67 z + 1.00 x y
    ```
    """
    options = check_options(
        degree=degree, threshold=threshold, derivative=derivative, smoothing=smoothing,
        support=support, bagging=bagging, seed=seed, ridge=ridge,
    )  # fmt: skip
    if not isinstance(series, Series):
        raise DiffdynError(f"discover_series needs a Series; got {type(series).__name__}.")
    if np.ndim(series.values) != 2:
        raise DataError(
            f"discover_series needs one trajectory (values [time, dim]); got values of shape "
            f"{tuple(np.shape(series.values))}."
        )
    if series.dt is None:
        raise DataError(
            "the series is sampled irregularly; resample it first "
            "(diffdyn.data.sampling.regularise, or --irregular resample)."
        )
    discrete = series.metadata.get("kind") == "map" if discrete is None else bool(discrete)
    values = np.asarray(series.values, dtype=np.float64)
    _check_values("the series", values)
    inputs = () if series.exog is None else tuple(series.exog_variables)
    points = values
    if series.exog is not None:
        exog = np.asarray(series.exog, dtype=np.float64)
        _check_values("the exogenous inputs", exog)
        points = np.concatenate([values, exog], axis=1)
    n, dim = values.shape
    library = Library((*series.variables, *inputs), options["degree"], trig)
    notes: list[str] = []
    if inputs:
        notes.append(f"inputs {', '.join(inputs)} enter the terms (no equation of their own)")
    if discrete:
        if options["derivative"] == "weak":
            raise DiffdynError(
                "the weak form integrates a flow's rates; a map's next states need none: "
                "leave out --weak (the next state is regressed directly)."
            )
        if n < 3:
            raise DataError(f"a map needs at least 3 samples to regress; the series has {n}.")
        _check_library(library, n - 1)
        features, targets = library.evaluate(points[:-1]), values[1:]
        targets_named = tuple(f"{v}[n+1]" for v in series.variables)
        derivative_used, window, half = "next-state", None, None
    elif options["derivative"] == "weak":
        half = options["support"] or choose_support(values, float(series.dt))
        width = 2 * half + 1
        if n < width:
            raise DataError(
                f"the weak form needs at least {width} samples for test functions of "
                f"half-width {half}; the series has {n}. Give more samples or a smaller "
                "support."
            )
        _check_library(library, n)
        theta = library.evaluate(points)
        _check_terms(theta, points, library)
        features, targets = weak_form(
            values, theta, float(series.dt), half, rows_needed=2 * library.size
        )
        targets_named = tuple(f"d{v}/dt" for v in series.variables)
        derivative_used, window = "weak", None
        if features.shape[0] < library.size:
            raise DataError(
                f"the weak form gives {features.shape[0]} test functions for {library.size} "
                "terms; give more samples, a smaller support or a lower degree."
            )
    else:
        rates, window = finite_difference_rates(values, float(series.dt), options["smoothing"])
        _check_library(library, n)
        features, targets = library.evaluate(points), rates
        targets_named = tuple(f"d{v}/dt" for v in series.variables)
        derivative_used, half = "finite-difference", None
    _check_terms(features, points, library)
    if series.metadata.get("times_assumed"):
        notes.append(f"the file has no time column: rows are taken {series.dt:g} apart")
    problem = Problem.build(features, targets)
    coefficients, inclusion, importance, held_out, ridges = _solve(problem, options, targets_named)
    return Discovery(
        kind="map" if discrete else "flow",
        variables=tuple(series.variables),
        inputs=inputs,
        library=library,
        coefficients=coefficients,
        targets=targets_named,
        derivative=derivative_used,
        smoothing=window,
        support=half,
        threshold=options["threshold"],
        importance=importance,
        held_out_error=held_out,
        ridge=ridges,
        rows=features.shape[0],
        bagging=options["bagging"],
        inclusion=inclusion,
        seed=options["seed"],
        dt=float(series.dt),
        t0=float(np.asarray(series.times)[0]),
        start=tuple(float(v) for v in values[0]),
        notes=tuple(notes),
    )


def discover_terms(
    states: Float[ArrayLike, "N d"],
    rates: Float[ArrayLike, "N k"],
    *,
    variable_names: Sequence[str],
    degree: int = DEFAULT_DEGREE,
    threshold: float | None = None,
    trig: bool = False,
    bagging: int = 0,
    seed: int = 0,
    ridge: float | None = None,
    target_names: Sequence[str] | None = None,
    term: bool = False,
    notes: Sequence[str] = (),
) -> Discovery:
    """The same sparse regression on given rates: `rates ≈ Θ(states) ξ`.

    Used to read equations off a learned term, e.g. the network of a hybrid model evaluated
    over the data's states (`rates = jax.vmap(network)(states)`). With `threshold=None` the
    threshold is chosen on the last 20 % of the rows as `discover_series` does, so rows in
    time order (or shuffled) both work.

    **Arguments:**

    - `states`: `[N, d]`, the points the terms are built from.
    - `rates`: `[N, k]`, what each equation should give there (k may differ from d).
    - `variable_names`: the d names of the state variables.
    - `degree`, `threshold`, `trig`, `bagging`, `seed`, `ridge`: as for `discover_series`.
    - `target_names`: what the k equations give (default `dx/dt` … when k = d, else
      `f1` … `fk`).
    - `term`: the outputs are one term of the rates (a network inside a hybrid model), not
      the whole of them: the `Discovery` is of kind `"terms"` (no system to simulate) even
      when k = d.
    - `notes`: facts to keep beside the equations (e.g. where the states came from).

    **Returns:** a `Discovery` with `derivative="given"`, of kind `"flow"` when k = d and not
    `term` (`as_system()` then treats the rates as a flow's), else `"terms"`.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.discover import discover_terms

    xy = np.random.default_rng(0).uniform(0, 2, (200, 2))
    network = np.stack([-0.9 * xy[:, 0] * xy[:, 1], 0.8 * xy[:, 0] * xy[:, 1]], 1)
    found = discover_terms(xy, network, variable_names=["x", "y"], degree=2)
    found.equations()  # ['dx/dt = -0.90 x y', 'dy/dt = 0.80 x y']
    ```
    """
    options = check_options(
        degree=degree, threshold=threshold, bagging=bagging, seed=seed, ridge=ridge
    )
    states = np.asarray(states, dtype=np.float64)
    rates = np.asarray(rates, dtype=np.float64)
    names = tuple(variable_names)
    if states.ndim != 2 or rates.ndim != 2 or states.shape[0] != rates.shape[0]:
        raise DataError(
            f"states [N, d] and rates [N, k] need the same N rows; got shapes "
            f"{states.shape} and {rates.shape}."
        )
    if len(names) != states.shape[1]:
        raise DataError(
            f"variable_names has {len(names)} names for {states.shape[1]} state columns."
        )
    _check_values("the states", states)
    _check_values("the rates", rates)
    k = rates.shape[1]
    flow = k == len(names) and not term
    if target_names is None:
        target_names = [f"d{v}/dt" for v in names] if k == len(names) else [
            f"f{i + 1}" for i in range(k)
        ]  # fmt: skip
    target_names = tuple(target_names)
    if len(target_names) != k:
        raise DataError(f"target_names has {len(target_names)} names for {k} rate columns.")
    library = Library(names, options["degree"], trig)
    _check_library(library, states.shape[0])
    features = library.evaluate(states)
    _check_terms(features, states, library)
    problem = Problem.build(features, rates)
    coefficients, inclusion, importance, held_out, ridges = _solve(problem, options, target_names)
    return Discovery(
        kind="flow" if flow else "terms",
        variables=names if flow else tuple(target_names),
        inputs=(),
        library=library,
        coefficients=coefficients,
        targets=target_names,
        derivative="given",
        smoothing=None,
        support=None,
        threshold=options["threshold"],
        importance=importance,
        held_out_error=held_out,
        ridge=ridges,
        rows=states.shape[0],
        bagging=options["bagging"],
        inclusion=inclusion,
        seed=options["seed"],
        dt=None,
        t0=0.0,
        start=tuple(float(v) for v in states[0]) if flow else (0.0,) * k,
        notes=tuple(notes),
    )


def reproduce(
    discovery: Discovery, series: Series, *, threshold: float = DEPARTURE_THRESHOLD
) -> Reproduction:
    """Simulate `discovery` from the series' first state over its times, and compare.

    A simulation that blows up, or runs more than `ESCAPE` standard deviations away from the
    data's mean, is reported (`diverged_at`, `message`), not raised; the comparison covers
    the samples before that.

    **Arguments:** `discovery` (of a flow or map with one equation per series variable),
    `series` the data it came from, `threshold` ε for the departure time.

    **Returns:** a `Reproduction`.
    """
    from ..systems.simulate import simulate

    threshold = check_number("threshold", threshold, above=0)
    if tuple(series.variables) != discovery.variables:
        raise DiffdynError(
            f"the discovery has equations for {', '.join(discovery.variables)}, the series "
            f"has {', '.join(series.variables)}."
        )
    values = np.asarray(series.values, dtype=np.float64)
    times = np.asarray(series.times, dtype=np.float64)
    n = values.shape[0]
    exog = None if series.exog is None else np.asarray(series.exog, dtype=np.float64)
    system = discovery.as_system(values[0], input_times=times, input_values=exog)
    duration = float(times[-1] - times[0])
    kind = "map" if discovery.kind == "map" else "flow"
    if kind == "flow" and series.dt is None:
        raise DataError("the series is sampled irregularly; resample it first (regularise).")
    simulated = simulate(
        system,
        steps=n,
        dt=None if series.dt is None or kind == "map" else float(series.dt),
        t0=float(times[0]),
        transient=0.0,
        check_finite=False,
        max_steps=None if kind == "map" else 4096 + 64 * n,
    ).numpy()
    path = np.asarray(simulated.values, dtype=np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    escaped = ~np.isfinite(path).all(axis=1) | (np.abs(path - mean) > ESCAPE * std).any(axis=1)
    compared = int(np.argmax(escaped)) if escaped.any() else n
    diverged_at = message = None
    if compared < n:
        diverged_at = float(times[compared] - times[0])
        how = (
            "blows up (non-finite values)"
            if not np.isfinite(path[compared]).all()
            else f"leaves the data far behind (more than {ESCAPE:g} standard deviations)"
        )
        message = f"the discovered system {how} at t = {diverged_at:.4g} after the start"
    lyapunov_time = series.lyapunov_time
    if compared == 0:
        return Reproduction(
            None, None, np.zeros(0), 0, threshold, None, lyapunov_time, diverged_at,
            message or "", duration,
        )  # fmt: skip
    errors = nrmse_at(path[:compared], values[:compared], std)
    above = np.flatnonzero(errors > threshold)
    departure = None if above.size == 0 else float(times[above[0]] - times[0])
    trajectory = Series(
        path[:compared],
        times[:compared],
        discovery.variables,
        dt=series.dt,
        metadata={"source": "discovered", "kind": kind, "system": "discovered"},
    )
    return Reproduction(
        simulated=trajectory,
        nrmse=float(math.sqrt(np.mean(errors**2))),
        nrmse_at=errors,
        compared=compared,
        threshold=threshold,
        departure_time=departure,
        lyapunov_time=lyapunov_time,
        diverged_at=diverged_at,
        message=message or "",
        duration=duration,
    )


def discover_file(
    path: str | os.PathLike,
    *,
    irregular: str = "refuse",
    **options: Any,
) -> DiscoveryReport:
    """Read a series file, discover its equations and reproduce the data with them: what
    `diffdyn discover --data FILE` prints and writes.

    **Arguments:** `path` (`.csv`, `.parquet`, `.npz`), `irregular` (`"refuse"`,
    `"resample"`, `"proceed"`; `data.sampling.regularise`), and `discover_series`'s keyword
    arguments.

    **Returns:** a `DiscoveryReport`.
    """
    check_options(**{k: v for k, v in options.items() if k not in ("trig", "discrete")})
    series = regularise(read_series(path), irregular, name=str(path))
    discovery = discover_series(series, **options)
    return DiscoveryReport(discovery, reproduce(discovery, series), series, str(path))
