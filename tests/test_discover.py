"""Equation discovery (`diffdyn.discover`, `diffdyn discover`): the library of terms, the
derivatives, STLSQ and its threshold, bagging, `discover_terms`, the `Discovery` JSON, the
discovered system simulated against the data, the command end to end and its bad input."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contract import assert_refused, run, snapshot
from diffdyn.data import Series, write_series
from diffdyn.discover import (
    Discovery,
    Library,
    central_differences,
    discover_series,
    discover_terms,
    library_size,
    reproduce,
    savitzky_golay_derivative,
    weak_form,
)
from diffdyn.discover.derivative import choose_window
from diffdyn.errors import DataError, DiffdynError
from diffdyn.systems import get_system, simulate

# Lorenz-63 terms and coefficients (σ, ρ, β) = (10, 28, 8/3).
LORENZ = {
    "x": {"x": -10.0, "y": 10.0},
    "y": {"x": 28.0, "y": -1.0, "x z": -1.0},
    "z": {"z": -8.0 / 3.0, "x y": 1.0},
}


def worst_relative_error(found: Discovery, truth: dict[str, dict[str, float]]) -> float:
    """The largest relative coefficient error; the supports must match exactly."""
    worst = 0.0
    for variable, terms in truth.items():
        active = found.active_terms(variable)
        assert set(active) == set(terms), (variable, active)
        for term, value in terms.items():
            worst = max(worst, abs(active[term] - value) / abs(value))
    return worst


@pytest.fixture(scope="module")
def lorenz():
    """Lorenz-63 as in PySINDy's feature overview: x0 = (−8, 8, 27), dt = 0.002, t ∈ [0, 5)."""
    with jax.enable_x64(True):
        series = simulate(
            get_system("lorenz63"), steps=2500, dt=0.002, y0=np.array([-8.0, 8.0, 27.0]),
            transient=0.0, rtol=1e-10, atol=1e-10,
        )  # fmt: skip
    return series.numpy()


def noisy(series: Series, fraction: float, seed: int = 0) -> Series:
    values = np.asarray(series.values)
    rng = np.random.default_rng(seed)
    return series.replace(values=values + fraction * values.std(0) * rng.normal(size=values.shape))


# -- the library ---------------------------------------------------------------------------
def test_library_names_values_and_size():
    library = Library(("x", "y"), degree=3, trig=True)
    assert library.names == (
        "1", "x", "y", "x^2", "x y", "y^2", "x^3", "x^2 y", "x y^2", "y^3",
        "sin(x)", "cos(x)", "sin(y)", "cos(y)",
    )  # fmt: skip
    assert library.size == library_size(2, 3, trig=True) == 14
    point = np.array([[-2.0, 3.0]])
    expected = [1, -2, 3, 4, -6, 9, -8, 12, -18, 27]
    expected += [np.sin(-2), np.cos(-2), np.sin(3), np.cos(3)]
    np.testing.assert_allclose(library.evaluate(point)[0], expected)
    # JAX: negative bases stay exact (no exp(p log x)).
    np.testing.assert_allclose(library.evaluate(jnp.asarray(point), xp=jnp)[0], expected, 1e-6)
    assert library_size(3, 3) == 20 and library_size(4, 2) == 15


# -- derivatives ---------------------------------------------------------------------------
def test_central_differences_and_savitzky_golay_are_exact_on_polynomials():
    t = np.linspace(0.0, 2.0, 41)
    dt = t[1] - t[0]
    quadratic = np.stack([3 * t**2 - t, 1 + 0 * t], 1)
    np.testing.assert_allclose(
        central_differences(quadratic, dt), np.stack([6 * t - 1, 0 * t], 1), atol=1e-10
    )
    quintic = (t**5 - t**3 - 2 * t)[:, None]
    for window in (7, 9, 21):  # edges included: the first and last windows' quintics
        np.testing.assert_allclose(
            savitzky_golay_derivative(quintic, dt, window),
            (5 * t**4 - 3 * t**2 - 2)[:, None],
            atol=1e-8,
        )


