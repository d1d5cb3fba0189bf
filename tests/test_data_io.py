import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from diffdyn.data import Series, io as data_io, read_series, sampling_report, write_series
from diffdyn.errors import DataError, UnknownNameError


def make_series(n=50, dt=0.01, exog=True, dtype=np.float64):
    rng = np.random.default_rng(0)
    return Series(
        rng.standard_normal((n, 2)).astype(dtype) * 1e3,
        np.arange(n) * dt,
        ("x", "y"),
        exog=rng.standard_normal((n, 1)) if exog else None,
        exog_variables=("u",) if exog else (),
        dt=dt,
        metadata={"system": "test", "parameters": {"a": 1.5, "b": [1, 2]}, "noise": 0.0},
    )


def write_text(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path, **kwargs):
    with pytest.raises(DataError) as info:
        read_series(path, **kwargs)
    return str(info.value)


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".pq", ".npz"])
def test_round_trip(tmp_path, suffix):
    series = make_series()
    path = write_series(series, tmp_path / f"s{suffix}")
    exog = ["u"] if suffix == ".csv" else None
    back = read_series(path, exog=exog)
    np.testing.assert_array_equal(back.values, series.values)
    np.testing.assert_array_equal(back.times, series.times)
    np.testing.assert_array_equal(back.exog, series.exog)
    assert back.variables == ("x", "y")
    assert back.exog_variables == ("u",)
    assert back.dt == 0.01
    assert back.metadata["file"] == str(path)
    if suffix != ".csv":
        assert {k: back.metadata[k] for k in series.metadata} == series.metadata


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_round_trip_float32_and_no_exog(tmp_path, suffix):
    series = make_series(exog=False, dtype=np.float32)
    back = read_series(write_series(series, tmp_path / f"s{suffix}"))
    # CSV holds the shortest decimals of the float32 values: equal once cast back to float32.
    np.testing.assert_array_equal(back.values.astype(np.float32), series.values)
    assert back.exog is None and back.variables == ("x", "y")


def test_csv_keeps_full_precision(tmp_path):
    values = np.array([[0.1], [1 / 3], [2.0**-60], [3e38]])
    series = Series(values, np.array([0.0, 0.1, 0.2, 0.3]), ("x",))
    back = read_series(write_series(series, tmp_path / "s.csv"))
    np.testing.assert_array_equal(back.values, values)


def test_float32_times_of_a_long_series_stay_regular(tmp_path, suffix=".csv"):
    times = np.float32(0.01) * np.arange(20_000, dtype=np.float32)
    series = Series(np.zeros((20_000, 1), np.float32), times, ("x",), dt=0.01)
    for suffix in (".csv", ".parquet", ".npz"):
        back = read_series(write_series(series, tmp_path / f"s{suffix}"))
        assert back.dt == 0.01, suffix


def test_csv_with_quoted_newline_keeps_line_numbers(tmp_path):
    path = write_text(tmp_path, 't,"x\nwith note"\n0,1\n1,oops\n')
    assert "line 4, column 'x\\nwith note'" in error_of(path)


def test_csv_layout(tmp_path):
    path = write_series(make_series(n=3), tmp_path / "s.csv")
    assert path.read_text().splitlines()[0] == "time,x,y,u"


def test_jax_series_is_written(tmp_path):
    import jax.numpy as jnp

    series = make_series(exog=False)
    series = series.replace(values=jnp.asarray(series.values))
    back = read_series(write_series(series, tmp_path / "s.npz"))
    np.testing.assert_allclose(back.values, np.asarray(series.values))


def test_parquet_written_by_pandas(tmp_path):
    path = tmp_path / "p.parquet"
    frame = pd.DataFrame({"T": [0.0, 1.0, 2.0], "a": [1, 2, 3], "b": [0.5, 0.25, 0.125]})
    frame.to_parquet(path, index=False)
    series = read_series(path)
    assert series.variables == ("a", "b") and series.dt == 1.0


def test_parquet_datetime_column(tmp_path):
    path = tmp_path / "p.parquet"
    stamps = pd.date_range("2024-01-01", periods=4, freq="h")
    pd.DataFrame({"date": stamps, "a": [1.0, 2.0, 3.0, 4.0]}).to_parquet(path)
    series = read_series(path)
    np.testing.assert_array_equal(series.times, [0.0, 3600.0, 7200.0, 10800.0])
    assert series.metadata["time_origin"] == "2024-01-01T00:00:00"


