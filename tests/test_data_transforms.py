import json

import equinox as eqx
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from diffdyn.data import Scaler, Series, Windows, make_windows, split_series
from diffdyn.errors import DataError


def make_series(n=100, d=2, exog=False):
    values = np.arange(n * d, dtype=np.float64).reshape(n, d)
    return Series(
        values,
        np.arange(n) * 0.1,
        tuple(f"x{i}" for i in range(d)),
        exog=np.arange(n, dtype=np.float64)[:, None] if exog else None,
        exog_variables=("u",) if exog else (),
        dt=0.1,
        metadata={"system": "test"},
    )


# -- split ----------------------------------------------------------------------------------------


def test_split_default_fractions_in_time_order():
    parts = split_series(make_series(1000))
    assert [len(p) for p in parts] == [700, 150, 150]
    assert float(parts[1].times[0]) == pytest.approx(70.0)
    assert all(p.metadata == {"system": "test"} and p.dt == 0.1 for p in parts)
    np.testing.assert_array_equal(
        np.concatenate([p.values for p in parts]), make_series(1000).values
    )


def test_split_any_number_of_parts_and_leftover():
    parts = split_series(make_series(100), (0.5, 0.25))
    assert [len(p) for p in parts] == [50, 25]
    assert len(split_series(make_series(100), (0.25,) * 4)) == 4


def test_split_by_indices_keeps_exog():
    parts = split_series(make_series(1000, exog=True), indices=[700, 850])
    assert [len(p) for p in parts] == [700, 150, 150]
    np.testing.assert_array_equal(parts[2].exog[:, 0], np.arange(850, 1000))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(fractions=(0.7, 0.5)), "sum to at most 1"),
        (dict(fractions=(0.7, 0.0, 0.3)), "positive"),
        (dict(fractions=(0.5, 0.5), indices=[5]), "not both"),
        (dict(indices=[5, 5]), "increase strictly"),
        (dict(indices=[0]), "between 1 and"),
        (dict(fractions=(0.9, 0.05, 0.05)), "part 2 of the split .* gets 1 of the 20 rows"),
        (dict(indices=[19]), "part 2 .* gets 1 of the 20 rows"),
    ],
)
def test_split_refuses(kwargs, match):
    with pytest.raises(DataError, match=match):
        split_series(make_series(20), **kwargs)


def test_split_tolerates_rounding_in_fraction_sum():
    assert len(split_series(make_series(30), (0.1,) * 10)) == 10


# -- scaler ---------------------------------------------------------------------------------------


def test_scaler_standardises_and_keeps_constant_columns():
    train = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    scaler = Scaler.fit(train)
    np.testing.assert_allclose(scaler.scale, [np.std([1, 3, 5]), 1.0], rtol=1e-6)
    out = scaler.transform(train)
    np.testing.assert_allclose(out.mean(axis=0), [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[:, 1], 0.0)


def test_scaler_constant_column_with_rounding_noise():
    scaler = Scaler.fit(np.full((7, 1), 0.1))
    assert float(scaler.scale[0]) == 1.0


def test_scaler_on_series_and_batches():
    series = make_series(10, exog=True)
    scaler = Scaler.fit(series)
    scaled = scaler.transform(series)
    assert isinstance(scaled, Series) and scaled.variables == series.variables
    np.testing.assert_array_equal(scaled.exog, series.exog)
    batch = jnp.stack([jnp.asarray(series.values)] * 3)
    assert scaler.transform(batch).shape == (3, 10, 2)
    back = scaler.inverse_transform(scaled)
    np.testing.assert_allclose(back.values, series.values, rtol=1e-5)


def test_scaler_under_jit_and_vmap():
    scaler = Scaler.fit(np.random.default_rng(0).standard_normal((50, 3)))
    x = jnp.ones((4, 5, 3))
    out = eqx.filter_jit(jax.vmap(lambda s, v: s.transform(v), in_axes=(None, 0)))(scaler, x)
    np.testing.assert_allclose(out, scaler.transform(x), rtol=1e-6)
    fitted = jax.jit(lambda v: Scaler.fit(v).mean)(x)
    np.testing.assert_allclose(fitted, [1.0, 1.0, 1.0])


def test_scaler_dimension_mismatch_names_both():
    scaler = Scaler.fit(np.ones((5, 2)))
    with pytest.raises(DataError, match="3 variables but the scaler was fitted on 2"):
        scaler.transform(np.ones((4, 3)))
    with pytest.raises(DataError, match="3 variables but the scaler was fitted on 2"):
        scaler.inverse_transform(make_series(5, d=3))


def test_scaler_dict_round_trip_through_json():
    scaler = Scaler.fit(np.random.default_rng(1).standard_normal((20, 4)))
    stored = json.loads(json.dumps(scaler.to_dict()))
    assert isinstance(stored["mean"], list)
    again = Scaler.from_dict(stored)
    np.testing.assert_array_equal(again.mean, scaler.mean)
    np.testing.assert_array_equal(again.scale, scaler.scale)


@pytest.mark.parametrize(
    "stored", [{"mean": [1.0]}, {"mean": [1.0], "scale": [1.0, 2.0]}, {"mean": [0], "scale": [0]}]
)
def test_scaler_from_bad_dict(stored):
    with pytest.raises(DataError):
        Scaler.from_dict(stored)


def test_scaler_refuses_non_finite_training_data():
    with pytest.raises(DataError, match="NaN"):
        Scaler.fit(np.array([[1.0], [np.nan]]))


finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@settings(deadline=None, max_examples=50)
@given(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, max_side=8), elements=finite)
)
def test_scaler_inverse_round_trip(data):
    scaler = Scaler.fit(data)
    back = scaler.inverse_transform(scaler.transform(data))
    np.testing.assert_allclose(back, data, rtol=1e-4, atol=1e-4 * (1 + np.abs(data).max()))
    assert np.all(np.asarray(scaler.scale) > 0)


