"""The catalogue: every system's registry entry, equations and invariants."""

import json
import math
import os
import platform
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Float
from scipy.integrate import solve_ivp

from diffdyn.errors import DiffdynError, UnknownNameError
from diffdyn.systems import (
    SYSTEMS,
    AbstractDelayFlow,
    AbstractMap,
    DoublePendulum,
    KuramotoSivashinsky,
    Lorenz63,
    Lorenz96,
    LotkaVolterra,
    MackeyGlass,
    get_system,
    parse_assignments,
    register_system,
    simulate,
    system_class,
)
from user_systems import Brusselator, Tent


def assert_sentence(message: str, *words: str) -> None:
    """An error message is one line, ends like a sentence and names what it is about."""
    assert "\n" not in message
    assert message.rstrip().endswith((".", "?")), message
    for word in words:
        assert word in message, (word, message)


# -- every registered system -----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_every_system_simulates_a_short_run_to_finite_values(name, getkey):
    system = get_system(name)
    assert system.kind in ("flow", "map", "delay", "pde")
    assert system.dt > 0 and (system.kind != "map" or system.dt == 1)
    assert isinstance(system.description, str) and system.description.strip()
    variables = system.variables
    assert len(variables) == system.dim >= 1 and len(set(variables)) == len(variables)
    if system.lyapunov_exponent is not None:
        assert system.lyapunov_source.strip()

    series = simulate(system, steps=200, key=getkey())
    values = np.asarray(series.values)
    assert values.shape == (200, system.dim)
    assert np.isfinite(values).all()
    assert series.variables == variables
    assert series.metadata["system"] == name and series.metadata["kind"] == system.kind
    # float32 times: t ≈ 20 carries an absolute rounding of ~1e-6
    np.testing.assert_allclose(np.diff(np.asarray(series.times)), system.dt, atol=1e-5)
    assert float(series.times[0]) == pytest.approx(system.default_transient)
    # Something moves: a system that sat still would hide a broken right-hand side.
    assert np.ptp(values, axis=0).max() > 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_every_system_simulates_its_default_run(name, getkey):
    system = get_system(name)
    series = simulate(system, key=getkey())
    assert series.values.shape == (system.default_steps, system.dim)
    assert np.isfinite(np.asarray(series.values)).all()


# -- the registry ----------------------------------------------------------------------------
def test_names_and_aliases_resolve():
    assert type(get_system("lorenz")) is Lorenz63
    assert type(get_system("Lorenz-63")) is Lorenz63
    assert type(get_system("KS")) is KuramotoSivashinsky
    assert type(get_system("kuramoto_sivashinsky")) is KuramotoSivashinsky
    assert system_class("narma").name == "narma10"
    for name, cls in SYSTEMS.items():
        assert system_class(name) is cls and cls.name == name


def test_unknown_system_suggests_close_names():
    with pytest.raises(UnknownNameError) as info:
        get_system("lorenz6")
    assert isinstance(info.value, DiffdynError)
    assert_sentence(str(info.value), "'lorenz6'", "lorenz63", "lorenz96", "Did you mean")
    with pytest.raises(UnknownNameError) as info:
        get_system("nosuch")
    assert_sentence(str(info.value), "'nosuch'", "diffdyn systems")


def test_parameters_from_text():
    lorenz = get_system("lorenz63", rho="35", sigma=12)
    assert float(lorenz.rho) == 35.0 and float(lorenz.sigma) == 12.0
    assert float(lorenz.beta) == pytest.approx(8 / 3)
    ring = get_system("lorenz96", n="20")
    assert ring.n == 20 and isinstance(ring.n, int) and ring.dim == 20
    # Mackey–Glass's delay is structural (it sizes the history buffer) but need not be whole.
    assert get_system("mackey-glass", tau="17.5").tau == 17.5
    assert parse_assignments(["rho=35", " sigma = 10 "]) == {"rho": "35", "sigma": "10"}


@pytest.mark.parametrize(
    "name, params, error, words",
    [
        ("lorenz63", {"rhoo": 35}, UnknownNameError, ["'rhoo'", "Did you mean 'rho'"]),
        ("lorenz63", {"rho": "abc"}, DiffdynError, ["rho", "number", "'abc'"]),
        ("lorenz63", {"rho": "nan"}, DiffdynError, ["rho", "finite"]),
        ("lorenz96", {"n": 4.5}, DiffdynError, ["n", "integer", "4.5"]),
        ("lorenz96", {"n": 2}, DiffdynError, ["n >= 4"]),
        ("kuramoto-sivashinsky", {"n": 63}, DiffdynError, ["even", "63"]),
    ],
)
def test_bad_parameters_raise_helpful_errors(name, params, error, words):
    with pytest.raises(error) as info:
        get_system(name, **params)
    assert_sentence(str(info.value), *words)