def test_parquet_bad_cell_names_row_and_column(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({"time": [0.0, 1.0, 2.0], "a": [1.0, None, 3.0]}).to_parquet(path)
    message = error_of(path)
    assert "row 2" in message and "'a'" in message and "NaN" in message


def test_parquet_duplicate_column_names(tmp_path):
    path = tmp_path / "p.parquet"
    table = pa.table(
        [pa.array([0.0, 1.0]), pa.array([1.0, 2.0]), pa.array([3.0, 4.0])], ["t", "a", "a"]
    )
    pq.write_table(table, path)
    assert "'a' appears twice" in error_of(path)


def test_npz_minimal_and_names(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, values=np.ones((4, 2)).cumsum(0))
    series = read_series(path)
    assert series.variables == ("x0", "x1") and series.metadata["times_assumed"] is True
    np.testing.assert_array_equal(series.times, np.arange(4.0))


def test_npz_refuses_pickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, values=np.array([{"a": 1}, None], dtype=object))
    assert "pickled" in error_of(path)


def test_npz_without_values(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, data=np.ones((3, 1)))
    assert "no array 'values'" in error_of(path)


# -- CSV reading ----------------------------------------------------------------------------------


def test_csv_datetime_time_column(tmp_path):
    path = write_text(
        tmp_path,
        "Timestamp,x\n2024-03-01T00:00:00,1\n2024-03-01T00:00:10,2\n2024-03-01T00:00:20,3\n",
    )
    series = read_series(path)
    np.testing.assert_array_equal(series.times, [0.0, 10.0, 20.0])
    assert series.dt == 10.0
    assert series.metadata["time_origin"] == "2024-03-01T00:00:00"
    assert series.metadata["time_unit"] == "s"


def test_csv_without_time_column(tmp_path):
    path = write_text(tmp_path, "a,b\n1,2\n3,4\n5,6\n")
    series = read_series(path, dt=0.5)
    np.testing.assert_array_equal(series.times, [0.0, 0.5, 1.0])
    assert series.dt == 0.5 and series.metadata["times_assumed"] is True


def test_csv_named_time_column_variables_and_exog(tmp_path):
    path = write_text(tmp_path, "clock,a,b,c\n0,1,2,3\n1,4,5,6\n2,7,8,9\n")
    series = read_series(path, time_column="clock", variables=["c", "a"], exog=["b"])
    assert series.variables == ("c", "a") and series.exog_variables == ("b",)
    np.testing.assert_array_equal(series.values[:, 0], [3, 6, 9])


def test_csv_unknown_names_suggest(tmp_path):
    path = write_text(tmp_path, "clock,alpha\n0,1\n1,2\n")
    with pytest.raises(UnknownNameError, match="Did you mean 'clock'"):
        read_series(path, time_column="clok")
    with pytest.raises(UnknownNameError, match="Did you mean 'alpha'"):
        read_series(path, variables=["alpah"])


def test_csv_dt_must_match_times(tmp_path):
    path = write_text(tmp_path, "t,a\n0,1\n1,2\n2,3\n")
    assert "does not match" in error_of(path, dt=0.5)
    assert read_series(path, dt=1.0).dt == 1.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("t,x,y\n0,1,2\n1,abc,3\n2,4,5\n", ["line 3", "'x'", "'abc' is not a number"]),
        ("t,x,y\n0,1,2\n1,2,\n2,4,5\n", ["line 3", "'y'", "empty"]),
        ("t,x,y\n0,1,2\n1,2,3\n2,nan,5\n", ["line 4", "'x'", "NaN"]),
        ("t,x,y\n0,1,inf\n1,2,3\n", ["line 2", "'y'", "infinite"]),
        ("t,x,y\n0,1,2\n1,2,3,4\n", ["line 3", "4 fields", "beyond the last column 'y'"]),
        ("t,x,y\n0,1,2\n1,2\n", ["line 3", "2 fields", "column 'y' is missing"]),
        ("t,x,y\n", ["no data rows"]),
        ("t,x,y\n0,1,2\n", ["only one data row", "line 2"]),
        ("t,x,y\n0,1,2\n1,2,3\n1,3,4\n", ["line 3 and line 4", "same time 1", "'t'"]),
        ("t,x,y\n0,1,2\n2,2,3\n1,3,4\n", ["from 2 at line 3 to 1 at line 4", "sort"]),
        ("t,x,x\n0,1,2\n1,2,3\n", ["line 1", "'x' appears twice", "columns 2 and 3"]),
        ("0,1,2\n1,2,3\n", ["line 1", "header"]),
        ("t,,y\n0,1,2\n1,2,3\n", ["line 1", "column 2 has no name"]),
        ("", ["empty"]),
        (
            "date,x\n2024-01-01,1\nyesterday,2\n",
            ["line 3", "'date'", "'yesterday' is not a time or date"],
        ),
        ("t;x;y\n0;1;2\n", ["';'"]),
    ],
)
def test_csv_problems_name_file_line_and_column(tmp_path, text, expected):
    path = write_text(tmp_path, text)
    message = error_of(path)
    assert str(path) in message
    for part in expected:
        assert part in message
    assert message.count("\n") == 0