def test_the_window_grows_with_noise():
    t = np.arange(2000) * 0.01
    clean = np.stack([np.sin(t), np.cos(2 * t)], 1)
    noisy_values = clean + 0.02 * np.random.default_rng(0).normal(size=clean.shape)
    assert choose_window(clean) == 7
    assert choose_window(noisy_values) >= 21


def test_weak_form_needs_no_derivative():
    # x = sin t has ẋ = cos t: the weak rows of the state match those of the term cos t.
    t = np.arange(1000) * 0.01
    x = np.sin(t)[:, None]
    gram, rhs = weak_form(x, np.cos(t)[:, None], 0.01, support=40, rows_needed=10)
    assert gram.shape[0] >= 10
    np.testing.assert_allclose(rhs, gram, atol=1e-8)


# -- discovery on a measured series ----------------------------------------------------------
@pytest.mark.parametrize("degree", [2, 3])
def test_exact_recovery_on_clean_lorenz(lorenz, degree):
    found = discover_series(lorenz, degree=degree)
    assert worst_relative_error(found, LORENZ) < 5e-3
    assert found.threshold is None and found.importance is not None
    assert found.equations()[1] == "dy/dt = 28.00 x - 1.00 y - 1.00 x z"


def test_given_threshold_plain_differences_matches_pysindy_anchor(lorenz):
    # ANCHORS.md (PySINDy feature overview, t ∈ [0, 10)): −9.999x + 9.999y, 27.992x − 0.999y
    # − 1.000xz, −2.666z + 1.000xy with central differences and threshold 0.1; on half the
    # span the same to three decimals.
    found = discover_series(lorenz, degree=3, threshold=0.1, smoothing=None)
    assert found.smoothing is None and found.threshold == 0.1
    assert worst_relative_error(found, LORENZ) < 2e-3
    assert found.equations(3)[0] == "dx/dt = -9.999 x + 9.999 y"


def test_weak_form_on_noisy_lorenz(lorenz):
    data = noisy(lorenz, 0.01)
    found = discover_series(data, degree=2, derivative="weak")
    assert found.derivative == "weak" and found.support and found.rows > 0
    assert worst_relative_error(found, LORENZ) < 0.02


def test_bagging_gives_inclusion_probabilities(lorenz):
    data = noisy(lorenz, 0.01, seed=1)
    found = discover_series(data, degree=2, derivative="weak", bagging=15, seed=3)
    assert found.inclusion is not None and found.inclusion.shape == (10, 3)
    assert worst_relative_error(found, LORENZ) < 0.02
    index = {name: j for j, name in enumerate(found.terms)}
    for k, variable in enumerate("xyz"):
        for term in found.terms:
            p = found.inclusion[index[term], k]
            assert (p >= 0.9) if term in LORENZ[variable] else (p < 0.5), (variable, term, p)
    again = discover_series(data, degree=2, derivative="weak", bagging=15, seed=3)
    np.testing.assert_array_equal(again.coefficients, found.coefficients)


def test_a_map_regresses_the_next_state():
    henon = simulate(get_system("henon"), steps=500)
    found = discover_series(henon, degree=2)
    assert found.kind == "map" and found.derivative == "next-state"
    assert found.equations() == ["x[n+1] = 1.00 + 1.00 y - 1.40 x^2", "y[n+1] = 0.30 x"]
    with pytest.raises(DiffdynError, match="weak form"):
        discover_series(henon, degree=2, derivative="weak")


def test_inputs_enter_the_terms():
    duffing = simulate(get_system("duffing"), steps=1500)
    found = discover_series(duffing, degree=3)
    assert found.inputs == ("forcing",)
    assert found.active_terms("x") == pytest.approx({"v": 1.0}, rel=0.01)
    truth = {"x": 1.0, "v": -0.3, "x^3": -1.0, "forcing": 1.0}
    assert found.active_terms("v") == pytest.approx(truth, rel=0.02)