# -- windows --------------------------------------------------------------------------------------


def test_windows_content():
    series = make_series(10, d=1, exog=True)
    windows = make_windows(series, context=3, horizon=2, stride=2)
    assert isinstance(windows, Windows)
    np.testing.assert_array_equal(windows.start, [0, 2, 4])
    np.testing.assert_array_equal(windows.context[1, :, 0], [2, 3, 4])
    np.testing.assert_array_equal(windows.target[1, :, 0], [5, 6])
    np.testing.assert_array_equal(windows.exog[1, :, 0], [2, 3, 4, 5, 6])


def test_windows_from_jax_array_and_exog_argument():
    values = jnp.arange(20.0).reshape(10, 2)
    windows = make_windows(values, 4, 1, exog=jnp.zeros((10, 3)))
    assert isinstance(windows.context, jax.Array)
    assert windows.context.shape == (6, 4, 2) and windows.exog.shape == (6, 5, 3)
    assert windows.target.shape == (6, 1, 2)


def test_windows_too_short():
    with pytest.raises(DataError) as info:
        make_windows(np.zeros((7, 1)), context=5, horizon=3)
    assert str(info.value).startswith(
        "the series has 7 samples, fewer than one window needs (context 5 + horizon 3 = 8)"
    )


@pytest.mark.parametrize(
    "kwargs", [dict(context=0), dict(horizon=-1), dict(stride=1.5), dict(context=True)]
)
def test_windows_sizes_must_be_positive_ints(kwargs):
    sizes = dict(context=2, horizon=2, stride=1) | kwargs
    with pytest.raises(DataError, match="positive whole number"):
        make_windows(np.zeros((10, 1)), **sizes)


def test_windows_refuse_double_exog_and_bad_shapes():
    with pytest.raises(DataError, match="carries its own"):
        make_windows(make_series(10, exog=True), 2, 2, exog=np.zeros((10, 1)))
    with pytest.raises(DataError, match="exog must be shaped"):
        make_windows(np.zeros((10, 1)), 2, 2, exog=np.zeros((9, 1)))
    with pytest.raises(DataError, match=r"\[time, dim\]"):
        make_windows(np.zeros(10), 2, 2)


@settings(deadline=None, max_examples=100)
@given(
    n_rows=st.integers(2, 60),
    context=st.integers(1, 20),
    horizon=st.integers(1, 20),
    stride=st.integers(1, 10),
)
def test_window_count_and_alignment(n_rows, context, horizon, stride):
    values = np.arange(n_rows, dtype=np.float64)[:, None]
    if n_rows < context + horizon:
        with pytest.raises(DataError):
            make_windows(values, context, horizon, stride)
        return
    windows = make_windows(values, context, horizon, stride)
    count = (n_rows - context - horizon) // stride + 1
    assert windows.context.shape == (count, context, 1)
    assert windows.target.shape == (count, horizon, 1)
    np.testing.assert_array_equal(windows.context[:, 0, 0], windows.start)
    np.testing.assert_array_equal(windows.target[:, 0, 0], windows.start + context)
