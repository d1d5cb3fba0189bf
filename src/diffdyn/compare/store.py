"""The results store of a `compare` run: one SQLite file in the run folder (stdlib `sqlite3`).

Tables:

- `runs(id, config, diffdyn_version, jax_version, created)`: the configuration (JSON) the
  folder belongs to, written once; a later run must ask for the same one.
- `results(dataset, model, seed, metric, value, text)`: one row per dataset × model × seed ×
  metric, numbers in `value`, words and JSON in `text`. Every finished cell has a `status`
  row (`ok` or `failed`, with a `reason` row when failed).
- `artifacts(dataset, model, seed, name, json)`: what a cell keeps for the report beside its
  numbers (one forecast against the truth, an attention model's alignment), as JSON.
- `cells(dataset, model, seed, key, request, finished)`: what each finished cell was asked
  to do (`request`: the dataset and a fingerprint of its content, model, seed, budget,
  threshold, λ₁, as JSON) and `key`, a hash of it. A cell counts as finished only while its key
  is the one the grid asks for now: when a data file's content changes, its cells are run
  again (`reconcile` deletes their earlier rows first, so the report never mixes the two).

A cell is written in one transaction, so an interrupted run (Ctrl-C, SIGKILL) loses at most
the cell it was computing and a rerun never duplicates one. `ResultsStore(path, create=False)`
(what `diffdyn results` and the report use) opens the file read-only and never writes; a file
that is not a diffdyn results database is refused before anything is written to it. Stores
written before the `cells` table existed (schema 0) are read as they are and migrated when
`compare` resumes them: their system cells are kept (a system's data are fixed by its name
and seed), their file cells are run again (their content was not recorded).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..errors import DiffdynError
from ..files import atomic_write

STORE_FILE = "results.sqlite"
SCHEMA_VERSION = 2  # PRAGMA user_version; 0 = before the cells table
_TABLES = {
    "runs": {"id", "config", "diffdyn_version", "jax_version", "created"},
    "results": {"dataset", "model", "seed", "metric", "value", "text"},
    "artifacts": {"dataset", "model", "seed", "name", "json"},
}
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    config TEXT NOT NULL,
    diffdyn_version TEXT NOT NULL,
    jax_version TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    seed INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    text TEXT,
    PRIMARY KEY (dataset, model, seed, metric)
);
CREATE TABLE IF NOT EXISTS artifacts (
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    seed INTEGER NOT NULL,
    name TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (dataset, model, seed, name)
);
CREATE TABLE IF NOT EXISTS cells (
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    seed INTEGER NOT NULL,
    key TEXT NOT NULL,
    request TEXT NOT NULL,
    finished REAL NOT NULL,
    PRIMARY KEY (dataset, model, seed)
);
"""


