"""`analyze_model`: a trained model as a dynamical system — its Lyapunov spectrum beside the
system's, its long-run statistics against the truth, and its sensitivity to each lag.

What `diffdyn analyze` calls. Everything is computed in the model's standardised space (the
`Scaler` fitted on its training data): Lyapunov exponents do not change under that affine map,
and the long-run statistics of the model and of the truth are compared in the same space.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..data.scale import Scaler
from ..data.series import Series
from ..errors import DataError, DiffdynError
from ..models.base import AbstractForecaster
from ..options import check_number
from ..resources import check_memory
from ..systems.registry import get_system
from ..train import checkpoint
from ..train.data_source import DataSource, lyapunov_exponent_of, model_part
from ..train.progress import progress_bar
from .closed_loop import NotAMapError
from .long_run import LongRun, long_run_statistics
from .lyapunov import LyapunovSpectrum, lyapunov_spectrum
from .model_lyapunov import DEFAULT_ITERATIONS, model_lyapunov_spectrum
from .sensitivity import Sensitivity, sensitivity_to_lag

HORIZON_LYAPUNOV_TIMES = 100.0  # the long run's default length, when λ₁ is known ...
HORIZON_SAMPLES = 10_000  # ... and when it is not
MIN_SAMPLES = 2_000  # the least a default long run or averaging covers (fast maps: λ₁ ~ 1)
SPECTRUM_LYAPUNOV_TIMES = 200.0  # the default averaging time of the model's spectrum
WINDOWS = 32  # context windows averaged for the sensitivity
PHASES = ("closed loop and its Lyapunov spectrum", "the system's spectrum", "long run",
          "sensitivity to lag")  # fmt: skip


def _floats(values) -> list | None:
    if values is None:
        return None
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, float).ravel()]


def _spectrum_json(spectrum: LyapunovSpectrum | None) -> dict[str, Any] | None:
    if spectrum is None:
        return None
    return {
        "exponents": _floats(spectrum.exponents),
        "kaplan_yorke_dimension": spectrum.kaplan_yorke_dimension,
        "lyapunov_time": spectrum.lyapunov_time,
        "convergence_times": _floats(spectrum.convergence_times),
        "convergence": [_floats(row) for row in spectrum.convergence],
        "settings": spectrum.settings,
    }


@dataclasses.dataclass(frozen=True, eq=False)
class Analysis:
    """What `analyze_model` measured (times in the data's units, states standardised).

    - `model`: the registry name; `data`: the `DataSource`; `dt`: the sampling step;
      `context`: the context length C; `variables`: the model's variables.
    - `lyapunov_exponent`: the truth's λ₁ used for time scales (the system's, the
      training's or the data's), or `None`.
    - `spectrum`: the model's Lyapunov spectrum (`LyapunovSpectrum`, per time unit), or
      `None` with the reason in `spectrum_problem` (a model that is not a map, a closed
      loop that diverges).
    - `system`: the name of the true system, when the data are simulated; `system_spectrum`:
      its own spectrum (`lyapunov_spectrum`), as many exponents as can be compared.
    - `long_run`: the `LongRun` statistics of the model's closed loop against the truth.
    - `sensitivity`: the `Sensitivity` to each lag, or `None` when not asked for.
    - `seconds`: wall-clock seconds of the whole analysis.
    """

    model: str
    data: DataSource
    dt: float
    context: int
    variables: tuple[str, ...]
    lyapunov_exponent: float | None
    spectrum: LyapunovSpectrum | None
    spectrum_problem: str | None
    system: str | None
    system_spectrum: LyapunovSpectrum | None
    long_run: LongRun
    sensitivity: Sensitivity | None
    seconds: float

    @property
    def compared(self) -> int:
        """How many exponents are compared with the system's (0 when either is missing)."""
        if self.spectrum is None or self.system_spectrum is None:
            return 0
        return min(len(self.spectrum.exponents), len(self.system_spectrum.exponents))

    @property
    def spectrum_error(self) -> float | None:
        """‖λ̂ − λ‖₂ / ‖λ‖₂ over the first `compared` exponents, or `None`."""
        k = self.compared
        if k == 0 or self.spectrum is None or self.system_spectrum is None:
            return None
        model, true = self.spectrum.exponents[:k], self.system_spectrum.exponents[:k]
        return float(np.linalg.norm(model - true) / max(np.linalg.norm(true), 1e-12))

    @property
    def exponent_pairs(self) -> list[tuple[int, int]]:
        """Neighbouring exponents of the model within 1 % of each other (1-based indices),
        zero exponents aside: complex-conjugate multipliers of the model's own state. When
        the system's spectrum has no such pair, they are likely exponents of the model's state
        rather than of the attractor ("spurious" exponents, Pathak et al. 2017)."""
        return [] if self.spectrum is None else exponent_pairs(self.spectrum.exponents)

    @property
    def largest_exponent(self) -> float | None:
        """The model's λ₁, or `None`."""
        return None if self.spectrum is None else self.spectrum.largest

    def to_json(self) -> dict[str, Any]:
        """Every number (the spectra and the sensitivity curve included)."""
        return {
            "model": self.model,
            "data": self.data.to_json(),
            "dt": self.dt,
            "context": self.context,
            "variables": list(self.variables),
            "lyapunov_exponent": self.lyapunov_exponent,
            "spectrum": _spectrum_json(self.spectrum),
            "spectrum_problem": self.spectrum_problem,
            "system": self.system,
            "system_spectrum": _spectrum_json(self.system_spectrum),
            "compared_exponents": self.compared,
            "exponent_pairs": [list(pair) for pair in self.exponent_pairs],
            "spectrum_error": self.spectrum_error,
            "long_run": self.long_run.to_json(arrays=True),
            "sensitivity": None if self.sensitivity is None else self.sensitivity.to_json(),
            "seconds": self.seconds,
        }


