"""`identify`: fit chosen fields of a system, and its initial states, to an observed series.

Adam runs through the one training core (`diffdyn.train.train`: the loss is the shooting
objective, the batch source returns the data), then Levenberg–Marquardt (Optimistix) refines
the same sum of squares, then the Gauss–Newton approximation of the Hessian gives standard
errors (`identify.uncertainty`). Several restarts from perturbed start values keep the best.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optax
import optimistix as optx

from ..data.series import Series
from ..errors import SimulationError
from ..options import check_number
from ..systems.base import AbstractSystem
from ..systems.controlled import AbstractControlledFlow
from ..train.loop import train
from ..train.schedule import cosine
from .checks import DIVERGENCE_ADVICE, _label
from .result import Identification
from .setup import Bounds, _evaluate, _failure, _loss, _perturbed, prepare
from .shooting import (
    Flat,
    Objective,
    Problem,
    Unknowns,
    structured_residuals,
)
from .uncertainty import entry_names, gauss_newton_uncertainty

DEFAULT_STEPS = 200
DEFAULT_REFINE_STEPS = 100


@functools.cache
def _optimiser(learning_rate: float) -> optax.GradientTransformation:
    # One object per learning rate: identifications of the same shapes share one compiled step
    # (the core's step is compiled per optimiser object).
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate))


def _natural_columns(unknowns: Unknowns, problem: Problem):
    """dp/du of every flat unknown (`shooting.Flat`): each transform's slope, and each state's
    scale. The Jacobian in the unknowns' own units is the unconstrained one divided by it."""

    def slope(name, u):
        if problem.transforms[name].kind == "network":  # weights fitted as they are
            return jax.tree_util.tree_map(jnp.ones_like, eqx.filter(u, eqx.is_inexact_array))
        return jax.jvp(problem.transforms[name].forward, (u,), (jnp.ones_like(u),))[1]

    # In the order of `Flat` (a dict's leaves): the same partition, the same ravel.
    dp_du, _ = jax.flatten_util.ravel_pytree({n: slope(n, u) for n, u in unknowns.fields.items()})
    return jnp.concatenate([dp_du, jnp.tile(problem.state_scale, unknowns.states.shape[0])])


@eqx.filter_jit
def _levenberg_marquardt(objective: Objective, unknowns: Unknowns, problem: Problem, steps: int):
    """At most `steps` steps of Levenberg–Marquardt (Levenberg 1944, Marquardt 1963:
    Optimistix's damped Newton descent with a classical trust-region update of the damping)
    from `unknowns`, its Jacobians by the structured forward-mode rule of
    `structured_residuals`.

    **Returns:** the unknowns, the number of steps, and the residuals and their Jacobian in
    the unknowns' own units at the result (the solver's last accepted linearisation, so the
    standard errors need no Jacobian of their own).
    """
    flat, x = Flat.of(unknowns)

    def residuals(x, problem):
        return structured_residuals(x, objective=objective, problem=problem, flat=flat)

    # Each damped step solves the normal equations (JᵀJ + λI) δ = −Jᵀr by Cholesky rather than
    # the default QR of the stacked [J; √λ I]: measured on the 20-segment Lorenz-63 problem
    # (3063 × 63), 6 ms a step against 29 ms, to the same optimum. The squared condition
    # number costs accuracy only in the step, which the next iteration corrects; a failed
    # factorisation (a direction the data do not determine, λ → 0) gives a rejected step and a
    # larger λ.
    solver = optx.LevenbergMarquardt(rtol=1e-7, atol=1e-9, linear_solver=lx.Normal(lx.Cholesky()))
    solution = optx.least_squares(residuals, solver, x, args=problem, max_steps=steps, throw=False)
    out = flat.unknowns(solution.value)
    info = solution.state.f_info  # at `solution.value`: the last accepted step's
    jacobian = info.jac.as_matrix() / _natural_columns(out, problem)[None]
    return out, solution.stats["num_steps"], info.residual, jacobian


@eqx.filter_jit
def _jacobian(objective: Objective, unknowns: Unknowns, problem: Problem):
    """The residuals and their Jacobian in the unknowns' own units (without refinement)."""
    flat, x = Flat.of(unknowns)
    r, linear = jax.linearize(
        lambda x: structured_residuals(x, objective=objective, problem=problem, flat=flat), x
    )
    columns = jax.vmap(linear, out_axes=1)(jnp.eye(x.shape[0], dtype=x.dtype))
    return r, columns / _natural_columns(unknowns, problem)[None]


