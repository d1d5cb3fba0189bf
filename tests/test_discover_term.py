"""`diffdyn discover DIR --term FIELD` (`discover_network_term`): equations read off the network
field of a system fitted by `diffdyn identify`, end to end on a tiny folder whose "network" is
a known function, and every bad input refused in one line with nothing written."""

from __future__ import annotations

import json
import shutil
import textwrap

import numpy as np
import pytest

from contract import assert_refused, run, snapshot
from diffdyn.data import write_series
from diffdyn.discover import Discovery, discover_network_term
from diffdyn.errors import DiffdynError
from diffdyn.identify import identify_to_folder, load_identified
from diffdyn.identify.folder import read_identified
from diffdyn.systems import get_system, simulate

# A hybrid Lotka–Volterra whose "network" is an Equinox module computing (−b x y, c x y), b
# and c its weights (started at 0.5: the fit must find β = 0.9, γ = 0.8), and a second module
# field that takes (t, state): a module that cannot be evaluated on a state alone.
SYSTEMS = """
import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from diffdyn.systems import AbstractFlow, param


class Interaction(eqx.Module):
    b: Float[Array, ""] = eqx.field(default_factory=lambda: jnp.asarray(0.5))
    c: Float[Array, ""] = eqx.field(default_factory=lambda: jnp.asarray(0.5))

    def __call__(self, state):
        x, y = state
        return jnp.stack([-self.b * x * y, self.c * x * y])


class Forcing(eqx.Module):
    rate: Float[Array, ""] = eqx.field(default_factory=lambda: jnp.asarray(0.0))

    def __call__(self, t, state):
        return self.rate * t * jnp.ones_like(state)


class KnownHybrid(AbstractFlow):
    y0 = (0.44249296, 4.6280594)
    variable_names = ("prey", "predator")
    dt = 0.1
    alpha: Float[Array, ""] = param(1.3)
    delta: Float[Array, ""] = param(1.8)
    net: Interaction = eqx.field(default_factory=Interaction)
    forcing: Forcing = eqx.field(default_factory=Forcing)

    def vector_field(self, t, state):
        prey, predator = state
        known = jnp.stack([self.alpha * prey, -self.delta * predator])
        return known + self.net(state) + self.forcing(t, state)


class Other(KnownHybrid):
    pass
"""


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """An identify folder of `KnownHybrid` fitted (`--fit net`) to clean Lotka–Volterra data
    (t ∈ [0, 3] every 0.1), made by the command."""
    place = tmp_path_factory.mktemp("term")
    (place / "hybrids.py").write_text(textwrap.dedent(SYSTEMS))
    truth = simulate(get_system("lotka-volterra"), t1=3.0, dt=0.1, transient=0.0)
    write_series(truth, place / "lv.csv")
    reference = f"{place / 'hybrids.py'}:KnownHybrid"
    result = run("identify", reference, "--data", place / "lv.csv", "--fit", "net", "--steps",
                 "20", "-o", place / "fit")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return place, reference


def test_the_term_of_a_fitted_network_is_recovered_end_to_end(fitted):
    place, reference = fitted
    output = place / "eqs.json"
    result = run("discover", place / "fit", "--term", "net", "--system", reference, "-o", output)
    assert result.exit_code == 0, result.stderr
    net = load_identified(place / "fit", reference).net
    b, c = float(net.b), float(net.c)
    assert b == pytest.approx(0.9, rel=1e-3) and c == pytest.approx(0.8, rel=1e-3)  # the fit
    assert "net[prey] = -0.90 prey predator" in result.stdout
    assert "net[predator] = 0.80 prey predator" in result.stdout
    assert "31 states of the data" in result.stdout
    stored = json.loads(output.read_text())
    assert stored["kind"] == "terms" and stored["targets"] == ["net[prey]", "net[predator]"]
    assert stored["field"] == "net" and stored["states"] == "data"
    assert stored["system"] == reference and stored["data"] == str(place / "lv.csv")
    found = Discovery.from_json(stored)
    assert found.active_terms("net[prey]") == pytest.approx({"prey predator": -b}, rel=1e-4)
    assert found.active_terms("net[predator]") == pytest.approx({"prey predator": c}, rel=1e-4)
    with pytest.raises(DiffdynError, match="not a system to simulate"):
        found.as_system()  # a term, not the whole rates


def test_the_library_function_uses_the_data_states_and_says_so(fitted):
    place, reference = fitted
    report = discover_network_term(place / "fit", "net", reference, degree=2, threshold=0.05)
    data = simulate(get_system("lotka-volterra"), t1=3.0, dt=0.1, transient=0.0)
    np.testing.assert_allclose(report.states_values, np.asarray(data.values), rtol=1e-5)
    assert report.states == "data" and report.discovery.library.degree == 2
    assert "31 states of the data" in report.discovery.notes[0]
    assert report.discovery.equations()[0] == "net[prey] = -0.90 prey predator"
    assert "values of the term given" in report.discovery.method()


