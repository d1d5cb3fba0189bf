"""Identification through simulators: `diffdyn.identify` and `diffdyn identify`.

Sizes are small and shapes shared, so that the few compiled functions (the core's Adam step,
Levenberg–Marquardt, the Jacobian) are compiled once per configuration and reused.
"""

import dataclasses
import functools
import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contract import assert_refused, run, snapshot
from diffdyn.analysis import lyapunov_spectrum
from diffdyn.data import Series, write_series
from diffdyn.errors import DataError, DiffdynError, UnknownNameError
from diffdyn.identify import Identification, identify, load_identified, prepare
from diffdyn.identify.shooting import Flat, segment_layout, structured_residuals
from diffdyn.systems import Henon, Lorenz63, get_system, simulate
from diffdyn.systems.registry import load_system_file
from diffdyn.train import TrainingError
from test_gradients import assert_gradient_matches_finite_differences

USER_FILE = Path(__file__).with_name("identify_systems.py")


def user(name: str) -> str:
    """The FILE.py:CLASS reference of a system in `identify_systems.py`."""
    return f"{USER_FILE}:{name}"


# -- data ------------------------------------------------------------------------------------
@functools.cache
def henon_data() -> Series:
    return simulate(Henon(), steps=61, transient=100)


@functools.cache
def lorenz_data() -> Series:
    return simulate(Lorenz63(), steps=201, noise=0.02, key=jax.random.key(1))


@functools.cache
def drift_data() -> Series:
    """A straight line x_n = 2 + 0.3 n with Gaussian noise of standard deviation 0.1."""
    n = np.arange(40.0)
    noise = 0.1 * np.random.default_rng(0).standard_normal(n.size)
    return Series((2.0 + 0.3 * n + noise)[:, None], n, ("x",), dt=1.0)


def write_csv(series: Series, path: Path) -> Path:
    write_series(series, path)
    return path


# -- recovery --------------------------------------------------------------------------------
def test_a_map_with_a_latent_variable_is_identified_by_multiple_shooting():
    # Only x of the Hénon map is observed: y is latent, fitted in every segment's start state.
    start = Henon(a=0.98, b=0.39)  # 30 % off
    result = identify(start, henon_data().select(["x"]), fit=["a", "b"], segments=20, steps=300)
    errors = result.relative_errors({"a": 1.4, "b": 0.3})
    assert errors["a"] < 1e-4 and errors["b"] < 1e-4, errors
    assert result.observed == ("x",) and result.latent == ("y",)
    assert result.initial_states.shape == (20, 2)
    # The latent y of every segment start is the true one (y_n = b x_{n−1}).
    truth = np.asarray(henon_data().values)[segment_layout(61, 20).starts]
    np.testing.assert_allclose(result.initial_states, truth, atol=1e-4)
    assert np.isfinite(result.trajectory.values).all()
    assert result.transforms["a"] == "log p (positive)"
    json.dumps(result.to_json())  # plain JSON


# In make test-slow: one of the longest of the default suite (make test stays under 8 min).
@pytest.mark.slow
def test_single_shooting_of_a_chaotic_map_fails_where_multiple_shooting_succeeds():
    start = Henon(a=0.98, b=0.39)
    single = identify(start, henon_data(), fit=["a", "b"], segments=1, steps=300)
    assert single.relative_errors({"a": 1.4})["a"] > 0.05  # stuck far from the truth
    multiple = identify(start, henon_data(), fit=["a", "b"], segments=20, steps=300)
    assert multiple.relative_errors({"a": 1.4})["a"] < 1e-4
    assert multiple.loss < 1e-6 < single.loss


def test_a_delay_systems_parameter_is_identified():
    # Mackey–Glass from its constant history x(t ≤ 0) = 1.2: the model's own initial history.
    data = simulate(get_system("mackey-glass"), steps=30, transient=0)
    result = identify(get_system("mackey-glass", gamma=0.13), data, fit=["gamma"], steps=50)
    assert abs(float(result.fitted["gamma"]) - 0.1) < 1e-4
    assert result.segments == 1 and float(result.standard_errors["gamma"]) < 1e-3


