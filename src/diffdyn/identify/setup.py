"""`prepare`: an identification request checked and turned into its objective, its data and
its start unknowns (`Setup`), with the compiled evaluations the fit and its messages use."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data.series import Series
from ..errors import DataError, DiffdynError, SimulationError
from ..options import MAX_INT, check_number
from ..systems.base import AbstractSystem
from .checks import (
    DIVERGENCE_ADVICE,
    _label,
    check_fit,
    check_kind,
    driven_by_data,
    match_observed,
)
from .shooting import ADJOINTS, Layout, Objective, Problem, Unknowns, segment_layout
from .transforms import choose_transform

RESTART_SPREAD = 0.3  # restarts perturb each unconstrained value by this much (≈ 30 %)
Bounds = Mapping[str, tuple[float | None, float | None] | None]


@dataclasses.dataclass(frozen=True)
class Setup:
    """A prepared identification: the objective, the data and the start unknowns (what
    `prepare` returns and `identify` optimises; also what the gradient tests check).

    - `layout`: the segments; `observed`, `latent`: variable names; `names`: fitted fields.
    - `series`: the data, `times`: `[T]` float64 on the host.
    - `notes`: what the result should say about the request (an over-parametrised network).
    """

    objective: Objective
    problem: Problem
    unknowns: Unknowns
    layout: Layout
    names: tuple[str, ...]
    observed: tuple[str, ...]
    latent: tuple[str, ...]
    series: Series
    times: np.ndarray
    notes: tuple[str, ...] = ()

    @property
    def residual_count(self) -> int:
        """Residuals that are data or continuity gaps: `m` of the standard errors."""
        return self.objective.n_data + self.objective.n_continuity


@eqx.filter_jit
def _chain(objective: Objective, system, first, obs_starts, t_start, offsets):
    """Segment by segment from `first`: the observed variables reset to the data at each
    segment's start, the latent ones carried over from the end of the previous segment."""
    observed = jnp.asarray(objective.observed)

    def body(state, inputs):
        obs, t0 = inputs
        state = state.at[observed].set(obs)
        ys = objective.trajectories(system, state[None], t0[None], offsets)[0]
        return ys[-1], (state, ys)

    _, (states, ys) = jax.lax.scan(body, first, (obs_starts, t_start))
    return states, ys


@eqx.filter_jit
def _alone(objective: Objective, system, states, problem: Problem):
    """Every segment solved on its own (for the message naming the one that fails)."""

    def one(state, t0):
        return objective.trajectories(system, state[None], t0[None], problem.offsets)[0]

    return jax.vmap(one)(states, problem.t_start)


def _loss(objective: Objective, unknowns: Unknowns, problem: Problem) -> float:
    r = np.asarray(_evaluate(objective, unknowns, problem)[1], dtype=np.float64)
    return float(r @ r)


def _evaluate(objective: Objective, unknowns: Unknowns, problem: Problem):
    """The segments' trajectories `[K, L + 1, d]` and the residual vector."""
    # The adjoint only matters to gradients: one compiled function serves every choice.
    return _evaluate_jit(dataclasses.replace(objective, adjoint="recursive"), unknowns, problem)


@eqx.filter_jit
def _evaluate_jit(objective: Objective, unknowns: Unknowns, problem: Problem):
    system = objective.system(unknowns, problem)
    states = objective.states(unknowns, problem)
    ys = objective.trajectories(system, states, problem.t_start, problem.offsets)
    return ys, objective.residuals_of(ys, states, problem)


def _failure(setup_layout: Layout, ys: np.ndarray, times: np.ndarray, label: str, what: str):
    finite = np.isfinite(ys).all(axis=-1) | ~setup_layout.mask
    if finite.all():
        return None
    k = int(np.argmin(finite.all(axis=1)))
    j = int(np.argmin(finite[k]))
    index = setup_layout.index
    span = f"t = {times[index[k, 0]]:.6g} … {times[index[k, -1]]:.6g}"
    where = (
        "the solver stopped (max_steps reached or a step size too small)"
        if not np.isfinite(ys).any()
        else f"the trajectory is not finite from t ≈ {times[index[k, j]]:.6g}"
    )
    return SimulationError(
        f"the solve of {label} from {what} fails in segment {k + 1} of {setup_layout.count} "
        f"({span}): {where}; {DIVERGENCE_ADVICE}"
    )


