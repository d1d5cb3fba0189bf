"""Read and write a `Series` as CSV, Parquet or NPZ.

Reading checks every cell that becomes part of the series and reports the first problem as one
sentence naming the file, the line (or row) and the column. Writing is atomic: the data go to a
temporary file in the target folder, which then replaces the target in one step, so a failed
write never leaves a partial file or touches an existing one.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gc
import json
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import DataError, UnknownNameError, did_you_mean
from ..files import atomic_write, check_output_path
from .sampling import sampling_report
from .series import Series

if TYPE_CHECKING:
    import pandas as pd

SUFFIXES = (".csv", ".parquet", ".pq", ".npz")
# Column names recognised as the time column, case-insensitively, in order of preference.
TIME_COLUMN_NAMES = ("time", "t", "timestamp", "datetime", "date")
# Key of diffdyn's JSON entry in a Parquet file's schema metadata.
PARQUET_KEY = b"diffdyn"


@dataclasses.dataclass
class _Table:
    """Columns as a file holds them, before any checks."""

    path: Path
    names: list[str]
    columns: list[np.ndarray]
    n_rows: int
    # 1-based file line of each data row (CSV); `None` means rows are counted from 1.
    lines: np.ndarray | None = None
    header: str = "the header"
    # What `write_series` stored besides the columns (Parquet, NPZ).
    stored: dict[str, Any] = dataclasses.field(default_factory=dict)

    def where(self, row: int) -> str:
        return f"line {self.lines[row]}" if self.lines is not None else f"row {row + 1}"


def read_series(
    path: str | os.PathLike,
    *,
    time_column: str | None = None,
    variables: Sequence[str] | None = None,
    exog: Sequence[str] | None = None,
    dt: float | None = None,
) -> Series:
    """Read a `Series` from a `.csv`, `.parquet` (`.pq`) or `.npz` file.

    The time column is the one named `time`, `t`, `timestamp`, `datetime` or `date` (any
    case), or `time_column`. Dates are turned into seconds since the first row, recorded in
    `metadata["time_origin"]`. Without a time column, times are `row × dt` and
    `metadata["times_assumed"]` is `True`. Uneven steps give `dt=None` and a one-line summary,
    with any gaps, in `metadata["sampling"]` and `metadata["gaps"]`.

    **Arguments:**

    - `path`: the file; its suffix picks the format.
    - `time_column`: the name of the time column, when it is not one of the usual names.
    - `variables`: the columns that are modelled variables; default: every column that is
        not the time or an exogenous input (or, for files `write_series` wrote, the stored
        split).
    - `exog`: the columns that are exogenous inputs (`Series.exog`); default: none.
    - `dt`: the sampling step: required to match the time column when there is one, else the
        step that the times are built with (default `1.0`).

    **Returns:** a `Series` with NumPy float64 arrays; `metadata["file"]` is `path`.

    **Example:**

    ```python
    import pathlib, tempfile
    from diffdyn.data import read_series

    path = pathlib.Path(tempfile.mkdtemp()) / "pendulum.csv"
    path.write_text("time,angle,torque\\n0.0,0.1,0\\n0.5,0.2,1\\n1.0,0.25,0\\n")
    s = read_series(path, exog=["torque"])
    s.variables, s.exog_variables, s.dt  # (('angle',), ('torque',), 0.5)
    ```
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(
            f"cannot read {path}: unknown file type {path.suffix or '(no suffix)'!r}; "
            f"diffdyn reads {', '.join(SUFFIXES)}."
        )
    if not path.exists():
        raise DataError(f"file {path} does not exist; check the path.")
    if not path.is_file():
        raise DataError(f"{path} is not a file; give the path of a data file.")
    return _to_series(reader(path), time_column, variables, exog, dt)


