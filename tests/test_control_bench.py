"""The CMA-ES peer of `bench/control_cmaes.py` optimises the very cost diffdyn trains on.

`cma` is in the `bench` extra only, so these tests skip without it.
"""

import importlib.util
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("cma")

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("control_cmaes", BENCH / "control_cmaes.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["control_cmaes"] = module  # its dataclass looks its module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


@pytest.fixture(scope="module")
def problem(bench):
    return bench.make_problem("pendulum", horizon=1.0)


def test_objective_is_the_library_loss(bench, problem):
    """CMA-ES's population objective on flat vectors equals `RolloutCost` on the policies
    they unravel to, and the mean of the task's cost over the library's rollouts."""
    from diffdyn.control import rollout

    task = problem.task

    @eqx.filter_jit
    def by_hand(policy, y0):
        runs = jax.vmap(
            lambda y: rollout(
                problem.system, policy, y, task.targets, dt=task.dt, substeps=task.substeps
            )
        )(y0)
        return jnp.mean(jax.vmap(task.cost)(runs))

    library = eqx.filter_jit(lambda policy, y0: problem.loss(policy, y0))
    rng = np.random.default_rng(0)
    thetas = problem.flat + 0.1 * rng.standard_normal((2, problem.flat.size))
    thetas[0] = problem.flat
    ours = bench.population_costs(problem, thetas, problem.train_y0)
    for theta, value in zip(thetas, ours, strict=True):
        policy = bench.policy_of(problem, theta)
        assert value == pytest.approx(float(library(policy, problem.train_y0)), rel=1e-5, abs=1e-6)
        assert value == pytest.approx(float(by_hand(policy, problem.train_y0)), rel=1e-5, abs=1e-6)
    assert np.array_equal(
        bench.policy_of(problem, problem.flat).mlp.layers[0].weight,
        problem.policy.mlp.layers[0].weight,
    )


def test_judging_batch_is_train_controllers_validation_batch(bench, problem):
    """The best validation cost `train_controller` reports is what the bench's judge gives its
    policy: both sides are judged on the same starts."""
    from diffdyn.control import train_controller

    result = train_controller(
        problem.system,
        problem.task,
        problem.policy,
        seed=bench.SEED,
        steps=2,
        validate_every=1,
        episodes=1,
        progress=False,
    )
    flat, _ = jax.flatten_util.ravel_pytree(eqx.filter(result.policy, eqx.is_inexact_array))
    assert bench.judged_cost(problem, np.asarray(flat)) == pytest.approx(
        result.final_cost, rel=1e-5
    )


def test_cmaes_counts_rollouts(bench, problem):
    run = bench.run_cmaes(problem, sigma0=0.1, budget=2.0, diagonal=True)
    assert run["generations"] >= 1
    assert run["rollouts"] == run["evaluations"] * problem.train_y0.shape[0]
    assert np.isfinite(run["best_judged"])
    assert run["curve"][-1]["judged"] == pytest.approx(
        bench.judged_cost(problem, run["best_theta"])
    )
