"""Run every benchmark in bench/ (each in its own process) and summarise bench/results/*.json.

A script that crashes makes this exit non-zero; a missed target does not: it is reported in
the summary, and the figures stay in the JSON for anyone to read.

Usage: `python bench/run_all.py [--quick] [--only NAME ...]` (`make bench` runs it in full).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"


def benchmark_scripts() -> list[Path]:
    """Every bench/*.py except helpers (names starting with `_`) and this runner."""
    this = Path(__file__).resolve()
    return sorted(
        p for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.resolve() != this
    )


def summary(since: float) -> Table:
    table = Table(
        title="diffdyn against its peers (ratio = peer / diffdyn; > 1: diffdyn faster)",
        caption="* not rerun this time: figures from the date in its JSON; — a measurement "
        "without a peer (see bench/README.md)",
    )
    for column in ("benchmark", "diffdyn", "peer", "ratio", "target", "met", "compile"):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        stale = path.stat().st_mtime < since
        if "ratio" not in r:  # a measurement without a peer (train_devices)
            table.add_row(r["benchmark"] + (" *" if stale else ""), *["—"] * 6)
            continue
        ratio, target = f"{r['ratio']:.3g}×", f"≥ {r['target']['ratio_at_least']:.3g}×"
        if "rollouts_ratio" in r:  # control_cmaes: seconds and simulator rollouts to a cost
            ratio += f", rollouts {r['rollouts_ratio']:.3g}×"
            target += f", ≥ {r['target']['rollouts_ratio_at_least']:.3g}×"
        table.add_row(
            r["benchmark"] + (" *" if stale else ""),
            f"{r['diffdyn_median_s']:.4g} s",
            f"{r['peer_median_s']:.4g} s",
            ratio,
            target,
            "[green]yes[/]" if r["target_met"] else "[red]NO[/]",
            f"{r['diffdyn_compile_s']:.3g} s",
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="pass --quick to each script (writes nothing)"
    )
    parser.add_argument("--only", nargs="*", default=None, help="script names to run (no .py)")
    args = parser.parse_args(argv)

    console = Console()
    scripts = benchmark_scripts()
    if args.only:
        scripts = [s for s in scripts if s.stem in args.only]
    start = time.time()
    crashed = []
    for script in scripts:
        console.rule(script.name)
        began = time.perf_counter()
        command = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        code = subprocess.run(command).returncode
        console.print(f"{script.name}: exit {code} after {time.perf_counter() - began:.0f} s")
        if code != 0:
            crashed.append(script.name)

    console.rule("summary")
    console.print(summary(since=start))
    missed = [
        json.loads(p.read_text())["benchmark"]
        for p in sorted(RESULTS.glob("*.json"))
        if not json.loads(p.read_text()).get("target_met", True)
    ]
    if missed:
        console.print(f"[red]targets missed:[/] {', '.join(missed)} (see bench/README.md)")
    if crashed:
        console.print(f"[red]crashed:[/] {', '.join(crashed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