@pytest.mark.slow  # make test-slow: compiles ETDRK4's stepper, forward and backward
def test_a_pdes_parameter_is_identified_by_multiple_shooting():
    # Kuramoto–Sivashinsky on 16 grid points; the domain length sets every wavenumber.
    data = simulate(get_system("kuramoto-sivashinsky", n=16), steps=40, transient=0)
    start = get_system("kuramoto-sivashinsky", n=16, length=20.0)
    result = identify(start, data, fit=["length"], segments=4, steps=50)
    assert abs(float(result.fitted["length"]) - 22.0) < 0.05


@functools.cache
def lorenz_fit() -> Identification:
    start = Lorenz63(sigma=13.0, rho=19.6, beta=3.47)  # 30 % off
    return identify(start, lorenz_data(), fit=["sigma", "rho", "beta"], segments=4, steps=100)


@pytest.mark.slow  # make test-slow: compiles a flow's Adam step, Levenberg–Marquardt, Jacobian
def test_a_flows_parameters_are_identified_with_standard_errors():
    result = lorenz_fit()
    errors = result.relative_errors({"sigma": 10.0, "rho": 28.0, "beta": 8 / 3})
    assert max(errors.values()) < 0.01, errors
    assert result.refined and result.segments == 4 and result.continuity_loss >= 0
    for name, truth in (("sigma", 10.0), ("rho", 28.0), ("beta", 8 / 3)):
        error = float(result.standard_errors[name])
        # 2 % noise over 2 time units: errors of a few tenths of a percent, covering the truth.
        assert 0 < error < 0.01 * truth
        assert abs(float(result.fitted[name]) - truth) < 5 * error
    corr = result.correlation
    np.testing.assert_allclose(np.diag(corr), 1.0, atol=1e-6)
    np.testing.assert_allclose(corr, corr.T, atol=1e-9)
    # The residuals are the noise: its estimate is 2 % of each variable's spread.
    spread = np.asarray(lorenz_data().values).std(axis=0)
    np.testing.assert_allclose(list(result.noise.values()), 0.02 * spread, rtol=0.15)


def test_standard_errors_are_those_of_ordinary_least_squares_on_a_line():
    # x_n = x0 + c n: the model is linear in (x0, c), so σ̂²(JᵀJ)⁻¹ is exactly OLS's.
    drift = load_system_file(user("Drift"))()
    result = identify(drift, drift_data(), fit=["c"], steps=50)
    n, x = np.asarray(drift_data().times), np.asarray(drift_data().values)[:, 0]
    design = np.stack([np.ones_like(n), n], axis=1)
    coef, rss, *_ = np.linalg.lstsq(design, x, rcond=None)
    errors = np.sqrt(rss[0] / (n.size - 2) * np.diag(np.linalg.inv(design.T @ design)))
    np.testing.assert_allclose(float(result.fitted["c"]), coef[1], rtol=1e-4)
    np.testing.assert_allclose(result.initial_states[0, 0], coef[0], rtol=1e-4)
    np.testing.assert_allclose(float(result.standard_errors["c"]), errors[1], rtol=2e-3)
    np.testing.assert_allclose(result.initial_state_errors[0, 0], errors[0], rtol=2e-3)
    assert result.correlation_names == ("c",)


# -- hybrid systems --------------------------------------------------------------------------
def assert_network_gets_gradients(reference: str, steps: int, lyapunov_duration: float):
    hybrid = get_system(reference)
    assert set(hybrid.networks()) == {"net"} and "net" not in hybrid.parameters()
    series = simulate(hybrid, steps=steps, transient=0)
    assert np.isfinite(series.values).all()
    assert set(series.metadata["parameters"]) == set(hybrid.parameters())  # no network there
    spectrum = lyapunov_spectrum(hybrid, duration=lyapunov_duration, transient=0)
    assert np.isfinite(spectrum.exponents).all()
    target = series.replace(values=series.values * 1.05)
    setup = prepare(hybrid, target, fit=["net", *hybrid.parameters()])
    grads = eqx.filter_grad(lambda u: setup.objective(u, setup.problem))(setup.unknowns)
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads.fields["net"], eqx.is_array))
    assert leaves and all(np.isfinite(g).all() and np.abs(g).max() > 0 for g in leaves)
    assert all(float(grads.fields[n]) != 0.0 for n in hybrid.parameters())


