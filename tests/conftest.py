import os

# As the `diffdyn` command does (`diffdyn.entry.BLAS_THREADS`), before SciPy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from diffdyn.compilation import enable_compilation_cache
from diffdyn.resources import pin_process, worker_cpus

# Strict checks, as in Equinox/Diffrax's test suites: implicit rank promotion is a bug.
jax.config.update("jax_numpy_rank_promotion", "raise")
# The test processes share compiled programs through the cache the CLI uses (the same
# models, shapes and solvers are compiled by many tests): DIFFDYN_CACHE_DIR=off to test
# without it.
enable_compilation_cache()
# Each test process (pytest-xdist's gw0, gw1, ...) on its own share of the CPUs, as compare's
# workers are (`worker_cpus`): XLA's threads of two processes on every core contend.
ALL_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and ALL_CPUS:
    _COUNT = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    pin_process(worker_cpus(int(_WORKER[2:]), _COUNT, ALL_CPUS))


@pytest.fixture
def all_cpus():
    """Run a test on every CPU the suite started with (what the processes it starts see),
    restoring this test process's share afterwards."""
    mine = os.sched_getaffinity(0)
    pin_process(set(ALL_CPUS))
    try:
        yield ALL_CPUS
    finally:
        pin_process(mine)


@pytest.fixture
def getkey():
    """A function returning a fresh, deterministic PRNG key at each call."""
    counter = iter(range(10**9))

    def _getkey():
        return jax.random.key(next(counter))

    return _getkey


@pytest.fixture
def x64():
    """Run a test in float64 (gradient checks), restoring float32 afterwards."""
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", False)


def tree_allclose(a, b, rtol=1e-5, atol=1e-8):
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    if tree_a != tree_b:
        return False
    return all(
        np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)
        for x, y in zip(leaves_a, leaves_b)
    )


__all__ = ["tree_allclose", "jnp"]


def to_float64(tree):
    """Every floating array of a pytree (a model, inputs) cast to float64 (use under `x64`)."""
    import equinox as eqx

    return jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, tree
    )


def assert_gradient_matches_fd(loss, params, rng, n=6, eps=1e-6, rtol=1e-5, atol=1e-8):
    """Reverse-mode gradient of `loss(params)` against central finite differences on `n`
    randomly chosen parameter entries (float64)."""
    loss = jax.jit(loss)
    flat, unravel = ravel_pytree(params)
    grad, _ = ravel_pytree(jax.grad(loss)(params))
    for i in rng.choice(flat.size, size=min(n, flat.size), replace=False):
        step = jnp.zeros_like(flat).at[i].set(eps)
        fd = (loss(unravel(flat + step)) - loss(unravel(flat - step))) / (2 * eps)
        np.testing.assert_allclose(grad[i], fd, rtol=rtol, atol=atol)