def exponent_pairs(exponents) -> list[tuple[int, int]]:
    """Neighbouring exponents within 1 % of each other (1-based indices), those within 0.05
    of zero aside (`Analysis.exponent_pairs`)."""
    lam = np.asarray(exponents, float)
    return [
        (i + 1, i + 2)
        for i in range(len(lam) - 1)
        if abs(lam[i]) > 0.05 and abs(lam[i + 1] - lam[i]) <= 0.01 * abs(lam[i])
    ]


@functools.lru_cache(maxsize=8)
def _system_spectrum(name: str, parameters: tuple, n_exponents: int) -> LyapunovSpectrum:
    system = get_system(name, **dict(parameters))
    size = int(system.prepare_state(system.initial_state(), system.internal_step(system.dt)).size)
    return lyapunov_spectrum(system, n_exponents=min(n_exponents, size))


def check_analyzable(sidecar: dict[str, Any]) -> None:
    """Refuse (one sentence) a model with exogenous inputs: its closed loop is driven."""
    if sidecar.get("exog_variables"):
        raise DiffdynError(
            f"model {sidecar['model']} reads exogenous inputs "
            f"({', '.join(sidecar['exog_variables'])}), so its closed loop is driven, not an "
            "autonomous dynamical system; analyze a model of data without them."
        )


def check_analyze_request(folder: str | Path) -> dict[str, Any]:
    """Check, before any data are loaded, that `folder` holds a finished model that can be
    analyzed (`check_analyzable`). Returns the sidecar."""
    sidecar = checkpoint.read_sidecar(folder)
    check_analyzable(sidecar)
    return sidecar


MAX_HORIZON = 10_000_000  # samples of a long run: beyond, the run alone fills gigabytes


def check_analysis_options(
    *,
    n_exponents: int | None = None,
    duration: float | None = None,
    horizon: int | None = None,
    windows: int = WINDOWS,
    lyapunov_exponent: float | None = None,
) -> None:
    """Check the analysis' numbers (one sentence each), before any data are loaded."""
    if n_exponents is not None:
        check_number("--exponents", n_exponents, whole=True, low=1)
    if duration is not None:
        check_number("--duration", duration, above=0)
    if horizon is not None:
        check_number("--horizon", horizon, whole=True, low=64, high=MAX_HORIZON)
    check_number("--windows", windows, whole=True, low=0, high=10_000)
    if lyapunov_exponent is not None:
        check_number("--lyapunov-exponent", lyapunov_exponent, above=0)


