"""A controlled flow identified from data that hold its input: the recorded input drives the
flow (`AbstractControlledFlow.driven_by`), which separates what free motion cannot (a
pendulum's mass from its friction), from Python and from `diffdyn identify --data`."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contract import assert_refused, run, snapshot
from diffdyn.data import Series
from diffdyn.errors import DataError, DiffdynError, UnknownNameError
from diffdyn.identify import identify, prepare
from diffdyn.identify.shooting import Flat
from diffdyn.systems import simulate
from diffdyn.systems.controlled import RecordedInput
from diffdyn.systems.pendulum import Pendulum
from test_gradients import assert_gradient_matches_finite_differences

TRUTH = Pendulum(mass=1.75, friction=0.2)
DT = 0.05


def torque(t):
    """A multisine: rich enough an input to tell the mass from the friction (Ljung 1999)."""
    tones = ((1.2, 0.4, 0.3), (1.0, 1.1, 1.0), (0.8, 2.3, 2.0), (0.6, 3.7, 0.5))
    return sum(a * np.sin(w * t + p) for a, w, p in tones)[:, None]


def driven_data(duration=10.0, noise=0.02):
    """The true pendulum under the torque, sampled every DT, with its input as `exog`."""
    t = np.arange(0.0, duration + DT / 2, DT)
    u = torque(t)
    # simulate records the input it was driven by as the series' exog
    return simulate(TRUTH.driven_by(t, u), t1=duration, dt=DT, noise=noise, key=jax.random.key(0))


def test_a_recorded_input_drives_the_flow_and_is_linear_between_samples():
    recorded = RecordedInput(jnp.array([0.0, 1.0, 3.0]), jnp.array([[0.0], [2.0], [0.0]]))
    assert float(recorded(0.25)[0]) == pytest.approx(0.5)
    assert float(recorded(2.0)[0]) == pytest.approx(1.0)
    assert float(recorded(5.0)[0]) == pytest.approx(0.0)  # held beyond the last sample
    t = np.linspace(0.0, 4.0, 81)
    driven = TRUTH.driven_by(t, torque(t))
    state = jnp.array([0.3, -0.1])
    u = jnp.asarray(np.interp(1.23, t, torque(t)[:, 0]))[None]
    assert np.allclose(driven.vector_field(1.23, state), TRUTH.controlled_field(1.23, state, u))
    assert np.allclose(TRUTH.vector_field(1.23, state),
                       TRUTH.controlled_field(1.23, state, jnp.zeros(1)))  # fmt: skip
    free, forced = simulate(TRUTH, t1=4.0, dt=DT), simulate(driven, t1=4.0, dt=DT)
    assert not np.allclose(free.values, forced.values, atol=1e-3)
    assert free.exog is None and free.exog_variables == ()
    assert forced.exog_variables == ("torque",)
    expected = np.interp(np.asarray(forced.times), t, torque(t)[:, 0])
    np.testing.assert_allclose(np.asarray(forced.exog)[:, 0], expected, rtol=1e-5, atol=1e-6)
    assert driven.driven_by(None).recorded_input is None


@pytest.mark.parametrize(
    "times, values, fragment",
    [
        ([0.0, 1.0], [[1.0, 2.0], [3.0, 4.0]], "the recorded input must be [2, 1]"),
        ([0.0, 0.0, 1.0], [[0.0], [1.0], [2.0]], "increasing times"),
        ([0.0, 1.0], [[0.0], [np.nan]], "NaN or inf"),
    ],
)
def test_a_bad_recorded_input_is_one_sentence(times, values, fragment):
    with pytest.raises(DiffdynError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        TRUTH.driven_by(times, values)


def test_the_recorded_torque_separates_the_mass_from_the_friction():
    data = driven_data()
    result = identify(Pendulum(), data, fit=["mass", "friction"], segments=5)
    assert float(result.fitted["mass"]) == pytest.approx(1.75, rel=0.03)
    assert float(result.fitted["friction"]) == pytest.approx(0.2, rel=0.1)
    assert result.standard_errors["mass"] > 0
    assert result.system.recorded_input is None  # returned free, ready for a controller
    assert any("recorded input (torque)" in note for note in result.notes)


def test_inputs_that_are_not_the_controls_are_refused():
    data = driven_data(duration=2.0)
    renamed = Series(data.values, data.times, data.variables, exog=data.exog,
                     exog_variables=("force",), dt=DT)  # fmt: skip
    with pytest.raises(DataError, match="name the input columns after the controls"):
        identify(Pendulum(), renamed, fit=["mass"])
    with pytest.raises(UnknownNameError, match="no field 'recorded_input'"):
        identify(Pendulum(), data, fit=["recorded_input"])


def test_the_loss_gradient_through_a_driven_flow_matches_finite_differences(x64):
    data = driven_data(duration=1.0, noise=0.0)
    setup = prepare(Pendulum(mass=1.3, friction=0.1), data, fit=["mass", "friction"],
                    segments=2, rtol=1e-12, atol=1e-12)  # fmt: skip
    flat, x = Flat.of(setup.unknowns)

    def loss(x):
        return setup.objective(flat.unknowns(x), setup.problem)

    assert_gradient_matches_finite_differences(loss, x, 1e-6, rtol=1e-5)


def test_identify_reads_a_controlled_systems_input_column_from_a_csv(tmp_path):
    data = driven_data()
    table = np.column_stack([data.times, data.values, data.exog])
    path = tmp_path / "pendulum.csv"
    np.savetxt(path, table, delimiter=",", header="time,theta,omega,torque", comments="")
    out = tmp_path / "fit"
    result = run("identify", "pendulum", "--data", path, "--fit", "mass,friction",
                 "--segments", "5", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "recorded input (torque)" in result.stdout
    fitted = json.loads((out / "result.json").read_text())["identification"]["fitted"]
    assert fitted["mass"] == pytest.approx(1.75, rel=0.03)
    # A column that is neither a variable nor a control is still refused, nothing written.
    np.savetxt(path, table, delimiter=",", header="time,theta,omega,force", comments="")
    before = snapshot(tmp_path)
    refused = run("identify", "pendulum", "--data", path, "--fit", "mass", "-o", tmp_path / "o")
    assert_refused(refused, "force are neither variables of pendulum")
    assert snapshot(tmp_path) == before