def _canonical(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def cell_key(request: dict[str, Any]) -> str:
    """The hash a cell's request is recognised by (16 hex digits of SHA-256)."""
    return hashlib.sha256(_canonical(request).encode()).hexdigest()[:16]


def _not_ours(path: Path, why: str) -> DiffdynError:
    return DiffdynError(
        f"{path} is not a diffdyn results database ({why}); give a folder written by "
        "`diffdyn compare`, or move the file away."
    )


def _corrupted(path: Path, why: str) -> DiffdynError:
    return DiffdynError(
        f"{path} is not a readable diffdyn results database ({why}); it may be corrupted: move "
        "it away, or run into another folder."
    )


class ResultsStore:
    """The SQLite results of one run folder.

    **Example:**

    ```python
    from diffdyn.compare import ResultsStore

    store = ResultsStore("runs/demo/results.sqlite")
    store.claim({"datasets": ["henon"], "models": ["persistence"], "seeds": 1})
    store.write_cell("henon", "persistence", 0, {"status": "ok", "vpt_mean": 1.5})
    ```
    """

    def __init__(self, path: str | Path, *, create: bool = True):
        """Open (`create=True`: create or resume, for writing) or read (`create=False`:
        read-only; the file must exist) the store at `path`; raise `DiffdynError` for a file
        that is not a diffdyn results database, before anything is written to it."""
        self.path = Path(path)
        self.read_only = not create
        if not create and not self.path.is_file():
            raise DiffdynError(
                f"no results in {self.path.parent}: {self.path.name} is missing; "
                "give a folder written by `diffdyn compare`."
            )
        self._check_header()
        try:
            if self.read_only:
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self.db = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        except sqlite3.DatabaseError as error:
            raise _corrupted(self.path, str(error)) from None
        try:
            self.version = self._check_tables()
            self.db.execute("SELECT count(*) FROM results").fetchone()
        except sqlite3.DatabaseError as error:
            self.db.close()
            raise _corrupted(self.path, str(error)) from None
        except BaseException:
            self.db.close()
            raise

    def _check_header(self) -> None:
        """Refuse a file that SQLite would have to change to open: not a database (SQLite
        would refuse it too), or one in WAL mode (reading it may create files beside it)."""
        if not self.path.is_file():
            return
        try:
            with open(self.path, "rb") as file:
                header = file.read(20)
        except OSError as error:
            raise DiffdynError(f"cannot read {self.path}: {error.strerror or error}.") from None
        if not header:
            if self.read_only:
                raise _not_ours(self.path, "the file is empty")
            return  # an empty file: a new store
        if not header.startswith(_SQLITE_MAGIC):
            raise _corrupted(self.path, "file is not a database")
        if len(header) == 20 and 2 in header[18:20]:
            raise _not_ours(self.path, "a SQLite database in WAL mode, which diffdyn never writes")

    def _check_tables(self) -> int:
        """The schema version, after checking the tables are diffdyn's (creating them in a new
        store, and migrating an old one, unless read-only)."""
        tables = {
            name: {row[1] for row in self.db.execute(f"PRAGMA table_info({name!r})")}
            for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if not tables and self.read_only:
            raise _not_ours(self.path, "it holds no tables")
        if tables:
            missing = [name for name in _TABLES if name not in tables]
            if missing:
                raise _not_ours(
                    self.path,
                    f"it lacks the table(s) {', '.join(missing)}; it holds "
                    f"{', '.join(sorted(tables))}",
                )
            for name, columns in _TABLES.items():
                if not columns <= tables[name]:
                    lacking = ", ".join(sorted(columns - tables[name]))
                    raise _not_ours(self.path, f"its table {name} lacks the column(s) {lacking}")
            if version > SCHEMA_VERSION:
                raise DiffdynError(
                    f"{self.path} was written by a newer diffdyn (schema {version}; this one "
                    f"reads up to {SCHEMA_VERSION}); upgrade diffdyn, or run into another folder."
                )
        if self.read_only or (tables and version == SCHEMA_VERSION and "cells" in tables):
            return version
        self.db.execute("BEGIN IMMEDIATE")  # a new store, or a migration: all or nothing
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return SCHEMA_VERSION

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as error:
            raise DiffdynError(
                f"{self.path} cannot be read ({error}); it may be corrupted."
            ) from None

    def run_info(self) -> dict[str, Any] | None:
        """The stored configuration with the versions, or `None` in a new store."""
        rows = self._query(
            "SELECT config, diffdyn_version, jax_version, created FROM runs ORDER BY id LIMIT 1"
        )
        if not rows:
            return None
        config, diffdyn_version, jax_version, created = rows[0]
        try:
            stored = json.loads(config)
        except (TypeError, ValueError):
            stored = None
        if not isinstance(stored, dict):
            raise DiffdynError(
                f"{self.path} holds a damaged run configuration (not a JSON record); give "
                "another output folder (the results stored there can still be exported with "
                "`diffdyn results --csv`)."
            )
        return {
            "config": stored,
            "diffdyn_version": diffdyn_version,
            "jax_version": jax_version,
            "created": created,
        }

    def claim(self, config: dict[str, Any]) -> None:
        """Record `config` in a new store; in an existing one, check it is the same.

        **Raises** `DiffdynError` when the folder holds a run with another configuration.
        """
        import jax

        from .. import __version__

        info = self.run_info()
        if info is None:
            self.db.execute(
                "INSERT INTO runs (config, diffdyn_version, jax_version, created) "
                "VALUES (?, ?, ?, ?)",
                (_canonical(config), __version__, jax.__version__, time.time()),
            )
            return
        stored = info["config"]
        if _canonical(stored) != _canonical(config):
            changed = sorted(
                k for k in set(stored) | set(config) if stored.get(k) != config.get(k)
            )
            raise DiffdynError(
                f"{self.path.parent} holds a compare run with other options (differing: "
                f"{', '.join(changed)}); rerun with the same options to resume it, or give "
                "another output folder."
            )

    def finished(self) -> set[tuple[str, str, int]]:
        """The (dataset, model, seed) cells recorded, whatever their request, but for those
        `lost` with their worker process (`grid.LOST`: the next run retries them)."""
        rows = self._query(
            "SELECT dataset, model, seed FROM results WHERE metric = 'status' "
            "AND (text IS NULL OR text != 'lost')"
        )
        return {(d, m, int(s)) for d, m, s in rows}

    def reconcile(
        self, requests: dict[tuple[str, str, int], dict[str, Any]]
    ) -> set[tuple[str, str, int]]:
        """The cells of `requests` ({(dataset, model, seed): request}) that are finished for
        that very request; the rows of every other recorded cell of `requests` (another data
        content, or a cell from schema 0 on a file) are deleted, in one transaction, so that
        they are run again and never reported beside the new ones. A schema-0 cell of a
        system (request `kind` `"system"`) is adopted: its data are fixed by name and seed."""
        recorded = self.finished()
        keys = dict(self._query("SELECT dataset || char(0) || model || char(0) || seed, key "
                                "FROM cells"))  # fmt: skip
        done: set[tuple[str, str, int]] = set()
        adopt, stale = [], []
        for cell, request in requests.items():
            stored = keys.get("\x00".join(map(str, cell)))
            key = cell_key(request)
            if cell in recorded and stored == key:
                done.add(cell)
            elif cell in recorded and stored is None and request.get("kind") == "system":
                adopt.append((*cell, key, _canonical(request), time.time()))
                done.add(cell)
            elif cell in recorded or stored is not None:
                stale.append(cell)
        if not adopt and not stale:
            return done
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?)", adopt)
            for table in ("results", "artifacts", "cells"):
                self.db.executemany(
                    f"DELETE FROM {table} WHERE dataset = ? AND model = ? AND seed = ?", stale
                )
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return done

    def write_cell(
        self,
        dataset: str,
        model: str,
        seed: int,
        metrics: dict[str, Any],
        artifacts: dict[str, dict[str, Any]] | None = None,
        *,
        request: dict[str, Any] | None = None,
    ) -> None:
        """Write all metrics and artifacts of one cell, and its `request` (what `reconcile`
        checks), in one transaction (all or nothing)."""
        if "status" not in metrics:
            raise ValueError("a cell needs a 'status' metric")
        rows = []
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                text = value if isinstance(value, str) else json.dumps(value)
                rows.append((dataset, model, seed, metric, None, text))
            else:
                number = float(value)
                rows.append(
                    (
                        dataset,
                        model,
                        seed,
                        metric,
                        number if math.isfinite(number) else None,
                        None if math.isfinite(number) else repr(number),
                    )
                )
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "DELETE FROM results WHERE dataset = ? AND model = ? AND seed = ?",
                (dataset, model, seed),
            )
            self.db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)", rows)
            self.db.execute(
                "DELETE FROM artifacts WHERE dataset = ? AND model = ? AND seed = ?",
                (dataset, model, seed),
            )
            self.db.executemany(
                "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?)",
                [
                    (dataset, model, seed, name, json.dumps(content, allow_nan=False))
                    for name, content in (artifacts or {}).items()
                ],
            )
            self.db.execute(
                "DELETE FROM cells WHERE dataset = ? AND model = ? AND seed = ?",
                (dataset, model, seed),
            )
            if request is not None:
                self.db.execute(
                    "INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?)",
                    (dataset, model, seed, cell_key(request), _canonical(request), time.time()),
                )
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def cells(self) -> dict[tuple[str, str, int], dict[str, Any]]:
        """Every recorded cell: {(dataset, model, seed): {metric: number or text}}."""
        out: dict[tuple[str, str, int], dict[str, Any]] = {}
        rows = self._query(
            "SELECT dataset, model, seed, metric, value, text FROM results "
            "ORDER BY dataset, model, seed, metric"
        )
        for dataset, model, seed, metric, value, text in rows:
            out.setdefault((dataset, model, int(seed)), {})[metric] = (
                value
                if value is not None
                else (float(text) if text in ("nan", "inf", "-inf") else text)
            )
        return out

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM results")[0][0])

    def rows(self) -> list[tuple]:
        """Every stored row: (dataset, model, seed, metric, value, text), in order."""
        return self._query(
            "SELECT dataset, model, seed, metric, value, text FROM results "
            "ORDER BY dataset, model, seed, metric"
        )

    def artifact(self, dataset: str, model: str, name: str) -> dict[str, Any] | None:
        """The artifact `name` of the lowest seed of (dataset, model) that has one, or `None`."""
        rows = self._query(
            "SELECT json FROM artifacts WHERE dataset = ? AND model = ? AND name = ? "
            "ORDER BY seed LIMIT 1",
            (dataset, model, name),
        )
        return json.loads(rows[0][0]) if rows else None

    def write_csv(self, path: str | Path) -> int:
        """Write every stored row (`rows()`) as CSV, atomically; return how many."""
        rows = self.rows()
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["dataset", "model", "seed", "metric", "value", "text"])
        writer.writerows(rows)
        atomic_write(path, lambda f: f.write(buffer.getvalue().encode()))
        return len(rows)


def store_path(run: str | Path) -> Path:
    """The store of a run folder (`run/results.sqlite`), or `run` itself when it is a file;
    raise when `run` does not exist."""
    run = Path(run)
    if not run.exists():
        raise DiffdynError(f"{run} does not exist; give a folder written by `diffdyn compare`.")
    return run if run.is_file() else run / STORE_FILE


def export_csv(run_dir: str | Path, path: str | Path) -> int:
    """Write every stored row of a compare run folder (or its store file; one row per
    metric) as CSV; return how many. The store is only read."""
    with ResultsStore(store_path(run_dir), create=False) as store:
        return store.write_csv(path)
