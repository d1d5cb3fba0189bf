"""The results store of a `compare` run: one SQLite file in the run folder (stdlib `sqlite3`).

Tables:

- `runs(id, config, diffdyn_version, jax_version, created)`: the configuration (JSON) the
  folder belongs to, written once; a later run must ask for the same one.
- `results(dataset, model, seed, metric, value, text)`: one row per dataset × model × seed ×
  metric, numbers in `value`, words and JSON in `text`. Every finished cell has a `status`
  row (`ok` or `failed`, with a `reason` row when failed).
- `artifacts(dataset, model, seed, name, json)`: what a cell keeps for the report beside its
  numbers (one forecast against the truth, an attention model's alignment), as JSON.

A cell is written in one transaction, so an interrupted run (Ctrl-C, SIGKILL) loses at most
the cell it was computing and a rerun never duplicates one.
"""

from __future__ import annotations

import csv
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
"""


def _canonical(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


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
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise DiffdynError(
                f"no results in {self.path.parent}: {self.path.name} is missing; "
                "give a folder written by `diffdyn compare`."
            )
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.executescript(_SCHEMA)
            self.db.execute("SELECT count(*) FROM results").fetchone()
        except sqlite3.DatabaseError as error:
            raise DiffdynError(
                f"{self.path} is not a readable diffdyn results database ({error}); it may be "
                "corrupted: move it away, or run into another folder."
            ) from None

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
        return {
            "config": json.loads(config),
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
        """The (dataset, model, seed) cells already recorded."""
        rows = self._query("SELECT dataset, model, seed FROM results WHERE metric = 'status'")
        return {(d, m, int(s)) for d, m, s in rows}

    def write_cell(
        self,
        dataset: str,
        model: str,
        seed: int,
        metrics: dict[str, Any],
        artifacts: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Write all metrics and artifacts of one cell in one transaction (all or nothing)."""
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


def export_csv(run_dir: str | Path, path: str | Path) -> int:
    """Write every stored row of a compare run folder (one per metric) as CSV; return how
    many."""
    with ResultsStore(Path(run_dir) / STORE_FILE, create=False) as store:
        return store.write_csv(path)
