"""Gradients of simulated trajectories against central finite differences, in float64.

Each loss is a smooth function of a short trajectory (short so that finite differences are well
conditioned on chaotic systems) and of both the system's parameters and its initial state.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffdyn.systems import (
    Henon,
    KuramotoSivashinsky,
    Lorenz63,
    MackeyGlass,
    simulate,
)
from user_systems import Brusselator, Tent


def assert_gradient_matches_finite_differences(loss, x, eps, rtol=1e-5):
    """`jax.grad(loss)(x)` against central differences with step `eps` in each coordinate."""
    x = jnp.asarray(x, dtype=jnp.float64)
    assert x.dtype == jnp.float64
    loss = jax.jit(loss)
    grad = np.asarray(jax.jit(jax.grad(loss))(x))
    fd = np.zeros(x.shape)
    for i in range(x.size):
        e = np.zeros(x.shape)
        e.flat[i] = eps
        fd.flat[i] = (float(loss(x + e)) - float(loss(x - e))) / (2 * eps)
    assert np.all(np.abs(fd) > 0), fd  # every coordinate matters, so each one is checked
    np.testing.assert_allclose(grad, fd, rtol=rtol, atol=rtol * np.abs(fd).max())


def with_parameters(system, names, values):
    return eqx.tree_at(lambda s: [getattr(s, n) for n in names], system, list(values))


def test_lorenz63_gradient_in_parameters_and_initial_state(x64):
    def loss(theta):
        system = with_parameters(Lorenz63(), ["sigma", "rho", "beta"], theta[:3])
        series = simulate(
            system, y0=theta[3:], t1=0.5, dt=0.05, transient=0, rtol=1e-12, atol=1e-12
        )
        return jnp.mean(series.values**2)

    assert_gradient_matches_finite_differences(loss, [10.0, 28.0, 8 / 3, 1.0, 1.0, 1.0], 1e-5)


def test_henon_gradient_in_parameters_and_initial_state(x64):
    def loss(theta):
        system = with_parameters(Henon(), ["a", "b"], theta[:2])
        return jnp.mean(simulate(system, y0=theta[2:], steps=10, transient=0).values ** 2)

    assert_gradient_matches_finite_differences(loss, [1.4, 0.3, 0.1, 0.1], 1e-6)


def test_mackey_glass_gradient_in_beta_and_gamma(x64):
    def loss(theta):
        system = with_parameters(MackeyGlass(), ["beta", "gamma"], theta)
        return jnp.mean(simulate(system, steps=30, transient=0).values ** 2)

    assert_gradient_matches_finite_differences(loss, [0.2, 0.1], 1e-6)


@pytest.mark.slow  # make test-slow: autodiff through the PDE stepper, no custom rule (11 s)
def test_kuramoto_sivashinsky_gradient_in_length_and_initial_state(x64):
    ks = KuramotoSivashinsky(n=16)
    weights = jnp.sin(jnp.arange(16.0))

    def loss(theta):
        system = with_parameters(ks, ["length"], theta[:1])
        values = simulate(system, y0=theta[1:], steps=8, transient=0).values
        return jnp.mean(weights[None, :] * values + values**2)

    theta = jnp.concatenate([jnp.asarray([22.0]), ks.initial_state()])
    assert_gradient_matches_finite_differences(loss, theta, 1e-5)


# -- a user's own systems are differentiable too ---------------------------------------------
@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_user_flow_gradient_in_its_parameters(x64):
    def loss(theta):
        system = with_parameters(Brusselator(), ["a", "b"], theta)
        series = simulate(system, t1=2.0, transient=0, rtol=1e-12, atol=1e-12)
        return jnp.mean(series.values[:, 0])

    assert_gradient_matches_finite_differences(loss, [1.0, 3.0], 1e-5)


def test_user_map_gradient_in_its_parameters(x64):
    def loss(theta):
        system = with_parameters(Tent(), ["mu"], theta)
        return jnp.mean(simulate(system, steps=6, transient=0).values)

    assert_gradient_matches_finite_differences(loss, [1.9], 1e-7)
