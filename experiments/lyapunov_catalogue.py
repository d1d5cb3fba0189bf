"""Compute λ₁ (and the leading exponents) of every catalogue system at its defaults.

Run: `.venv/bin/python experiments/lyapunov_catalogue.py` (a few minutes on 2 cores).
Writes `experiments/results/lyapunov_catalogue.json`; the values marked "computed by diffdyn"
in the system classes come from this file, and `tests/test_lyapunov.py` (slow) checks that a
shorter recomputation agrees with them.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from diffdyn.analysis import lyapunov_spectrum  # noqa: E402
from diffdyn.systems import SYSTEMS  # noqa: E402

# Averaging time per system, in its own time units: long enough for the running estimate to
# settle (see the `convergence` field in the output).
DURATIONS = {
    "lorenz63": 5000.0,
    "rossler": 20000.0,
    "chua": 50000.0,
    "lorenz96": 2000.0,
    "double-pendulum": 5000.0,
    "lotka-volterra": 5000.0,
    "duffing": 20000.0,
    "van-der-pol": 20000.0,
    "logistic": 1e6,
    "henon": 1e6,
    "ikeda": 1e6,
    "narma10": 2e4,
    "mackey-glass": 50000.0,
    "kuramoto-sivashinsky": 20000.0,
    "pendulum": 5000.0,
    "cartpole": 5000.0,
    "lorenz63-control": 5000.0,
}


def main(names: list[str]) -> None:
    out_path = Path(__file__).parent / "results" / "lyapunov_catalogue.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    for name in names or list(SYSTEMS):
        system = SYSTEMS[name]()
        start = time.perf_counter()
        spectrum = lyapunov_spectrum(
            system, duration=DURATIONS[name], key=jax.random.key(0), n_exponents=None
        )
        elapsed = time.perf_counter() - start
        halfway = spectrum.convergence[len(spectrum.convergence) // 2, 0]
        results[name] = {
            "exponents": [round(float(x), 5) for x in spectrum.exponents],
            "largest": round(spectrum.largest, 5),
            "estimate_at_half_time": round(float(halfway), 5),
            "kaplan_yorke_dimension": round(spectrum.kaplan_yorke_dimension, 3),
            "settings": spectrum.settings,
            "reference": system.lyapunov_exponent,
            "reference_source": system.lyapunov_source,
            "seconds": round(elapsed, 1),
        }
        print(name, results[name]["exponents"], f"({elapsed:.0f} s)", flush=True)
        fd, tmp = tempfile.mkstemp(dir=out_path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, out_path)


if __name__ == "__main__":
    main(sys.argv[1:])