# -- discover_terms ------------------------------------------------------------------------
def test_discover_terms_reads_a_network_term():
    # The UDE setting (Rackauckas et al. 2020): 31 states of Lotka–Volterra, the unknown part
    # −βxy, +γxy as a fitted network would give it, with 1 % noise.
    states = np.asarray(simulate(get_system("lotka-volterra"), t1=3.0, dt=0.1).values, float)
    product = states[:, 0] * states[:, 1]
    rates = np.stack([-0.9 * product, 0.8 * product], 1)
    rates += 0.01 * rates.std(0) * np.random.default_rng(0).normal(size=rates.shape)
    found = discover_terms(
        states, rates, variable_names=["x", "y"], degree=3, target_names=["U1", "U2"]
    )
    assert found.active_terms("x") == pytest.approx({"x y": -0.9}, rel=0.02)
    assert found.active_terms("y") == pytest.approx({"x y": 0.8}, rel=0.02)
    assert found.equations()[0].startswith("U1 = -0.90 x y")
    with pytest.raises(DataError, match="same N rows"):
        discover_terms(states, rates[:-1], variable_names=["x", "y"])
    with pytest.raises(DataError, match="non-finite"):
        discover_terms(np.where(states > 3, np.nan, states), rates, variable_names=["x", "y"])


# -- the result ----------------------------------------------------------------------------
def test_discovery_json_round_trip(lorenz):
    found = discover_series(lorenz, degree=2, bagging=5)
    stored = json.loads(json.dumps(found.to_json()))
    back = Discovery.from_json(stored)
    np.testing.assert_array_equal(back.coefficients, found.coefficients)
    np.testing.assert_array_equal(back.inclusion, found.inclusion)
    assert back.equations() == found.equations() and back.library == found.library
    assert back.to_json() == found.to_json()
    with pytest.raises(DataError, match="not a diffdyn discovery"):
        Discovery.from_json({"coefficients": {}})
    damaged = dict(stored)
    del damaged["library"]
    with pytest.raises(DataError, match="damaged"):
        Discovery.from_json(damaged)


def test_the_discovered_system_reproduces_the_data(lorenz):
    # Degree 2 in x, y, z over 2500 samples, as in the command's test: the solver compiles once.
    found = discover_series(lorenz, degree=2)
    result = reproduce(found, lorenz)
    # Errors of 1e-6 grow by e every 1.1 time units: far below ε = 0.5 over these 5.
    assert result.departure_time is None and result.diverged_at is None
    assert result.compared == 2500 and result.nrmse is not None and result.nrmse < 1e-2
    assert result.simulated is not None
    again = simulate(
        found.as_system(), steps=2500, dt=lorenz.dt, t0=float(lorenz.times[0]), transient=0.0,
        check_finite=False, max_steps=4096 + 64 * 2500,
    )  # fmt: skip
    np.testing.assert_allclose(again.values, result.simulated.values, rtol=1e-5, atol=1e-5)


def test_a_diverging_discovery_is_reported_not_raised(lorenz):
    found = discover_series(lorenz, degree=2)
    blow_up = found.coefficients.copy()
    blow_up[found.terms.index("x^2"), 0] = 50.0  # dx/dt ≈ 50 x²: a blow-up in finite time
    exploding = Discovery(**{**found.__dict__, "coefficients": blow_up})
    result = reproduce(exploding, lorenz)
    assert result.diverged_at is not None and result.diverged_at < 0.1
    assert "blows up" in result.message or "far behind" in result.message
    assert result.message in result.summary()


