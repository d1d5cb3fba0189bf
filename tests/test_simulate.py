"""`simulate`: time grids, transients, noise, observation, metadata, batching and failures.

Flows compile once per combination of static settings (steps, dt, t0, transient), so most flow
tests here share one call shape, `simulate(system, steps=200, transient=0)`.
"""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Float

from diffdyn.errors import DiffdynError, SimulationError, UnknownNameError
from diffdyn.systems import (
    AbstractFlow,
    Duffing,
    Henon,
    Logistic,
    Lorenz63,
    MackeyGlass,
    Narma10,
    VanDerPol,
    get_system,
    param,
    simulate,
)


def short(system, **kwargs):
    return simulate(system, steps=200, transient=0, **kwargs)


# -- the time grid ---------------------------------------------------------------------------
def test_flow_transient_is_discarded_and_times_start_after_it():
    lorenz = Lorenz63()
    series = simulate(lorenz, steps=200, transient=20.0)  # the catalogue test's call
    times = np.asarray(series.times)
    assert times[0] == pytest.approx(20.0) and times[-1] == pytest.approx(21.99, abs=1e-5)
    assert series.metadata["transient"] == 20.0
    longer = simulate(lorenz, steps=2200, transient=0)
    np.testing.assert_allclose(longer.times[2000:], times, atol=1e-5)
    # The same solver steps, sampled at float32 times that differ by rounding only.
    np.testing.assert_allclose(longer.values[2000:], series.values, rtol=0, atol=2e-3)


def test_map_transient_is_exactly_the_head_of_a_longer_run():
    henon = Henon()
    series = simulate(henon, steps=50, transient=100)
    longer = simulate(henon, steps=150, transient=0)
    assert np.asarray(series.times)[0] == 100.0
    np.testing.assert_array_equal(np.diff(np.asarray(series.times)), 1.0)
    np.testing.assert_array_equal(longer.values[100:], series.values)
    np.testing.assert_array_equal(longer.times[100:], series.times)
    shifted = simulate(henon, steps=50, transient=100, t0=7.0)
    assert np.asarray(shifted.times)[0] == 107.0 and shifted.metadata["t0"] == 7.0
    np.testing.assert_array_equal(shifted.values, series.values)


def test_t1_gives_the_number_of_steps_that_covers_it():
    henon = Henon()
    by_t1 = simulate(henon, t1=49, transient=100)
    by_steps = simulate(henon, steps=50, transient=100)
    assert len(by_t1) == 50
    np.testing.assert_array_equal(by_t1.values, by_steps.values)
    lorenz = Lorenz63()
    by_t1 = simulate(lorenz, t1=1.99, transient=0)  # 1.99 / 0.01 is 198.99999999999997
    assert len(by_t1) == 200
    assert float(by_t1.times[-1]) == pytest.approx(1.99)
    np.testing.assert_array_equal(by_t1.values, short(lorenz).values)


# -- observation -----------------------------------------------------------------------------
def test_observe_picks_columns_in_the_order_given():
    lorenz = Lorenz63()
    full = short(lorenz)
    picked = short(lorenz, observe=["z", "x"])
    assert picked.variables == ("z", "x")
    np.testing.assert_array_equal(picked.values, np.asarray(full.values)[:, [2, 0]])


def test_noise_is_seeded_and_of_the_requested_size():
    henon = Henon()
    key = jax.random.key(0)
    clean = np.asarray(simulate(henon, steps=4000).values)
    noisy = np.asarray(simulate(henon, steps=4000, noise=0.1, key=key).values)
    again = np.asarray(simulate(henon, steps=4000, noise=0.1, key=key).values)
    other = np.asarray(simulate(henon, steps=4000, noise=0.1, key=jax.random.key(1)).values)
    np.testing.assert_array_equal(noisy, again)
    assert np.abs(noisy - other).min() > 0
    error = noisy - clean
    ratio = error.std(axis=0) / clean.std(axis=0)
    np.testing.assert_allclose(ratio, 0.1, rtol=0.05)  # 4000 samples: ±1.6 % per std
    assert np.abs(error.mean(axis=0)).max() < 0.1 * clean.std(axis=0).min() * 0.1
    assert abs(np.corrcoef(error[:, 0], error[:, 1])[0, 1]) < 0.1  # independent per variable
    with pytest.raises(DiffdynError, match="key"):
        simulate(henon, steps=10, noise=0.1)