# In make test-slow: one of the longest of the default suite (make test stays under 8 min).
@pytest.mark.slow
def test_a_map_with_an_mlp_field_simulates_and_its_weights_get_gradients():
    assert_network_gets_gradients(user("HybridHenon"), steps=20, lyapunov_duration=50.0)


@pytest.mark.slow  # make test-slow: compiles a flow's simulation, Lyapunov tangents and gradient
def test_a_flow_with_an_mlp_field_simulates_and_its_weights_get_gradients():
    assert_network_gets_gradients(user("HybridLotkaVolterra"), steps=16, lyapunov_duration=2.0)


@pytest.mark.slow  # make test-slow: compiles Levenberg–Marquardt over the network's weights
def test_a_hybrid_systems_network_and_parameters_are_fitted_together():
    hybrid = get_system(user("HybridLotkaVolterra"))
    truth = simulate(get_system("lotka-volterra"), steps=31, transient=0, dt=0.1)
    start = prepare(hybrid, truth, fit=["net", "alpha"])
    start_loss = float(start.objective(start.unknowns, start.problem))
    result = identify(hybrid, truth, fit=["net", "alpha"], steps=300)
    assert result.loss < 0.05 * start_loss
    assert result.networks == {"net": 4 * 2 + 4 + 4 * 2 + 2}
    assert result.standard_errors is None and "network" in result.uncertainty_note


# -- gradients against finite differences (float64) ------------------------------------------
def lorenz_setup(adjoint: str):
    data = simulate(Lorenz63(), steps=11, dt=0.05, transient=1.0)
    start = Lorenz63(sigma=11.0, rho=25.0, beta=3.0)
    return prepare(start, data, fit=["sigma", "rho", "beta"], segments=2, adjoint=adjoint,
                   rtol=1e-12, atol=1e-12)  # fmt: skip


def henon_setup():
    start = Henon(a=1.3, b=0.35)  # y latent: the segments' y are fitted too
    return prepare(start, henon_data().slice(0, 13).select(["x"]), fit=["a", "b"], segments=3)


def assert_loss_gradient_matches_finite_differences(setup, eps):
    flat, x = Flat.of(setup.unknowns)

    def loss(x):
        return setup.objective(flat.unknowns(x), setup.problem)

    assert_gradient_matches_finite_differences(loss, x, eps, rtol=1e-5)
    return x


# In make test-slow: one of the longest of the default suite (make test stays under 8 min).
@pytest.mark.slow
def test_the_loss_gradient_through_diffrax_matches_finite_differences(x64):
    x = assert_loss_gradient_matches_finite_differences(lorenz_setup("recursive"), 1e-6)
    assert x.shape == (3 + 2 * 3,)  # the log-parameters and both segments' initial states


@pytest.mark.slow  # make test-slow: compiles the backsolve adjoint's backward solve
def test_the_backsolve_gradient_matches_finite_differences(x64):
    assert_loss_gradient_matches_finite_differences(lorenz_setup("backsolve"), 1e-6)


def test_the_loss_gradient_of_a_map_with_a_latent_variable_matches_finite_differences(x64):
    x = assert_loss_gradient_matches_finite_differences(henon_setup(), 1e-7)
    assert x.shape == (2 + 3 * 2,)


def assert_structured_jacobian_matches_finite_differences(setup, eps):
    objective = dataclasses.replace(setup.objective, adjoint="forward")
    flat, x = Flat.of(setup.unknowns)
    size = int(np.prod(setup.problem.targets.shape)) + setup.objective.n_continuity
    weights = jnp.asarray(np.random.default_rng(0).standard_normal(size))

    def projected(x):
        r = structured_residuals(x, objective=objective, problem=setup.problem, flat=flat)
        return weights @ r

    # Reverse mode through the rule (its linear part transposed) against finite differences,
    assert_gradient_matches_finite_differences(projected, x, eps)
    # and forward mode (what Levenberg–Marquardt and the standard errors use) against it.
    forward, reverse = jax.jit(jax.jacfwd(projected))(x), jax.jit(jax.grad(projected))(x)
    np.testing.assert_allclose(forward, reverse, rtol=1e-9)