def check_series_path(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Check, before any work, that `write_series` can write `path` (see `check_output_path`)."""
    return check_output_path(path, force=force, suffixes=SUFFIXES)


def write_series(series: Series, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write `series` to a `.csv`, `.parquet` (`.pq`) or `.npz` file, atomically.

    CSV holds a `time` column, the variables, then the exogenous inputs, at full float64
    precision; Parquet and NPZ also keep which columns are exogenous, `dt` and the metadata
    (as JSON).

    **Arguments:**

    - `series`: an unbatched `Series` (values `[T, d]`).
    - `path`: the file to write; its suffix picks the format; its folder must exist.
    - `force`: overwrite `path` if it exists (`--force` on the command line).

    **Returns:** `path`, as a `Path`.

    **Example:**

    ```python
    import pathlib, tempfile
    import numpy as np
    from diffdyn.data import Series, read_series, write_series

    s = Series(np.random.rand(10, 2), np.arange(10) * 0.1, ("x", "y"), dt=0.1)
    path = write_series(s, pathlib.Path(tempfile.mkdtemp()) / "xy.npz")
    np.array_equal(read_series(path).values, s.values)  # True
    ```
    """
    path = check_series_path(path, force=force)
    writer = _WRITERS[path.suffix.lower()]
    series = series.numpy()
    if series.values.ndim != 2:
        raise DataError(
            f"only an unbatched Series (values [time, dim]) can be written; this one has "
            f"values of shape {series.values.shape}."
        )
    names = ["time", *series.variables, *series.exog_variables]
    for name in names[1:]:
        if names.count(name) > 1:
            raise DataError(
                f"cannot write {path}: the name {name!r} is used twice among the time column, "
                "variables and exogenous inputs; rename it with series.replace(variables=...)."
            )
    stored = _to_json(path, _stored(series))
    atomic_write(path, lambda file: writer(series, file, stored))
    return path


# -- reading ---------------------------------------------------------------------------------


def _read_csv(path: Path) -> _Table:
    try:
        with _garbage_collection_paused():
            rows, lines = _csv_rows(path)
            lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
            filled = np.flatnonzero(lengths > 0)
            if filled.size == 0:
                raise DataError(
                    f"{path} is empty; it needs a header line naming the columns and at least "
                    "2 rows."
                )
            header = [name.strip() for name in rows[filled[0]]]
            header_line = int(lines[filled[0]])
            _check_header(path, header, header_line)
            data = filled[1:]
            ragged = np.flatnonzero(lengths[data] != len(header))
            if ragged.size:
                row = int(data[ragged[0]])
                _raise_ragged(path, header, header_line, rows[row], int(lines[row]))
            cells = [rows[i] for i in data.tolist()]
            columns = [np.array(column, dtype=object) for column in zip(*cells)]
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text; save it as UTF-8 CSV.") from error
    return _Table(
        path,
        header,
        columns or [np.array([], dtype=object) for _ in header],
        len(data),
        lines=lines[data],
        header=f"line {header_line}",
    )


def _csv_rows(path: Path) -> tuple[list[list[str]], np.ndarray]:
    """Every record of a CSV file (blank lines as `[]`) and the file line where each ends."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        try:
            rows = list(reader)
        except csv.Error as error:
            raise DataError(
                f"{path}, line {reader.line_num}: the CSV cannot be parsed ({error}); check the "
                "quoting on that line."
            ) from error
    if reader.line_num == len(rows):
        return rows, np.arange(1, len(rows) + 1)
    # Some quoted field spans lines: count lines record by record, the slow way.
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        lines = [reader.line_num for _ in reader]
    return rows, np.array(lines, dtype=np.int64)


@contextlib.contextmanager
def _garbage_collection_paused():
    # Millions of small lists and strings would otherwise trigger many useless collections,
    # which more than double the time to read a large CSV.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_header(path: Path, header: list[str], line: int) -> None:
    if all(_is_number(name) for name in header):
        raise DataError(
            f"{path}, line {line}: the first line holds numbers, not column names; add a header "
            "line such as 'time,x,y'."
        )
    if len(header) == 1 and any(sep in header[0] for sep in ";\t"):
        raise DataError(
            f"{path}, line {line}: the columns seem separated by ';' or tabs; diffdyn reads "
            "comma-separated files, so save it with commas."
        )


def _raise_ragged(path: Path, header: list[str], header_line: int, row: list[str], line: int):
    n, expected = len(row), len(header)
    if n > expected:
        detail = f"field {expected + 1} lies beyond the last column {header[-1]!r}"
        fix = "remove the extra fields or quote values that contain commas"
    else:
        detail = f"column {header[n]!r} is missing"
        fix = "add the missing values"
    raise DataError(
        f"{path}, line {line}: {n} fields where the header (line {header_line}) names "
        f"{expected} columns, so {detail}; {fix}."
    )


def _read_parquet(path: Path) -> _Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # ParquetFile, unlike read_table, also reads files with repeated column names.
        table = pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path} is not a readable Parquet file ({reason}).") from error
    schema_metadata = table.schema.metadata or {}
    stored = _load_json(path, schema_metadata.get(PARQUET_KEY))
    keep = [
        i for i, name in enumerate(table.column_names) if not name.startswith("__index_level_")
    ]
    return _Table(
        path,
        [table.column_names[i].strip() for i in keep],
        [table.column(i).to_numpy() for i in keep],
        table.num_rows,
        header="the schema",
        stored=stored,
    )


def _read_npz(path: Path) -> _Table:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DataError(f"{path} holds a single .npy array, not an .npz archive.")
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as error:
        raise DataError(
            f"{path} holds pickled objects, which diffdyn never loads (loading could run "
            "code); save arrays of numbers and strings only."
        ) from error
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error}).") from error
    if "values" not in arrays:
        raise DataError(
            f"{path} has no array 'values' (it has {', '.join(sorted(arrays)) or 'none'}); "
            "save it with np.savez(path, values=..., times=...)."
        )
    values = arrays["values"]
    if values.ndim != 2:
        raise DataError(
            f"{path}: 'values' has shape {values.shape}, not [time, dim]; reshape a single "
            "variable to [time, 1]."
        )
    variables = _npz_names(path, arrays, "variables", values.shape[1], "x")
    names, columns = list(variables), [values[:, i] for i in range(values.shape[1])]
    if "times" in arrays:
        times = arrays["times"]
        if times.shape != values.shape[:1]:
            raise DataError(
                f"{path}: 'times' has shape {times.shape} but 'values' has {values.shape[0]} "
                "rows; give one time per row."
            )
        names, columns = ["time", *names], [times, *columns]
    stored: dict[str, Any] = {"variables": list(variables)}
    if "exog" in arrays:
        exog = arrays["exog"]
        if exog.ndim != 2 or exog.shape[0] != values.shape[0]:
            raise DataError(
                f"{path}: 'exog' has shape {exog.shape}; it must be [time, m] with the "
                f"{values.shape[0]} rows of 'values'."
            )
        exog_variables = _npz_names(path, arrays, "exog_variables", exog.shape[1], "u")
        names += exog_variables
        columns += [exog[:, i] for i in range(exog.shape[1])]
        stored["exog_variables"] = list(exog_variables)
    if "dt" in arrays:
        stored["dt"] = float(arrays["dt"])
    if "metadata" in arrays:
        stored["metadata"] = _load_json(path, str(arrays["metadata"]))
    return _Table(path, names, columns, values.shape[0], header="its name arrays", stored=stored)


def _npz_names(path: Path, arrays: dict, key: str, count: int, prefix: str) -> list[str]:
    if key not in arrays:
        return [f"{prefix}{i}" for i in range(count)]
    names = [str(name).strip() for name in np.atleast_1d(arrays[key])]
    if len(names) != count:
        raise DataError(f"{path}: '{key}' holds {len(names)} names for {count} columns.")
    return names


def _load_json(path: Path, text: str | bytes | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        stored = json.loads(text)
    except ValueError as error:
        raise DataError(f"{path}: the stored diffdyn metadata is not valid JSON ({error}).")
    return stored if isinstance(stored, dict) else {}


_READERS: dict[str, Callable[[Path], _Table]] = {
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
    ".npz": _read_npz,
}


# -- from a table to a Series ----------------------------------------------------------------


def _to_series(
    table: _Table,
    time_column: str | None,
    variables: Sequence[str] | None,
    exog: Sequence[str] | None,
    dt: float | None,
) -> Series:
    path = table.path
    _check_names(table)
    variables = [variables] if isinstance(variables, str) else variables
    exog = [exog] if isinstance(exog, str) else exog
    if variables is None and exog is None and "variables" in table.stored:
        variables = table.stored["variables"]
        exog = table.stored.get("exog_variables") or None
    chosen = [*(variables or []), *(exog or [])]
    for name in chosen if time_column is None else [time_column, *chosen]:
        if name not in table.names:
            raise UnknownNameError(
                f"{path} has no column {name!r} (it has {', '.join(table.names)})."
                f"{did_you_mean(name, table.names)}"
            )
    time_name = time_column if time_column is not None else _find_time_column(table, chosen)
    exog = list(exog or [])
    if variables is None:
        variables = [name for name in table.names if name != time_name and name not in exog]
    variables = list(variables)
    _check_selection(path, time_name, variables, exog)

    if table.n_rows < 2:
        where = f" ({table.where(0)})" if table.n_rows else ""
        count = "only one data row" if table.n_rows else "no data rows"
        raise DataError(f"{path} has {count}{where}; a series needs at least 2 rows.")

    metadata = dict(table.stored.get("metadata", {}))
    columns = [*variables, *exog]
    parsed = [_parse_numbers(table.columns[table.names.index(name)]) for name in columns]
    if time_name is not None:
        raw_times = table.columns[table.names.index(time_name)]
        times, bad, problem, time_facts = _parse_times(raw_times)
        parsed.insert(0, (times, bad, problem))
        columns.insert(0, time_name)
    _raise_first_bad_cell(table, columns, parsed)

    stored_dt = table.stored.get("dt")
    if time_name is None:
        dt = 1.0 if dt is None else _positive_step(path, dt)
        times = np.arange(table.n_rows, dtype=np.float64) * dt
        metadata["times_assumed"] = True
    else:
        _check_increasing(table, time_name, times, raw_times)
        metadata.update(time_facts)
        metadata["time_column"] = time_name
        report = sampling_report(times)
        for key in ("sampling", "gaps"):
            metadata.pop(key, None)
        if dt is not None:
            dt = _positive_step(path, dt)
            if not report.regular or abs(report.dt - dt) > 1e-5 * dt:
                raise DataError(
                    f"{path}: dt={dt:g} does not match the time column {time_name!r} "
                    f"({report}); leave dt out to use the times in the file."
                )
        elif report.regular:
            close = stored_dt is not None and abs(stored_dt - report.dt) <= 1e-5 * report.dt
            dt = stored_dt if close else report.dt
        else:
            metadata["sampling"] = str(report)
            metadata["gaps"] = [list(gap) for gap in report.gaps]
    metadata["file"] = str(path)
    metadata.setdefault("source", str(path))

    offset = 0 if time_name is None else 1
    values = np.stack([p[0] for p in parsed[offset : offset + len(variables)]], axis=1)
    exog_values = (
        np.stack([p[0] for p in parsed[offset + len(variables) :]], axis=1) if exog else None
    )
    return Series(
        values,
        times,
        tuple(variables),
        exog=exog_values,
        exog_variables=tuple(exog),
        dt=dt,
        metadata=metadata,
    )


def _check_names(table: _Table) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(table.names):
        if not name:
            raise DataError(
                f"{table.path}, {table.header}: column {i + 1} has no name; name every column."
            )
        if name in seen:
            raise DataError(
                f"{table.path}, {table.header}: the column name {name!r} appears twice "
                f"(columns {seen[name] + 1} and {i + 1}); rename one of them."
            )
        seen[name] = i


def _find_time_column(table: _Table, chosen: list[str]) -> str | None:
    by_lower = {name.lower(): name for name in table.names if name not in chosen}
    for candidate in TIME_COLUMN_NAMES:
        if candidate in by_lower:
            return by_lower[candidate]
    return None


def _check_selection(path: Path, time_name: str | None, variables: list, exog: list) -> None:
    if not variables:
        raise DataError(
            f"{path}: no column is left to model once the time column and exogenous inputs "
            "are set aside; name the variables with variables=[...]."
        )
    names = [*variables, *exog]
    for name in names:
        if name == time_name:
            raise DataError(
                f"{path}: column {name!r} is the time column, so it cannot also be a variable "
                "or exogenous input; name another time column with time_column=..."
            )
        if names.count(name) > 1:
            raise DataError(
                f"{path}: column {name!r} is listed twice among the variables and exogenous "
                "inputs; list each column once."
            )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


_Parsed = tuple[np.ndarray, int | None, str | None]
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _parse_numbers(raw: np.ndarray) -> _Parsed:
    """Float64 values of `raw`, the index of the first unusable cell, and what is wrong."""
    failed = np.zeros(raw.shape, dtype=bool)
    if raw.dtype.kind in "biuf":
        values = raw.astype(np.float64)
    elif raw.dtype.kind in "OUS":
        try:
            values = raw.astype(np.float64)
        except (TypeError, ValueError):
            values = np.full(raw.shape, np.nan)
            for i, cell in enumerate(raw):
                try:
                    values[i] = float(cell)
                except (TypeError, ValueError):
                    failed[i] = True
    else:
        return np.full(raw.shape, np.nan), 0, f"the column holds {raw.dtype} values, not numbers"
    with np.errstate(invalid="ignore"):
        # Models compute in float32: a value beyond its range would become infinite there.
        bad = failed | ~(np.abs(values) <= FLOAT32_MAX)
    if not bad.any():
        return values, None, None
    i = int(np.argmax(bad))
    return values, i, _describe(raw[i], values[i], failed[i], "a number")


def _describe(cell: Any, value: float, failed: bool, expected: str) -> str:
    text = None if cell is None else str(cell).strip()
    if not text or text.lower() == "none":
        return "the cell is empty"
    if failed:
        return f"{text!r} is not {expected}"
    if np.isnan(value):
        return f"the value {text!r} is NaN (missing)"
    if np.isfinite(value):
        return (
            f"the value {text!r} is beyond the range of float32 (±{FLOAT32_MAX:.3g}), which "
            "models compute in"
        )
    return f"the value {text!r} is infinite"


def _parse_times(raw: np.ndarray) -> tuple[np.ndarray, int | None, str | None, dict[str, Any]]:
    """Times as float64, the first unusable cell and what is wrong, and facts for metadata."""
    import pandas as pd

    if raw.dtype.kind == "M":
        stamps = pd.DatetimeIndex(raw)
    elif raw.dtype.kind in "OUS" and not _is_number(raw[0]) and str(raw[0]).strip():
        stamps = _parse_dates(raw)
    else:
        return (*_parse_numbers(raw), {})
    missing = np.asarray(stamps.isna())
    if missing.any():
        i = int(np.argmax(missing))
        return np.full(raw.shape, np.nan), i, _describe(raw[i], 0.0, True, "a time or date"), {}
    # The earliest time is the first row's whenever the times are valid (increasing).
    origin = cast("pd.Timestamp", stamps.min())
    times = np.asarray((stamps - origin) / pd.Timedelta(seconds=1), dtype=np.float64)
    return times, None, None, {"time_origin": origin.isoformat(), "time_unit": "s"}


def _parse_dates(raw: np.ndarray) -> pd.DatetimeIndex:
    import pandas as pd

    def parse(**options) -> pd.DatetimeIndex:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                return pd.to_datetime(raw, errors="coerce", **options)
            except (TypeError, ValueError):
                # Mixed UTC offsets are only comparable in UTC.
                return pd.to_datetime(raw, errors="coerce", utc=True, **options)

    stamps = parse(format="ISO8601")
    if stamps.isna().any():
        guessed = parse()
        if guessed.isna().sum() < stamps.isna().sum():
            stamps = guessed
    return stamps


def _raise_first_bad_cell(table: _Table, columns: list[str], parsed: list[_Parsed]) -> None:
    rows = [bad for _, bad, _ in parsed if bad is not None]
    if not rows:
        return
    row = min(rows)
    for name, (_, bad, problem) in zip(columns, parsed):
        if bad == row:
            raise DataError(
                f"{table.path}, {table.where(row)}, column {name!r}: {problem}; correct the "
                "cell or remove the row."
            )


def _check_increasing(table: _Table, name: str, times: np.ndarray, raw: np.ndarray) -> None:
    steps = np.diff(times)
    back = np.flatnonzero(steps <= 0)
    if back.size == 0:
        return
    i = int(back[0])
    before, after = str(raw[i]).strip(), str(raw[i + 1]).strip()
    where = f"{table.path}, column {name!r}"
    if steps[i] == 0:
        raise DataError(
            f"{where}: {table.where(i)} and {table.where(i + 1)} have the same time {before}; "
            "remove the duplicate row."
        )
    raise DataError(
        f"{where}: the time goes back from {before} at {table.where(i)} to {after} at "
        f"{table.where(i + 1)}; sort the rows by time."
    )


def _positive_step(path: Path, dt: float) -> float:
    dt = float(dt)
    if not (dt > 0 and np.isfinite(dt)):
        raise DataError(f"reading {path}: dt must be a positive number of time units; got {dt}.")
    return dt


# -- writing ---------------------------------------------------------------------------------


def _stored(series: Series) -> dict[str, Any]:
    return {
        "variables": list(series.variables),
        "exog_variables": list(series.exog_variables),
        "dt": series.dt,
        "metadata": series.metadata,
    }


def _to_json(path: Path, content: dict[str, Any]) -> str:
    def plain(obj: Any) -> Any:
        if isinstance(obj, np.generic) or hasattr(obj, "__array__"):
            return np.asarray(obj).tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    try:
        return json.dumps(content, default=plain)
    except (TypeError, ValueError) as error:
        raise DataError(
            f"cannot write {path}: the series metadata cannot be stored as JSON ({error}); "
            "keep it to numbers, strings, lists and dicts."
        ) from error


def _write_csv(series: Series, file: IO[bytes], stored: str) -> None:
    # pandas writes the shortest decimal that reads back to the same float of the column's
    # type: float64 columns come back bit for bit, float32 ones equal after a cast to float32.
    series.to_frame().to_csv(file, index=False, encoding="utf-8")


def _write_parquet(series: Series, file: IO[bytes], stored: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(series.to_frame(), preserve_index=False)
    schema_metadata = {**(table.schema.metadata or {}), PARQUET_KEY: stored.encode()}
    table = table.replace_schema_metadata(schema_metadata)
    pq.write_table(table, file)


def _write_npz(series: Series, file: IO[bytes], stored: str) -> None:
    arrays: dict[str, Any] = {
        "values": np.asarray(series.values),
        "times": np.asarray(series.times),
        "variables": np.array(series.variables, dtype=str),
        "metadata": np.array(json.dumps(json.loads(stored)["metadata"])),
    }
    if series.exog is not None:
        arrays["exog"] = np.asarray(series.exog)
        arrays["exog_variables"] = np.array(series.exog_variables, dtype=str)
    if series.dt is not None:
        arrays["dt"] = np.array(series.dt, dtype=np.float64)
    np.savez(file, **arrays)


_WRITERS: dict[str, Callable[[Series, IO[bytes], str], None]] = {
    ".csv": _write_csv,
    ".parquet": _write_parquet,
    ".pq": _write_parquet,
    ".npz": _write_npz,
}