@pytest.mark.slow  # make test-slow: compiles a second identification (prey observed only)
def test_a_latent_variable_makes_it_use_the_fitted_trajectory(fitted, tmp_path):
    place, reference = fitted
    result = identify_to_folder(reference, place / "lv.csv", tmp_path / "prey-only", fit="net",
                                observe="prey", steps=20, progress=False)  # fmt: skip
    identified = read_identified(tmp_path / "prey-only", reference)
    assert identified.latent == ("predator",)
    np.testing.assert_allclose(identified.trajectory().values, result.trajectory.values,
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    report = discover_network_term(tmp_path / "prey-only", "net", reference)
    assert report.states == "fitted trajectory"
    assert "predator latent" in report.discovery.notes[0]
    np.testing.assert_allclose(report.states_values, result.trajectory.values, rtol=1e-4,
                               atol=1e-5)  # fmt: skip
    net = result.system.net
    assert set(report.discovery.active_terms("net[prey]")) == {"prey predator"}
    assert report.discovery.active_terms("net[prey]")["prey predator"] == pytest.approx(
        -float(net.b), rel=1e-3
    )


@pytest.mark.slow  # make test-slow: compiles a third identification (a catalogue system)
def test_a_catalogue_systems_folder_needs_no_system_and_refuses_another(tmp_path):
    truth = simulate(get_system("lotka-volterra"), t1=1.0, dt=0.1, transient=0.0)
    write_series(truth, tmp_path / "lv.csv")
    identify_to_folder("lotka-volterra", tmp_path / "lv.csv", tmp_path / "fit", fit="beta",
                       steps=1, progress=False)  # fmt: skip
    assert_refused(run("discover", tmp_path / "fit", "--term", "beta"),
                   "beta of lotka-volterra is an array", "it has no network field")  # fmt: skip
    assert_refused(run("discover", tmp_path / "fit", "--term", "beta", "--system", "lorenz63"),
                   "was fitted with lotka-volterra, not lorenz63")  # fmt: skip


@pytest.mark.parametrize(
    "arguments, fragments",
    [
        ("{p}/lv.csv --term net", ["is not an identification folder", "result.json"]),
        ("{p} --term net", ["is not an identification folder"]),
        ("{p}/fit --term nett --system {s}", ["no field 'nett'", "network fields: forcing, net",
                                              "Did you mean 'net'"]),
        ("{p}/fit --term alpha --system {s}", ["field alpha", "is an array, not a network"]),
        ("{p}/fit --term forcing --system {s}", ["forcing", "cannot be evaluated on a state",
                                                 "TypeError"]),
        ("{p}/fit --term net", ["holds a system of your file", "add --system {s}"]),
        ("{p}/fit --term net --system {o}", ["was fitted with {s}", "give --system {s}"]),
        ("{p}/fit --data {p}/lv.csv --term net", ["not both"]),
        ("--term net", ["give either --data FILE"]),
        ("--data {p}/lv.csv --term net", ["--term goes with an identify folder"]),
        ("{p}/fit --system {s}", ["needs --term FIELD"]),
        ("{p}/fit --term net --system {s} --weak", ["--weak", "with --data"]),
    ],
)  # fmt: skip
def test_bad_input_is_refused_in_one_line_and_nothing_is_written(fitted, arguments, fragments):
    place, reference = fitted
    other = reference.replace(":KnownHybrid", ":Other")
    fill = {"p": place, "s": reference, "o": other}
    output = place / "refused.json"
    before = snapshot(place)
    result = run("discover", *arguments.format(**fill).split(), "-o", output)
    assert_refused(result, *(f.format(**fill) for f in fragments))
    assert not output.exists() and snapshot(place) == before


@pytest.mark.parametrize("change", ["missing", "changed"])
def test_a_missing_or_changed_data_file_is_refused(fitted, tmp_path, change):
    place, reference = fitted
    data = place / "lv.csv"
    kept = tmp_path / "kept.csv"
    shutil.copy(data, kept)
    try:
        if change == "missing":
            data.unlink()
        else:  # the same file name, one row fewer
            lines = kept.read_text().splitlines()
            data.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
        before = snapshot(place)
        result = run("discover", place / "fit", "--term", "net", "--system", reference, "-o",
                     place / "refused.json")  # fmt: skip
        fragment = "is missing" if change == "missing" else "has changed since"
        assert_refused(result, str(data), fragment)
        assert snapshot(place) == before and not (place / "refused.json").exists()
    finally:
        shutil.copy(kept, data)
