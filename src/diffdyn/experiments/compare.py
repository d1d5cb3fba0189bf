"""The `compare` grid: train and score every model on every dataset, for every seed.

Each (dataset, model, seed) cell trains with the model's defaults under a wall-clock budget
(`train_model`), is scored on held-out data (`evaluate_model`: a fresh trajectory of a
system, or the held-out end of a user's file) and is written to the results store in one
transaction. A rerun skips finished cells; a cell that raises becomes a `failed` row with its
reason and the grid goes on.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from ..models.registry import MODELS, model_spec
from ..systems.registry import SYSTEMS
from ..train.pipeline import evaluate_model, load_data, train_model
from .store import STORE_FILE, ResultsStore

DEFAULT_SYSTEMS = ("lorenz63", "mackey-glass")
DEFAULT_MODELS = ("all",)
# Chosen so that the default grid (2 systems x all built-in models, 1 seed) finishes in
# about 5 minutes on 2 CPU cores, compilation and evaluation included (13 models: 5 min 6 s).
DEFAULT_BUDGET = 10.0
MODELS_FOLDER = "models"


def resolve_models(models: Sequence[str]) -> list[str]:
    """`["all"]` → every registered model (sorted); otherwise the names, checked."""
    model_spec("persistence")  # loads the built-in registry
    names: list[str] = []
    for name in models:
        if name == "all":
            names.extend(sorted(MODELS))
        else:
            names.append(model_spec(name).name)
    if not names:
        raise DiffdynError("give at least one model (or all).")
    return list(dict.fromkeys(names))


def resolve_datasets(datasets: Sequence[str]) -> list[dict[str, str]]:
    """System names and file paths → `[{"name", "kind", "ref"}]`; unknown ones raise."""
    out: list[dict[str, str]] = []
    for item in datasets:
        if item in SYSTEMS:
            out.append({"name": item, "kind": "system", "ref": item})
        elif Path(item).is_file():
            path = Path(item).resolve()
            out.append({"name": path.name, "kind": "file", "ref": str(path)})
        else:
            raise UnknownNameError(
                f"{item!r} is neither a built-in system nor a file."
                f"{did_you_mean(item, list(SYSTEMS))} Run `diffdyn systems` to list the systems."
            )
    if not out:
        raise DiffdynError("give at least one system or data file.")
    names = [d["name"] for d in out]
    if len(set(names)) != len(names):
        raise DiffdynError(f"the datasets repeat a name ({', '.join(names)}); give each once.")
    return out


def compare_config(
    datasets: list[dict[str, str]],
    models: list[str],
    seeds: int,
    budget_per_model: float,
    threshold: float,
    lyapunov_exponent: float | None,
) -> dict[str, Any]:
    return {
        "datasets": [{"name": d["name"], "kind": d["kind"], "ref": d["ref"]} for d in datasets],
        "models": models,
        "seeds": seeds,
        "budget_per_model": budget_per_model,
        "threshold": threshold,
        "lyapunov_exponent": lyapunov_exponent,
    }


def _cell_metrics(train_sidecar: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    vpt = result["vpt"]
    lam, dt = result["lyapunov_exponent"], float(result["dt"])
    curve = [float(x) for x in result["nrmse_curve"]]
    lead = max(1, round(1 / (lam * dt))) if lam else max(1, result["horizon"] // 4)
    lead = min(lead, len(curve))
    metrics: dict[str, Any] = {
        "status": "ok",
        "vpt_mean": float(vpt["mean"]),
        "vpt_std": float(vpt["std"]),
        "vpt_unit": vpt["unit"],
        "vpt_censored": int(vpt["censored"]),
        "smape": float(result["smape"]),
        "rmse": float(result["rmse"]),
        "nrmse_lead": float(curve[lead - 1]),
        "nrmse_lead_time": lead * dt,
        "nrmse_curve": curve,
        "dt": dt,
        "horizon": int(result["horizon"]),
        "start_points": int(result["start_points"]),
        "train_seconds": float(train_sidecar["train_seconds"]),
        "parameters": int(train_sidecar["parameters"]),
        "stop_reason": str(train_sidecar["stop_reason"]),
    }
    for time_, value in result["nrmse"].items():
        metrics[f"nrmse@t={time_}"] = float(value)
    if lam:
        metrics["lyapunov_exponent"] = float(lam)
    if result["note"]:
        metrics["note"] = result["note"]
    return metrics


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text}"[:500]


def run_compare(
    out_dir: str | Path,
    datasets: Sequence[str] = DEFAULT_SYSTEMS,
    models: Sequence[str] = DEFAULT_MODELS,
    *,
    seeds: int = 1,
    budget_per_model: float = DEFAULT_BUDGET,
    threshold: float = 0.5,
    lyapunov_exponent: float | None = None,
    progress: bool = True,
    on_cell: Callable[[str, str, int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a comparison grid in `out_dir`; return a summary.

    `datasets` are built-in system names or data files; `models` names or `"all"`. Results go
    to `out_dir/results.sqlite`; trained models to `out_dir/models/DATASET/MODEL-seedN`.

    **Example:**

    ```python
    from diffdyn.experiments import run_compare

    run_compare("runs/demo", ["henon"], ["persistence", "ngrc"], budget_per_model=5)
    ```

    **Returns** `{"store", "cells", "ran", "skipped", "failed", "seconds"}`.
    """
    if seeds < 1:
        raise DiffdynError(f"--seeds must be at least 1; got {seeds}.")
    if not budget_per_model > 0:
        raise DiffdynError(f"the budget per model must be positive; got {budget_per_model}.")
    if not threshold > 0:
        raise DiffdynError(f"the threshold must be positive; got {threshold}.")
    if lyapunov_exponent is not None and not lyapunov_exponent > 0:
        raise DiffdynError(f"--lyapunov-exponent must be positive; got {lyapunov_exponent}.")
    names = resolve_models(models)
    sets = resolve_datasets(datasets)
    out = check_run_folder(out_dir)
    config = compare_config(sets, names, seeds, budget_per_model, threshold, lyapunov_exponent)
    started = time.perf_counter()
    with ResultsStore(out / STORE_FILE) as store:
        store.claim(config)
        done = store.finished()
        cells = [(d, m, s) for d in sets for s in range(seeds) for m in names]
        todo = [c for c in cells if (c[0]["name"], c[1], c[2]) not in done]
        failed = 0
        with _Progress(len(cells), len(cells) - len(todo), enabled=progress) as bar:
            data_cache: dict[tuple[str, int], Any] = {}
            for dataset, model, seed in todo:
                bar.describe(f"{dataset['name']} · {model} · seed {seed}")
                try:
                    metrics = _run_cell(
                        out,
                        dataset,
                        model,
                        seed,
                        budget_per_model,
                        threshold,
                        lyapunov_exponent,
                        data_cache,
                    )
                except Exception as error:  # a failing model is a result, not a crash
                    metrics = {"status": "failed", "reason": _reason(error)}
                    failed += 1
                store.write_cell(dataset["name"], model, seed, metrics)
                if on_cell is not None:
                    on_cell(dataset["name"], model, seed, metrics)
                bar.advance()
        return {
            "store": out / STORE_FILE,
            "cells": len(cells),
            "ran": len(todo),
            "skipped": len(cells) - len(todo),
            "failed": failed,
            "seconds": time.perf_counter() - started,
        }


