"""The DNC (controller + memory access) on whole sequences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_gradient_matches_fd, to_float64
from diffdyn.errors import UnknownNameError
from diffdyn.nn.dnc import DNC


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
def test_dnc_runs_a_sequence_and_is_causal(controller, getkey):
    dnc = DNC(5, 3, key=getkey(), hidden=8, memory_size=6, word_size=4, read_heads=2,
              controller=controller)  # fmt: skip
    x = jax.random.normal(getkey(), (9, 5))
    run = eqx.filter_jit(lambda d, x: d(x))
    out = run(dnc, x)
    assert out.shape == (9, 3) and np.all(np.isfinite(out))
    later = run(dnc, x.at[6].add(1.0))
    np.testing.assert_allclose(later[:6], out[:6], rtol=1e-6)
    assert not np.allclose(later[6:], out[6:])
    # The memory carries information: an input at step 0 still changes the last output.
    assert not np.allclose(run(dnc, x.at[0].add(1.0))[-1], out[-1])


def test_unknown_controller_is_refused(getkey):
    with pytest.raises(UnknownNameError, match="feedforward"):
        DNC(2, 2, key=getkey(), controller="gru")


def test_dnc_gradient_matches_finite_differences(x64, getkey):
    dnc = DNC(3, 2, key=getkey(), hidden=5, memory_size=4, word_size=3, read_heads=2)
    dnc = to_float64(dnc)
    x = jax.random.normal(getkey(), (6, 3), jnp.float64)
    params, static = eqx.partition((dnc, x), eqx.is_inexact_array)

    def loss(p):
        model, inputs = eqx.combine(p, static)
        return jnp.sum(jnp.sin(model(inputs)))

    assert_gradient_matches_fd(loss, params, np.random.default_rng(0), n=12)
