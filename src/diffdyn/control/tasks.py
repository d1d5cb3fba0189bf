"""Control tasks: what to achieve on which system, over which horizon, judged how.

A task (`make_task(name, system)`) fixes everything a training and an evaluation need: the
horizon and sampling step, the initial-state distribution of a batch (training and fresh
evaluation draws), the target (constant or moving), the cost, the success criterion, and the
training defaults that were tuned for it (policy, size, batch, learning rate, truncation,
budget).

- `swing-up` (`pendulum`, `cartpole`; a user's system with `control_start` and
  `control_target`): from hanging down; success: the pole within ±12° of upright at every
  sample of the last 2 s.
- `stabilise` (`pendulum`, `cartpole`, `lorenz63-control`; a user's system with
  `control_target`): from near the target (Lorenz: from points on the attractor, to C+);
  success: ±12° over the last 2 s (Lorenz: within distance 1 of C+ over the last time unit).
- `track` (`pendulum`, `cartpole`): the pendulum follows θ_ref = 0.3 sin(2πt/5) from rest
  (success: RMS error over the second half ≤ 0.05 rad); the cart-pole's cart follows
  x_ref = 0.5 sin(2πt/5) m with the pole upright (success: RMS errors over the second half
  ≤ 0.1 m and ≤ 0.1 rad).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from ..options import check_number
from ..systems.controlled import ControlledSystem, check_controlled
from .cost import Cost

TASKS = ("swing-up", "stabilise", "track")
_SPELLINGS = {"stabilize": "stabilise", "swingup": "swing-up", "tracking": "track"}


class InitialStates(eqx.Module):
    """The batch source of a controller's training: initial states drawn on device.

    Each state is a row of `pool` (drawn uniformly; when `pool` is `None`, `centre`) plus
    uniform noise in ±`spread`. Called as the core's batch source, `(key, step, progress) ->
    (y0 [batch, n], progress)`: the loss reads run progress for its horizon curriculum.
    """

    centre: Float[Array, " n"]
    spread: Float[Array, " n"]
    pool: Float[Array, "P n"] | None
    batch: int = eqx.field(static=True)

    def sample(self, key: PRNGKeyArray, count: int) -> Float[Array, "count n"]:
        """`count` initial states."""
        k_pool, k_noise = jax.random.split(key)
        noise = jax.random.uniform(k_noise, (count, self.centre.shape[0]), minval=-1, maxval=1)
        if self.pool is None:
            base = jnp.broadcast_to(self.centre, (count, self.centre.shape[0]))
        else:
            base = self.pool[jax.random.randint(k_pool, (count,), 0, self.pool.shape[0])]
        return base + self.spread[None] * noise

    def __call__(self, key, step, progress):
        return self.sample(key, self.batch), progress


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


@dataclasses.dataclass(frozen=True)
class HoldAngle:
    """Success: the angle `state[index]` stays within ±`degrees` of `centre` (modulo 2π) at
    every sampling time of the last `hold` time units."""

    index: int
    centre: float
    degrees: float = 12.0
    hold: float = 2.0

    def __call__(self, times, states, controls, references) -> np.ndarray:
        last = times >= times[-1] - self.hold - 1e-9
        error = np.abs(_wrap(states[:, last, self.index] - self.centre))
        return np.all(error <= np.deg2rad(self.degrees), axis=-1)

    def text(self, variables: tuple[str, ...]) -> str:
        return (f"{variables[self.index]} within ±{self.degrees:g}° of {self.centre:.4g} over "
                f"the last {self.hold:g} time units")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class NearTarget:
    """Success: the state stays within Euclidean distance `radius` of the reference over the
    last `hold` time units."""

    radius: float
    hold: float

    def __call__(self, times, states, controls, references) -> np.ndarray:
        last = times >= times[-1] - self.hold - 1e-9
        distance = np.linalg.norm(states[:, last] - references[None, last], axis=-1)
        return np.all(distance <= self.radius, axis=-1)

    def text(self, variables: tuple[str, ...]) -> str:
        return (f"state within distance {self.radius:g} of the target over the last "
                f"{self.hold:g} time units")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Tracking:
    """Success: over the second half of the horizon the RMS error of each `state[index]`
    against the reference is at most its tolerance (angles wrapped)."""

    tolerances: tuple[tuple[int, float], ...]
    angles: tuple[int, ...] = ()

    def __call__(self, times, states, controls, references) -> np.ndarray:
        late = times >= times[-1] / 2
        ok = np.ones(states.shape[0], dtype=bool)
        for index, tolerance in self.tolerances:
            error = states[:, late, index] - references[None, late, index]
            if index in self.angles:
                error = _wrap(error)
            ok &= np.sqrt(np.mean(error**2, axis=-1)) <= tolerance
        return ok

    def text(self, variables: tuple[str, ...]) -> str:
        parts = [f"{variables[i]} ≤ {t:g}" for i, t in self.tolerances]
        return "RMS tracking error over the second half: " + ", ".join(parts)


Success = HoldAngle | NearTarget | Tracking


@dataclasses.dataclass(frozen=True)
class TaskDefaults:
    """The training settings tuned for a task on a system (`train_controller`'s defaults).

    `policy` (`"linear"`/`"mlp"`), `hidden`, `depth`, `input_scale` (the MLP's), `batch`,
    `learning_rate`, `clip` (global-norm clipping), `budget` (seconds), `truncation`,
    `curriculum` (`(start, until)`: the scored horizon grows from the fraction `start` to all of
    it by run progress `until`), `train_horizon` (training episodes of this length from the
    task's training starts — all over the state space for a swing-up, so the policy learns to
    bring every state up and hold it there — while validation and evaluation run the whole
    horizon from the task's starts; `None`: the whole horizon).
    """

    policy: str = "mlp"
    hidden: int = 64
    depth: int = 2
    batch: int = 32
    learning_rate: float = 3e-3
    clip: float = 1.0
    budget: float = 120.0
    truncation: int | None = None
    input_scale: tuple[float, ...] | None = None
    curriculum: tuple[float, float] | None = None
    train_horizon: float | None = None
    feedforward: bool = False


@dataclasses.dataclass(frozen=True, eq=False)
class ControlTask:
    """A control task on one system (built by `make_task`).

    - `name`, `system`: the task's and the system's names.
    - `horizon`, `dt`, `substeps`: the episode length and sampling step (time units), RK4
      steps per sampling step; `steps` = horizon/dt.
    - `limit`: the actuator limit |u| ≤ limit (`None`: unlimited).
    - `references` `[steps+1, n]`: the target state at every sampling time; `targets`: the
      same in the policy's features (`system.observe_for_control`).
    - `cost`: the `Cost` (or any `cost(rollout) -> scalar`); `success`: the criterion.
    - `initial`, `evaluation`: initial-state distributions for training batches and for the
      fresh evaluation episodes.
    - `defaults`: the training settings tuned for it (`TaskDefaults`).
    """

    name: str
    system: str
    horizon: float
    dt: float
    substeps: int
    limit: float | None
    references: Float[Array, "T1 n"]
    targets: Float[Array, "T1 f"]
    cost: Callable[..., Array]
    success: Success
    initial: InitialStates
    evaluation: InitialStates
    defaults: TaskDefaults
    variables: tuple[str, ...]

    @property
    def steps(self) -> int:
        return self.targets.shape[0] - 1

    def criterion(self) -> str:
        """The success criterion in words."""
        return self.success.text(self.variables)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "system": self.system, "horizon": self.horizon,
                "dt": self.dt, "substeps": self.substeps, "limit": self.limit,
                "steps": self.steps, "success": self.criterion(),
                "truncation": self.defaults.truncation,
                "curriculum": self.defaults.curriculum,
                "train_horizon": self.defaults.train_horizon}  # fmt: skip


def task_name(name: str) -> str:
    """The canonical task name (`stabilize` → `stabilise`), or `UnknownNameError`."""
    key = name.strip().lower().replace("_", "-")
    key = _SPELLINGS.get(key.replace("-", ""), key)
    if key not in TASKS:
        raise UnknownNameError(
            f"unknown task {name!r}; the tasks are {', '.join(TASKS)}.{did_you_mean(name, TASKS)}"
        )
    return key


@dataclasses.dataclass(frozen=True)
class _Spec:
    horizon: float
    dt: float
    substeps: int
    start: tuple[float, ...]
    spread: tuple[float, ...]
    state: tuple[float, ...]
    effort: float
    terminal: tuple[float, ...]
    late: float
    success: Success
    defaults: TaskDefaults
    reference: Callable[[np.ndarray], np.ndarray] | None = None  # times -> [T+1, n]
    train_start: tuple[float, ...] | None = None  # training starts (default: `start`)
    train_spread: tuple[float, ...] | None = None
    target: tuple[float, ...] | None = None
    pool: str | None = None


def _sine(amplitude: float, period: float, position: int, velocity: int, n: int):
    def reference(times: np.ndarray) -> np.ndarray:
        out = np.zeros((len(times), n))
        w = 2 * np.pi / period
        out[:, position] = amplitude * np.sin(w * times)
        out[:, velocity] = amplitude * w * np.cos(w * times)
        return out

    return reference


# Settings tuned with experiments/control_cartpole.py and the tests (docs/control.md).
_PENDULUM_SCALE = (1.0, 1.0, 8.0)
_CARTPOLE_SCALE = (2.0, 3.0, 1.0, 1.0, 10.0)
_SPECS: dict[tuple[str, str], _Spec] = {
    ("swing-up", "pendulum"): _Spec(
        horizon=10.0,
        dt=0.05,
        substeps=2,
        start=(0.0, 0.0),
        spread=(0.1, 0.1),
        state=(1.0, 1.0, 0.01),
        effort=0.01,
        terminal=(0.0, 0.0, 0.0),
        late=0.0,
        success=HoldAngle(0, math.pi),
        target=(math.pi, 0.0),
        train_start=(0.0, 0.0),
        train_spread=(math.pi, 3.0),
        defaults=TaskDefaults(input_scale=_PENDULUM_SCALE, budget=60.0, train_horizon=3.0),
    ),
    ("stabilise", "pendulum"): _Spec(
        horizon=5.0,
        dt=0.05,
        substeps=2,
        start=(math.pi, 0.0),
        spread=(0.3, 0.5),
        state=(1.0, 1.0, 0.01),
        effort=0.01,
        terminal=(0.0, 0.0, 0.0),
        late=0.0,
        success=HoldAngle(0, math.pi),
        target=(math.pi, 0.0),
        defaults=TaskDefaults(
            policy="linear",
            learning_rate=0.3,
            budget=30.0,
            input_scale=_PENDULUM_SCALE,
            curriculum=(0.2, 0.5),
        ),
    ),
    ("track", "pendulum"): _Spec(
        horizon=10.0,
        dt=0.05,
        substeps=2,
        start=(0.0, 0.0),
        spread=(0.05, 0.05),
        state=(1.0, 1.0, 0.01),
        effort=0.001,
        terminal=(0.0, 0.0, 0.0),
        late=0.0,
        success=Tracking(((0, 0.05),), angles=(0,)),
        reference=_sine(0.3, 5.0, 0, 1, 2),
        defaults=TaskDefaults(input_scale=_PENDULUM_SCALE, budget=60.0),
    ),
    ("swing-up", "cartpole"): _Spec(
        horizon=6.0,
        dt=0.05,
        substeps=2,
        start=(0.0, 0.0, math.pi, 0.0),
        spread=(0.05, 0.05, 0.1, 0.1),
        state=(0.05, 0.01, 1.0, 1.0, 0.005),
        effort=0.01,
        terminal=(0.0, 0.0, 0.0, 0.0, 0.0),
        late=0.0,
        success=HoldAngle(2, 0.0),
        target=(0.0, 0.0, 0.0, 0.0),
        train_start=(0.0, 0.0, 0.0, 0.0),
        train_spread=(1.0, 1.0, math.pi, 3.0),
        defaults=TaskDefaults(input_scale=_CARTPOLE_SCALE, budget=120.0, train_horizon=3.0),
    ),
    ("stabilise", "cartpole"): _Spec(
        horizon=5.0,
        dt=0.05,
        substeps=2,
        start=(0.0, 0.0, 0.0, 0.0),
        spread=(0.2, 0.2, 0.15, 0.2),
        state=(0.1, 0.01, 1.0, 1.0, 0.01),
        effort=0.01,
        terminal=(0.0, 0.0, 0.0, 0.0, 0.0),
        late=0.0,
        success=HoldAngle(2, 0.0),
        target=(0.0, 0.0, 0.0, 0.0),
        defaults=TaskDefaults(
            policy="linear",
            learning_rate=0.3,
            budget=30.0,
            input_scale=_CARTPOLE_SCALE,
            curriculum=(0.2, 0.5),
        ),
    ),
    # The cart follows x_ref = 0.5 sin(2πt/5) m with the pole kept upright. The pole's error
    # weighs 10× the cart's, so that balancing is learned before tracking (with equal weights
    # the gradient found a pole that spins while the cart tracks); the linear policy's
    # feedforward on the reference leads the motion (feedback alone lagged: RMS 0.2 m).
    ("track", "cartpole"): _Spec(
        horizon=10.0,
        dt=0.05,
        substeps=2,
        start=(0.0, 0.0, 0.0, 0.0),
        spread=(0.05, 0.05, 0.05, 0.05),
        state=(1.0, 0.1, 10.0, 10.0, 0.1),
        effort=0.001,
        terminal=(0.0, 0.0, 0.0, 0.0, 0.0),
        late=0.0,
        success=Tracking(((0, 0.1), (2, 0.1)), angles=(2,)),
        reference=_sine(0.5, 5.0, 0, 1, 4),
        train_start=(0.0, 0.0, 0.0, 0.0),
        train_spread=(0.2, 0.2, 0.15, 0.2),
        defaults=TaskDefaults(
            policy="linear",
            learning_rate=0.3,
            budget=30.0,
            input_scale=_CARTPOLE_SCALE,
            curriculum=(0.1, 0.5),
            feedforward=True,
        ),
    ),
    ("stabilise", "lorenz63-control"): _Spec(
        horizon=10.0,
        dt=0.02,
        substeps=2,
        start=(0.0, 0.0, 0.0),
        spread=(0.0, 0.0, 0.0),
        state=(0.01, 0.01, 0.01),
        effort=0.001,
        terminal=(0.0, 0.0, 0.0),
        late=1.0,
        success=NearTarget(1.0, 1.0),
        pool="attractor",
        defaults=TaskDefaults(
            policy="linear",
            learning_rate=0.05,
            budget=30.0,
            truncation=50,
            input_scale=(10.0, 10.0, 10.0),
        ),
    ),
}


def supported_systems(task: str) -> tuple[str, ...]:
    """The catalogue systems a task has settings for."""
    return tuple(system for name, system in _SPECS if name == task_name(task))


def _generic_spec(task: str, system: ControlledSystem) -> _Spec | None:
    """Settings for a user's system, from its `control_target` / `control_start`."""
    target, start = system.control_target, system.control_start
    if target is None or task == "track" or (task == "swing-up" and start is None):
        return None
    n = len(target)
    features = int(system.observe_for_control(jnp.asarray(target, dtype=float)).shape[0])
    begin = tuple(start) if task == "swing-up" and start is not None else tuple(target)
    spread = (0.05,) * n if task == "swing-up" else (0.1,) * n
    dt = float(system.dt)
    return _Spec(
        horizon=200 * dt,
        dt=dt,
        substeps=1,
        start=begin,
        spread=spread,
        state=(1.0,) * features,
        effort=0.01,
        terminal=(0.0,) * features,
        late=1.0 if task == "swing-up" else 0.0,
        success=NearTarget(0.1, 20 * dt),
        target=tuple(target),
        defaults=TaskDefaults(policy="mlp" if task == "swing-up" else "linear"),
    )


def _attractor_pools(system: ControlledSystem, key: PRNGKeyArray) -> tuple[Array, Array]:
    """Points on the free system's attractor: (training pool, evaluation pool), from one long
    simulation after a transient, the two halves disjoint in time."""
    from ..systems.simulate import simulate

    start = system.initial_state() + jax.random.normal(key, system.initial_state().shape)
    series = simulate(system, steps=4000, dt=0.05, y0=start, transient=50.0)
    values = jnp.asarray(series.values)
    return values[:2000], values[2000:]


def make_task(
    name: str,
    system: ControlledSystem,
    *,
    horizon: float | None = None,
    limit: float | None = None,
    dt: float | None = None,
    batch: int | None = None,
    key: PRNGKeyArray | None = None,
) -> ControlTask:
    """The task `name` (`swing-up`, `stabilise`, `track`) on `system`, with its settings.

    **Arguments:**

    - `name`: the task; `system`: a controlled system (`get_system("cartpole")`).
    - `horizon`, `dt`: the episode length and sampling step (default: the task's).
    - `limit`: the actuator limit (default: the system's `control_limit`).
    - `batch`: initial states per training step (default: the task's).
    - `key`: for the initial states drawn once (Lorenz's attractor points); default key 0.

    **Raises** `DiffdynError` (one sentence) when the system has no control input, the task
    does not support it, or a number is not positive.

    **Example:**

    ```python
    from diffdyn.control import make_task
    from diffdyn.systems import get_system

    task = make_task("swing-up", get_system("cartpole"))
    task.horizon, task.dt, task.steps, task.limit  # (6.0, 0.05, 120, 10.0)
    ```
    """
    task = task_name(name)
    system = check_controlled(system)
    label = system.name or type(system).__name__
    spec = _SPECS.get((task, system.name)) if system.name else None
    if spec is None:
        spec = _generic_spec(task, system)
    if spec is None:
        supported = ", ".join(supported_systems(task))
        how = {
            "swing-up": " (or a system of yours with control_start and control_target)",
            "stabilise": " (or a system of yours with control_target)",
        }.get(task, "")
        raise DiffdynError(f"task {task} does not support {label}; it supports {supported}{how}.")
    horizon = spec.horizon if horizon is None else check_number("--horizon", horizon, above=0)
    if system.kind == "map":
        dt = 1.0
    dt = spec.dt if dt is None else check_number("--dt", dt, above=0)
    if limit is None:
        limit = system.control_limit
    else:
        limit = check_number("--limit", limit, above=0)
    steps = int(round(horizon / dt))
    if steps < 2:
        raise DiffdynError(
            f"a horizon of {horizon:g} is under two sampling steps of {dt:g}; give a longer "
            "--horizon or a smaller --dt."
        )
    horizon = steps * dt
    substeps = max(1, int(math.ceil(spec.substeps * spec.dt / dt - 1e-9)))
    times = dt * np.arange(steps + 1)
    n = system.dim
    if spec.reference is not None:
        references = jnp.asarray(spec.reference(times), dtype=float)
    elif spec.target is not None:
        references = jnp.tile(jnp.asarray(spec.target, dtype=float), (steps + 1, 1))
    else:  # Lorenz: its fixed point C+
        references = jnp.tile(system.fixed_point(1), (steps + 1, 1))  # type: ignore[union-attr]
    targets = jax.vmap(system.observe_for_control)(references)
    features = int(targets.shape[-1])
    if len(spec.state) != features:
        raise DiffdynError(f"{label}'s control features changed; the {task} task needs "
                           f"{len(spec.state)}.")  # fmt: skip
    effort_scale = 1.0 if limit is None else float(limit)
    cost = Cost(state=spec.state, effort=spec.effort, effort_scale=effort_scale,
                terminal=spec.terminal, late=spec.late)  # fmt: skip
    batch_size = spec.defaults.batch if batch is None else check_number(
        "--batch", batch, whole=True, low=1)  # fmt: skip
    centre = jnp.asarray(spec.start, dtype=float)
    spread = jnp.asarray(spec.spread, dtype=float)
    if spec.pool == "attractor":
        train_pool, eval_pool = _attractor_pools(system, jax.random.key(0) if key is None else key)
    else:
        train_pool = eval_pool = None
    train_centre = centre if spec.train_start is None else jnp.asarray(spec.train_start, float)
    train_spread = spread if spec.train_spread is None else jnp.asarray(spec.train_spread, float)
    initial = InitialStates(train_centre, train_spread, train_pool, batch_size)
    evaluation = InitialStates(centre, spread, eval_pool, batch_size)
    if centre.shape[0] != n:
        raise DiffdynError(f"the {task} task's start state has {centre.shape[0]} values; "
                           f"{label} has {n}.")  # fmt: skip
    defaults = dataclasses.replace(spec.defaults, batch=batch_size)
    return ControlTask(task, label, float(horizon), float(dt), substeps, limit, references,
                       targets, cost, spec.success, initial, evaluation, defaults,
                       tuple(system.variables))  # fmt: skip