def check_run_folder(out_dir: str | Path) -> Path:
    """Create the run folder (its parent must exist); raise when it cannot hold a run."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DiffdynError(f"{out} is a file; give a folder for the run.")
    if not out.parent.is_dir():
        raise DiffdynError(f"folder {out.parent} does not exist; create it first.")
    try:
        out.mkdir(exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise DiffdynError(f"cannot write in {out}: {error.strerror or error}.") from None
    return out


def _data(dataset: dict[str, str], seed: int, fresh: bool, cache: dict) -> Any:
    if dataset["kind"] == "file":
        key = (dataset["name"], -1)
        if key not in cache:
            cache[key] = load_data(data=dataset["ref"])
        return cache[key]
    key = (dataset["name"], seed, fresh)
    if key not in cache:
        cache.clear()  # one system's trajectories at a time
        cache[key] = load_data(system=dataset["ref"], seed=seed, fresh=fresh)
    return cache[key]


def _run_cell(
    out: Path,
    dataset: dict[str, str],
    model: str,
    seed: int,
    budget: float,
    threshold: float,
    lyapunov_exponent: float | None,
    cache: dict,
) -> dict[str, Any]:
    folder = out / MODELS_FOLDER / dataset["name"] / f"{model}-seed{seed}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists():  # left by an interrupted cell
        shutil.rmtree(folder)
    series, source = _data(dataset, seed, False, cache)
    trained = train_model(
        series,
        source,
        model,
        folder,
        seed=seed,
        budget=budget,
        progress=False,
        lyapunov_exponent=lyapunov_exponent,
    )
    eval_series, eval_source = (
        _data(dataset, seed, True, cache) if dataset["kind"] == "system" else (series, source)
    )
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging forecast is a result
        result = evaluate_model(
            folder,
            eval_series,
            eval_source,
            threshold=threshold,
            lyapunov_exponent=lyapunov_exponent,
        )
    if not math.isfinite(result["vpt"]["mean"]):
        raise DiffdynError("the valid prediction time is not finite")
    return _cell_metrics(trained.sidecar, result)


class _Progress:
    """A Rich live view of the grid with its ETA on stderr (nothing when disabled)."""

    def __init__(self, total: int, done: int, *, enabled: bool):
        self.enabled, self.total, self.done = enabled, total, done
        self.progress = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]compare[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
            )
            self.progress.start()
            self.task = self.progress.add_task("", total=self.total, completed=self.done)
        return self

    def describe(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=text)

    def advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()


def pooled_vpt(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Mean and std of VPT over start points and seeds, from each seed's mean and std."""
    means = np.array([r["vpt_mean"] for r in rows], float)
    stds = np.array([r["vpt_std"] for r in rows], float)
    mean = float(means.mean())
    var = float(np.mean(stds**2 + means**2) - mean**2)
    return mean, math.sqrt(max(var, 0.0))