def test_parse_assignments_rejects_malformed_items():
    with pytest.raises(DiffdynError) as info:
        parse_assignments(["rho35"])
    assert_sentence(str(info.value), "NAME=VALUE", "'rho35'")


# -- a user's own systems --------------------------------------------------------------------
class Growth(AbstractMap):
    """A parameter without a default value: `Growth()` cannot be built."""

    y0 = (1.0,)
    lyapunov_exponent = 0.5
    rate: Float[Array, ""] = eqx.field(converter=jnp.asarray)

    def step(self, state, exog):
        return self.rate * state


def test_user_flow_written_as_a_vector_field_simulates():
    series = simulate(Brusselator(), t1=20.0)
    assert series.variables == ("x0", "x1")
    assert series.metadata["system"] == "Brusselator"
    assert series.metadata["parameters"] == {"a": 1.0, "b": 3.0}
    values = np.asarray(series.values)
    assert values.shape == (401, 2) and np.isfinite(values).all()
    # b > 1 + a² : the fixed point (a, b/a) is unstable and the state settles on a limit cycle.
    assert np.ptp(values[200:, 0]) > 1.0


def test_user_map_written_as_a_step_simulates():
    series = simulate(Tent(), steps=50, transient=0)
    assert series.variables == ("x0",)
    x = 0.1234
    for value in np.asarray(series.values[:, 0])[:10]:
        assert value == pytest.approx(x, rel=1e-5)
        x = 1.9 * min(x, 1 - x)


def test_user_system_without_defaults_simulates():
    # `Growth()` cannot be built: there are no default parameters, so no Lyapunov exponent.
    series = simulate(Growth(rate=2.0), steps=11)
    np.testing.assert_array_equal(series.values[:, 0], 2.0 ** np.arange(11))
    assert "lyapunov_exponent" not in series.metadata
    assert series.metadata["parameters"] == {"rate": 2.0}


def test_register_a_user_system():
    class Named(Tent):
        name = "tent-test"

    with pytest.raises(DiffdynError) as info:
        register_system(Tent)
    assert_sentence(str(info.value), "Tent", "name")
    try:
        register_system(Named)
        assert type(get_system("tent_test", mu=1.5)) is Named
    finally:
        SYSTEMS.pop("tent-test", None)


# -- flows: the equations --------------------------------------------------------------------
def test_lorenz63_matches_scipy(x64):
    series = simulate(Lorenz63(), t1=1.0, dt=0.01, transient=0, rtol=1e-10, atol=1e-10)
    assert series.values.dtype == jnp.float64

    def lorenz(t, u):
        x, y, z = u
        return [10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z]

    times = np.asarray(series.times)
    reference = solve_ivp(
        lorenz, (0.0, 1.0), [1.0, 1.0, 1.0], "DOP853", t_eval=times, rtol=1e-10, atol=1e-10
    )
    assert reference.success
    np.testing.assert_allclose(series.values, reference.y.T, rtol=0, atol=1e-6)


def test_lorenz96_vector_field_matches_its_index_formula():
    ring = Lorenz96(n=7, F=8.0)
    x = np.random.default_rng(0).normal(size=7)
    expected = [(x[(i + 1) % 7] - x[i - 2]) * x[i - 1] - x[i] + 8.0 for i in range(7)]
    got = ring.vector_field(0.0, jnp.asarray(x, dtype=jnp.float32))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_double_pendulum_conserves_energy():
    # Same call as the catalogue test above, so it reuses its compilation.
    values = np.asarray(simulate(DoublePendulum(), steps=200).values, dtype=np.float64)
    th1, th2, w1, w2 = values.T
    m1 = m2 = l1 = l2 = 1.0
    g = 9.81
    kinetic = 0.5 * (m1 + m2) * l1**2 * w1**2 + 0.5 * m2 * l2**2 * w2**2
    kinetic += m2 * l1 * l2 * w1 * w2 * np.cos(th1 - th2)
    potential = -(m1 + m2) * g * l1 * np.cos(th1) - m2 * g * l2 * np.cos(th2)
    energy = kinetic + potential
    assert np.ptp(np.abs(w1)) > 1.0  # it really swings
    np.testing.assert_allclose(energy, energy[0], atol=1e-3)