def prepare(
    system: AbstractSystem,
    series: Series,
    *,
    fit: Sequence[str] | str,
    observe: Sequence[str] | str | None = None,
    segments: int = 1,
    bounds: Bounds | None = None,
    adjoint: str = "recursive",
    continuity: float = 1.0,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    solver: diffrax.AbstractSolver | None = None,
    max_steps: int | None = None,
) -> Setup:
    """Check an identification request and build its objective, data and start unknowns.

    The arguments are `identify`'s. The start values are the system's; each segment's initial
    state starts from the data (observed variables) and from the start system simulated
    segment by segment (latent variables; the first segment's latent ones from
    `system.initial_state()`).

    **Raises** `DiffdynError` (one sentence) for every bad request, and `SimulationError`
    naming the segment when the start values cannot be simulated.
    """
    if not isinstance(system, AbstractSystem):
        raise DiffdynError(f"identify needs a diffdyn system, got {type(system).__name__}.")
    if not isinstance(series, Series) or np.ndim(series.values) != 2:
        raise DataError("identify needs one series (a Series with values [time, dim]).")
    label = _label(system)
    names = check_fit(system, fit)
    if adjoint not in ADJOINTS[:2]:
        raise DiffdynError(
            f"unknown adjoint {adjoint!r}; choose recursive (the default) or backsolve."
        )
    segments = check_number("segments", segments, whole=True, low=1)
    continuity = check_number("continuity", continuity, low=0)
    for what, tolerance in (("rtol", rtol), ("atol", atol)):
        check_number(what, tolerance, above=0, below=1)
    check_kind(system, segments)
    system = driven_by_data(system, series)
    driven = getattr(system, "recorded_input", None) is not None
    observed = match_observed(system, series, observe)
    variables = system.variables
    latent = tuple(v for v in variables if v not in observed)
    bounds = dict(bounds or {})
    for name in bounds:
        if name not in names:
            raise DiffdynError(
                f"bounds name {name!r}, which is not fitted (fitted: {', '.join(names)}); "
                "bound only fitted fields."
            )
    if series.dt is None:
        raise DataError(
            "identify needs regularly sampled data; resample the series first "
            "(--irregular resample)."
        )
    columns = [series.variables.index(v) for v in observed]
    data = np.asarray(series.values, dtype=np.float64)[:, columns]
    if not np.isfinite(data).all():
        raise DataError("the observed data hold non-finite values; remove or fill them first.")
    obs_mean, obs_scale = data.mean(axis=0), data.std(axis=0)
    if (obs_scale == 0).any():
        flat = [observed[i] for i in np.nonzero(obs_scale == 0)[0]]
        raise DataError(
            f"the observed variable(s) {', '.join(flat)} are constant in the data: nothing to "
            "fit there; leave them out of observe (--observe)."
        )
    # A variable that barely moves (a symmetry point of a PDE's grid) would have its rounding
    # errors weighted like another's signal: its scale is held above 1e-4 of the largest.
    obs_scale = np.maximum(obs_scale, 1e-4 * obs_scale.max())
    layout = segment_layout(len(data), segments)
    times = np.asarray(series.times, dtype=np.float64)
    dt = float(series.dt)
    dtype = jnp.result_type(float)
    transforms = {n: choose_transform(n, getattr(system, n), bounds.get(n)) for n in names}

    kind = "flow" if system.kind == "flow" else "discrete"
    h, substeps = 1.0, 1
    if system.kind not in ("flow", "map"):
        h = system.internal_step(dt)
        substeps = max(1, int(round(dt / h)))
    if max_steps is None:
        max_steps = min(4096 + 256 * (layout.length + 1), MAX_INT)
    n_obs, d = len(observed), len(variables)
    objective = Objective(
        names=names,
        observed=tuple(variables.index(v) for v in observed),
        kind=kind,
        adjoint=adjoint,
        solver=diffrax.Tsit5() if solver is None else solver,
        rtol=float(rtol),
        atol=float(atol),
        max_steps=int(max_steps),
        h=float(h),
        substeps=substeps,
        continuity=float(continuity),
        n_data=int(layout.mask.sum()) * n_obs,
        n_continuity=(segments - 1) * d,
        driven=driven,
    )
    sizes = {
        n: sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(
            eqx.filter(getattr(system, n), eqx.is_inexact_array)))
        for n in names
    }  # fmt: skip
    network_weights = sum(sizes[n] for n in names if transforms[n].kind == "network")
    plain_count = sum(sizes.values()) - network_weights + segments * d
    observations = objective.n_data + objective.n_continuity
    # Plain parameters and initial states need more observations than unknowns. Network
    # weights may outnumber them (Rackauckas et al. 2020 fit 87 weights to 62 values by
    # gradient descent): the weights are not determined one by one, only the function they
    # make, and Levenberg–Marquardt's damping keeps each step well-posed (JᵀJ + λI, λ > 0).
    if observations <= plain_count:
        raise DataError(
            f"too few observations: {objective.n_data} observed values for {plain_count} "
            "unknowns (the fitted parameters and every segment's initial state"
            + (", besides the network weights" if network_weights else "")
            + "); use a longer series, fewer segments, or observe more variables."
        )
    notes: tuple[str, ...] = ()
    if observations <= plain_count + network_weights:
        notes = (
            f"over-parametrised: {plain_count + network_weights} unknowns ({network_weights} "
            f"network weights) for {observations} observed values; the weights are not "
            "determined by the data one by one (Levenberg–Marquardt's damping keeps its steps "
            "well-posed), so judge the fitted network by its outputs, not its weights.",
        )
    if driven:
        controls = ", ".join(system.control_names)  # type: ignore[attr-defined]
        notes += (
            f"driven by the data's recorded input ({controls}), linear between samples; the "
            "fitted system is returned free of it.",
        )

    targets = (data[layout.index] - obs_mean) / obs_scale
    targets = np.where(layout.mask[..., None], targets, 0.0)
    t_start = times[layout.starts]
    offsets = dt * np.arange(layout.length + 1)
    as_array = lambda x: jnp.asarray(x, dtype=dtype)  # noqa: E731
    observed_index = list(objective.observed)
    state_mean, state_scale = np.zeros(d), np.ones(d)
    state_mean[observed_index], state_scale[observed_index] = obs_mean, obs_scale
    problem = Problem(
        system=system,
        transforms=transforms,
        targets=as_array(targets),
        mask=jnp.asarray(layout.mask),
        t_start=as_array(t_start),
        offsets=as_array(offsets),
        obs_mean=as_array(obs_mean),
        obs_scale=as_array(obs_scale),
        state_mean=as_array(state_mean),
        state_scale=as_array(state_scale),
    )
    setup = Setup(objective, problem, Unknowns({}, jnp.zeros((segments, d))), layout, names,
                  observed, latent, series, times, notes)  # fmt: skip
    states, ys = start_states(setup, system, data)
    if latent:
        # The latent variables are fitted standardised by their spread on the start trajectory.
        lat = [variables.index(v) for v in latent]
        values = np.asarray(ys)[..., lat][layout.mask]
        spread = values.std(axis=0)
        state_mean[lat] = values.mean(axis=0)
        state_scale[lat] = np.where(spread > 0, spread, 1.0)
        problem = dataclasses.replace(
            problem, state_mean=as_array(state_mean), state_scale=as_array(state_scale)
        )
    start = {n: transforms[n].inverse(_as_dtype(getattr(system, n), dtype)) for n in names}
    unknowns = Unknowns(start, as_array((states - state_mean) / state_scale))
    setup = dataclasses.replace(setup, problem=problem, unknowns=unknowns)
    ys, r = _evaluate(objective, unknowns, problem)
    if not np.isfinite(np.asarray(r)).all():
        ys = np.asarray(ys)
        if not np.isfinite(ys).any():  # the segments' shared solve failed: which one did?
            primal = dataclasses.replace(objective, adjoint="recursive")
            ys = np.asarray(_alone(primal, objective.system(unknowns, problem),
                                   objective.states(unknowns, problem), problem))  # fmt: skip
        error = _failure(layout, ys, times, label, "the start values")
        raise error or SimulationError(
            f"the loss of {label} at the start values is not finite; {DIVERGENCE_ADVICE}"
        )
    return setup


