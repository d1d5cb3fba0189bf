"""The tail every study script shares: stamp a result record with the machine, the date and
the run's length, and write it as JSON atomically (a killed run leaves the last file whole)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import jax

from diffdyn import __version__
from diffdyn.files import atomic_write


def write_record(path: Path, record: dict[str, Any], started: float) -> None:
    """Add `machine`, `date` and `total_seconds` (since `started`, a `time.perf_counter()`)
    to `record` and write it to `path`."""
    record["machine"] = {
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15min": list(os.getloadavg()),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "diffdyn": __version__,
    }
    record["date"] = datetime.date.today().isoformat()
    record["total_seconds"] = time.perf_counter() - started
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    print(f"wrote {path}")