def test_lotka_volterra_conserves_its_first_integral():
    values = np.asarray(simulate(LotkaVolterra(), steps=200).values, dtype=np.float64)
    x, y = values.T
    alpha, beta, gamma, delta = 1.3, 0.9, 0.8, 1.8
    invariant = gamma * x - delta * np.log(x) + beta * y - alpha * np.log(y)
    np.testing.assert_allclose(invariant, invariant[0], atol=1e-4)


# -- maps: the equations, bit for bit --------------------------------------------------------
MAP_STEPS = 200


def _reference_maps(u: np.ndarray) -> dict[str, np.ndarray]:
    """The four catalogue maps iterated in plain Python float64, as written in their papers."""
    out = {"logistic": [], "henon": [], "ikeda": [], "narma10": []}
    x = 0.2
    for _ in range(MAP_STEPS):
        out["logistic"].append([x])
        x = 4.0 * x * (1 - x)
    x, y = 0.1, 0.1
    for _ in range(MAP_STEPS):
        out["henon"].append([x, y])
        x, y = 1 - 1.4 * x * x + y, 0.3 * x
    x, y = 0.1, 0.1
    for _ in range(MAP_STEPS):
        out["ikeda"].append([x, y])
        s = 0.4 - 6.0 / (1 + x * x + y * y)
        x, y = (
            1 + 0.9 * (x * math.cos(s) - y * math.sin(s)),
            0.9 * (x * math.sin(s) + y * math.cos(s)),
        )
    ys = [0.0] * 10  # y_t, ..., y_{t-9}
    us = [0.0] * 9  # u_{t-1}, ..., u_{t-9}
    for t in range(MAP_STEPS):
        out["narma10"].append([ys[0]])
        total = 0.0
        for past in ys:
            total = total + past
        y_next = 0.3 * ys[0] + 0.05 * ys[0] * total + 1.5 * us[-1] * float(u[t]) + 0.1
        ys, us = [y_next] + ys[:-1], [float(u[t])] + us[:-1]
    return {k: np.asarray(v) for k, v in out.items()}


_MAPS_SCRIPT = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
from diffdyn.systems import get_system, simulate
out = {}
for name in ("logistic", "henon", "ikeda", "narma10"):
    s = simulate(get_system(name), steps=int(sys.argv[1]), transient=0, key=jax.random.key(7))
    out[name] = s.values.tolist()
    if s.exog is not None:
        out["u"] = s.exog[:, 0].tolist()