# -- the command ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def place(tmp_path_factory, lorenz):
    root = tmp_path_factory.mktemp("discover")
    write_series(lorenz, root / "lorenz.csv")
    write_series(lorenz.slice(0, 2), root / "two.csv")
    write_series(lorenz.slice(0, 30), root / "short.csv")
    write_series(lorenz.slice(0, 15), root / "fifteen.csv")
    write_series(lorenz.slice(0, 22), root / "twenty-two.csv")
    (root / "nan.csv").write_text("time,x\n0,1\n1,nan\n2,3\n")
    (root / "garbage.csv").write_bytes(b"\x00\x01\xff garbage\nfoo")
    (root / "out").mkdir()
    (root / "out" / "existing.json").write_text("{}\n")
    return root


def test_command_end_to_end(place, tmp_path):
    output, figure = tmp_path / "equations.json", tmp_path / "equations.png"
    result = run("discover", "--data", place / "lorenz.csv", "--degree", "2", "-o", output,
                 "--plot", figure)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "dx/dt = -10.00 x + 10.00 y" in result.stdout
    assert "dy/dt = 28.00 x - 1.00 y - 1.00 x z" in result.stdout
    assert "follows the data" in result.stdout or "stays within" in result.stdout
    stored = json.loads(output.read_text())
    assert stored["reproduction"]["compared_samples"] == 2500
    assert Discovery.from_json(stored).equations()[2] == "dz/dt = -2.67 z + 1.00 x y"
    assert figure.stat().st_size > 10_000
    again = run("discover", "--data", place / "lorenz.csv", "--degree", "2", "--weak",
                "--bagging", "5", "-o", output, "--force")  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert "inclusion probability" in again.stdout and "weak form" in again.stdout


BAD = [
    ("missing", "--data {r}/none.csv", ["does not exist"]),
    ("garbage", "--data {r}/garbage.csv", ["garbage.csv"]),
    ("non-finite", "--data {r}/nan.csv", ["NaN"]),
    ("too-few-samples", "--data {r}/two.csv", ["3 samples"]),
    ("weak-too-few", "--data {r}/short.csv --weak --support 20", ["41 samples"]),
    ("degree-0", "--data {r}/lorenz.csv --degree 0", ["degree", "at least 1"]),
    ("degree-absurd", "--data {r}/lorenz.csv --degree 100000", ["memory", "lower the degree"]),
    ("terms-over-rows", "--data {r}/fifteen.csv --threshold 0.1", ["20 terms", "15 regression"]),
    ("auto-too-few-rows", "--data {r}/twenty-two.csv", ["too few to choose the threshold"]),
    ("threshold-negative", "--data {r}/lorenz.csv --threshold -1", ["threshold", "at least 0"]),
    ("threshold-removes-all", "--data {r}/lorenz.csv --threshold 1000", ["removes every term",
                                                                          "smaller threshold"]),
    ("smoothing-even", "--data {r}/lorenz.csv --smoothing 8", ["odd", "9"]),
    ("smoothing-small", "--data {r}/lorenz.csv --smoothing 5", ["smoothing", "at least 7"]),
    ("smoothing-text", "--data {r}/lorenz.csv --smoothing lots", ["smoothing"]),
    ("bagging-negative", "--data {r}/lorenz.csv --bagging -2", ["bagging"]),
    ("output-exists", "--data {r}/lorenz.csv -o {r}/out/existing.json", ["already exists"]),
    ("output-suffix", "--data {r}/lorenz.csv -o {r}/out/eq.txt", [".json"]),
    ("plot-folder", "--data {r}/lorenz.csv --plot {r}/nowhere/eq.png", ["does not exist"]),
    ("irregular-policy", "--data {r}/lorenz.csv --irregular maybe", ["--irregular"]),
]  # fmt: skip


@pytest.mark.parametrize("arguments, fragments", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_is_refused_in_one_line(place, arguments, fragments):
    before = snapshot(place)
    result = run("discover", *arguments.format(r=place).split())
    assert_refused(result, *fragments)
    assert snapshot(place) == before
