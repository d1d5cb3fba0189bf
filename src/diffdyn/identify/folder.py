"""`diffdyn identify`'s work: check the request, read the data, fit, write the folder.

An identification folder holds `result.json` (the `Identification`, the data source and the
request), `system.eqx` + `system.json` (the fitted system: its arrays, and the `Recipe` that
rebuilds it — no pickle) and, when asked, a figure. Nothing is written before the fit has
succeeded, and a bad request is refused before any work.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import __version__
from ..data.sampling import check_irregular
from ..data.series import Series
from ..errors import DataError, DiffdynError, UnknownNameError, did_you_mean
from ..files import check_output_path
from ..options import check_number, parse_list
from ..plot import check_figure_path
from ..systems.base import AbstractSystem
from ..systems.controlled import AbstractControlledFlow
from ..systems.registry import file_reference, get_system, is_file_reference, system_class
from ..train.checkpoint import Recipe, load_module, save_module, write_json
from ..train.data_source import DataSource, load_data
from .checks import _label, check_fit
from .fit import DEFAULT_REFINE_STEPS, identify
from .plot import plot_identification
from .result import Identification
from .setup import _evaluate, prepare

RESULT, SYSTEM = "result.json", "system.eqx"


def _recipe(system: AbstractSystem) -> Recipe:
    """How to rebuild `system`'s class with its shapes; checked now, so that a fitted system
    that could not be loaded again is refused before the fit."""
    cls = type(system)
    label = system.name or cls.__name__
    kwargs = {n: getattr(system, n) for n in cls.structural_names()}
    recipe = Recipe(f"{cls.__module__}:{cls.__qualname__}", [], kwargs)
    try:
        template = recipe.build()
    except DiffdynError as error:
        raise DiffdynError(
            f"the fitted {label} could not be saved to be loaded again: {error}"
        ) from None

    def shapes(module):
        leaves, tree = jax.tree_util.tree_flatten(eqx.filter(module, eqx.is_array))
        return tree, [(leaf.shape, leaf.dtype) for leaf in leaves]

    if shapes(template) != shapes(system):
        raise DiffdynError(
            f"{cls.__name__}() built from its defaults holds other arrays than the system to "
            "fit, so the fitted one could not be loaded again; give every field a default "
            "(a network field: eqx.field(default_factory=...))."
        )
    return recipe


def _parse_bounds(items: Mapping[str, str], fitted: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, text in items.items():
        if name not in fitted:
            raise UnknownNameError(
                f"--bound names {name!r}, which is not fitted (--fit {','.join(fitted)})."
                f"{did_you_mean(name, list(fitted))}"
            )
        low, sep, high = text.partition(":")
        if not sep:
            raise DiffdynError(
                f"--bound {name}={text}: write LOW:HIGH, either side empty for no bound "
                f"(e.g. --bound {name}=0:50 or --bound {name}=0:)."
            )
        out[name] = tuple(
            None if not side.strip() else check_number(f"the bound of {name}", side.strip())
            for side in (low, high)
        )
    return out


def controls_as_inputs(system: AbstractSystem, series: Series) -> Series:
    """A file's columns named after a controlled flow's controls (`control_names`, e.g. a
    pendulum's `torque`) taken as its recorded input (`Series.exog`), not as variables, so
    that `identify` fits the flow driven by them. Any other system, or a series that already
    has inputs or holds no such column, as it is. **Raises** `DataError` for a column that is
    neither a variable nor a control."""
    if not isinstance(system, AbstractControlledFlow) or series.exog is not None:
        return series
    controls = system.control_names
    other = [n for n in series.variables if n not in system.variables and n not in controls]
    if other:
        raise DataError(
            f"the data's column(s) {', '.join(other)} are neither variables of {_label(system)} "
            f"({', '.join(system.variables)}) nor its controls ({', '.join(controls)}, read as "
            "its recorded input); rename or drop them."
        )
    inputs = [name for name in controls if name in series.variables]
    if not inputs:
        return series
    keep = [name for name in series.variables if name not in inputs]
    exog = np.asarray(series.select(inputs).values)
    return series.select(keep).replace(exog=exog, exog_variables=tuple(inputs))


def identify_to_folder(
    system: str,
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    fit: str | Sequence[str],
    observe: str | Sequence[str] | None = None,
    segments: int = 1,
    steps: int | None = None,
    budget: float | None = None,
    seed: int = 0,
    restarts: int = 1,
    learning_rate: float = 0.05,
    refine: bool = True,
    refine_steps: int | None = None,
    start: Mapping[str, str] | None = None,
    bounds: Mapping[str, str] | None = None,
    irregular: str = "refuse",
    force: bool = False,
    plot: str | os.PathLike | None = None,
    progress: bool | str = True,
) -> Identification:
    """Fit `system` (a catalogue name or `path/to/file.py:ClassName`) to the series in `data`
    and write `output/result.json` and `output/system.eqx` (+ `.json`), and `plot` if given.

    **Arguments:** as `diffdyn identify`'s options: `fit` and `observe` are lists or
    comma-separated text; `start` are start values as text (`{"rho": "20"}`: the system is
    built with them, like `--param`); `bounds` are `{"rho": "0:50"}` (`LOW:HIGH`, a side left
    empty for none); the rest is `identify`'s.

    **Returns:** the `Identification`.

    **Raises** `DiffdynError` (one sentence) for a bad request before any work, and when the
    fit fails; nothing is written then.
    """
    built = get_system(system, **dict(start or {}))
    names = check_fit(built, parse_list(fit) if isinstance(fit, str) else list(fit))
    wanted = parse_list(observe) if isinstance(observe, str) else observe
    for name in wanted or []:
        if name not in built.variables:
            label = built.name or type(built).__name__
            raise UnknownNameError(
                f"{label} has no variable {name!r} to observe (it has "
                f"{', '.join(built.variables)}).{did_you_mean(name, built.variables)}"
            )
    parsed_bounds = _parse_bounds(bounds or {}, names)
    segments = check_number("--segments", segments, whole=True, low=1)
    restarts = check_number("--restarts", restarts, whole=True, low=1)
    seed = check_number("--seed", seed, whole=True, low=0)
    if steps is not None:
        steps = check_number("--steps", steps, whole=True, low=1)
    learning_rate = check_number("--learning-rate", learning_rate, above=0)
    if refine_steps is not None:
        if not refine:
            raise DiffdynError(
                "--refine-steps counts Levenberg–Marquardt steps, which --no-refine turns off; "
                "give one of them."
            )
        refine_steps = check_number("--refine-steps", refine_steps, whole=True, low=1)
    refine_steps = DEFAULT_REFINE_STEPS if refine_steps is None else refine_steps
    check_irregular(irregular)
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise DiffdynError(f"-o {folder} is a file; give a folder for the identification.")
    if not folder.parent.is_dir():
        raise DiffdynError(f"folder {folder.parent} does not exist; create it first.")
    if folder.is_dir():
        for name in (RESULT, SYSTEM, Path(SYSTEM).with_suffix(".json").name):
            if (folder / name).exists() and not force:
                raise DiffdynError(
                    f"{folder} already holds an identification ({name}); give --force to "
                    "replace it, or another -o folder."
                )
            check_output_path(folder / name, force=force)
    if plot is not None:
        check_figure_path(plot, force=force)
    recipe = _recipe(built)
    series, source = load_data(data=str(data), irregular=irregular)
    series = controls_as_inputs(built, series)
    result = identify(built, series, fit=names, observe=wanted, segments=segments, steps=steps,
                      budget=budget, seed=seed, restarts=restarts, bounds=parsed_bounds,
                      learning_rate=learning_rate, refine=refine, refine_steps=refine_steps,
                      progress=progress)  # fmt: skip
    folder.mkdir(exist_ok=True)
    save_module(folder / SYSTEM, result.system, recipe)
    reference = file_reference(system) if is_file_reference(system) else system
    request = {
        "system": reference,
        "fit": list(names),
        "observe": list(result.observed),
        "segments": segments,
        "steps": steps,
        "budget": budget,
        "seed": seed,
        "restarts": restarts,
        "learning_rate": learning_rate,
        "refine": refine,
        "refine_steps": refine_steps if refine else 0,
        "start": dict(start or {}),
        "bounds": {k: list(v) for k, v in parsed_bounds.items()},
        "irregular": irregular,
    }
    content = {
        "diffdyn_version": __version__,
        "identification": result.to_json(),
        "data": source.to_json(),
        "request": request,
        "files": {"system": SYSTEM, "recipe": recipe.to_json()},
    }
    write_json(folder / RESULT, content)
    if plot is not None:
        plot_identification(result, series, plot, force=force)
    return result


def load_identified(folder: str | os.PathLike, system: str | None = None) -> AbstractSystem:
    """The fitted system saved in an identification folder.

    A catalogue system loads by itself; a user's class needs its file: pass `system` (the
    same `path/to/file.py:ClassName`), which runs that file — diffdyn never runs code that
    a saved file names.

    **Example:** `fitted = load_identified("runs/lorenz", "my_systems.py:Lorenz")`
    """
    if system is not None:
        system_class(system)
    return load_module(Path(folder) / SYSTEM)


@dataclasses.dataclass(frozen=True, eq=False)
class IdentifiedFolder:
    """An identification folder read back by `read_identified`: the fitted system and the
    series it was fitted to.

    - `folder`; `reference`: the system as `identify` was given it (a catalogue name, or a
      user's `FILE.py:CLASS` with the file's absolute path); `system`: the fitted system.
    - `series`: the data file read again (checked against its fingerprint); `source`: its
      `DataSource`.
    - `fit`, `observed`, `latent`: the fitted fields and the variable names of `result.json`.
    - `segment_times` `[K]`, `initial_states` `[K, d]`: the fitted segments.
    - `request`: the request as `identify_to_folder` recorded it (`segments`, `bounds` …).
    """

    folder: Path
    reference: str
    system: AbstractSystem
    series: Series
    source: DataSource
    fit: tuple[str, ...]
    observed: tuple[str, ...]
    latent: tuple[str, ...]
    segment_times: np.ndarray
    initial_states: np.ndarray
    request: dict[str, Any]

    def trajectory(self) -> Series:
        """The fitted model at the data's times, every variable, segment by segment from the
        fitted initial states (as `Identification.trajectory`)."""
        request = self.request
        bounds = {k: tuple(v) for k, v in (request.get("bounds") or {}).items()}
        setup = prepare(self.system, self.series, fit=list(self.fit), observe=list(self.observed),
                        segments=int(request["segments"]), bounds=bounds)  # fmt: skip
        problem, layout = setup.problem, setup.layout
        mean, scale = np.asarray(problem.state_mean), np.asarray(problem.state_scale)
        states = (self.initial_states - mean) / scale
        unknowns = dataclasses.replace(
            setup.unknowns, states=jnp.asarray(states, dtype=setup.unknowns.states.dtype)
        )
        ys = np.asarray(_evaluate(setup.objective, unknowns, problem)[0], dtype=np.float64)
        values = np.full((len(setup.times), ys.shape[-1]), np.nan)
        values[layout.index[layout.mask]] = ys[layout.mask]
        meta = {"source": "identify", "system": _label(self.system), "kind": self.system.kind}
        return Series(values, setup.times, tuple(self.system.variables), dt=self.series.dt,
                      metadata=meta)  # fmt: skip


def _damaged(folder: Path, what: str) -> DiffdynError:
    return DiffdynError(
        f"{folder / RESULT} is damaged ({what}); run diffdyn identify again into {folder}."
    )


def read_identified(folder: str | os.PathLike, system: str | None = None) -> IdentifiedFolder:
    """Read an identification folder back: its fitted system and the data it was fitted to.

    A catalogue system loads by itself; a user's class needs `system`, the same
    `path/to/file.py:ClassName`, which runs that file (diffdyn never runs code that a saved
    file names). The data file named in `result.json` is read again and must be unchanged.

    **Raises** `DiffdynError` (one sentence) when `folder` is not an identification folder, a
    user's class is not given (or another is), or the data file is missing or changed.

    **Example:** `read_identified("lv-fit", "lv_hybrid.py:HybridLotkaVolterra").trajectory()`
    """
    folder = Path(folder)
    if not (folder / RESULT).is_file() or not (folder / SYSTEM).is_file():
        missing = RESULT if not (folder / RESULT).is_file() else SYSTEM
        raise DiffdynError(
            f"{folder} is not an identification folder (it has no {missing}); give the -o "
            "folder of diffdyn identify."
        )
    try:
        content = json.loads((folder / RESULT).read_text())
        request, found, stored = content["request"], content["identification"], content["data"]
        reference = str(request["system"])
        fit, observed = tuple(request["fit"]), tuple(found["observed"])
        latent = tuple(found["latent"])
        segment_times = np.asarray(found["segment_times"], dtype=np.float64)
        initial_states = np.asarray(found["initial_states"], dtype=np.float64)
        source = DataSource.from_json(stored)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _damaged(folder, f"{type(error).__name__}: {error}") from None
    if system is not None:
        given = file_reference(system) if is_file_reference(system) else system
        if given != reference:
            instead = "." if is_file_reference(reference) else " (or leave it out)."
            raise DiffdynError(
                f"{folder} was fitted with {reference}, not {system}; give --system "
                f"{reference}{instead}"
            )
    elif is_file_reference(reference):
        raise DiffdynError(
            f"{folder} holds a system of your file {reference}, which diffdyn does not run "
            f"unless told to: add --system {reference} (system= in Python)."
        )
    if source.kind != "file" or not source.path:
        raise _damaged(folder, "its data are not a file")
    if not Path(source.path).is_file():
        raise DataError(
            f"the data file {source.path} that {folder} was fitted to is missing; restore it "
            "(or run diffdyn identify again)."
        )
    series, again = load_data(data=source.path, irregular=str(request.get("irregular", "refuse")))
    if again.fingerprint != source.fingerprint:
        raise DataError(
            f"the data file {source.path} has changed since {folder} was fitted to it "
            f"(fingerprint {again.fingerprint}, was {source.fingerprint}); restore it, or run "
            "diffdyn identify again."
        )
    fitted = load_identified(folder, system)
    return IdentifiedFolder(folder, reference, fitted, series, source, fit, observed, latent,
                            segment_times, initial_states, dict(request))  # fmt: skip
