"""The ESN ensemble: independent reservoirs, each readout fitted alone, the median forecast."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contract import assert_refused, run
from diffdyn.data import Series
from diffdyn.errors import DiffdynError
from diffdyn.models import ESN, ESNEnsemble, build_model
from diffdyn.train import DataSource, checkpoint
from diffdyn.train.training import train_forecaster


def _series(n=400):
    t = np.arange(n) * 0.1
    return np.stack([np.sin(t) + 0.3 * np.sin(2.7 * t), np.cos(1.3 * t)], axis=1)


def _circle(n=400):
    t = np.arange(n) * 0.1
    return np.stack([np.sin(t), np.cos(t)], axis=1)


def test_one_member_is_the_esn_drawn_from_the_first_split_key():
    y = _series()
    key = jax.random.key(3)
    ensemble = ESNEnsemble(2, key=key, members=1, size=60, washout=20).fit_closed_form(y[:300])
    single = ESN(2, key=jax.random.split(key, 1)[0], size=60, washout=20, tune="off")
    single = single.fit_closed_form(y[:300])
    np.testing.assert_array_equal(
        ensemble(y[250:300], horizon=40)[0], single(y[250:300], horizon=40)[0]
    )


def test_the_forecast_is_the_members_median_and_the_members_differ():
    y = _circle()
    ensemble = ESNEnsemble(2, key=jax.random.key(0), members=3, size=60, washout=20)
    ensemble = ensemble.fit_closed_form(y[:300])
    each = np.stack([np.asarray(m(y[250:300], horizon=40)[0]) for m in ensemble.members])
    assert not np.array_equal(each[0], each[1])  # independent reservoirs, not one copied
    assert not np.array_equal(ensemble.members[0].input_unit, ensemble.members[1].input_unit)
    forecast, aux = ensemble(y[250:300], horizon=40)
    assert forecast.shape == (40, 2) and aux == {}
    np.testing.assert_allclose(forecast, np.median(each, axis=0), rtol=1e-6, atol=1e-7)
    # a circle every member forecasts well, so the median does too
    assert float(np.max(np.abs(forecast - y[300:340]))) < 0.05


def test_the_fitted_ensemble_survives_a_checkpoint_round_trip(tmp_path):
    y = _series()
    series = Series(y[:300], np.arange(300.0) * 0.1, ("a", "b"), dt=0.1)
    fitted, result = train_forecaster(
        series, DataSource.of_series(series), "esn-ensemble", tmp_path / "m",
        hyperparameters={"members": 3, "size": 60, "washout": 20, "tune": "off"}, progress=False,
    )  # fmt: skip
    assert result.stop_reason == "fitted in closed form" and result.tuning is None
    loaded, stored = checkpoint.load_model(tmp_path / "m")
    assert stored["model"] == "esn-ensemble" and stored["hyperparameters"]["members"] == 3
    for a, b in zip(loaded.members, fitted.members, strict=True):
        assert float(a.ridge) == float(b.ridge)  # each member's chosen α travels with it
    np.testing.assert_array_equal(loaded(y[:50], horizon=8)[0], fitted(y[:50], horizon=8)[0])


@pytest.mark.parametrize(
    ("hyperparameters", "fragment"),
    [({"members": 0}, "1 to 64 members"), ({"members": 65}, "1 to 64 members")],
)
def test_a_bad_member_count_is_refused(hyperparameters, fragment):
    with pytest.raises(DiffdynError, match=fragment):
        build_model("esn-ensemble", 2, key=jax.random.key(0), **hyperparameters)


def test_tuning_goes_through_the_first_member_and_every_member_gets_the_tuned_values(tmp_path):
    y = _series()
    series = Series(y[:300], np.arange(300.0) * 0.1, ("a", "b"), dt=0.1)
    fitted, result = train_forecaster(
        series, DataSource.of_series(series), "esn-ensemble", tmp_path / "m",
        hyperparameters={"members": 3, "size": 40, "washout": 20, "tune": "on"},
        budget=30.0, progress=False,
    )  # fmt: skip
    tuning = result.tuning
    assert tuning is not None and tuning.model == "esn-ensemble"
    assert result.stop_reason.startswith("tuned (")
    assert tuning.tuned_loss <= tuning.initial_loss
    assert set(tuning.tuned) == set(ESN.tunable)
    for member in fitted.members:
        assert member.tune == "off"  # the members never tune themselves
        for name, value in tuning.tuned.items():
            assert float(getattr(member, name)) == pytest.approx(value, rel=1e-6)
    # the same values, but still independent reservoirs with their own readouts
    assert not np.array_equal(fitted.members[0].readout, fitted.members[1].readout)
    loaded, stored = checkpoint.load_model(tmp_path / "m")
    assert stored["tuning"]["model"] == "esn-ensemble"
    np.testing.assert_array_equal(loaded(y[:50], horizon=8)[0], fitted(y[:50], horizon=8)[0])


def test_with_values_gives_every_member_the_values_and_auto_follows_the_esn_rule():
    from diffdyn.train.reservoir_tuning import tunes_by_default

    ensemble = ESNEnsemble(2, key=jax.random.key(0), members=2, size=20, washout=5)
    changed = ensemble.with_values({"spectral_radius": 0.3, "ridge": 1e-7})
    assert [float(m.spectral_radius) for m in changed.members] == pytest.approx([0.3, 0.3])
    assert [float(m.ridge) for m in changed.members] == pytest.approx([1e-7, 1e-7])
    assert ensemble.tunable_member() is ensemble.members[0]
    esn = ESN(2, key=jax.random.key(0), size=20, washout=5)
    for budget, rows in [(None, 5000), (10.0, 1000), (10.0, 5000), (5.0, 800), (200.0, 9000)]:
        assert tunes_by_default(ensemble, budget, rows) == tunes_by_default(esn, budget, rows)
    off = ESNEnsemble(2, key=jax.random.key(0), members=2, size=20, washout=5, tune="off")
    assert not tunes_by_default(off, None, 100)
    with pytest.raises(DiffdynError, match="tune=auto, on or off"):
        ESNEnsemble(2, key=jax.random.key(0), tune="maybe")


def test_the_cli_refuses_a_zero_member_ensemble_in_one_line(tmp_path):
    y = _series(300)
    data = tmp_path / "data.csv"
    np.savetxt(data, np.column_stack([np.arange(300) * 0.1, y]), delimiter=",",
               header="t,a,b", comments="")  # fmt: skip
    result = run("train", "--data", data, "--model", "esn-ensemble", "-p", "members=0",
                 "-o", tmp_path / "out")  # fmt: skip
    assert_refused(result, "members")
    assert not (tmp_path / "out").exists()


def test_a_member_that_goes_non_finite_drops_out_of_the_median():
    y = _circle()
    ensemble = ESNEnsemble(2, key=jax.random.key(1), members=3, size=60, washout=20)
    ensemble = ensemble.fit_closed_form(y[:300])
    broken = eqx.tree_at(lambda m: m.members[2].readout, ensemble,
                         jnp.full_like(ensemble.members[2].readout, jnp.nan))  # fmt: skip
    forecast, _ = broken(y[250:300], horizon=20)
    others = np.stack([np.asarray(m(y[250:300], horizon=20)[0]) for m in ensemble.members[:2]])
    np.testing.assert_allclose(forecast, np.median(others, axis=0), rtol=1e-6, atol=1e-7)