def test_csv_blank_lines_keep_line_numbers(tmp_path):
    path = write_text(tmp_path, "t,x\n\n0,1\n1,oops\n")
    assert "line 4" in error_of(path)


def test_csv_first_problem_in_file_order(tmp_path):
    path = write_text(tmp_path, "t,x,y\n0,1,2\n1,2,bad\n2,bad,3\n")
    assert "line 3, column 'y'" in error_of(path)


def test_unused_columns_are_not_checked(tmp_path):
    path = write_text(tmp_path, "t,x,note\n0,1,hello\n1,2,world\n")
    assert read_series(path, variables=["x"]).variables == ("x",)


def test_unknown_suffix_and_missing_file(tmp_path):
    message = error_of(tmp_path / "data.xlsx")
    assert ".csv" in message and ".parquet" in message and ".npz" in message
    assert "does not exist" in error_of(tmp_path / "missing.csv")


def test_irregular_csv_reports_sampling_and_gaps(tmp_path):
    times = [0.0, 0.1, 0.2, 0.3, 1.3, 1.4, 1.5, 1.65]
    text = "t,x\n" + "".join(f"{t},{i}\n" for i, t in enumerate(times))
    series = read_series(write_text(tmp_path, text))
    assert series.dt is None
    assert series.metadata["sampling"].startswith("irregular sampling: median step 0.1")
    assert series.metadata["gaps"] == [[4, 0.3, 1.3]]


# -- writing --------------------------------------------------------------------------------------


def test_refuses_to_overwrite_without_force(tmp_path):
    path = write_series(make_series(), tmp_path / "s.npz")
    with pytest.raises(DataError, match="--force"):
        write_series(make_series(n=10), path)
    assert len(read_series(path)) == 50
    write_series(make_series(n=10), path, force=True)
    assert len(read_series(path)) == 10


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist; create it first"):
        write_series(make_series(), tmp_path / "nope" / "s.csv")


def test_unknown_write_suffix(tmp_path):
    with pytest.raises(DataError, match=r"\.csv, \.parquet, \.pq, \.npz"):
        write_series(make_series(), tmp_path / "s.txt")


def test_name_clash_with_time_column(tmp_path):
    series = Series(np.zeros((3, 1)), np.arange(3.0), ("time",))
    with pytest.raises(DataError, match="'time' is used twice"):
        write_series(series, tmp_path / "s.csv")


def test_metadata_that_is_not_json(tmp_path):
    series = make_series().replace(metadata={"thing": object()})
    with pytest.raises(DataError, match="JSON"):
        write_series(series, tmp_path / "s.parquet")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_failed_write_leaves_old_file_and_no_partial_file(tmp_path, monkeypatch, suffix):
    path = write_series(make_series(), tmp_path / f"s{suffix}")
    before = path.read_bytes()

    def write_half_then_fail(series, file, stored):
        file.write(b"partial data")
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(data_io._WRITERS, suffix, write_half_then_fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_series(make_series(n=5), path, force=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_failed_replace_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "s.csv"

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(DataError, match="No space left on device"):
        write_series(make_series(), path)
    assert list(tmp_path.iterdir()) == []


def test_parquet_stores_json_in_schema(tmp_path):
    path = write_series(make_series(), tmp_path / "s.parquet")
    stored = json.loads(pq.read_schema(path).metadata[b"diffdyn"])
    assert stored["exog_variables"] == ["u"] and stored["dt"] == 0.01


# -- sampling report ------------------------------------------------------------------------------


def test_sampling_report_regular_with_float_noise():
    report = sampling_report(np.arange(10_000) * 0.01)
    assert report.regular and report.dt == 0.01 and report.gaps == ()
    assert str(report) == "regular sampling: step 0.01"


def test_sampling_report_gaps():
    times = np.concatenate([np.arange(10) * 0.01, 12.3 + np.arange(5) * 0.01])
    times = np.concatenate([times, [times[-1] + 0.02]])
    report = sampling_report(times)
    assert not report.regular and report.dt == 0.01
    assert [row for row, _, _ in report.gaps] == [10, 15]
    assert str(report).startswith("irregular sampling: median step 0.01, 2 gaps (largest 12.2")
    assert "at t=0.09" in str(report)


def test_sampling_report_needs_increasing_times():
    with pytest.raises(DataError):
        sampling_report(np.array([0.0, 1.0, 1.0]))
    with pytest.raises(DataError):
        sampling_report(np.array([0.0]))


def test_sampling_report_small_jitter_is_irregular():
    report = sampling_report(np.array([0.0, 0.1, 0.2005, 0.3]))
    assert not report.regular and report.gaps == ()
    assert str(report) == "irregular sampling: median step 0.1, no gaps"


def test_sampling_report_float32_rounding_is_regular():
    times = np.float32(0.01) * np.arange(100_000, dtype=np.float32)
    assert sampling_report(times).dt == 0.01
    assert sampling_report(times.astype(np.float64)).regular
