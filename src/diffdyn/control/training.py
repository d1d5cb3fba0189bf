"""`train_controller`: a policy trained by backpropagation through the closed-loop simulation,
through the one optimisation core (`diffdyn.train.loop.train`).

The family brings what the core asks for: the loss `RolloutCost` (the task's cost of a batch
of closed-loop rollouts, averaged) and the batch source `InitialStates` (initial states drawn
on device). The optimiser is `clip_by_global_norm` then Adam, with a cosine decay over run
progress; the core owns the non-finite guard, the budget, validation (the cost of a fixed
batch of evaluation starts, every few steps, the best policy kept) and the progress bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import DiffdynError
from ..options import check_number
from ..systems.controlled import ControlledSystem, check_controlled
from ..train.loop import TrainingError, train
from ..train.schedule import cosine
from .policy import LinearPolicy, MLPPolicy, policy_parameters
from .result import ControlEvaluation, ControlResult, CostPoint
from .rollout import Rollout, rollout
from .tasks import ControlTask

POLICIES = ("linear", "mlp")
_UNSET = object()


class RolloutCost(eqx.Module):
    """The core's loss: the mean task cost of closed-loop rollouts from a batch of states.

    `RolloutCost(system, task)(policy, y0 [B, n], key) -> scalar`; the system's arrays are
    fields, so they are arguments of the compiled step (and are not trained: only the policy
    is the module `train` differentiates).
    """

    system: ControlledSystem
    targets: Float[Array, "T1 f"]
    cost: Callable[..., Array]  # `cost(rollout)`; with a curriculum, `cost(rollout, scored)`
    dt: float = eqx.field(static=True)
    substeps: int = eqx.field(static=True)
    truncation: int | None = eqx.field(static=True)
    curriculum: tuple[float, float] | None = eqx.field(static=True, default=None)

    def rollouts(self, policy, y0: Float[Array, "B n"]) -> Rollout:
        """The batch of closed-loop rollouts from `y0`."""
        return jax.vmap(
            lambda y: rollout(
                self.system,
                policy,
                y,
                self.targets,
                dt=self.dt,
                substeps=self.substeps,
                truncation=self.truncation,
            )  # fmt: skip
        )(y0)

    def scored(self, progress: Float[Array, ""]) -> Float[Array, " T"]:
        """The steps the cost counts at run progress p: with `curriculum = (start, until)`,
        the first fraction `start + (1 − start)·min(1, p/until)` of the horizon (short
        horizons first, where the gradient of an unstable system is still informative)."""
        steps = self.targets.shape[0] - 1
        assert self.curriculum is not None
        start, until = self.curriculum
        fraction = start + (1 - start) * jnp.clip(progress / until, 0.0, 1.0)
        return (jnp.arange(1, steps + 1) <= jnp.ceil(fraction * steps)).astype(jnp.float32)

    def __call__(self, policy, batch, key=None) -> Float[Array, ""]:
        y0, progress = batch if isinstance(batch, tuple) else (batch, None)
        scored = None if self.curriculum is None or progress is None else self.scored(progress)

        def episode(p, start):
            run = rollout(self.system, p, start, self.targets, dt=self.dt,
                          substeps=self.substeps, truncation=self.truncation)  # fmt: skip
            return self.cost(run) if scored is None else self.cost(run, scored)

        return jnp.mean(jax.vmap(lambda y: episode(policy, y))(y0))


@eqx.filter_jit
def _rollouts(loss: RolloutCost, policy, y0):
    return loss.rollouts(policy, y0)


@eqx.filter_jit
def _episode_costs(cost, batch: Rollout):
    return jax.vmap(cost)(batch)


@eqx.filter_jit
def _mean_cost(loss: RolloutCost, policy, y0):
    return loss(policy, y0)


def make_policy(
    kind: str, system: ControlledSystem, task: ControlTask, *, key: PRNGKeyArray
) -> eqx.Module:
    """The task's default policy of `kind` (`"linear"` or `"mlp"`) for `system`, with the
    task's actuator limit and input scales."""
    features = int(task.targets.shape[-1])
    controls = len(system.control_names)
    if kind == "linear":
        return LinearPolicy(features, controls, limit=task.limit,
                            feedforward=task.defaults.feedforward, key=key)  # fmt: skip
    if kind == "mlp":
        d = task.defaults
        return MLPPolicy(features, controls, hidden=d.hidden, depth=d.depth, limit=task.limit,
                         input_scale=d.input_scale, key=key)  # fmt: skip
    raise DiffdynError(f"unknown policy {kind!r}; choose linear or mlp.")


