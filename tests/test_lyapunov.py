import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest

from diffdyn.analysis import lyapunov_spectrum
from diffdyn.errors import DiffdynError
from diffdyn.systems import SYSTEMS, get_system

CATALOGUE = Path(__file__).parents[1] / "experiments" / "results" / "lyapunov_catalogue.json"


def test_lorenz63_spectrum_matches_reference():
    spectrum = lyapunov_spectrum(get_system("lorenz63"))
    lam1, lam2, lam3 = spectrum.exponents
    assert abs(lam1 - 0.9056) / 0.9056 < 0.03
    assert abs(lam2) < 0.02  # the neutral direction along the flow
    # The trace of the Jacobian is constant: Σλ = −(σ + 1 + β).
    expected_sum = -(10 + 1 + 8 / 3)
    assert abs(spectrum.exponents.sum() - expected_sum) / abs(expected_sum) < 0.03
    assert 2.0 < spectrum.kaplan_yorke_dimension < 2.1
    assert spectrum.lyapunov_time == pytest.approx(1 / lam1)


def test_henon_largest_exponent_and_sum():
    spectrum = lyapunov_spectrum(get_system("henon"), duration=2e4)
    assert abs(spectrum.largest - 0.419) / 0.419 < 0.03
    # |det J| = b for every step, so λ₁ + λ₂ = ln b exactly.
    assert spectrum.exponents.sum() == pytest.approx(math.log(0.3), rel=1e-3)


def test_logistic_r4_is_ln2():
    spectrum = lyapunov_spectrum(get_system("logistic"), duration=2e4)
    assert abs(spectrum.largest - math.log(2)) / math.log(2) < 0.03


def test_stable_system_has_negative_exponent_and_no_lyapunov_time():
    spectrum = lyapunov_spectrum(get_system("logistic", r=2.8), duration=2000)
    # Fixed point x* = 1 − 1/r with multiplier 2 − r.
    assert spectrum.largest == pytest.approx(math.log(abs(2 - 2.8)), rel=1e-3)
    assert spectrum.lyapunov_time is None


def test_convergence_record_ends_at_the_estimate():
    spectrum = lyapunov_spectrum(get_system("henon"), duration=5000, record=10)
    assert spectrum.convergence.shape == (10, 2)
    np.testing.assert_allclose(spectrum.convergence[-1], spectrum.exponents, rtol=1e-5)
    assert spectrum.convergence_times[-1] == pytest.approx(spectrum.settings["duration"])


@pytest.mark.slow  # make test-slow: kept out of make test's 8 minutes
def test_tangent_map_matches_finite_differences(x64):
    # The exponents rest on the Jacobian of the internal step: check it against central
    # differences for each kind of system.
    for name in ("lorenz63", "henon", "mackey-glass", "kuramoto-sivashinsky"):
        system = get_system(name)
        h = system.internal_step(system.dt)
        stepper = system.make_stepper(h)
        state = system.prepare_state(system.initial_state(), h)
        state = state + 0.1 * jax.random.normal(jax.random.key(1), state.shape)
        direction = jax.random.normal(jax.random.key(2), state.shape)
        _, tangent = jax.jvp(lambda s: stepper(s, 0.3, None), (state,), (direction,))
        eps = 1e-6
        fd = (
            stepper(state + eps * direction, 0.3, None)
            - stepper(state - eps * direction, 0.3, None)
        ) / (2 * eps)
        np.testing.assert_allclose(tangent, fd, rtol=1e-6, atol=1e-8, err_msg=name)


def test_bad_arguments():
    with pytest.raises(DiffdynError, match="n_exponents"):
        lyapunov_spectrum(get_system("henon"), n_exponents=3)
    with pytest.raises(DiffdynError, match="duration"):
        lyapunov_spectrum(get_system("henon"), duration=-1)
    with pytest.raises(DiffdynError, match="random input"):
        lyapunov_spectrum(get_system("narma10"))


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_catalogue_exponents_are_reproduced(name, x64):
    """The λ₁ recorded in every system class agrees with a fresh (shorter) computation."""
    recorded = json.loads(CATALOGUE.read_text())[name]
    system = SYSTEMS[name]()
    duration = recorded["settings"]["duration"] / 5
    spectrum = lyapunov_spectrum(system, duration=duration, key=jax.random.key(0))
    assert system.lyapunov_exponent is not None
    # the class attribute is the published value or the catalogue's computed one
    assert abs(system.lyapunov_exponent - recorded["largest"]) <= max(
        0.03 * abs(recorded["largest"]), 2e-3
    )
    # A zero exponent (periodic orbits, Lotka–Volterra) converges only like 1/T.
    tolerance = max(0.05 * abs(recorded["largest"]), 2e-3, 10 / duration)
    assert abs(spectrum.largest - recorded["largest"]) <= tolerance