# -- metadata --------------------------------------------------------------------------------
def test_metadata_names_the_system_and_its_parameters():
    series = short(Lorenz63())
    meta = series.metadata
    assert meta["system"] == "lorenz63" and meta["kind"] == "flow" and meta["source"]
    assert meta["parameters"] == pytest.approx({"sigma": 10.0, "rho": 28.0, "beta": 8 / 3})
    assert meta["y0"] == [1.0, 1.0, 1.0] and meta["dt"] == 0.01
    assert meta["lyapunov_exponent"] == pytest.approx(0.9056)
    assert series.lyapunov_time == pytest.approx(1 / 0.9056)

    changed = short(get_system("lorenz63", rho=35)).metadata
    assert changed["parameters"]["rho"] == 35.0
    assert "lyapunov_exponent" not in changed and "lyapunov_time" not in changed


def test_metadata_records_structural_settings():
    meta = simulate(MackeyGlass(tau=30.0), steps=50, transient=0).metadata
    assert meta["parameters"]["tau"] == 30.0 and meta["parameters"]["n"] == 10.0
    assert "lyapunov_exponent" not in meta  # τ = 30 is not the setting λ₁ was computed for


# -- driving inputs --------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [Duffing, VanDerPol])
def test_forced_flows_record_their_forcing(cls):
    system = cls()
    series = simulate(system, steps=200)  # the catalogue test's call: compiled once
    assert series.exog_variables == ("forcing",)
    assert series.exog.shape == (200, 1)
    times = np.asarray(series.times, dtype=np.float64)
    amplitude = float(system.gamma if cls is Duffing else system.amplitude)
    expected = amplitude * np.cos(float(system.omega) * times)
    np.testing.assert_allclose(series.exog[:, 0], expected, atol=1e-4)


def test_autonomous_flows_have_no_exog():
    series = short(Lorenz63())
    assert series.exog is None and series.exog_variables == ()


def test_narma_records_its_random_input_and_needs_a_key():
    narma = Narma10()
    with pytest.raises(DiffdynError) as info:
        simulate(narma, steps=200)
    assert "key" in str(info.value) and "narma10" in str(info.value)
    series = simulate(narma, steps=200, key=jax.random.key(0))
    assert series.exog_variables == ("u",) and series.exog.shape == (200, 1)
    u = np.asarray(series.exog)
    assert u.min() >= 0.0 and u.max() <= 0.5 and u.max() > 0.45 and u.min() < 0.05
    again = simulate(narma, steps=200, key=jax.random.key(0))
    other = simulate(narma, steps=200, key=jax.random.key(1))
    np.testing.assert_array_equal(again.exog, series.exog)
    np.testing.assert_array_equal(again.values, series.values)
    assert not np.allclose(other.values, series.values)
    smaller = simulate(get_system("narma10", input_max=0.2), steps=200, key=jax.random.key(0))
    np.testing.assert_allclose(smaller.exog, 0.4 * u, rtol=1e-6)


# -- batching --------------------------------------------------------------------------------
def test_vmap_over_initial_states_matches_a_loop():
    lorenz = Lorenz63()
    y0s = jnp.asarray([[1.0, 1.0, 1.0], [-3.0, 2.0, 20.0], [5.0, 5.0, 30.0]])
    batched = jax.vmap(lambda y0: short(lorenz, y0=y0).values)(y0s)
    assert batched.shape == (3, 200, 3)
    for i in range(3):
        np.testing.assert_allclose(batched[i], short(lorenz, y0=y0s[i]).values, atol=1e-3)
    assert not np.allclose(batched[0], batched[1])


