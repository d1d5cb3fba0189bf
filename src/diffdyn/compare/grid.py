"""The `compare` grid: train and score every model on every dataset, for every seed.

Each (dataset, model, seed) cell trains with the model's defaults under a budget of training time
(`train_model`), is scored on held-out data (`evaluate_model`: a fresh trajectory of a
system, or the held-out end of a user's file) and is written to the results store in one
transaction, with what the report draws: the forecast from the first start point against the
truth, and an attention model's alignment on that window. A rerun skips finished cells; a cell
that raises becomes a `failed` row with its reason and the grid goes on.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DiffdynError, UnknownNameError, did_you_mean
from ..models.registry import MODELS, model_spec
from ..systems.registry import SYSTEMS
from ..train import (
    DataSource,
    Evaluation,
    TrainResult,
    evaluate_model,
    explain_model,
    load_data,
    train_model,
)
from ..train.devices import use_devices
from .store import STORE_FILE, ResultsStore

DEFAULT_SYSTEMS = ("lorenz63", "mackey-glass")
DEFAULT_MODELS = ("all",)
# Chosen so that the default grid (2 systems x all built-in models, 1 seed) finishes in
# about 5 minutes on 2 CPU cores, compilation and evaluation included (13 models: 5 min 6 s).
DEFAULT_BUDGET = 10.0
# Cells side by side in the command's default: one per core, at most two (measured on 2 cores:
# compiling is single-threaded, so a second cell fills the idle core).
DEFAULT_WORKERS = max(1, min(2, os.cpu_count() or 1))
MODELS_FOLDER = "models"
DEFAULT_OUTPUT = Path("runs/compare")
REPORT_FORECAST_LYAPUNOV_TIMES = 5  # the forecast a cell keeps for the report ...
REPORT_FORECAST_SAMPLES = 200  # ... and its length when λ₁ is unknown
FORECAST, ATTENTION = "forecast", "attention"  # the artifacts of a cell


@dataclasses.dataclass(frozen=True)
class CompareSummary:
    """What `run_compare` did: the `store` file, the grid's `cells`, how many `ran` now,
    were `skipped` (finished before) and `failed`, in `seconds` of wall-clock time."""

    store: Path
    cells: int
    ran: int
    skipped: int
    failed: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "store": str(self.store)}


def choose_datasets(systems: Sequence[str] | None, files: Sequence[str | Path]) -> list[str]:
    """The datasets of a grid: the systems named, then the files (which must exist); neither
    given → `DEFAULT_SYSTEMS`."""
    for path in files:
        if not Path(path).is_file():
            raise DiffdynError(f"--data {path}: no such file.")
    chosen = list(DEFAULT_SYSTEMS) if systems is None and not files else list(systems or [])
    return chosen + [str(p) for p in files]


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


def _cell_metrics(trained: TrainResult, result: Evaluation) -> dict[str, Any]:
    vpt = result.vpt
    lam, dt = result.lyapunov_exponent, result.dt
    curve = [float(x) for x in result.nrmse_curve]
    lead = max(1, round(1 / (lam * dt))) if lam else max(1, result.horizon // 4)
    lead = min(lead, len(curve))
    metrics: dict[str, Any] = {
        "status": "ok",
        "vpt_mean": float(vpt.mean),
        "vpt_std": float(vpt.std),
        "vpt_unit": vpt.unit,
        "vpt_censored": int(vpt.censored),
        "smape": float(result.smape),
        "rmse": float(result.rmse),
        "nrmse_lead": float(curve[lead - 1]),
        "nrmse_lead_time": lead * dt,
        "nrmse_curve": curve,
        "dt": dt,
        "horizon": int(result.horizon),
        "start_points": int(result.start_points),
        "diverged_forecasts": int(result.diverged),
        "train_seconds": float(trained.seconds),
        "parameters": int(trained.parameters),
        "stop_reason": str(trained.stop_reason),
    }
    for time_, value in result.nrmse.items():
        metrics[f"nrmse@t={time_}"] = float(value)
    if lam:
        metrics["lyapunov_exponent"] = float(lam)
    if result.first_divergence is not None:
        metrics["first_diverged_step"] = int(result.first_divergence)
    if result.note:
        metrics["note"] = result.note
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
    devices: int | None = None,
    workers: int = 1,
) -> CompareSummary:
    """Run (or resume) a comparison grid in `out_dir`; return a summary.

    `workers` runs that many cells at once, each in its own process (spawned; the driver
    alone writes the store): XLA compiles on one core, so two cells side by side keep two cores
    busy. `devices` splits each training batch over that many local devices (`train(devices=)`);
    it changes speed, not results (to float32 rounding), so it is not part of the
    configuration a resumed run is checked against.

    `datasets` are built-in system names or data files; `models` names or `"all"`. Results go
    to `out_dir/results.sqlite`; trained models to `out_dir/models/DATASET/MODEL-seedN`.

    **Example:**

    ```python
    from diffdyn.compare import run_compare

    run_compare("runs/demo", ["henon"], ["persistence", "ngrc"], budget_per_model=5)
    ```

    **Returns** a `CompareSummary`.
    """
    if seeds < 1:
        raise DiffdynError(f"--seeds must be at least 1; got {seeds}.")
    if workers < 1:
        raise DiffdynError(f"--workers must be at least 1; got {workers}.")
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
            jobs = [
                (out, dataset, model, seed, budget_per_model, threshold, lyapunov_exponent,
                 devices)
                for dataset, model, seed in todo
            ]  # fmt: skip
            for (dataset, model, seed), (metrics, artifacts) in _cells(jobs, workers, bar):
                failed += metrics.get("status") != "ok"
                store.write_cell(dataset["name"], model, seed, metrics, artifacts)
                if on_cell is not None:
                    on_cell(dataset["name"], model, seed, metrics)
                bar.advance()
        return CompareSummary(
            store=out / STORE_FILE,
            cells=len(cells),
            ran=len(todo),
            skipped=len(cells) - len(todo),
            failed=failed,
            seconds=time.perf_counter() - started,
        )


_CACHE: dict[Any, Any] = {}  # each process's simulated datasets (one system at a time)


def _cell_job(out, dataset, model, seed, budget, threshold, lyapunov_exponent, devices):
    """One cell, as a worker runs it: its metrics and artifacts, or a failed row."""
    try:
        if devices is not None and devices > 1:
            use_devices(devices)  # a spawned worker: before its JAX starts computing
        return _run_cell(out, dataset, model, seed, budget, threshold, lyapunov_exponent,
                         _CACHE, devices)  # fmt: skip
    except Exception as error:  # a failing model is a result, not a crash
        return {"status": "failed", "reason": _reason(error)}, {}


def _cells(jobs, workers: int, bar):
    """Yield `((dataset, model, seed), (metrics, artifacts))` for every job: in this process
    in order, or in `workers` spawned processes as they finish (the caller alone writes the
    store, so a kill loses only the cells in flight)."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            bar.describe(f"{job[1]['name']} · {job[2]} · seed {job[3]}")
            yield (job[1], job[2], job[3]), _cell_job(*job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(_cell_job, *job): job for job in jobs}
        bar.describe(f"{len(jobs)} cells on {workers} worker processes")
        for future in as_completed(futures):
            job = futures[future]
            try:
                result = future.result()
            except BrokenProcessPool:
                raise DiffdynError(
                    f"a worker process died while running {job[1]['name']} · {job[2]} (out of "
                    "memory?); the finished cells are saved: run the same command again to "
                    "resume, or use --workers 1."
                ) from None
            yield (job[1], job[2], job[3]), result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_run_folder(out_dir: str | Path) -> Path:
    """Create the run folder (its parent must exist, but for `DEFAULT_OUTPUT`'s, made in a
    fresh clone); raise when it cannot hold a run."""
    out = Path(out_dir)
    if out == DEFAULT_OUTPUT and not out.parent.exists():
        out.parent.mkdir()
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
    devices: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train and score one cell; return its metrics and its artifacts for the report."""
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
        devices=devices,
    )
    eval_series, eval_source = (
        _data(dataset, seed, True, cache) if dataset["kind"] == "system" else (series, source)
    )
    result = evaluate_model(
        folder,
        eval_series,
        eval_source,
        threshold=threshold,
        lyapunov_exponent=lyapunov_exponent,
    )
    if not math.isfinite(result.vpt.mean):
        raise DiffdynError("the valid prediction time is not finite")
    metrics = _cell_metrics(trained, result)
    return metrics, _artifacts(folder, model, result, eval_series, eval_source, metrics)


def _artifacts(
    folder: Path,
    model: str,
    result: Evaluation,
    series: Any,
    source: DataSource,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """What the report draws of a cell: the forecast from the first start point against the
    truth (5 Lyapunov times, or 200 samples), and the alignment of an attention model on that
    window (the training horizon)."""
    lam = result.lyapunov_exponent
    steps = (
        math.ceil(REPORT_FORECAST_LYAPUNOV_TIMES / (lam * result.dt))
        if lam
        else REPORT_FORECAST_SAMPLES
    )
    artifacts: dict[str, Any] = {FORECAST: result.example(0, steps).to_json()}
    if model_spec(model).cls.has_attention:
        try:
            artifacts[ATTENTION] = explain_model(folder, series, source).to_json()
        except DiffdynError as error:  # the scores stand; only the figure is missing
            reason = f"no attention figure: {_reason(error)}"
            metrics["note"] = "; ".join(filter(None, [metrics.get("note"), reason]))
    return artifacts


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