def test_the_structured_jacobian_rule_of_a_map_matches_finite_differences(x64):
    assert_structured_jacobian_matches_finite_differences(henon_setup(), 1e-7)


@pytest.mark.slow  # make test-slow: compiles forward mode through Diffrax
def test_the_structured_jacobian_rule_of_a_flow_matches_finite_differences(x64):
    assert_structured_jacobian_matches_finite_differences(lorenz_setup("recursive"), 1e-6)


# -- FILE.py:CLASS ---------------------------------------------------------------------------
def test_a_users_file_names_a_system_everywhere(tmp_path):
    system = get_system(user("Drift"), c=0.25)
    assert type(system).__name__ == "Drift" and float(system.c) == 0.25
    assert load_system_file(user("Drift")) is type(system)  # loaded once while unchanged
    out = tmp_path / "drift.csv"
    result = run("simulate", user("Drift"), "--steps", "5", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert out.is_file()
    from diffdyn.compare.grid import choose_datasets, resolve_datasets

    chosen = choose_datasets([user("Drift")], [])
    (dataset,) = resolve_datasets(chosen)
    assert dataset["ref"] == f"{USER_FILE.resolve()}:Drift"
    assert dataset["name"] == "identify_systems.py:Drift"  # a folder name of the run: no "/"


@pytest.mark.slow  # make test-slow: a compare grid with its worker process
def test_compare_runs_a_users_system_inside_its_run_folder(tmp_path):
    result = run("compare", "--systems", user("HybridHenon"), "--models", "persistence",
                 "--budget-per-model", "5", "-o", tmp_path / "grid")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "grid" / "models" / "identify_systems.py:HybridHenon").is_dir()
    # Nothing beside the user's file (a model folder named after the whole path once was).
    assert not list(USER_FILE.parent.glob("identify_systems.py:*"))


@pytest.mark.parametrize(
    "reference, fragment, kind",
    [
        ("missing.py:Drift", "no file missing.py", DiffdynError),
        (f"{USER_FILE}:Drfit", "defines no class Drfit", UnknownNameError),
        (f"{USER_FILE}:NotASystem", "is not a diffdyn system", DiffdynError),
        (f"{USER_FILE}:AbstractMap", "is abstract", DiffdynError),
    ],
)
def test_a_bad_file_reference_is_one_sentence(reference, fragment, kind):
    with pytest.raises(kind, match=fragment):
        get_system(reference)


# -- the command -----------------------------------------------------------------------------
def test_identify_fits_a_users_system_to_a_csv_end_to_end(tmp_path):
    data = write_csv(drift_data(), tmp_path / "line.csv")
    out, figure = tmp_path / "fit", tmp_path / "fit.png"
    result = run("identify", user("Drift"), "--data", data, "--fit", "c", "-p", "c=0.2",
                 "--budget", "1s", "-o", out, "--plot", figure)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "c" in result.stdout and "±" in result.stdout and "0.2" in result.stdout
    stored = json.loads((out / "result.json").read_text())
    fitted = stored["identification"]["fitted"]["c"]
    assert fitted == pytest.approx(0.3, abs=0.01)
    assert stored["identification"]["standard_errors"]["c"] > 0
    assert "budget" in stored["identification"]["stop_reason"]
    assert stored["request"]["system"] == f"{USER_FILE.resolve()}:Drift"
    assert figure.stat().st_size > 1000
    loaded = load_identified(out, user("Drift"))
    assert float(loaded.c) == pytest.approx(fitted)
    # A second run without --force is refused and changes nothing.
    before = snapshot(tmp_path)
    assert_refused(run("identify", user("Drift"), "--data", data, "--fit", "c", "-o", out),
                   "already holds an identification")  # fmt: skip
    assert snapshot(tmp_path) == before


