"""`diffdyn control`'s work: check the request, train the controller, write the folder.

A control folder holds `policy.eqx` + `policy.json` (the trained policy: its arrays and the
`Recipe` that rebuilds it, so it loads without any registry and without pickle),
`result.json` (the `ControlResult` and the request), `cost.png`, `trajectory.png` and, for the
pendulum and the cart-pole, `animation.gif`. Everything is written into `.NAME.partial-XXXX`
beside the folder and renamed to NAME only when complete, so a failed or interrupted run
leaves nothing behind, and an earlier result is never overwritten.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import jax

from .. import __version__
from ..errors import DiffdynError
from ..options import check_number
from ..systems.controlled import check_controlled
from ..systems.registry import file_reference, get_system, is_file_reference
from ..train.checkpoint import Recipe, load_module, save_module, write_json
from .plot import animate, can_animate, plot_cost, plot_trajectories
from .policy import LinearPolicy, MLPPolicy
from .result import ControlResult
from .tasks import make_task, task_name
from .training import POLICIES, evaluate_controller, train_controller

RESULT, POLICY = "result.json", "policy.eqx"
FILES = (RESULT, POLICY, "policy.json", "cost.png", "trajectory.png", "animation.gif")


def policy_recipe(policy) -> Recipe:
    """How to rebuild `policy` (a `LinearPolicy` or `MLPPolicy`) for `load_module`."""
    if isinstance(policy, LinearPolicy):
        controls, features = policy.gain.shape
        return Recipe.of(LinearPolicy, features, controls, limit=policy.limit,
                         feedforward=policy.forward is not None)  # fmt: skip
    if isinstance(policy, MLPPolicy):
        mlp = policy.mlp
        return Recipe.of(MLPPolicy, len(policy.input_scale), mlp.out_size, hidden=mlp.width_size,
                         depth=mlp.depth, limit=policy.limit,
                         input_scale=list(policy.input_scale),
                         output_scale=policy.output_scale)  # fmt: skip
    raise DiffdynError(f"cannot save a {type(policy).__name__}: save_module it with a Recipe.")


def check_output_folder(output: str | os.PathLike) -> Path:
    """The folder to create: refused when it holds anything (an earlier result is never
    overwritten) or its parent does not exist."""
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise DiffdynError(f"-o {folder} is a file; give a new folder for the controller.")
    if folder.is_dir() and any(folder.iterdir()):
        raise DiffdynError(
            f"{folder} is not empty (an earlier result is never overwritten); give a new -o "
            "folder."
        )
    if not folder.parent.is_dir():
        raise DiffdynError(f"folder {folder.parent} does not exist; create it first.")
    return folder


def control_to_folder(
    system: str,
    output: str | os.PathLike,
    *,
    task: str,
    budget: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    policy: str | None = None,
    limit: float | None = None,
    horizon: float | None = None,
    dt: float | None = None,
    truncation: int | None = None,
    params: dict[str, str] | None = None,
    progress: bool | str = True,
) -> ControlResult:
    """Train a controller for `task` on `system` and write the control folder `output`.

    **Arguments:** `system`: a catalogue name or `path/to/file.py:ClassName`; `task`:
    `swing-up`, `stabilise` or `track`; `budget` (seconds) and/or `steps`: the end of the
    training (neither: the task's default budget); `policy`: `linear` or `mlp` (default: the
    task's); `limit`, `horizon`, `dt`, `truncation`: override the task's; `params`: system
    parameters as text (`{"pole_mass": "0.2"}`).

    **Returns:** the `ControlResult`.

    **Raises** `DiffdynError` (one sentence) before any work for a bad request — an unknown
    system or task, a system without a control input, a task it does not support, a
    non-positive horizon or limit, an output folder that is not new — and `TrainingError`
    when the rollouts diverge (naming the iteration); nothing is written then.

    **Example:** `control_to_folder("cartpole", "runs/cp", task="swing-up", budget=120)`
    """
    name = task_name(task)
    built = check_controlled(get_system(system, **dict(params or {})))
    if policy is not None and policy not in POLICIES:
        raise DiffdynError(f"unknown policy {policy!r}; choose {' or '.join(POLICIES)}.")
    seed = check_number("--seed", seed, whole=True, low=0)
    if steps is not None:
        steps = check_number("--steps", steps, whole=True, low=1)
    if budget is not None:
        budget = check_number("--budget", budget, above=0)
    if truncation is not None:
        truncation = check_number("--truncation", truncation, whole=True, low=1)
    for label, value in (("--horizon", horizon), ("--limit", limit), ("--dt", dt)):
        if value is not None:
            check_number(label, value, above=0)
    folder = check_output_folder(output)
    job = make_task(name, built, horizon=horizon, limit=limit, dt=dt)
    if truncation is not None:
        job = dataclasses.replace(
            job, defaults=dataclasses.replace(job.defaults, truncation=truncation)
        )
    result = train_controller(built, job, policy, seed=seed, steps=steps, budget=budget,
                              progress=progress)  # fmt: skip
    _, runs = evaluate_controller(built, job, result.policy, key=jax.random.key(seed + 1),
                                  episodes=8)  # fmt: skip
    recipe = policy_recipe(result.policy)
    partial = folder.with_name(f".{folder.name}.partial-{secrets.token_hex(4)}")
    partial.mkdir()
    try:
        save_module(partial / POLICY, result.policy, recipe)
        reference = file_reference(system) if is_file_reference(system) else system
        request: dict[str, Any] = {"system": reference, "task": name, "budget": budget,
                                   "steps": steps, "seed": seed, "policy": result.policy_kind,
                                   "limit": job.limit, "horizon": job.horizon, "dt": job.dt,
                                   "truncation": result.settings["truncation"],
                                   "params": dict(params or {})}  # fmt: skip
        write_json(partial / RESULT, {"diffdyn_version": __version__,
                                      "result": result.to_json(), "request": request,
                                      "files": {"policy": POLICY,
                                                "recipe": recipe.to_json()}})  # fmt: skip
        plot_cost(result, partial / "cost.png")
        plot_trajectories(runs, tuple(built.variables), tuple(built.control_names),
                          partial / "trajectory.png", references=job.references,
                          limit=job.limit)  # fmt: skip
        if can_animate(built):
            animate(built, runs, partial / "animation.gif")
        if folder.is_dir():
            folder.rmdir()  # empty (checked): the complete folder takes its place
        os.rename(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return result


def load_controller(folder: str | os.PathLike):
    """The trained policy saved in a control folder (no registry, no pickle).

    **Example:** `policy = load_controller("runs/cp"); u = policy(observation, target)`
    """
    path = Path(folder) / POLICY
    if not path.is_file():
        raise DiffdynError(f"{folder} is not a control folder (it has no {POLICY}); give the -o "
                           "folder of diffdyn control.")  # fmt: skip
    return load_module(path)
