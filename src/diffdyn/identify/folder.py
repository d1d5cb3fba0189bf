"""`diffdyn identify`'s work: check the request, read the data, fit, write the folder.

An identification folder holds `result.json` (the `Identification`, the data source and the
request), `system.eqx` + `system.json` (the fitted system: its arrays, and the `Recipe` that
rebuilds it — no pickle) and, when asked, a figure. Nothing is written before the fit has
succeeded, and a bad request is refused before any work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from .. import __version__
from ..data.sampling import check_irregular
from ..errors import DiffdynError, UnknownNameError, did_you_mean
from ..files import check_output_path
from ..options import check_number, parse_list
from ..plot import check_figure_path
from ..systems.base import AbstractSystem
from ..systems.registry import file_reference, get_system, is_file_reference, system_class
from ..train.checkpoint import Recipe, load_module, save_module, write_json
from ..train.data_source import load_data
from .checks import check_fit
from .fit import identify
from .plot import plot_identification
from .result import Identification

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
    result = identify(built, series, fit=names, observe=wanted, segments=segments, steps=steps,
                      budget=budget, seed=seed, restarts=restarts, bounds=parsed_bounds,
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