def _truth_exponent(sidecar: dict[str, Any], series: Series, given: float | None):
    if given is not None:
        return lyapunov_exponent_of(series, given)
    lam = sidecar.get("lyapunov_exponent") or series.lyapunov_exponent
    return lyapunov_exponent_of(series, lam) if lam else None


def default_horizon(lyapunov_exponent: float | None, dt: float) -> int:
    """The long run's default length in samples: 100 Lyapunov times (at least `MIN_SAMPLES`),
    or `HORIZON_SAMPLES` when λ₁ is unknown."""
    if not lyapunov_exponent:
        return HORIZON_SAMPLES
    samples = math.ceil(HORIZON_LYAPUNOV_TIMES / (lyapunov_exponent * dt))
    return min(max(samples, MIN_SAMPLES), MAX_HORIZON)


def default_duration(lyapunov_exponent: float | None, dt: float) -> float:
    """The spectrum's default averaging time: 200 Lyapunov times (at least `MIN_SAMPLES`
    steps), or `DEFAULT_ITERATIONS` steps when λ₁ is unknown."""
    if not lyapunov_exponent:
        return DEFAULT_ITERATIONS * dt
    return max(SPECTRUM_LYAPUNOV_TIMES / lyapunov_exponent, MIN_SAMPLES * dt)


def analysis_samples(
    sidecar: dict[str, Any], *, lyapunov_exponent: float | None = None, horizon: int | None = None
) -> int:
    """How many samples of a simulated truth the analysis wants: the context, then as long as
    the model's long run (`horizon`, default 100 Lyapunov times, or 10 000 samples)."""
    dt = float(sidecar.get("dt") or 1.0)
    lam = lyapunov_exponent or sidecar.get("lyapunov_exponent")
    horizon = default_horizon(lam, dt) if horizon is None else horizon
    return int(sidecar["training"]["context"]) + int(horizon)


@eqx.filter_jit
def _run(model, context, horizon):
    return model(context, None, horizon=horizon)[0]


