"""diffdyn.control: controlled systems, policies, the closed-loop rollout, its gradient,
training through the core, tasks and checkpoints."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_gradient_matches_fd, to_float64
from diffdyn.control import (
    Cost,
    HoldAngle,
    LinearPolicy,
    MLPPolicy,
    NearTarget,
    RolloutCost,
    evaluate_controller,
    make_task,
    policy_recipe,
    rollout,
    saturate,
    train_controller,
)
from diffdyn.errors import DiffdynError, UnknownNameError
from diffdyn.systems import (
    AbstractControlledMap,
    Lorenz63,
    get_system,
    is_controlled,
    param,
    simulate,
)
from diffdyn.train import TrainingError, load_module, save_module
from user_systems import Blowup

CONTROLLED = ["pendulum", "cartpole", "lorenz63-control"]


class ControlledLogistic(AbstractControlledMap):
    """x_{n+1} = r x_n (1 − x_n) + u_n: a map controlled through its exog."""

    name = "controlled-logistic"
    y0 = (0.3,)
    variable_names = ("x",)
    control_target = (0.6,)
    r: jax.Array = param(3.2)

    def controlled_step(self, state, u):
        return self.r * state * (1 - state) + u


# -- controlled systems ------------------------------------------------------------------------
@pytest.mark.parametrize("name", CONTROLLED)
def test_controlled_field_at_zero_control_is_the_free_field(name, getkey):
    system = get_system(name)
    assert is_controlled(system) and len(system.control_names) == 1
    y = jax.random.normal(getkey(), (system.dim,))
    free = system.vector_field(0.3, y)
    np.testing.assert_allclose(system.controlled_field(0.3, y, jnp.zeros(1)), free, rtol=1e-6)
    pushed = system.controlled_field(0.3, y, jnp.ones(1))
    assert not np.allclose(pushed, free)  # the input reaches the dynamics


def test_lorenz63_control_is_lorenz63_without_input(getkey):
    y = 10 * jax.random.normal(getkey(), (3,))
    np.testing.assert_allclose(
        get_system("lorenz63-control").vector_field(0.0, y), Lorenz63().vector_field(0.0, y)
    )
    c_plus = get_system("lorenz63-control").fixed_point(1)
    np.testing.assert_allclose(Lorenz63().vector_field(0.0, c_plus), 0.0, atol=1e-4)


def test_a_map_is_controlled_through_its_exog():
    system = ControlledLogistic()
    x = jnp.asarray([0.3])
    np.testing.assert_allclose(system.step(x, None), system.controlled_step(x, jnp.zeros(1)))
    np.testing.assert_allclose(system.step(x, jnp.asarray([0.1])), 3.2 * 0.3 * 0.7 + 0.1,
                               rtol=1e-6)  # fmt: skip
    assert simulate(system, steps=5).values.shape == (5, 1)


def test_uncontrolled_systems_are_not_controlled():
    assert not is_controlled(Lorenz63())
    with pytest.raises(DiffdynError, match="has no control input"):
        make_task("stabilise", Lorenz63())


# -- policies ----------------------------------------------------------------------------------
def test_smooth_saturation_bounds_and_tends_to_the_hard_clip():
    raw = jnp.linspace(-50.0, 50.0, 101)
    for limit in (0.5, 2.0, 10.0):
        u = saturate(raw, limit)
        assert float(jnp.max(jnp.abs(u))) <= limit
    np.testing.assert_allclose(saturate(jnp.asarray([1e-3]), 5.0), 1e-3, rtol=1e-6)
    # Relative to the limit, the gap to clip(raw, −U, U) vanishes as U/|raw| → 0.
    big = jnp.asarray([-3.0, 2.0, 4.0])
    gaps = [float(jnp.max(jnp.abs(saturate(big, U) - jnp.clip(big, -U, U)))) / U
            for U in (1.0, 0.3, 0.1, 0.03)]  # fmt: skip
    assert gaps[0] > 1e-2 and all(a >= b for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-6
    assert saturate(big, None) is big


def test_feedforward_acts_on_the_target_alone():
    policy = LinearPolicy(2, 1, feedforward=True)
    policy = eqx.tree_at(lambda p: (p.gain, p.forward), policy,
                         (jnp.asarray([[1.0, 2.0]]), jnp.asarray([[3.0, -1.0]])))  # fmt: skip
    obs, target = jnp.asarray([0.5, 0.25]), jnp.asarray([0.2, 0.1])
    expected = 1.0 * 0.3 + 2.0 * 0.15 + 3.0 * 0.2 - 0.1
    assert float(policy(obs, target)[0]) == pytest.approx(expected)
    assert LinearPolicy(2, 1).forward is None  # plain feedback by default


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_policies_respect_the_limit(kind, getkey):
    if kind == "linear":
        policy = LinearPolicy(3, 1, limit=2.0)
        policy = eqx.tree_at(lambda p: p.gain, policy, 100 * jnp.ones((1, 3)))
    else:
        policy = MLPPolicy(3, 1, hidden=8, limit=2.0, output_scale=100.0, key=getkey())
    for _ in range(5):
        u = policy(10 * jax.random.normal(getkey(), (3,)), jnp.zeros(3))
        assert u.shape == (1,) and float(jnp.abs(u[0])) <= 2.0


# -- the rollout -------------------------------------------------------------------------------
def test_rollout_without_control_matches_simulate():
    pendulum = get_system("pendulum")
    y0 = jnp.asarray([1.0, 0.5])
    steps = 40
    targets = jnp.zeros((steps + 1, 3))
    out = rollout(pendulum, LinearPolicy(3, 1), y0, targets, dt=0.05, substeps=2)
    reference = simulate(pendulum, y0=y0, dt=0.05, steps=steps + 1, transient=0.0, rtol=1e-8,
                         atol=1e-10)  # fmt: skip
    np.testing.assert_allclose(out.states, reference.values, atol=2e-4)
    np.testing.assert_allclose(out.times, reference.times, atol=1e-5)
    assert out.controls.shape == (steps, 1) and not np.any(np.asarray(out.controls))
    # The map: one iteration per step, u passed as exog.
    system = ControlledLogistic()
    out = rollout(system, LinearPolicy(1, 1), jnp.asarray([0.3]), jnp.zeros((11, 1)), dt=1.0)
    np.testing.assert_allclose(out.states, simulate(system, steps=11).values, rtol=1e-6)


def test_truncation_keeps_the_value_and_cuts_the_gradient():
    pendulum = get_system("pendulum")
    task = make_task("stabilise", pendulum, horizon=2.0)
    policy = eqx.tree_at(lambda p: p.gain, LinearPolicy(3, 1, limit=5.0),
                         jnp.asarray([[0.0, 8.0, -2.0]]))  # fmt: skip
    y0 = task.initial.sample(jax.random.key(0), 4)
    full = RolloutCost(pendulum, task.targets, task.cost, task.dt, task.substeps, None)
    cut = RolloutCost(pendulum, task.targets, task.cost, task.dt, task.substeps, 5)
    np.testing.assert_allclose(full(policy, y0), cut(policy, y0), rtol=1e-6)
    g_full, g_cut = (eqx.filter_grad(f)(policy, y0).gain for f in (full, cut))
    assert np.all(np.isfinite(g_cut)) and not np.allclose(g_full, g_cut, rtol=1e-3)


@pytest.mark.parametrize("kind", ["linear", "feedforward", "mlp"])
def test_rollout_cost_gradient_matches_finite_differences(kind, x64):
    pendulum = to_float64(get_system("pendulum"))
    task = make_task("stabilise", pendulum, horizon=1.0)
    if kind == "linear":
        policy = eqx.tree_at(lambda p: p.gain, LinearPolicy(3, 1, limit=5.0),
                             jnp.asarray([[0.5, 6.0, -1.5]]))  # fmt: skip
    elif kind == "feedforward":
        values = (jnp.asarray([[0.5, 6.0, -1.5]]), jnp.asarray([[0.2, -0.3, 0.1]]))
        policy = LinearPolicy(3, 1, limit=5.0, feedforward=True)
        policy = eqx.tree_at(lambda p: (p.gain, p.forward), policy, values)
    else:
        policy = MLPPolicy(3, 1, hidden=8, depth=1, limit=5.0, input_scale=(1.0, 1.0, 8.0),
                           key=jax.random.key(1))  # fmt: skip
    policy = to_float64(policy)
    cost = to_float64(task.cost)
    loss = RolloutCost(pendulum, to_float64(task.targets), cost, task.dt, task.substeps, None)
    y0 = to_float64(task.initial.sample(jax.random.key(2), 3))
    params, static = eqx.partition(policy, eqx.is_inexact_array)

    def objective(p):
        return loss(eqx.combine(p, static), y0)

    assert_gradient_matches_fd(objective, params, np.random.default_rng(0), n=6, eps=1e-6,
                               rtol=1e-4, atol=1e-8)  # fmt: skip


# -- costs and success -------------------------------------------------------------------------
def test_cost_is_zero_on_target_and_counts_effort_and_terminal_error():
    cost = Cost(state=[1.0, 1.0], effort=0.5, effort_scale=2.0, terminal=[3.0, 0.0])
    from diffdyn.control import Rollout

    on = Rollout(jnp.arange(3.0), jnp.zeros((3, 2)), jnp.ones((3, 2)), jnp.ones((3, 2)),
                 jnp.zeros((2, 1)))  # fmt: skip
    assert float(cost(on)) == 0.0
    off = Rollout(on.times, on.states, jnp.zeros((3, 2)), on.targets, 2 * jnp.ones((2, 1)))
    # running: mean of 2 per step; effort: 0.5·(2/2)²; terminal: 3·1²
    np.testing.assert_allclose(float(cost(off)), 2 + 0.5 + 3, rtol=1e-6)


def test_success_criteria():
    times = np.linspace(0, 4, 41)
    states = np.zeros((2, 41, 2))
    states[0, :, 0] = np.pi + 0.1  # within 12° of upright throughout
    states[1, :, 0] = np.pi
    states[1, -5, 0] = np.pi + 0.5  # leaves it in the last 2 s
    np.testing.assert_array_equal(HoldAngle(0, np.pi)(times, states, None, None), [True, False])
    # 2π away is the same angle
    states[0, :, 0] += 2 * np.pi
    assert HoldAngle(0, np.pi)(times, states, None, None)[0]
    references = np.zeros((41, 2))
    near = NearTarget(0.2, 1.0)(times, np.full((1, 41, 2), 0.1), None, references)
    assert near.tolist() == [True]


# -- tasks -------------------------------------------------------------------------------------
def test_tasks_know_their_systems_and_check_numbers():
    cartpole = get_system("cartpole")
    task = make_task("swing-up", cartpole)
    assert task.limit == 10.0 and task.evaluation.centre[2] == pytest.approx(np.pi)
    assert task.steps == round(task.horizon / task.dt)
    assert make_task("stabilize", cartpole).name == "stabilise"
    with pytest.raises(DiffdynError, match="does not support lorenz63-control"):
        make_task("swing-up", get_system("lorenz63-control"))
    with pytest.raises(DiffdynError, match="does not support lorenz63-control"):
        make_task("track", get_system("lorenz63-control"))
    track = make_task("track", cartpole)  # the cart follows a sine, the pole upright
    assert np.allclose(track.references[:, 2:], 0.0) and float(track.references[:, 0].max()) > 0.4
    assert track.defaults.feedforward and track.defaults.policy == "linear"
    with pytest.raises(UnknownNameError, match="unknown task"):
        make_task("juggle", cartpole)
    for bad in (0.0, -1.0):
        with pytest.raises(DiffdynError, match="--horizon"):
            make_task("swing-up", cartpole, horizon=bad)
        with pytest.raises(DiffdynError, match="--limit"):
            make_task("swing-up", cartpole, limit=bad)
    # A user's system with a control target gets the generic stabilise task.
    generic = make_task("stabilise", ControlledLogistic())
    assert generic.dt == 1.0 and generic.steps == 200


def test_lorenz_stabilise_starts_on_the_attractor():
    system = get_system("lorenz63-control")
    task = make_task("stabilise", system)
    starts = np.asarray(task.evaluation.sample(jax.random.key(0), 100))
    assert starts.shape == (100, 3) and np.all(np.isfinite(starts))
    # On the attractor: |x| up to about 20, z between roughly 5 and 45, never the target.
    assert 5 < np.abs(starts[:, 0]).max() < 25 and 0 < starts[:, 2].min()
    np.testing.assert_allclose(task.references[0], system.fixed_point(1), rtol=1e-6)


# -- training through the core -----------------------------------------------------------------
def test_training_lowers_the_cost_of_pendulum_stabilise():
    pendulum = get_system("pendulum")
    task = make_task("stabilise", pendulum, horizon=2.0)
    result = train_controller(pendulum, task, "linear", steps=150, progress=False, episodes=32)
    curve = result.cost_curve
    assert curve[0].iteration < curve[-1].iteration == result.iterations == 150
    assert result.final_cost < 0.3 * curve[0].validation_cost
    assert result.rollouts == 150 * task.defaults.batch
    assert result.simulated_steps == result.rollouts * task.steps
    assert result.evaluation.episodes == 32 and result.evaluation.within_limit
    assert result.evaluation.max_abs_control <= 5.0
    stored = result.to_json()
    assert stored["iterations"] == 150 and stored["evaluation"]["limit"] == 5.0
    assert len(stored["cost_curve"]) == len(curve)


@pytest.mark.slow  # about 30 s
def test_the_cart_follows_a_sine_with_the_pole_upright():
    cartpole = get_system("cartpole")
    task = make_task("track", cartpole)
    result = train_controller(cartpole, task, steps=800, progress=False, episodes=32)
    assert result.policy.forward is not None  # the task's linear policy with feedforward
    assert result.evaluation.success_rate >= 0.9, result.evaluation.success_rate


def test_evaluation_of_an_uncontrolled_pendulum_fails():
    pendulum = get_system("pendulum")
    task = make_task("stabilise", pendulum)
    found, runs = evaluate_controller(pendulum, task, LinearPolicy(3, 1, limit=5.0),
                                      key=jax.random.key(0), episodes=8)  # fmt: skip
    assert found.success_rate == 0.0 and found.max_abs_control == 0.0
    assert runs.states.shape == (8, task.steps + 1, 2)


def test_a_rollout_that_blows_up_is_named_with_its_iteration(tmp_path):
    system = Blowup()
    task = make_task("stabilise", system)
    with pytest.raises(TrainingError, match="diverged at iteration 0"):
        train_controller(system, task, steps=3, progress=False)


@pytest.mark.parametrize("kind", ["linear", "feedforward", "mlp"])
def test_policy_checkpoint_reloads_to_the_same_policy(kind, tmp_path, getkey):
    if kind == "linear":
        policy = eqx.tree_at(lambda p: p.gain, LinearPolicy(5, 1, limit=10.0),
                             jax.random.normal(getkey(), (1, 5)))  # fmt: skip
    elif kind == "feedforward":
        policy = LinearPolicy(5, 1, limit=10.0, feedforward=True)
        policy = eqx.tree_at(lambda p: (p.gain, p.forward), policy,
                             (jax.random.normal(getkey(), (1, 5)),
                              jax.random.normal(getkey(), (1, 5))))  # fmt: skip
    else:
        policy = MLPPolicy(5, 1, hidden=16, limit=10.0, input_scale=(2.0, 3.0, 1.0, 1.0, 10.0),
                           key=getkey())  # fmt: skip
    save_module(tmp_path / "policy.eqx", policy, policy_recipe(policy))
    again = load_module(tmp_path / "policy.eqx")
    assert type(again) is type(policy)
    obs, target = jax.random.normal(getkey(), (5,)), jax.random.normal(getkey(), (5,))
    np.testing.assert_array_equal(again(obs, target), policy(obs, target))
