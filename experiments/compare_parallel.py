"""The same `compare` grid serially, on two worker processes and as Ray tasks: wall time and
whether the rows agree.

Run: `.venv/bin/python experiments/compare_parallel.py [--models ...] [--budget 10]` (about
10 minutes on 2 cores). Each configuration is one `diffdyn compare` process with its own empty
compilation cache (so no run profits from another's compiling), on the default systems
(Lorenz-63, Mackey–Glass) with six models spanning the families' costs. Writes
`experiments/results/compare_parallel.json` atomically.

What "the same numbers" can mean here: a closed-form model (NG-RC, ESN, persistence) fits in
one solve, so its row must agree exactly whatever runs it; a gradient-trained model stops at
its wall-clock budget, so the number of steps it takes — and its scores — depend on how busy
the machine is. Its rows are listed side by side, not required to agree.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
DIFFDYN = Path(sys.executable).parent / "diffdyn"
MODELS = "persistence,ngrc,esn,tdnn,gru,lstm"
CONFIGURATIONS = {
    "serial": ["--workers", "1"],
    "workers-2": ["--workers", "2"],
    "ray-local-2": ["--workers", "2", "--ray", "local"],
}


def _rows(store: Path) -> dict[str, dict[str, float | str | None]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT dataset, model, metric, value, text FROM results "
            "WHERE metric IN ('status', 'vpt_mean', 'smape', 'train_seconds')"
        ).fetchall()
    out: dict[str, dict[str, float | str | None]] = {}
    for dataset, model, metric, value, text in rows:
        out.setdefault(f"{dataset}/{model}", {})[metric] = value if text is None else text
    return out


def timed_compare(name: str, tmp: Path, options: list[str]) -> tuple[Path, float, float]:
    """One `diffdyn compare OPTIONS -o TMP/NAME` process with its own empty compilation cache
    (so no run profits from another's compiling): its run folder, wall seconds and the load
    average before it. A failing grid ends the study with its stderr."""
    out, cache = tmp / name, tmp / f"cache-{name}"
    cache.mkdir()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([str(DIFFDYN), "compare", *options, "-o", str(out)],
                          env={**os.environ, "DIFFDYN_CACHE_DIR": str(cache)},
                          capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr[-2000:]}")
    print(f"{name}: {seconds:.0f} s (load {load:.1f})", flush=True)
    return out, seconds, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--budget", default="10")
    parser.add_argument("--only", default=",".join(CONFIGURATIONS))
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            options = ["--models", args.models, "--budget-per-model", args.budget]
            out, seconds, load = timed_compare(name, Path(tmp), options + CONFIGURATIONS[name])
            runs[name] = {
                "seconds": seconds,
                "load_before": load,
                "rows": _rows(out / "results.sqlite"),
            }
    serial = runs.get("serial")
    closed = {"persistence", "ngrc", "esn"}
    summary = {}
    for name, run in runs.items():
        entry = {"seconds": run["seconds"]}
        if serial is not None and name != "serial":
            entry["wall_time_ratio_to_serial"] = run["seconds"] / serial["seconds"]
            same = [k for k in serial["rows"] if k.split("/")[1] in closed]
            entry["closed_form_rows_identical"] = all(
                {m: v for m, v in serial["rows"][k].items() if m != "train_seconds"}
                == {m: v for m, v in run["rows"][k].items() if m != "train_seconds"}
                for k in same
            )
        summary[name] = entry
    result = {
        "what": "one compare grid serially, on 2 processes and as Ray tasks",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "models": args.models.split(","),
        "budget_per_model_s": float(args.budget),
        "summary": summary,
        "runs": runs,
    }
    from diffdyn.files import atomic_write

    path = RESULTS / "compare_parallel.json"
    atomic_write(path, lambda f: f.write(json.dumps(result, indent=2).encode()))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