def _finite_rollout(loss: RolloutCost, policy, y0) -> None:
    """Refuse a start whose very first rollouts blow up, naming the time."""
    batch = _rollouts(loss, policy, y0)
    states = np.asarray(batch.states)
    bad = ~np.isfinite(states).all(axis=-1)  # [B, T+1]
    if bad.any():
        first = int(np.argmax(bad.any(axis=0)))
        t = float(np.asarray(batch.times)[0, first])
        raise TrainingError(
            f"the closed-loop rollout diverged at iteration 0 (non-finite state at t = {t:.4g});"
            " use a smaller step (--dt) or a shorter horizon."
        )


def evaluate_controller(
    system: ControlledSystem,
    task: ControlTask,
    policy,
    *,
    key: PRNGKeyArray,
    episodes: int = 100,
) -> tuple[ControlEvaluation, Rollout]:
    """Run `policy` from `episodes` fresh initial states (`task.evaluation`) and judge it.

    **Returns:** the `ControlEvaluation` and the batch `Rollout` (leading axis: episodes).

    **Example:**

    ```python
    import jax
    from diffdyn.control import LinearPolicy, evaluate_controller, make_task
    from diffdyn.systems import get_system

    pendulum = get_system("pendulum")
    task = make_task("stabilise", pendulum)
    found, runs = evaluate_controller(pendulum, task, LinearPolicy(3, 1, limit=5.0),
                                      key=jax.random.key(0), episodes=8)
    found.success_rate  # 0.0: no feedback, the pendulum falls
    ```
    """
    episodes = check_number("episodes", episodes, whole=True, low=1)
    loss = RolloutCost(system, task.targets, task.cost, task.dt, task.substeps, None)
    y0 = task.evaluation.sample(key, episodes)
    batch = _rollouts(loss, policy, y0)
    costs = np.asarray(_episode_costs(task.cost, batch), dtype=np.float64)
    states = np.asarray(batch.states, dtype=np.float64)
    controls = np.asarray(batch.controls, dtype=np.float64)
    finite = np.isfinite(states).all(axis=(1, 2))
    times = np.asarray(batch.times[0], dtype=np.float64)
    ok = task.success(times, states, controls, np.asarray(task.references)) & finite
    peak = float(np.nanmax(np.abs(controls))) if controls.size else 0.0
    within = task.limit is None or peak <= task.limit * (1 + 1e-6)
    found = ControlEvaluation(episodes, tuple(bool(s) for s in ok), float(np.mean(ok)),
                              float(np.mean(costs)), peak, task.limit, bool(within),
                              task.criterion())  # fmt: skip
    return found, batch