def identify(
    system: AbstractSystem,
    series: Series,
    *,
    fit: Sequence[str] | str,
    observe: Sequence[str] | str | None = None,
    segments: int = 1,
    bounds: Bounds | None = None,
    restarts: int = 1,
    steps: int | None = None,
    budget: float | None = None,
    seed: int = 0,
    learning_rate: float = 0.05,
    refine: bool = True,
    refine_steps: int = DEFAULT_REFINE_STEPS,
    adjoint: str = "recursive",
    continuity: float = 1.0,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    solver: diffrax.AbstractSolver | None = None,
    max_steps: int | None = None,
    progress: bool | str = False,
) -> Identification:
    """Fit fields of `system` (parameters, network weights) and its initial states to `series`.

    The loss compares only the observed variables, each standardised by its standard deviation
    in the data; the other state variables are latent, their initial values fitted too. With
    `segments = K > 1` (multiple shooting) each segment of the series starts from its own
    free state and a penalty keeps the segments continuous: chaotic data over many Lyapunov
    times need it, as one trajectory from one initial state (single shooting) has a loss
    surface too rough to descend. Adam runs `steps` steps (or for `budget` seconds) through the
    one training core, then Levenberg–Marquardt refines the same least-squares problem, then
    standard errors come from σ̂²(JᵀJ)⁻¹ at the optimum. See `shooting` for the objective and
    `transforms` for the bounds.

    **Arguments:**

    - `system`: the start: a system whose fields hold the start values (`get_system(...)`,
      your own class, a system with an MLP field).
    - `series`: the data, regularly sampled; its columns are matched to the variables by name.
    - `fit`: the fields to fit (array parameters or network fields). The parameters and
      initial states must be fewer than the observed values; network weights may outnumber
      them (an over-parametrised fit, said in `Identification.notes`: Levenberg–Marquardt's
      damping keeps its steps well-posed there).
    - `observe`: the observed variables (default: every column of `series`).
    - `segments`: 1 for single shooting, more for multiple shooting (at least 3 samples
      each; delay systems: 1).
    - `bounds`: `{field: (low, high)}` with `None` for an open side; a fitted field not named
      keeps the sign of its start value (log transform) — see `transforms`.
    - `restarts`: independent fits, the first from the start values, the others from them
      perturbed by about 30 %; the lowest loss wins.
    - `steps`, `budget`: Adam's steps per restart and/or its wall-clock seconds in all
      (shared equally by the restarts; compiling included). Default 200 steps.
    - `seed`: the restarts' perturbations (and the core's keys).
    - `learning_rate`: Adam's, in the unconstrained coordinates (log-parameters, standardised
      states), with a cosine decay; gradients clipped to norm 1.
    - `refine`, `refine_steps`: Levenberg–Marquardt after Adam, at most that many steps;
      kept only when it lowers the loss.
    - `adjoint`: gradients through Diffrax: `"recursive"` (`RecursiveCheckpointAdjoint`, the
      default) or `"backsolve"` (`BacksolveAdjoint`). Jacobians (Levenberg–Marquardt, the
      standard errors) use forward mode.
    - `continuity`: the weight of the continuity penalty.
    - `rtol`, `atol`, `solver`, `max_steps`: Diffrax settings for flows (Tsit5 by default).
    - `progress`: show the core's progress bar (a string: its label).

    **Returns:** an `Identification`.

    **Raises** `DiffdynError` for a bad request (names, numbers, data), `SimulationError`
    when the start values cannot be simulated (naming the segment), `TrainingError` when the
    fit diverges.

    **Example:**

    ```python
    import jax
    from diffdyn.identify import identify
    from diffdyn.systems import Lorenz63, simulate

    data = simulate(Lorenz63(), t1=10.0, noise=0.05, key=jax.random.key(0))
    result = identify(Lorenz63(sigma=13.0, rho=19.6, beta=3.47), data,
                      fit=["sigma", "rho", "beta"], segments=20)
    result.fitted["rho"], result.standard_errors["rho"]  # ≈ 28.0, ≈ 0.01
    ```
    """
    started = time.perf_counter()
    restarts = check_number("restarts", restarts, whole=True, low=1)
    refine_steps = check_number("refine_steps", refine_steps, whole=True, low=1)
    learning_rate = check_number("learning_rate", learning_rate, above=0)
    seed = check_number("seed", seed, whole=True, low=0)
    if steps is not None:
        steps = check_number("steps", steps, whole=True, low=1)
    if budget is not None:
        budget = check_number("budget", budget, above=0)
    if steps is None and budget is None:
        steps = DEFAULT_STEPS
    setup = prepare(system, series, fit=fit, observe=observe, segments=segments, bounds=bounds,
                    adjoint=adjoint, continuity=continuity, rtol=rtol, atol=atol, solver=solver,
                    max_steps=max_steps)  # fmt: skip
    objective, problem, label = setup.objective, setup.problem, _label(system)
    forward = dataclasses.replace(objective, adjoint="forward")
    optimiser = _optimiser(learning_rate)
    key = jax.random.key(seed)
    losses: list[float] = []
    # (loss, unknowns, outcome, refine steps, refined, (residuals, Jacobian) or None)
    best: tuple[float, Unknowns, Any, int, bool, tuple | None] | None = None
    compile_seconds = 0.0
    for r in range(restarts):
        restart_key = jax.random.fold_in(key, r)
        if r == 0:
            unknowns = setup.unknowns
        else:
            try:
                unknowns = _perturbed(setup, restart_key)
            except SimulationError:
                losses.append(math.inf)  # this perturbed start cannot be simulated
                continue
        shown = progress
        if isinstance(progress, str) and restarts > 1:
            shown = f"{progress} (restart {r + 1}/{restarts})"
        elif progress is True:
            shown = f"identify {label}" + (f" ({r + 1}/{restarts})" if restarts > 1 else "")
        outcome = train(
            unknowns,
            objective,
            problem,
            optimiser,
            key=restart_key,
            steps=steps,
            budget=None if budget is None else budget / restarts,
            schedule=cosine(final=0.05),
            max_failures=20,
            # Ten steps per compiled call: the same compile time, and half the time per step
            # (measured: 300 steps of the 20-segment Lorenz-63 problem, 5.7 → 2.5 ms each);
            # a record every 10 steps keeps the chunk 10 long for any number of steps, so runs
            # of any length (or budget) share one compiled step.
            steps_per_call=10,
            validate_every=10,
            progress=shown,
            divergence_advice=DIVERGENCE_ADVICE,
        )
        compile_seconds += outcome.compile_seconds
        fitted, loss = outcome.module, _loss(objective, outcome.module, problem)
        refined, refine_count, linearised = False, 0, None
        if refine:
            # Levenberg–Marquardt only accepts steps that lower the loss: its result is never
            # worse than Adam's.
            fitted, refine_count, r, jacobian = _levenberg_marquardt(
                forward, fitted, problem, refine_steps
            )
            r = np.asarray(r, dtype=np.float64)
            refined_loss, refine_count = float(r @ r), int(refine_count)
            refined = refined_loss < loss
            loss, linearised = refined_loss, (r, np.asarray(jacobian, dtype=np.float64))
        losses.append(loss)
        if math.isfinite(loss) and (best is None or loss < best[0]):
            best = (loss, fitted, outcome, refine_count, refined, linearised)
    if best is None:
        raise SimulationError(
            f"no restart of {label} could be fitted (every loss was non-finite); "
            f"{DIVERGENCE_ADVICE}"
        )
    loss, unknowns, outcome, refine_count, refined, linearised = best
    return _result(setup, forward, unknowns, linearised, loss, losses, outcome, refine_count,
                   refined, started, compile_seconds)  # fmt: skip


