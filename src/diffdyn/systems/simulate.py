"""`simulate`: one entry point that turns any system into a `Series`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from jaxtyping import Array, ArrayLike, PRNGKeyArray

from ..data.series import Series
from ..errors import DiffdynError, SimulationError, UnknownNameError, did_you_mean
from ..options import MAX_INT, check_number
from ..resources import check_memory
from .base import AbstractSystem
from .flow import AbstractFlow


def _concrete(*xs: Any) -> bool:
    return not any(isinstance(x, Tracer) for x in jax.tree_util.tree_leaves(xs))


def _batch_norm(y):
    # Each trajectory's RMS error, then the worst: every member of the batch meets the
    # tolerance, as it would in a solve of its own.
    return jnp.max(jnp.sqrt(jnp.mean(jnp.abs(y) ** 2, axis=-1)))


@eqx.filter_jit
def _solve_flow(system: AbstractFlow, y0, t0, t_start, dt, steps, solver, rtol, atol, max_steps):
    if y0.ndim == 2:
        # A batch of initial states is one ODE with a shared step size and a vmapped vector
        # field: far cheaper than vmapping the adaptive solver, whose batched while-loop pays
        # for every member's branches and grid saves at every step.
        term = diffrax.ODETerm(lambda t, y, args: jax.vmap(lambda u: system.vector_field(t, u))(y))
        controller = diffrax.PIDController(rtol=rtol, atol=atol, norm=_batch_norm)
    else:
        term = diffrax.ODETerm(lambda t, y, args: system.vector_field(t, y))
        controller = diffrax.PIDController(rtol=rtol, atol=atol)
    ts = t_start + dt * jnp.arange(steps, dtype=jnp.result_type(float))
    sol = diffrax.diffeqsolve(
        term,
        solver,
        t0=t0,
        t1=ts[-1],
        dt0=None,
        y0=y0,
        # The second save is where the solver stopped: on failure, the time to name.
        saveat=diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(t1=True)]),
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=False,
    )
    assert sol.ys is not None and sol.ts is not None
    max_steps_hit = sol.result == diffrax.RESULTS.max_steps_reached
    ys = sol.ys[0] if y0.ndim == 1 else jnp.swapaxes(sol.ys[0], 0, 1)
    return ts, ys, max_steps_hit, sol.ts[1][0]


@eqx.filter_jit
def _solve_discrete(system: AbstractSystem, y0, t0, dt, n_transient, steps, exog, h, n_sub):
    if y0.ndim == 2:
        # Fixed steps: vmapping the scan vectorises perfectly.
        return jax.vmap(
            lambda y: _solve_discrete(system, y, t0, dt, n_transient, steps, exog, h, n_sub),
            out_axes=(None, 0),
        )(y0)
    stepper = system.make_stepper(h)
    state0 = system.prepare_state(y0, h)
    total = n_transient + steps
    ts_all = t0 + dt * jnp.arange(total, dtype=jnp.result_type(float))

    def sample(state, inputs):
        t, u = inputs

        def substep(j, s):
            return stepper(s, t + j * h, u)

        return jax.lax.fori_loop(0, n_sub, substep, state), system.observe(state)

    _, ys = jax.lax.scan(sample, state0, (ts_all, exog))
    return ts_all[n_transient:], ys[n_transient:]


def _default_solver():
    return diffrax.Tsit5()


def simulate(
    system: AbstractSystem,
    *,
    steps: int | None = None,
    t1: float | None = None,
    dt: float | None = None,
    y0: ArrayLike | None = None,
    t0: float = 0.0,
    transient: float | None = None,
    noise: float = 0.0,
    observe: Sequence[str] | None = None,
    key: PRNGKeyArray | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    solver: diffrax.AbstractSolver | None = None,
    max_steps: int | None = None,
    check_finite: bool = True,
) -> Series:
    """Simulate a system and return its trajectory as a `Series` on a regular time grid.

    Flows are integrated by Diffrax with an adaptive solver (Tsit5 by default) to the given
    tolerances and saved every `dt`; maps, delay systems and PDEs are stepped by `lax.scan`.
    The result is differentiable with respect to the system's parameters and `y0`, and
    `simulate` can be `jax.vmap`-ed over initial conditions, parameters or keys.

    **Arguments:**

    - `system`: any `AbstractSystem`, e.g. `get_system("lorenz63")` or your own subclass.
    - `steps`: number of saved samples. Give `steps` or `t1`, not both; default
      `system.default_steps`.
    - `t1`: duration to save, in time units (`steps = floor(t1/dt) + 1`).
    - `dt`: sampling step (default `system.dt`; maps always step by 1).
    - `y0`: initial state of the observed variables (default `system.initial_state()`), or
      a batch `[B, d]` of them: the result then has values `[B, T, d]`. A batch of a flow
      is solved as one ODE with a shared adaptive step (each member still meets the
      tolerances), which is much faster than `jax.vmap` over `simulate`.
    - `t0`: start time (matters for non-autonomous systems).
    - `transient`: time discarded before saving starts (default `system.default_transient`);
      saved times start at `t0 + transient` (for maps, delay systems and PDEs the transient
      is rounded to a whole number of samples).
    - `noise`: standard deviation of additive Gaussian observation noise, relative to each
      variable's standard deviation over the saved trajectory (0.05 = 5 %). Needs `key`.
    - `observe`: names of the variables to keep (default all).
    - `key`: a `jax.random.key`, needed for noise and for randomly driven systems (NARMA-10).
    - `rtol`, `atol`, `solver`, `max_steps`: Diffrax settings for flows.
    - `check_finite`: raise `SimulationError` naming the time at which the trajectory blew up.

    **Returns:** a `Series` with `metadata` holding the system name, parameters, settings, and
    the reference Lyapunov exponent when the parameters are the defaults it was computed for.

    **Example:**

    ```python
    from diffdyn.systems import get_system, simulate

    series = simulate(get_system("lorenz63"), steps=1000)
    series.values.shape  # (1000, 3)
    ```
    """
    if not isinstance(system, AbstractSystem):
        raise TypeError(f"simulate needs a diffdyn system, got {type(system).__name__}.")
    name = system.name or type(system).__name__
    if steps is not None and t1 is not None:
        raise DiffdynError("give either steps or t1, not both.")
    if system.kind == "map":
        if dt is not None and dt != 1:
            raise DiffdynError(f"{name} is a map: its time step is 1; leave out dt.")
        dt = 1.0
    dt = float(system.dt if dt is None else dt)
    if not dt > 0 or not math.isfinite(dt):
        raise DiffdynError(f"dt must be a positive number; got {dt}.")
    if t1 is not None:
        if not t1 > 0 or not math.isfinite(t1):
            raise DiffdynError(f"t1 must be a positive duration; got {t1}.")
        steps = int(math.floor(t1 / dt + 1e-9)) + 1
    steps = system.default_steps if steps is None else steps
    if isinstance(steps, float) and steps != int(steps):
        raise DiffdynError(f"steps must be a whole number; got {steps}.")
    steps = check_number("steps", steps, whole=True, low=2)
    transient = float(system.default_transient if transient is None else transient)
    if transient < 0 or not math.isfinite(transient):
        raise DiffdynError(f"transient must be a non-negative duration; got {transient}.")
    if not noise >= 0 or not math.isfinite(noise):
        raise DiffdynError(f"noise must be a non-negative fraction; got {noise}.")
    if (noise > 0 or system.needs_key) and key is None:
        why = "observation noise" if noise > 0 else f"{name}'s random driving input"
        raise DiffdynError(f"{why} needs a random key: pass key=jax.random.key(seed).")
    variables = system.variables
    if observe is not None:
        observe = list(observe)
        if not observe:
            raise DiffdynError("observe names no variable; leave it out to keep all.")
        for v in observe:
            if v not in variables:
                raise UnknownNameError(
                    f"{name} has no variable {v!r} (it has {', '.join(variables)})."
                    f"{did_you_mean(v, variables)}"
                )
    y0 = system.initial_state() if y0 is None else jnp.asarray(y0, dtype=jnp.result_type(float))
    if y0.ndim not in (1, 2) or y0.shape[-1] != len(variables) or y0.shape[0] == 0:
        raise DiffdynError(
            f"y0 for {name} must have {len(variables)} values ({', '.join(variables)}), or "
            f"shape [batch, {len(variables)}] for a batch; got shape {tuple(y0.shape)}."
        )
    if _concrete(y0):
        batch = y0.shape[0] if y0.ndim == 2 else 1
        saved = float(steps) * batch * (len(variables) + len(system.exogenous_names()) + 1)
        check_memory(
            saved * 4 * 4, f"simulating {steps} samples of {name}", "ask for fewer steps."
        )
    if key is not None:
        exog_key, noise_key = jax.random.split(key)
    else:
        exog_key = noise_key = None

    if isinstance(system, AbstractFlow):
        for label, tolerance in (("rtol", rtol), ("atol", atol)):
            if isinstance(tolerance, (int, float)):
                check_number(label, tolerance, above=0, below=1)
        if max_steps is None:
            # Diffrax counts steps in int32.
            max_steps = min(4096 + 256 * (steps + int(transient / dt)), MAX_INT)
        # Times and tolerances are passed as arrays so that new values do not recompile.
        times, states, max_steps_hit, t_stopped = _solve_flow(
            system,
            y0,
            jnp.asarray(float(t0)),
            jnp.asarray(float(t0) + transient),
            jnp.asarray(dt),
            steps,
            _default_solver() if solver is None else solver,
            jnp.asarray(rtol),
            jnp.asarray(atol),
            int(max_steps),
        )
        values = states
        exog = system.exogenous(exog_key, times)
    else:
        h = system.internal_step(dt)
        n_sub = int(round(dt / h))
        n_transient = int(round(transient / dt))
        all_times = float(t0) + dt * jnp.arange(n_transient + steps, dtype=jnp.result_type(float))
        all_exog = system.exogenous(exog_key, all_times)
        times, values = _solve_discrete(
            system,
            y0,
            jnp.asarray(float(t0)),
            jnp.asarray(dt),
            n_transient,
            steps,
            all_exog,
            h,
            n_sub,
        )
        transient = n_transient * dt
        exog = None if all_exog is None else all_exog[n_transient:]
        max_steps_hit = t_stopped = False

    if _concrete(times):
        # Saved times in float64 on the host: float32 times drift over long runs.
        times = float(t0) + transient + dt * np.arange(steps, dtype=np.float64)
    if check_finite:
        if _concrete(values):
            _raise_if_blown_up(
                name, np.asarray(values), np.asarray(times), max_steps_hit, t_stopped
            )
        else:
            values = eqx.error_if(
                values,
                ~jnp.all(jnp.isfinite(values)),
                f"the {name} trajectory blew up (non-finite values); reduce dt or change "
                "the parameters or initial state.",
            )

    if observe is not None:
        index = jnp.asarray([variables.index(v) for v in observe])
        values = values[..., index]
        variables = tuple(observe)
    if noise > 0:
        assert noise_key is not None
        scale = jnp.std(values, axis=-2, keepdims=True)
        values = values + noise * scale * jax.random.normal(
            noise_key, values.shape, dtype=values.dtype
        )

    metadata = _metadata(system, y0, dt, t0, transient, noise, rtol, atol)
    return Series(
        values,
        times,
        tuple(variables),
        exog=exog,
        exog_variables=system.exogenous_names() if exog is not None else (),
        dt=dt,
        metadata=metadata,
    )


def _raise_if_blown_up(
    name: str, values: np.ndarray, times: np.ndarray, max_steps_hit, t_stopped
) -> None:
    finite = np.isfinite(values).all(axis=-1)
    if finite.all():
        return
    if finite.ndim == 2:  # a batch: name the first member that failed
        member = int(np.argmin(finite.all(axis=-1)))
        name = f"{name} (initial state {member} of the batch)"
        finite = finite[member]
    first = int(np.argmin(finite))
    if bool(np.asarray(max_steps_hit)):
        # An adaptive solver approaching a blow-up shrinks its step until max_steps runs out,
        # so the time where it stopped is where the trajectory blows up (or turns stiff).
        raise SimulationError(
            f"the solver for {name} could not get past t = {float(t_stopped):.6g} (max_steps "
            "reached): the trajectory blows up there or becomes too stiff; check the "
            "parameters and initial state, or loosen --rtol/--atol (in Python, also a larger "
            "max_steps)."
        )
    last_ok = f" (last finite state at t = {times[first - 1]:.6g})" if first > 0 else ""
    raise SimulationError(
        f"the {name} trajectory blew up at t = {times[first]:.6g}{last_ok}; check the "
        "parameters and initial state, or reduce dt."
    )


def _as_number(x: Any) -> Any:
    a = np.asarray(x)
    return a.item() if a.ndim == 0 else a.tolist()


def _metadata(system, y0, dt, t0, transient, noise, rtol, atol) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "source": "simulation",
        "system": system.name or type(system).__name__,
        "kind": system.kind,
        "dt": dt,
        "t0": t0,
        "transient": transient,
        "noise": noise,
    }
    if system.kind == "flow":
        meta.update(rtol=rtol, atol=atol)
    params = system.parameters()
    if _concrete(params, y0):
        meta["parameters"] = {k: _as_number(v) for k, v in params.items()}
        for f in system.structural_names():
            meta["parameters"][f] = getattr(system, f)
        if y0.ndim == 1 or y0.shape[0] <= 16:
            meta["y0"] = _as_number(y0)
        else:
            meta["batch"] = int(y0.shape[0])
        if system.lyapunov_exponent is not None and _has_default_parameters(system):
            meta["lyapunov_exponent"] = float(system.lyapunov_exponent)
            meta["lyapunov_source"] = system.lyapunov_source
            if system.lyapunov_time is not None:
                meta["lyapunov_time"] = system.lyapunov_time
    return meta


def _has_default_parameters(system: AbstractSystem) -> bool:
    try:
        default = type(system)()
    except TypeError:  # a field without a default: there are no default parameters
        return False
    for f in dataclasses.fields(system):
        mine, theirs = getattr(system, f.name), getattr(default, f.name)
        if isinstance(mine, Array | np.ndarray):
            if not np.allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-6, atol=0):
                return False
        elif mine != theirs:
            return False
    return True
