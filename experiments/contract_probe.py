"""A hostile-input probe of the CLI contract (issue 13), generated rather than hand-listed.

Run: `.venv/bin/python experiments/contract_probe.py` (about 2 minutes on 2 cores; `--kills N`
adds N random Ctrl-C / SIGTERM / SIGKILL interruptions each of `train` and `compare`, then
resumes, about 15 s each). Writes `experiments/results/contract_probe.json`.

Every case is bad input: a malformed or unusable file given to each command that reads one,
an out-of-range or non-numeric value given to each numeric option, an output path that must
not be written (exists without --force, in a missing folder, under a file, wrong suffix), or a
damaged model folder. A case keeps the promise when the command exits with status 2, prints
exactly one `error: ...` line on stderr and no traceback, and leaves the folder it ran in
exactly as it was (every file's bytes, no file or folder created). Cases run in-process
through Typer's runner; the kills run real processes.

The kill probe: each round starts `diffdyn train` (an LSTM, 2000 samples of Lorenz-63) or a
small `diffdyn compare` grid as a process, interrupts it with a random signal after a random
0.5–10 s, checks the exit (130 for SIGINT, 143 for SIGTERM, each with one `error:` line), that
no temporary file is left, and then resumes with the same command to the end. It passes when
the resumed train finishes with a step count no smaller than the interrupted run had saved,
and the resumed grid holds every cell exactly once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from diffdyn.cli import app

HERE = Path(__file__).parent
RUNNER = CliRunner()


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for path in [root, *sorted(root.rglob("*"))]:
        out[str(path)] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def write_inputs(root: Path) -> dict[str, Path]:
    """The bad (and the good) files the probe hands to commands."""
    t = np.arange(1000) * 0.01
    good = "time,x,y\n" + "".join(f"{a:.2f},{math.sin(a)},{math.cos(2 * a)}\n" for a in t)
    lines = good.splitlines()
    files = {
        "good.csv": good,
        "empty.csv": "",
        "blank-lines.csv": "\n\n\n",
        "header-only.csv": "time,x,y\n",
        "one-row.csv": "time,x,y\n0,1,2\n",
        "binary.csv": bytes(range(256)) * 8,
        "utf16.csv": good.encode("utf-16"),
        "words.csv": "time,x\n" + "".join(f"{k},word{k}\n" for k in range(100)),
        "ragged.csv": "\n".join(lines[:300] + ["3.00,1"] + lines[301:]) + "\n",
        "extra-cell.csv": "\n".join(lines[:300] + ["3.00,1,2,3"] + lines[301:]) + "\n",
        "nan.csv": "\n".join(lines[:500] + ["5.00,nan,1"] + lines[501:]) + "\n",
        "empty-cell.csv": "\n".join(lines[:500] + ["5.00,,1"] + lines[501:]) + "\n",
        "inf.csv": "\n".join(lines[:500] + ["5.00,-inf,1"] + lines[501:]) + "\n",
        "overflow32.csv": "\n".join(lines[:500] + ["5.00,1e39,1"] + lines[501:]) + "\n",
        "overflow64.csv": "\n".join(lines[:500] + ["5.00,1e400,1"] + lines[501:]) + "\n",
        "decreasing.csv": "\n".join([lines[0], *reversed(lines[1:])]) + "\n",
        "duplicate-time.csv": "\n".join(lines[:500] + lines[499:]) + "\n",
        "duplicate-column.csv": "time,x,x\n" + "\n".join(lines[1:]) + "\n",
        "no-header-names.csv": ",,\n" + "\n".join(lines[1:]) + "\n",
        "gap.csv": "time,x,y\n"
        + "".join(f"{a + (40 if a >= 5 else 0):.2f},{math.sin(a)},{math.cos(a)}\n" for a in t),
        "jitter.csv": "time,x,y\n"
        + "".join(f"{a + 0.004 * math.sin(37 * a):.5f},{math.sin(a)},{math.cos(a)}\n" for a in t),
        "dates-bad.csv": "date,x\n" + "".join(f"2020-13-{k:02d},1\n" for k in range(1, 40)),
        "short.csv": "time,x\n" + "".join(f"{k * 0.1:.1f},{k}\n" for k in range(15)),
        "constant-time.csv": "time,x\n" + "".join(f"0,{k}\n" for k in range(100)),
        "notes.txt": good,
        "json.json": '{"x": [1, 2, 3]}',
        "fake.parquet": "not parquet",
        "fake.npz": "not npz",
    }
    paths = {}
    for name, content in files.items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        paths[name] = path
    (root / "a-folder.csv").mkdir()
    paths["a-folder.csv"] = root / "a-folder.csv"
    paths["missing.csv"] = root / "missing.csv"
    return paths


def damaged_models(root: Path, model: Path) -> list[Path]:
    """Copies of a model folder, each damaged another way."""
    out = []
    sidecar = json.loads((model / "model.json").read_text())

    def copy(name, edit_json=None, text=None, eqx=None):
        folder = root / f"damaged-{name}"
        folder.mkdir()
        stored = json.loads(json.dumps(sidecar))
        if edit_json is not None:
            edit_json(stored)
        body = text if text is not None else json.dumps(stored)
        (folder / "model.json").write_text(body)
        eqx_bytes = (model / "model.eqx").read_bytes()
        (folder / "model.eqx").write_bytes(eqx_bytes if eqx is None else eqx(eqx_bytes))
        out.append(folder)

    def set_key(key, value):
        def edit(stored):
            target = stored
            *parents, last = key.split(".")
            for k in parents:
                target = target.setdefault(k, {})
            target[last] = value

        return edit

    copy("garbage-json", text="{not json")
    copy("empty-json", text="")
    copy("list-json", text="[1, 2]")
    copy("truncated-eqx", eqx=lambda b: b[: len(b) // 2])
    copy("empty-eqx", eqx=lambda b: b"")
    copy("negative-dt", set_key("dt", -0.01))
    copy("zero-dt", set_key("dt", 0))
    copy("text-dt", set_key("dt", "fast"))
    copy("no-variables", lambda s: s.pop("variables", None))
    copy("no-model", lambda s: s.pop("model", None))
    copy("unknown-model", set_key("model", "gpt"))
    copy("nan-scale", lambda s: _poison_scale(s, float("nan")))
    copy("zero-scale", lambda s: _poison_scale(s, 0.0))
    copy("format-99", set_key("format", 99))
    copy("variables-number", set_key("variables", 3))
    return out


def _poison_scale(stored: dict, value: float) -> None:
    def walk(node):
        if isinstance(node, dict):
            for key, item in node.items():
                if key in ("std", "scale") and isinstance(item, list):
                    node[key] = [value] * len(item)
                else:
                    walk(item)

    walk(stored)


def cases(p: dict[str, Path], root: Path, model: Path, damaged: list[Path]) -> list[list[str]]:
    out_dir = root / "out"
    good, exists_csv, exists_json = p["good.csv"], out_dir / "exists.csv", out_dir / "exists.json"
    bad_files = [
        n
        for n in p
        if n not in ("good.csv", "gap.csv", "jitter.csv")  # irregular ones: default refuses
    ] + ["gap.csv", "jitter.csv"]
    found: list[list[str]] = []
    # 1. every command that reads a file × every unusable file
    for name in bad_files:
        f = str(p[name])
        found += [
            ["train", "--data", f, "--model", "persistence", "-o", str(out_dir / "t")],
            ["train", "--data", f, "--model", "ngrc", "-o", str(out_dir / "t")],
            ["evaluate", str(model), "--data", f],
            ["forecast", str(model), "--data", f, "--steps", "5", "-o", str(out_dir / "f.csv")],
            ["compare", "--data", f, "--models", "persistence", "-o", str(out_dir / "c")],
        ]
    # 2. numeric options × values outside what they accept
    sim = ["simulate", "lorenz63", "-o", str(out_dir / "s.csv")]
    train = ["train", "--data", str(good), "--model", "lstm", "-o", str(out_dir / "t")]
    evaluate = ["evaluate", str(model), "--data", str(good)]
    forecast = ["forecast", str(model), "--data", str(good), "-o", str(out_dir / "f.csv")]
    compare = [
        "compare",
        "--systems",
        "henon",
        "--models",
        "persistence",
        "-o",
        str(out_dir / "c"),
    ]
    task = ["task", "copy", "--model", "lstm"]
    nonsense = ["nan", "inf", "-inf", "abc", "1e400"]
    numeric = {
        (tuple(sim), "--steps"): ["0", "1", "-5", "2.5", "99999999999999999999", *nonsense],
        (tuple(sim), "--dt"): ["0", "-0.01", *nonsense],
        (tuple(sim), "--t1"): ["0", "-1", *nonsense],
        (tuple(sim), "--transient"): ["-1", *nonsense],
        (tuple(sim), "--noise"): ["-0.1", *nonsense],
        (tuple(sim), "--rtol"): ["0", "-1e-6", "2", *nonsense],
        (tuple(sim), "--atol"): ["0", "-1e-8", *nonsense],
        (tuple(sim), "--seed"): ["-1", "2.5", "99999999999999999999", "abc"],
        (tuple(train), "--learning-rate"): ["0", "-0.001", *nonsense],
        (tuple(train), "--epochs"): ["0", "-1", "1.5", "abc"],
        (tuple(train), "--batch-size"): ["0", "-8", "abc"],
        (tuple(train), "--context"): ["0", "99999999999", "abc"],
        (tuple(train), "--horizon"): ["0", "-1", "abc"],
        (tuple(train), "--budget"): ["0", "-5", "5x", "abc", "inf", "nan"],
        (tuple(evaluate), "--threshold"): ["0", "-0.5", *nonsense],
        (tuple(evaluate), "--starts"): ["0", "1", "abc"],
        (tuple(evaluate), "--horizon"): ["0", "abc"],
        (tuple(evaluate), "--lyapunov-exponent"): ["0", "-1", *nonsense],
        (tuple(forecast), "--steps"): ["0", "-1", "abc", "10000000000"],
        (tuple(compare), "--seeds"): ["0", "-1", "abc"],
        (tuple(compare), "--budget-per-model"): ["0", "-1", "abc", "inf"],
        (tuple(compare), "--threshold"): ["0", "-1", "nan", "inf"],
        (tuple(compare), "--workers"): ["0", "-2", "abc"],
        (tuple(task), "--steps"): ["0", "-1", "abc"],
        (tuple(task), "--budget"): ["0", "abc", "-1m"],
    }
    for (base, flag), values in numeric.items():
        for value in values:
            found.append([*base, f"{flag}={value}"])
    options = {
        "clip": ["0", "-1", *nonsense],
        "weight_decay": ["-1", *nonsense],
        "patience": ["-1", "1.5", *nonsense],
        "validation": ["1", "-0.1", "0.95", *nonsense],
        "warmup": ["1", "-0.1", *nonsense],
        "stride": ["0", "abc"],
        "max_failures": ["-1", "abc"],
        "schedule": ["linear"],
        "strategy": ["teacherr"],
        "nosuch": ["1"],
    }
    for option, values in options.items():
        for value in values:
            found.append([*train, "--option", f"{option}={value}"])
    hyper = {"hidden": ["1e9", "100000", "-1", "abc", "4.5", "nan"], "layers": ["-1", "1e9"]}
    for key, values in hyper.items():
        for value in values:
            found.append([*train, "-p", f"{key}={value}"])
    found += [
        [
            "train",
            "--data",
            str(good),
            "--model",
            "esn",
            "-p",
            "size=1000000",
            "-o",
            str(out_dir / "t"),
        ],
        [
            "train",
            "--data",
            str(good),
            "--model",
            "esn",
            "-p",
            "leak=-1",
            "-o",
            str(out_dir / "t"),
        ],
        [
            "train",
            "--data",
            str(good),
            "--model",
            "ngrc",
            "-p",
            "ridge=-1",
            "-o",
            str(out_dir / "t"),
        ],
        [
            "train",
            "--data",
            str(good),
            "--model",
            "transformer",
            "-p",
            "heads=3",
            "-o",
            str(out_dir / "t"),
        ],
        ["compare", "--systems", "henon", "--models", "", "-o", str(out_dir / "c")],
        ["compare", "--systems", "henon", "--models", ",", "-o", str(out_dir / "c")],
        ["compare", "--systems", "henonn", "-o", str(out_dir / "c")],
        ["compare", "--systems", "henon", "--models", "lstmm", "-o", str(out_dir / "c")],
    ]
    # 3. output paths that must not be written
    for command, suffix, exists in (
        (["simulate", "lorenz63"], ".csv", exists_csv),
        (["forecast", str(model), "--data", str(good), "--steps", "5"], ".csv", exists_csv),
        (["evaluate", str(model), "--data", str(good)], ".json", exists_json),
        (["task", "copy", "--steps", "1"], ".json", exists_json),
    ):
        found += [
            [*command, "-o", str(exists)],
            [*command, "-o", str(root / "nowhere" / f"x{suffix}")],
            [*command, "-o", str(p["notes.txt"] / f"x{suffix}")],
            [*command, "-o", str(out_dir / "x.wrong")],
            [*command, "-o", str(out_dir)],
        ]
    found += [
        ["train", "--data", str(good), "--model", "persistence", "-o", str(model)],
        ["train", "--data", str(good), "--model", "persistence", "-o", str(p["notes.txt"] / "m")],
        [
            "train",
            "--data",
            str(good),
            "--model",
            "persistence",
            "-o",
            str(root / "nowhere" / "m"),
        ],
        ["evaluate", str(model), "--data", str(good), "-o", str(model / "model.json")],
        ["evaluate", str(model), "--data", str(good), "-o", str(model / "model.eqx")],
        ["results", str(p["good.csv"])],
        ["results", str(out_dir)],
        ["results", str(root / "foreign")],
        ["results", str(root / "empty-db")],
    ]
    # 4. damaged model folders
    for folder in damaged:
        found += [
            ["evaluate", str(folder), "--data", str(good)],
            [
                "forecast",
                str(folder),
                "--data",
                str(good),
                "--steps",
                "5",
                "-o",
                str(out_dir / "f.csv"),
            ],
        ]
    return found


def run_case(args: list[str], root: Path) -> dict:
    before = snapshot(root)
    started = time.perf_counter()
    result = RUNNER.invoke(app, args)
    seconds = time.perf_counter() - started
    lines = result.stderr.strip().splitlines()
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    unchanged = snapshot(root) == before
    kept = (
        result.exit_code == 2
        and len(lines) == 1
        and lines[0].startswith("error: ")
        and "Traceback" not in result.stderr + result.stdout
        and not crashed
        and unchanged
    )
    return {
        "args": args,
        "kept": kept,
        "exit": result.exit_code,
        "stderr_lines": len(lines),
        "message": lines[-1][:300] if lines else "",
        "crashed": repr(result.exception) if crashed else None,
        "changed_files": not unchanged,
        "seconds": round(seconds, 3),
    }


def kill_round(kind: str, root: Path, rng: random.Random, index: int) -> dict:
    """Start, interrupt at random, check, resume to the end, check again."""
    folder = root / f"kill-{kind}-{index}"
    base = [sys.executable, "-c", "from diffdyn.entry import main; main()"]
    if kind == "train":
        command = [*base, "train", "--system", "lorenz63", "--steps", "2000", "--model", "lstm",
                   "-p", "hidden=16", "--epochs", "2", "--option", "patience=0",
                   "-o", str(folder)]  # fmt: skip
    else:
        command = [*base, "compare", "--systems", "henon", "--models", "persistence,ngrc,tdnn",
                   "--seeds", "2", "--budget-per-model", "2", "--workers", "2",
                   "-o", str(folder)]  # fmt: skip
    how = rng.choice([signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
    wait = rng.uniform(0.5, 10.0)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    time.sleep(wait)
    interrupted = process.poll() is None
    if interrupted:
        if how == signal.SIGINT:
            os.killpg(process.pid, how)  # Ctrl-C reaches the terminal's whole process group
        else:
            process.send_signal(how)  # `kill PID`
    hung = False
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        hung = True  # the process (or a child holding its pipes) did not end
        os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
    lines = [
        line for line in err.decode(errors="replace").splitlines() if line.startswith("error:")
    ]
    expected = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}[how]
    exit_ok = not hung and (
        not interrupted
        or (process.returncode == expected and (how == signal.SIGKILL or len(lines) == 1))
    )
    temporary = (
        [str(t) for t in folder.rglob("*") if t.name.endswith(".tmp")] if folder.exists() else []
    )
    resume = command + (["--resume"] if kind == "train" and folder.exists() else [])
    if kind == "train" and folder.exists() and (folder / "model.json").exists():
        resume = None  # it finished before the signal
    finished = subprocess.run(resume, capture_output=True, timeout=600) if resume else None
    if finished is not None and finished.returncode == 2 and kind == "train":
        # Killed before its first checkpoint: nothing to resume, so the user starts again.
        message = finished.stderr.decode(errors="replace")
        if "without --resume" in message:
            finished = subprocess.run(command, capture_output=True, timeout=600)
    resumed_ok = finished is None or finished.returncode in (0, 3)
    complete = True
    if kind == "compare" and (folder / "results.sqlite").exists():
        with sqlite3.connect(f"file:{folder / 'results.sqlite'}?mode=ro", uri=True) as db:
            tables = {
                r[0] for r in db.execute("select name from sqlite_master where type='table'")
            }
            table = "cells" if "cells" in tables else sorted(tables)[0]
            columns = [r[1] for r in db.execute(f"pragma table_info({table})")]
            key = [c for c in ("dataset", "model", "seed") if c in columns]
            rows = db.execute(
                f"select {', '.join(key)}, count(*) from {table} group by {', '.join(key)}"
            ).fetchall()
        complete = len(rows) == 1 * 3 * 2 and all(r[-1] == 1 for r in rows)
    elif kind == "train":
        complete = (folder / "model.json").exists()
    return {
        "kind": kind,
        "signal": signal.Signals(how).name,
        "after_s": round(wait, 2),
        "interrupted": interrupted,
        "hung": hung,
        "exit": process.returncode,
        "error_lines": len(lines),
        "temporary_files": temporary,
        "resumed_exit": None if finished is None else finished.returncode,
        "kept": exit_ok and not temporary and resumed_ok and complete,
        "stderr_tail": err.decode(errors="replace")[-300:] if not (exit_ok and resumed_ok) else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kills", type=int, default=0, help="interruptions each of train and compare"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=HERE / "results" / "contract_probe.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        p = write_inputs(root)
        (root / "out").mkdir()
        (root / "out" / "exists.csv").write_text("time,x\n0,1\n1,2\n")
        (root / "out" / "exists.json").write_text("{}\n")
        (root / "foreign").mkdir()
        sqlite3.connect(root / "foreign" / "results.sqlite").execute(
            "create table t (a)"
        ).connection.commit()
        (root / "empty-db").mkdir()
        (root / "empty-db" / "results.sqlite").write_bytes(b"")
        model = root / "model"
        trained = RUNNER.invoke(
            app, ["train", "--data", str(p["good.csv"]), "--model", "ngrc", "-o", str(model)]
        )
        assert trained.exit_code == 0, trained.stderr
        damaged = damaged_models(root, model)
        results = [run_case(c, root) for c in cases(p, root, model, damaged)]
        rng = random.Random(args.seed)
        kills = [
            kill_round(kind, root, rng, i)
            for i in range(args.kills)
            for kind in ("train", "compare")
        ]
    kept = sum(r["kept"] for r in results)
    summary = {
        "probe": "contract_probe",
        "cases": len(results),
        "kept": kept,
        "kept_fraction": kept / len(results),
        "tracebacks": sum(r["crashed"] is not None for r in results),
        "changed_files": sum(r["changed_files"] for r in results),
        "kills": len(kills),
        "kills_kept": sum(k["kept"] for k in kills),
        "broken": [r for r in results if not r["kept"]],
        "broken_kills": [k for k in kills if not k["kept"]],
        "kill_rounds": kills,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{kept} of {len(results)} cases kept the promise ({100 * kept / len(results):.1f} %); "
        f"{summary['tracebacks']} tracebacks, {summary['changed_files']} changed files"
    )
    if kills:
        print(f"{summary['kills_kept']} of {len(kills)} interruptions resumed with nothing lost")
    for r in summary["broken"]:
        print(
            "BROKEN",
            r["exit"],
            " ".join(a.split("/")[-1] for a in r["args"]),
            "::",
            r["message"] or r["crashed"],
        )
    for k in summary["broken_kills"]:
        print("BROKEN KILL", k)
    print(f"written to {args.results}")


if __name__ == "__main__":
    main()