def _as_dtype(value: Any, dtype) -> Any:
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, value
    )


def start_states(setup: Setup, system: AbstractSystem, data: np.ndarray):
    """Every segment's initial state `[K, d]` for `system` (see `prepare`), and, when there
    are latent variables, the segments simulated from them `[K, L + 1, d]`.

    **Raises** `SimulationError` naming the segment whose solve fails."""
    layout, problem = setup.layout, setup.problem
    # The adjoint only matters to gradients: one compiled function serves every choice.
    objective = dataclasses.replace(setup.objective, adjoint="recursive")
    dtype = jnp.result_type(float)
    if not setup.latent:  # every state variable starts from the data
        states = np.zeros((layout.count, len(system.variables)))
        states[:, list(objective.observed)] = data[layout.starts]
        return states, None
    try:
        first = jnp.asarray(system.initial_state(), dtype=dtype)
    except NotImplementedError:
        raise DiffdynError(
            f"{_label(system)} has latent variables ({', '.join(setup.latent)}) but no "
            "default initial state to start them from; set the class attribute y0."
        ) from None
    obs_starts = jnp.asarray(data[layout.starts], dtype=dtype)
    states, ys = _chain(objective, system, first, obs_starts, problem.t_start, problem.offsets)
    ys = np.asarray(ys)
    error = _failure(layout, ys, setup.times, _label(system), "the start values")
    if error is not None:
        raise error
    return np.asarray(states, dtype=np.float64), ys


def _perturbed(setup: Setup, key) -> Unknowns:
    """A restart: every fitted array moved by `RESTART_SPREAD` in its unconstrained value
    (≈ 30 % for a positive parameter), the initial states started again from it."""
    problem, unknowns = setup.problem, setup.unknowns
    fields = dict(unknowns.fields)
    for i, name in enumerate(setup.names):
        if problem.transforms[name].kind != "network":
            u = fields[name]
            noise = jax.random.normal(jax.random.fold_in(key, i), jnp.shape(u), jnp.result_type(u))
            fields[name] = u + RESTART_SPREAD * noise
    moved = dataclasses.replace(unknowns, fields=fields)
    system = setup.objective.system(moved, problem)
    columns = [setup.series.variables.index(v) for v in setup.observed]
    data = np.asarray(setup.series.values, dtype=np.float64)[:, columns]
    states, _ = start_states(setup, system, data)
    standard = (states - np.asarray(problem.state_mean)) / np.asarray(problem.state_scale)
    return Unknowns(fields, jnp.asarray(standard, dtype=unknowns.states.dtype))