def analyze_trained(
    model: AbstractForecaster,
    sidecar: dict[str, Any],
    series: Series,
    source: DataSource,
    *,
    n_exponents: int | None = None,
    duration: float | None = None,
    horizon: int | None = None,
    windows: int = WINDOWS,
    lyapunov_exponent: float | None = None,
    progress: bool | str = False,
) -> Analysis:
    """`analyze_model` for a model in memory with its description (`model.json` content)."""
    started = time.perf_counter()
    check_analyzable(sidecar)
    name = sidecar["model"]
    context_length = int(sidecar["training"]["context"])
    part = model_part(series, sidecar)
    dt = float(sidecar.get("dt") or 1.0)
    if part.dt is not None and not math.isclose(part.dt, dt, rel_tol=1e-6):
        raise DataError(
            f"the data are sampled every {part.dt:g} time units but {name} was trained on "
            f"samples every {dt:g}; give data with the model's sampling step."
        )
    check_analysis_options(
        n_exponents=n_exponents,
        duration=duration,
        horizon=horizon,
        windows=windows,
        lyapunov_exponent=lyapunov_exponent,
    )
    lam = _truth_exponent(sidecar, part, lyapunov_exponent)
    horizon = default_horizon(lam, dt) if horizon is None else horizon
    duration = default_duration(lam, dt) if duration is None else duration
    check_memory(
        8.0 * 4 * horizon * part.dim,
        f"a long run of {horizon} samples",
        "give a shorter --horizon.",
    )
    if len(part) < context_length + 64:
        raise DataError(
            f"the data have {len(part)} samples; the analysis needs the model's context "
            f"({context_length}) and at least 64 more to compare with: give a longer series."
        )
    scaler = Scaler.from_dict(sidecar["scaler"])
    values = np.asarray(scaler.transform(np.asarray(part.values)), np.float32)
    context = jnp.asarray(values[:context_length])
    truth = values[context_length:]

    with progress_bar(progress, total=len(PHASES), unit="phases") as bar:
        bar.describe(PHASES[0])
        spectrum, problem = None, None
        try:
            spectrum = model_lyapunov_spectrum(
                model, context, dt=dt, n_exponents=n_exponents, duration=duration, name=name
            )
        except NotAMapError as error:
            problem = str(error)
        except DiffdynError as error:  # the closed loop diverged: a result, said in words
            problem = str(error)
        bar.update(1)
        bar.describe(PHASES[1])
        system_spectrum = None
        if source.kind == "system" and source.system:
            wanted = len(spectrum.exponents) if spectrum is not None else n_exponents
            wanted = wanted or part.dim + 1
            try:
                system_spectrum = _system_spectrum(
                    source.system, tuple(sorted(source.parameters.items())), int(wanted)
                )
            except DiffdynError:  # a system not found by its name again: no reference
                system_spectrum = None
        bar.update(2)
        bar.describe(PHASES[2])
        with np.errstate(over="ignore", invalid="ignore"):
            run = np.asarray(_run(model, context, horizon), float)
        long_run = long_run_statistics(
            run, truth, dt=dt, variables=tuple(part.variables), lyapunov_exponent=lam
        )
        bar.update(3)
        bar.describe(PHASES[3])
        sensitivity = None
        if windows:
            room = len(values) - context_length
            starts = np.unique(np.linspace(0, room, windows).round().astype(int))
            contexts = jnp.asarray(np.stack([values[s : s + context_length] for s in starts]))
            sensitivity = sensitivity_to_lag(model, contexts)
        bar.update(4)
    return Analysis(
        model=name,
        data=source,
        dt=dt,
        context=context_length,
        variables=tuple(part.variables),
        lyapunov_exponent=lam,
        spectrum=spectrum,
        spectrum_problem=problem,
        system=source.system if source.kind == "system" else None,
        system_spectrum=system_spectrum,
        long_run=long_run,
        sensitivity=sensitivity,
        seconds=time.perf_counter() - started,
    )


def analyze_model(
    folder: str | Path,
    series: Series,
    source: DataSource,
    *,
    n_exponents: int | None = None,
    duration: float | None = None,
    horizon: int | None = None,
    windows: int = WINDOWS,
    lyapunov_exponent: float | None = None,
    progress: bool | str = False,
) -> Analysis:
    """Analyze a saved model as a dynamical system, against the data it models.

    1. **Lyapunov spectrum** of the closed loop written as a map (`model_lyapunov_spectrum`,
       from the state after the series' first context), averaged over `duration` time units
       (`default_duration`: 200 Lyapunov times, or 20 000 steps); for a simulated system,
       beside the system's own spectrum (`lyapunov_spectrum`), with the relative error.
    2. **Long run**: the model runs closed loop for `horizon` samples (`default_horizon`: 100
       Lyapunov times, or 10 000 samples) from that context and is compared with the rest of
       the series (`long_run_statistics`).
    3. **Sensitivity** to each lag, over `windows` context windows spread over the series
       (`sensitivity_to_lag`; 0 skips it).

    The series is the truth: with `--system`, simulate one at least `analysis_samples` long.
    `lyapunov_exponent` overrides λ₁ of the truth (the time scale of the defaults).

    **Example:**

    ```python
    from diffdyn.analysis import analysis_samples, analyze_model
    from diffdyn.train import load_data
    from diffdyn.train.checkpoint import read_sidecar

    steps = analysis_samples(read_sidecar("runs/lorenz63-esn"))
    series, source = load_data(system="lorenz63", steps=steps, fresh=True)
    result = analyze_model("runs/lorenz63-esn", series, source)
    result.spectrum.exponents, result.system_spectrum.exponents, result.long_run.behaviour
    ```
    """
    sidecar = check_analyze_request(folder)
    model, _ = checkpoint.load_model(folder)
    return analyze_trained(
        model,
        sidecar,
        series,
        source,
        n_exponents=n_exponents,
        duration=duration,
        horizon=horizon,
        windows=windows,
        lyapunov_exponent=lyapunov_exponent,
        progress=progress,
    )
