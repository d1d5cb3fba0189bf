"""The dysts catalogue as a data source: its chaotic flows with their published parameters.

dysts (Gilpin 2021, "Chaos as an interpretable benchmark for forecasting and data-driven
modelling", NeurIPS Datasets and Benchmarks; the package `williamgilpin/dysts`) holds over a
hundred chaotic systems, each with published parameters, an initial condition on its attractor,
its dominant period (from the power spectrum) and an estimate of its largest Lyapunov exponent.
`dysts_series` simulates one with dysts' own integrator and resamples it the way the benchmark
does (`make_trajectory(resample=True, pts_per_period=...)`): a fixed number of points per
dominant period, 100 ("fine") or 15 ("coarse"), so that every system has the same timescale.

dysts is an optional dependency (`pip install 'diffdyn[dysts]'`), imported only when one of
these functions runs; without it they raise `DystsNotInstalledError` saying how to install it.
"""

from __future__ import annotations

import warnings
from importlib import import_module
from typing import Any

import numpy as np

from ..errors import DiffdynError, SimulationError, UnknownNameError, did_you_mean
from .series import Series

DYSTS_PREFIX = "dysts:"
GRANULARITIES = {"fine": 100, "coarse": 15}  # points per dominant period (Gilpin 2021)
BENCHMARK_PERIODS = 12  # the benchmark's trajectories: 10 periods to train, 2 to forecast
SEEDED_TRANSIENT_PERIODS = 5  # a perturbed start is integrated this long before sampling
SEED_PERTURBATION = 0.01  # relative size of a seeded perturbation of the initial condition
INSTALL_HINT = "pip install 'diffdyn[dysts]'"
LYAPUNOV_SOURCE = "dysts metadata maximum_lyapunov_estimated (Gilpin 2021)"


class DystsNotInstalledError(DiffdynError):
    """A `dysts:` name was used but the optional package dysts cannot be imported."""


def _dysts() -> tuple[Any, Any]:
    """dysts' `flows` and `systems` modules, imported on first use."""
    try:
        with warnings.catch_warnings():
            # Without numba dysts warns once that it runs uncompiled right-hand sides.
            warnings.simplefilter("ignore")
            return import_module("dysts.flows"), import_module("dysts.systems")
    except ImportError as error:
        raise DystsNotInstalledError(
            f"the dysts catalogue is not installed ({error}); install it with: {INSTALL_HINT}"
        ) from None


def dysts_names() -> tuple[str, ...]:
    """The names of dysts' continuous chaotic systems, sorted.

    These are the systems of the forecasting benchmark: the flows and the delay equations
    (dysts' `get_attractor_list("continuous")`; a delay system is observed through dysts'
    delay embedding). The discrete maps are left out: they have no dominant period to resample
    by, and the benchmark does not forecast them.

    **Example:** `"Lorenz" in dysts_names()  # True`
    """
    _, systems = _dysts()
    return tuple(systems.get_attractor_list("continuous"))


def check_dysts_name(name: str) -> str:
    """The catalogue's spelling of a dysts system name (`"dysts:lorenz"` → `"Lorenz"`).

    The `dysts:` prefix is optional and case does not matter; an unknown name raises
    `UnknownNameError` with the closest names.

    **Example:** `check_dysts_name("dysts:rossler")  # "Rossler"`
    """
    bare = name[len(DYSTS_PREFIX) :] if name.lower().startswith(DYSTS_PREFIX) else name
    names = dysts_names()
    by_lower = {n.lower(): n for n in names}
    if bare.lower() in by_lower:
        return by_lower[bare.lower()]
    hint = did_you_mean(bare, names) or " See diffdyn.data.dysts_names() for the catalogue."
    raise UnknownNameError(f"no dysts system named {bare!r}.{hint}")


def points_per_period(granularity: str | int) -> int:
    """Samples per dominant period: `"fine"` 100, `"coarse"` 15, or a whole number ≥ 2."""
    if isinstance(granularity, str):
        if granularity not in GRANULARITIES:
            raise DiffdynError(
                f"granularity is 'fine' (100 points per period), 'coarse' (15) or a whole "
                f"number of points per period; got {granularity!r}."
            )
        return GRANULARITIES[granularity]
    if isinstance(granularity, bool) or not isinstance(granularity, int | np.integer):
        raise DiffdynError(f"granularity must be 'fine', 'coarse' or an int; got {granularity!r}.")
    if granularity < 2:
        raise DiffdynError(f"points per period must be at least 2; got {granularity}.")
    return int(granularity)


def _variable_names(dim: int) -> tuple[str, ...]:
    return ("x", "y", "z")[:dim] if dim <= 3 else tuple(f"x{i + 1}" for i in range(dim))


def _plain(value: Any) -> Any:
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()