def _result(setup, forward, unknowns, linearised, loss, losses, outcome, refine_count, refined,
            started, compile_seconds) -> Identification:  # fmt: skip
    objective, problem, layout = setup.objective, setup.problem, setup.layout
    system = objective.system(unknowns, problem)
    states = np.asarray(objective.states(unknowns, problem), dtype=np.float64)
    ys, r = (np.asarray(a, dtype=np.float64) for a in _evaluate(objective, unknowns, problem))
    label = _label(system)
    error = _failure(layout, ys, setup.times, label, "the fitted values")
    if error is not None:
        raise error
    networks = {n: _weights(getattr(system, n)) for n in setup.names
                if problem.transforms[n].kind == "network"}  # fmt: skip
    # In the order of the flat unknowns (a dict's pytree order): the Jacobian's columns.
    arrays = sorted(n for n in setup.names if n not in networks)
    fitted = {n: np.asarray(getattr(system, n), dtype=np.float64) for n in arrays}
    start = {n: np.asarray(getattr(problem.system, n), dtype=np.float64) for n in arrays}
    transforms = {n: problem.transforms[n].describe() for n in setup.names}

    data_part, continuity_part = (
        r[: r.shape[0] - objective.n_continuity],
        r[r.shape[0] - objective.n_continuity :],
    )
    misfit = data_part.reshape(layout.count, layout.length + 1, -1) * math.sqrt(objective.n_data)
    masked = misfit[layout.mask]
    noise_rms = np.sqrt((masked**2).mean(axis=0)) * np.asarray(problem.obs_scale)
    noise = {v: float(x) for v, x in zip(setup.observed, noise_rms, strict=True)}

    standard_errors = correlation = state_errors = None
    names: tuple[str, ...] = entry_names(fitted)
    if networks:
        note = (
            f"not computed: the network field(s) {', '.join(networks)} are fitted, whose "
            "weights are not identifiable one by one."
        )
    else:
        if linearised is None:
            linearised = (np.asarray(a, np.float64) for a in _jacobian(forward, unknowns, problem))
        r, jacobian = linearised
        found = gauss_newton_uncertainty(jacobian, r, setup.residual_count, names, states.shape)
        if found is None:
            note = "not computed: the Jacobian is not finite or there are too few residuals."
        else:
            standard_errors, offset = {}, 0
            for n in arrays:
                size = fitted[n].size
                errors = found.standard_errors[offset : offset + size]
                standard_errors[n] = errors.reshape(fitted[n].shape)
                offset += size
            correlation, state_errors = found.correlation, found.state_errors
            note = (
                f"sigma^2 (J^T J)^-1 at the optimum, J over {found.unknowns} unknowns "
                f"(the parameters and every initial state), {found.dof} degrees of freedom"
            )
            if found.rank < found.unknowns:
                note += (
                    f"; J has rank {found.rank} of {found.unknowns}: NaN marks what the data "
                    "do not determine"
                )
    values = np.full((len(setup.times), ys.shape[-1]), np.nan)
    values[layout.index[layout.mask]] = ys[layout.mask]
    meta = {"source": "identify", "system": label, "kind": system.kind}
    trajectory = Series(values, setup.times, tuple(system.variables), dt=setup.series.dt,
                        metadata=meta)  # fmt: skip
    if isinstance(system, AbstractControlledFlow):  # the data's input stays with the data
        system = system.driven_by(None)
    return Identification(
        system=system,
        fitted={n: fitted[n] for n in setup.names if n in fitted},
        start={n: start[n] for n in setup.names if n in start},
        standard_errors=None
        if standard_errors is None
        else {n: standard_errors[n] for n in setup.names if n in standard_errors},
        correlation=correlation,
        correlation_names=names,
        uncertainty_note=note,
        networks=networks,
        transforms=transforms,
        loss=float(loss),
        data_loss=float(data_part @ data_part),
        continuity_loss=float(continuity_part @ continuity_part),
        noise=noise,
        observed=setup.observed,
        latent=setup.latent,
        segments=layout.count,
        segment_times=setup.times[layout.starts],
        initial_states=states,
        initial_state_errors=state_errors,
        trajectory=trajectory,
        restart_losses=tuple(losses),
        best_restart=int(np.nanargmin(np.where(np.isfinite(losses), losses, np.inf))),
        adam_steps=outcome.steps,
        refine_steps=refine_count,
        refined=refined,
        stop_reason=outcome.stop_reason,
        adjoint=objective.adjoint,
        seconds=time.perf_counter() - started,
        compile_seconds=compile_seconds,
        notes=setup.notes,
    )


def _weights(module: Any) -> int:
    leaves = jax.tree_util.tree_leaves(eqx.filter(module, eqx.is_inexact_array))
    return sum(int(np.size(leaf)) for leaf in leaves)