def test_vmap_over_parameters_matches_a_loop():
    rhos = jnp.asarray([20.0, 28.0, 35.0])
    systems = jax.vmap(lambda rho: Lorenz63(rho=rho))(rhos)
    batched = jax.vmap(lambda system: short(system).values)(systems)
    for i, rho in enumerate([20.0, 28.0, 35.0]):
        np.testing.assert_allclose(batched[i], short(Lorenz63(rho=rho)).values, atol=1e-3)

    aa = jnp.asarray([1.2, 1.3, 1.4])
    henons = jax.vmap(lambda a: eqx.tree_at(lambda h: h.a, Henon(), a))(aa)
    batched = jax.vmap(lambda h: simulate(h, steps=50, transient=0).values)(henons)
    for i in range(3):
        single = simulate(Henon(a=float(aa[i])), steps=50, transient=0).values
        np.testing.assert_allclose(batched[i], single, rtol=1e-4, atol=1e-5)


def test_vmap_over_keys_matches_a_loop():
    keys = jax.random.split(jax.random.key(3), 3)
    batched = jax.vmap(lambda k: simulate(Narma10(), steps=200, key=k))(keys)
    assert batched.values.shape == (3, 200, 1) and batched.exog.shape == (3, 200, 1)
    for i in range(3):
        single = simulate(Narma10(), steps=200, key=keys[i])
        np.testing.assert_allclose(batched.values[i], single.values, rtol=1e-6)
        np.testing.assert_array_equal(batched.exog[i], single.exog)


# -- blow-up ---------------------------------------------------------------------------------
class Riccati(AbstractFlow):
    """dy/dt = y², y(0) = 1: y = 1/(1 − t) blows up at t = 1."""

    y0 = (1.0,)
    dt = 0.1

    def vector_field(self, t, state):
        return state**2


def _time_named(message: str) -> float:
    match = re.search(r"t = ([-+0-9.e]+)", message)
    assert match, message
    return float(match.group(1))


@pytest.mark.parametrize("transient", [0.0, 2.0])
def test_flow_blow_up_raises_and_names_the_time(transient):
    with pytest.raises(SimulationError) as info:
        simulate(Riccati(), t1=2.0, transient=transient)
    message = str(info.value)
    assert "Riccati" in message and "\n" not in message
    assert 0.95 <= _time_named(message) <= 1.05, message


def test_logistic_blow_up_raises_at_the_step_it_overflows():
    x = np.float32(0.9)
    overflow = None
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(100):
            if not np.isfinite(x):
                overflow = step
                break
            x = np.float32(4.5) * x * (np.float32(1) - x)
    assert overflow is not None
    with pytest.raises(SimulationError) as info:
        simulate(Logistic(r=4.5), y0=[0.9], steps=100, transient=0)
    assert "logistic" in str(info.value)
    assert abs(_time_named(str(info.value)) - overflow) <= 1


def test_absurd_lorenz_raises_instead_of_returning_nan():
    with pytest.raises(SimulationError, match="lorenz63"):
        short(Lorenz63(), y0=jnp.asarray([1e20, -1e20, 1e20]))


def test_blow_up_is_caught_under_jit_and_vmap():
    def run(y0):
        return simulate(Logistic(r=4.5), y0=y0, steps=100, transient=0).values

    # eqx.error_if raises EquinoxRuntimeError under eqx.filter_jit, and under plain jax.jit
    # a JaxRuntimeError carrying the same message; both are RuntimeErrors.
    for transform in (jax.jit, eqx.filter_jit):
        with pytest.raises(RuntimeError, match="blew up"):
            jax.block_until_ready(transform(run)(jnp.asarray([0.9])))
    with pytest.raises(RuntimeError, match="blew up"):
        jax.block_until_ready(jax.vmap(run)(jnp.asarray([[0.5], [0.9]])))
    # a trajectory that stays finite passes through the same traced check
    ok = jax.jit(lambda y0: simulate(Logistic(), y0=y0, steps=100, transient=0).values)
    assert np.isfinite(np.asarray(ok(jnp.asarray([0.3])))).all()


def test_check_finite_can_be_turned_off():
    values = simulate(Logistic(r=4.5), y0=[0.9], steps=100, transient=0, check_finite=False)
    assert not np.isfinite(np.asarray(values.values)).all()


# -- bad input -------------------------------------------------------------------------------
class Scaled(AbstractFlow):
    y0 = (1.0, 2.0)
    k: Float[Array, ""] = param(1.0)

    def vector_field(self, t, state):
        return -self.k * state