def dysts_series(
    name: str,
    *,
    granularity: str | int = "fine",
    periods: int = BENCHMARK_PERIODS,
    seed: int = 0,
    method: str = "LSODA",
    rtol: float = 1e-9,
    atol: float = 1e-9,
) -> Series:
    """Simulate a dysts system with its published parameters, `periods` dominant periods long.

    The trajectory is dysts' `make_trajectory` with `resample=True`: integrated at the
    system's own step, then sampled at `points_per_period(granularity)` points per dominant
    period (its spacing is `period · n / (ppp · (n − 1))` for `n` samples, as in dysts).
    `seed=0` starts from dysts' published initial condition, as the benchmark does; another
    seed multiplies it by `1 + 0.01·N(0, 1)` (NumPy's `default_rng(seed)`) and integrates
    `SEEDED_TRANSIENT_PERIODS` periods before sampling. For weakly chaotic systems (λ₁ times
    the period as small as 0.05) seeded trajectories stay close to one another for many
    periods: they are repeats, not independent draws.

    dysts' own default is Radau at tolerances 1e-12, about 100 times slower without numba;
    the default here, LSODA at 1e-9, agrees with it to 5e-6 of a variable's spread over the
    first three periods (Lorenz, Rössler, Aizawa, Hindmarsh–Rose, Chua) and simulates the
    whole catalogue at fine granularity in about 30 s on one core.

    **Arguments:**

    - `name`: a name of `dysts_names()`, with or without the `dysts:` prefix.
    - `granularity`: `"fine"` (100 points per period), `"coarse"` (15) or a whole number.
    - `periods`: the length in dominant periods (the benchmark's 12 by default).
    - `seed`: 0 for the published initial condition, else a reproducible perturbation of it.
    - `method`, `rtol`, `atol`: passed to dysts' integrator (SciPy's `solve_ivp`); delay
      systems use dysts' fixed-step delay integrator and ignore them.

    **Returns:** a `Series` whose metadata hold `system` (`"dysts:NAME"`), `parameters`,
    `lyapunov_exponent` (dysts' `maximum_lyapunov_estimated`, per time unit, so valid
    prediction times come out in Lyapunov times), `period`, `points_per_period`,
    `granularity`, `periods`, `seed`, `y0` and the integrator's settings.

    **Example:**

    ```python
    from diffdyn.data import dysts_series

    series = dysts_series("Lorenz", granularity="coarse")
    len(series), series.metadata["period"], series.lyapunov_exponent  # (180, 1.5008, 0.89...)
    ```
    """
    flows, _ = _dysts()
    canonical = check_dysts_name(name)
    ppp = points_per_period(granularity)
    if isinstance(periods, bool) or not isinstance(periods, int | np.integer) or periods < 1:
        raise DiffdynError(f"periods must be a whole number ≥ 1; got {periods!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DiffdynError(f"seed must be a whole number ≥ 0; got {seed!r}.")
    system = getattr(flows, canonical)()
    y0 = np.asarray(system.ic, dtype=np.float64)
    transient = 0
    if seed:
        rng = np.random.default_rng(seed)
        y0 = y0 * (1 + SEED_PERTURBATION * rng.standard_normal(y0.shape))
        transient = SEEDED_TRANSIENT_PERIODS
    kept = periods * ppp
    total = (transient + periods) * ppp
    # make_trajectory reseeds NumPy's global generator; give the caller's state back.
    state = np.random.get_state()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            values = system.make_trajectory(
                total,
                init_cond=y0,
                resample=True,
                pts_per_period=ppp,
                method=method,
                rtol=rtol,
                atol=atol,
            )
    except Exception as error:  # SciPy and dysts raise many kinds for a failed integration
        raise SimulationError(f"dysts could not integrate {canonical}: {error}") from None
    finally:
        np.random.set_state(state)
    if values is None:
        raise SimulationError(
            f"dysts' integration of {canonical} stopped early ({method}, rtol {rtol:g}); try "
            "another method, e.g. method='Radau'."
        )
    values = np.asarray(values, dtype=np.float64).reshape(total, -1)[total - kept :]
    if not np.all(np.isfinite(values)):
        raise SimulationError(f"the dysts trajectory of {canonical} is not finite.")
    period = float(system.period)
    dt = period * total / (ppp * (total - 1))
    lam = float(system.maximum_lyapunov_estimated)
    metadata: dict[str, Any] = {
        "source": "dysts",
        "system": DYSTS_PREFIX + canonical,
        "kind": "delay" if _is_delay(system) else "flow",
        "parameters": {k: _plain(v) for k, v in system.params.items()},
        "lyapunov_exponent": lam,
        "lyapunov_source": LYAPUNOV_SOURCE,
        "period": period,
        "points_per_period": ppp,
        "granularity": granularity,
        "periods": periods,
        "seed": seed,
        "transient_periods": transient,
        "y0": _plain(y0),
        "method": method,
        "rtol": rtol,
        "atol": atol,
        "dysts_version": dysts_version(),
    }
    if lam > 0:
        metadata["lyapunov_time"] = 1.0 / lam
    return Series(
        values,
        np.arange(kept, dtype=np.float64) * dt,
        _variable_names(values.shape[1]),
        dt=dt,
        metadata=metadata,
    )


def _is_delay(system: Any) -> bool:
    return any(c.__name__ == "DynSysDelay" for c in type(system).__mro__)


def dysts_version() -> str:
    """The installed dysts' version (`"unknown"` when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dysts")
    except PackageNotFoundError:
        return "unknown"