print(json.dumps(out))
"""


def _diffdyn_maps_in_process() -> dict[str, np.ndarray]:
    out = {}
    for name in ("logistic", "henon", "ikeda", "narma10"):
        s = simulate(get_system(name), steps=MAP_STEPS, transient=0, key=jax.random.key(7))
        out[name] = np.asarray(s.values)
        if s.exog is not None:
            out["u"] = np.asarray(s.exog[:, 0])
    return out


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86 flag")
def test_maps_match_plain_python_bit_for_bit_without_fma():
    # XLA's CPU compiler always lets LLVM contract a*b + c into one fused multiply-add (one
    # rounding instead of two), which no XLA flag turns off. Capping the instruction set below
    # AVX2 (which introduced FMA) removes the contraction, and then the maps are bit-identical
    # to IEEE float64 arithmetic in plain Python. XLA_FLAGS act only at start-up, hence the
    # subprocess.
    env = dict(os.environ, XLA_FLAGS="--xla_cpu_max_isa=AVX", JAX_PLATFORMS="cpu")
    run = subprocess.run(
        [sys.executable, "-c", _MAPS_SCRIPT, str(MAP_STEPS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    got = {k: np.asarray(v) for k, v in json.loads(run.stdout.splitlines()[-1]).items()}
    u = got["u"]
    assert u.min() >= 0 and u.max() <= 0.5 and u.std() > 0.1
    for name, expected in _reference_maps(u).items():
        mismatch = np.flatnonzero((got[name] != expected).any(axis=-1))
        assert mismatch.size == 0, f"{name} first differs at step {mismatch[:1]}"


def test_maps_match_plain_python_to_rounding(x64):
    # In-process, XLA may fuse multiply-adds (see above): one rounding fewer per step, so the
    # trajectories agree to a few ulp at first and then drift apart at the rate of the map's
    # Lyapunov exponent. Compare the first 20 steps, where 2^20 ulp is still ~1e-10.
    got = _diffdyn_maps_in_process()
    for name, expected in _reference_maps(got["u"]).items():
        np.testing.assert_allclose(got[name][:20], expected[:20], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(got[name][:2], expected[:2])


# -- delay and PDE ---------------------------------------------------------------------------
def test_kuramoto_sivashinsky_conserves_its_mean():
    ks = KuramotoSivashinsky()
    for offset in (0.0, 0.7):
        y0 = ks.initial_state() + offset
        values = np.asarray(simulate(ks, y0=y0, steps=400, transient=0).values)
        assert np.ptp(values[:, 0]) > 1.0  # the state changes a lot ...
        np.testing.assert_allclose(values.mean(axis=1), offset, atol=1e-5)  # ... its mean not


def test_kuramoto_sivashinsky_matches_a_method_of_lines_reference(x64):
    # The same Fourier collocation, u_t = F⁻¹[(k² − k⁴) û − (ik/2) F[u²]] with the Nyquist
    # derivative zeroed, integrated by SciPy's DOP853 instead of ETDRK4.
    ks = KuramotoSivashinsky(n=32)
    series = simulate(ks, t1=10.0, transient=0)
    k = 2 * np.pi * np.arange(17) / 22.0
    derivative = np.where(np.arange(17) == 16, 0.0, k)

    def rhs(t, u):
        u_hat = np.fft.rfft(u)
        return np.fft.irfft((k**2 - k**4) * u_hat - 0.5j * derivative * np.fft.rfft(u * u), n=32)

    times = np.asarray(series.times)
    y0 = np.asarray(ks.initial_state())
    reference = solve_ivp(rhs, (0, 10.0), y0, "DOP853", t_eval=times, rtol=1e-11, atol=1e-11)
    assert reference.success and np.ptp(reference.y[0]) > 1.0
    np.testing.assert_allclose(series.values, reference.y.T, rtol=0, atol=1e-4)


def test_kuramoto_sivashinsky_stays_bounded_and_chaotic():
    values = np.asarray(simulate(KuramotoSivashinsky()).values)  # 1000 time units
    assert values.shape == (4000, 64)
    # L = 22: |u| stays below ~3.5 on the attractor (Cvitanović, Davidchack & Siminos 2010).
    assert np.abs(values).max() < 5.0
    assert values[2000:].std() > 0.5  # still turbulent at the end, not decayed
    late = values[-400:]
    assert np.abs(late - late[:1]).max() > 1.0  # not a steady state


def test_mackey_glass_stays_in_its_range():
    values = np.asarray(simulate(MackeyGlass()).values[:, 0])
    assert values.shape == (5000,)
    assert 0.2 < values.min() < 0.6 and 1.1 < values.max() < 1.4
    assert values.std() > 0.15


def test_mackey_glass_converges_as_the_step_shrinks(x64):
    # The internal step is the largest divisor of dt not above max_step = 0.05, so these dt
    # give internal steps 0.04, 0.02, 0.01 and 0.005; compare at whole time units.
    runs = {}
    for dt in (0.04, 0.02, 0.01, 0.005):
        series = simulate(MackeyGlass(), t1=200.0, dt=dt, transient=0)
        every = round(1 / dt)
        runs[dt] = np.asarray(series.values[::every, 0])
        assert runs[dt].shape == (201,)
    errors = [np.abs(runs[dt] - runs[0.005]).max() for dt in (0.04, 0.02, 0.01)]
    assert errors[0] < 1e-3
    # At least second order: the kink of the constant history at t = 0 (dy/dt jumps there)
    # limits the global order, whatever the interpolation of the delayed values.
    assert errors[0] / errors[1] > 3.5 and errors[1] / errors[2] > 2.5, errors


def test_delay_step_is_fourth_order_on_a_smooth_history(x64):
    # y'(t) = c·y(t − τ) with c = λ·e^{λτ} has the exact solution y = e^{λt} for every t,
    # history included: one step from a buffer filled with that history has local error
    # O(h⁵) when the delayed values are interpolated to fourth order (O(h³) if linear).
    lam, delay = -0.7, 1.3

    class LinearDelay(AbstractDelayFlow):
        y0 = (1.0,)
        tau: float = eqx.field(static=True, default=delay)

        def vector_field(self, t, state, delayed):
            return lam * np.exp(lam * delay) * delayed

    system = LinearDelay()
    errors = []
    for h in (0.1, 0.05, 0.025):
        length = system._buffer_length(h)
        history = jnp.exp(lam * -h * jnp.arange(length))[:, None].reshape(-1)
        stepped = system.make_stepper(h)(history, 0.0, None)
        errors.append(abs(float(stepped[0]) - np.exp(lam * h)))
    assert errors[0] / errors[1] > 20 and errors[1] / errors[2] > 20, errors