def train_controller(
    system: ControlledSystem,
    task: ControlTask,
    policy: eqx.Module | str | None = None,
    *,
    seed: int = 0,
    steps: int | None = None,
    budget: float | None = None,
    learning_rate: float | None = None,
    clip: float | None = None,
    truncation: int | None | object = _UNSET,
    cost: Callable[[Rollout], Array] | None = None,
    validate_every: int | None = None,
    episodes: int = 100,
    progress: bool | str = True,
) -> ControlResult:
    """Train `policy` on `task` by gradients through the closed-loop simulation.

    Each iteration simulates `task.defaults.batch` episodes from fresh initial states
    (`task.initial`), averages their cost and takes one step of clipped Adam (cosine decay),
    all through `diffdyn.train.loop.train`. Every `validate_every` steps the cost of a fixed
    batch of evaluation starts is measured and the best policy kept; at the end the best
    policy is evaluated on `episodes` fresh starts.

    **Arguments:**

    - `system`: a controlled system; `task`: `make_task(name, system, ...)`.
    - `policy`: a policy module (any `eqx.Module` `(observation, target) -> u`), `"linear"`,
      `"mlp"`, or `None` (the task's default), built with the task's limit.
    - `seed`: the policy's initialisation, the initial states, the evaluation starts.
    - `steps`, `budget` (seconds, compiling included): the end of the training; neither:
      the task's default budget.
    - `learning_rate`, `clip` (global-norm gradient clipping): default the task's.
    - `truncation`: cut the gradient every that many sampling steps (`None`: full
      backpropagation); default the task's.
    - `cost`: replaces the task's cost (`cost(rollout) -> scalar`, one episode).
    - `validate_every`: steps between cost-curve points (default: steps/50, or 20 for a budget
      run); `episodes`: evaluation episodes.
    - `progress`: the core's Rich bar (a string: its label).

    **Returns:** a `ControlResult`.

    **Raises** `TrainingError` (one sentence) when the rollouts diverge, naming the iteration.

    **Example:**

    ```python
    from diffdyn.control import make_task, train_controller
    from diffdyn.systems import get_system

    pendulum = get_system("pendulum")
    task = make_task("stabilise", pendulum, horizon=2.0)
    result = train_controller(pendulum, task, "linear", steps=100, progress=False)
    result.cost_curve[-1].validation_cost < result.cost_curve[0].validation_cost  # True
    ```
    """
    system = check_controlled(system)
    seed = check_number("--seed", seed, whole=True, low=0)
    defaults = task.defaults
    if steps is not None:
        steps = check_number("--steps", steps, whole=True, low=1)
    if budget is not None:
        budget = check_number("--budget", budget, above=0)
    if steps is None and budget is None:
        budget = defaults.budget
    learning_rate = defaults.learning_rate if learning_rate is None else learning_rate
    learning_rate = check_number("learning_rate", learning_rate, above=0)
    clip = check_number("clip", defaults.clip if clip is None else clip, above=0)
    if truncation is _UNSET:
        truncation = defaults.truncation
    if truncation is not None:
        truncation = check_number("--truncation", truncation, whole=True, low=1)
    key = jax.random.key(seed)
    k_policy, k_train, k_val, k_eval = jax.random.split(key, 4)
    if policy is None or isinstance(policy, str):
        kind = defaults.policy if policy is None else policy
        policy = make_policy(kind, system, task, key=k_policy)
    else:
        kind = {LinearPolicy: "linear", MLPPolicy: "mlp"}.get(type(policy), type(policy).__name__)
    task_cost = task.cost if cost is None else cost
    # Training episodes may be shorter than the task's (from starts all over the state space,
    # `TaskDefaults.train_horizon`); validation and evaluation always run the whole horizon.
    train_steps = task.steps
    if defaults.train_horizon is not None:
        train_steps = max(2, min(task.steps, int(round(defaults.train_horizon / task.dt))))
    loss = RolloutCost(system, task.targets[: train_steps + 1], task_cost, task.dt,
                       task.substeps, truncation, defaults.curriculum)  # fmt: skip
    value = RolloutCost(system, task.targets, task_cost, task.dt, task.substeps, None)
    val_y0 = task.evaluation.sample(k_val, max(task.defaults.batch, 64))
    _finite_rollout(value, policy, val_y0[: task.defaults.batch])

    def validate(p) -> float:
        return float(_mean_cost(value, p, val_y0))

    if validate_every is None:
        validate_every = max(1, steps // 50) if steps is not None else 20
    optimiser = optax.chain(optax.clip_by_global_norm(clip), optax.adam(learning_rate))
    label = progress if isinstance(progress, str) else f"{task.name} {task.system}"
    advice = (
        "the closed-loop rollouts diverged (non-finite cost or gradient); use a smaller step "
        "(--dt), gradient truncation (--truncation), or a smaller learning rate."
    )
    outcome = train(policy, loss, task.initial, optimiser, key=k_train, steps=steps,
                    budget=budget, schedule=cosine(warmup=0.02, final=0.1), validate=validate,
                    validate_every=validate_every, progress=label if progress else False,
                    divergence_advice=advice)  # fmt: skip
    batch = task.defaults.batch
    curve = tuple(CostPoint(r.step, r.step * batch, r.loss, r.val_loss, r.seconds)
                  for r in outcome.history)  # fmt: skip
    evaluation, _ = evaluate_controller(system, task, outcome.module, key=k_eval,
                                        episodes=episodes)  # fmt: skip
    settings = task.to_json() | {
        "batch": batch, "learning_rate": learning_rate, "clip": clip, "truncation": truncation,
        "max_iterations": steps, "budget": budget, "validate_every": validate_every,
    }  # fmt: skip
    best = outcome.best_val if math.isfinite(outcome.best_val) else math.nan
    return ControlResult(
        system=task.system, task=task.name, policy=outcome.module, policy_kind=kind,
        parameters=policy_parameters(outcome.module), iterations=outcome.steps,
        rollouts=outcome.steps * batch, simulated_steps=outcome.steps * batch * train_steps,
        seconds=outcome.seconds, compile_seconds=outcome.compile_seconds, cost_curve=curve,
        final_cost=best, evaluation=evaluation, settings=settings,
        stop_reason=outcome.stop_reason, seed=seed,
    )  # fmt: skip