@pytest.mark.parametrize(
    "system, kwargs, error, words",
    [
        (Lorenz63(), dict(dt=0.0), DiffdynError, ["dt", "positive", "0.0"]),
        (Lorenz63(), dict(dt=-0.1), DiffdynError, ["dt", "positive"]),
        (Lorenz63(), dict(steps=1), DiffdynError, ["steps", "at least 2"]),
        (Lorenz63(), dict(steps=10, t1=1.0), DiffdynError, ["steps or t1"]),
        (Lorenz63(), dict(t1=0.0), DiffdynError, ["t1", "positive"]),
        (Lorenz63(), dict(y0=[1.0, 2.0]), DiffdynError, ["y0", "lorenz63", "3 values", "(2,)"]),
        (Lorenz63(), dict(y0=[[[1.0, 2.0, 3.0]]]), DiffdynError, ["y0", "(1, 1, 3)"]),
        (Lorenz63(), dict(y0=[[1.0, 2.0]]), DiffdynError, ["y0", "[batch, 3]"]),
        (Scaled(), dict(y0=[1.0]), DiffdynError, ["y0", "Scaled", "x0, x1"]),
        (Lorenz63(), dict(observe=["w"]), UnknownNameError, ["'w'", "x, y, z"]),
        (Lorenz63(), dict(observe=["X"]), UnknownNameError, ["Did you mean 'x'"]),
        (Lorenz63(), dict(observe=[]), DiffdynError, ["observe"]),
        (Henon(), dict(dt=0.5), DiffdynError, ["henon", "map", "dt"]),
        (Lorenz63(), dict(transient=-1.0), DiffdynError, ["transient", "non-negative"]),
        (Lorenz63(), dict(noise=-0.1), DiffdynError, ["noise", "non-negative"]),
        (Lorenz63(), dict(noise=0.1), DiffdynError, ["noise", "key"]),
        (MackeyGlass(tau=0.01), dict(steps=10), DiffdynError, ["tau", "dt"]),
    ],
)
def test_bad_input_raises_a_helpful_error(system, kwargs, error, words):
    with pytest.raises(error) as info:
        simulate(system, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith((".", "?")), message
    for word in words:
        assert word in message, (word, message)


def test_simulate_needs_a_system():
    with pytest.raises(TypeError, match="diffdyn system"):
        simulate("lorenz63")


# -- a batch of initial states ------------------------------------------------------------


def test_batch_of_initial_states_matches_one_at_a_time_for_a_flow(x64):
    system = Lorenz63()
    y0s = jnp.asarray([[1.0, 1.0, 1.0], [-5.0, 3.0, 20.0], [8.0, 8.0, 27.0]])
    kwargs = dict(steps=101, transient=0.0, rtol=1e-10, atol=1e-10)
    batch = simulate(system, y0=y0s, **kwargs)
    assert batch.values.shape == (3, 101, 3)
    assert batch.times.shape == (101,)
    for i, y0 in enumerate(y0s):
        one = simulate(system, y0=y0, **kwargs)
        # shared steps differ from each member's own steps only within the tolerance
        np.testing.assert_allclose(batch.values[i], one.values, atol=1e-6)


def test_batch_of_initial_states_is_exact_for_a_map_and_noise_is_per_member(getkey):
    system = Henon()
    y0s = jnp.asarray([[0.1, 0.1], [0.2, -0.1]])
    batch = simulate(system, y0=y0s, steps=30, transient=0)
    for i in range(2):
        one = simulate(system, y0=y0s[i], steps=30, transient=0)
        np.testing.assert_array_equal(batch.values[i], one.values)
    noisy = simulate(system, y0=y0s, steps=300, transient=0, noise=0.1, key=getkey())
    clean = simulate(system, y0=y0s, steps=300, transient=0)
    residual = np.asarray(noisy.values - clean.values)
    ratio = residual.std(axis=1) / np.asarray(clean.values).std(axis=1)
    np.testing.assert_allclose(ratio, 0.1, rtol=0.25)


def test_a_member_that_blows_up_is_named():
    system = Logistic(r=4.5)
    with pytest.raises(SimulationError, match="initial state 1 of the batch"):
        simulate(system, y0=jnp.asarray([[0.0], [0.9]]), steps=50, transient=0)