@pytest.fixture
def lorenz_csv(tmp_path):
    return write_csv(simulate(Lorenz63(), steps=30), tmp_path / "lorenz.csv")


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["missing.py:Drift"], "no file missing.py"),
        ([f"{USER_FILE}:Drfit"], "defines no class Drfit"),
        ([f"{USER_FILE}:NotASystem"], "is not a diffdyn system"),
        (["lorenz63", "--fit", "sigma,gamma"], "no field 'gamma'"),
        (["lorenz96", "--fit", "n"], "static setting"),
        ([f"{USER_FILE}:Blowup", "--fit", "rate"], "not an array field"),
        (["lorenz63", "--observe", "x,q"], "no variable 'q'"),
        (["henon", "--fit", "a"], "the data have 3 columns"),
        (["double-pendulum", "--fit", "g"], "are not variables of double-pendulum"),
        (["lorenz63", "--segments", "11"], "too few for 11 segment"),
        (["lorenz63", "--bound", "rho=50:10"], "bounds of rho are empty"),
        (["lorenz63", "--bound", "rho=40:50"], "not strictly inside"),
        (["lorenz63", "--bound", "gamma=0:1"], "not fitted"),
    ],
)
def test_identify_refuses_bad_input_in_one_line_and_writes_nothing(
    tmp_path, lorenz_csv, arguments, fragment
):
    system, *rest = arguments
    fit = [] if "--fit" in rest else ["--fit", "sigma,rho"]
    before = snapshot(tmp_path)
    result = run("identify", system, "--data", lorenz_csv, *fit, *rest, "-o", tmp_path / "out")
    assert_refused(result, fragment)
    assert snapshot(tmp_path) == before


def test_a_map_that_escapes_is_named_by_its_segment(tmp_path):
    # r = 6: x leaves [0, 1] and runs off to −∞ within a few iterations.
    data = write_csv(simulate(get_system("logistic", r=3.7), steps=40), tmp_path / "logistic.csv")
    before = snapshot(tmp_path)
    result = run("identify", "logistic", "--data", data, "--fit", "r", "-p", "r=6",
                 "--segments", "2", "-o", tmp_path / "out")  # fmt: skip
    assert_refused(result, "fails in segment 1 of 2", "not finite from t ≈", "more segments")
    assert snapshot(tmp_path) == before


@pytest.mark.slow  # make test-slow: compiles a flow's solve and each segment's own
def test_a_flow_solve_that_fails_is_named_by_its_segment(tmp_path):
    # dx/dt = a x² from x = 1 blows up at t = 1/a: with a = 1 inside the data's 2 time units.
    decay = simulate(get_system(user("Blowup")), steps=41, transient=0)  # a = −1: x = 1/(1 + t)
    data = write_csv(decay, tmp_path / "decay.csv")
    before = snapshot(tmp_path)
    result = run("identify", user("Blowup"), "--data", data, "--fit", "a", "--bound", "a=-5:5",
                 "-p", "a=1", "--segments", "2", "-o", tmp_path / "out")  # fmt: skip
    line = assert_refused(result, "fails in segment 1 of 2", "more segments")
    assert "t = 0" in line
    assert snapshot(tmp_path) == before


def test_a_fit_that_diverges_is_one_sentence():
    # x_{n+1} = a √max(x_n, 0) + b from x_0 = −0.5: every gradient in x_0 is 0 · ∞ = NaN.
    values = np.asarray([-0.5, 0.5, 1.2, 1.6, 1.8, 1.9])[:, None]
    data = Series(values, np.arange(6.0), ("x",), dt=1.0)
    root = load_system_file(user("Root"))()
    with pytest.raises(TrainingError, match="diverged.*more segments"):
        identify(root, data, fit=["a", "b"], steps=40)


def test_python_api_refusals_name_the_problem():
    data = henon_data()
    with pytest.raises(DataError, match="regularly sampled"):
        identify(Henon(), data.replace(dt=None), fit=["a"])
    with pytest.raises(DataError, match="too few observations"):
        identify(Henon(), data.slice(0, 3).select(["x"]), fit=["a", "b"])
    with pytest.raises(DiffdynError, match="unknown adjoint"):
        identify(Henon(), data, fit=["a"], adjoint="sideways")
    with pytest.raises(DiffdynError, match="name at least one field"):
        identify(Henon(), data, fit=[])
    with pytest.raises(DiffdynError, match="delay system"):
        identify(get_system("mackey-glass"), data, fit=["beta"], segments=2)
