"""The `compare` grid: train and score every model on every dataset, for every seed.

Each (dataset, model, seed) cell trains with the model's defaults under a wall-clock budget
(compiling included; `train_model`), is scored on held-out data (`evaluate_model`: a fresh
trajectory of a system, or the held-out end of a user's file) and is written to the results
store in one transaction, with what the report draws: the forecast from the first start point
against the truth, and an attention model's alignment on that window. A rerun skips finished
cells; a cell that raises becomes a `failed` row with its reason and the grid goes on.

Everything a request gives is checked before any cell runs or any folder is made: names,
numbers, and every data file, read with the reader `diffdyn train` uses and held to the
length training needs. A cell is recognised by its request, data content included (a hash of
the file's bytes), so a changed file is run again. One process at a time writes a run folder
(`files.folder_lock`); Ctrl-C or SIGTERM stops the worker processes and removes the model
folders of the cells in flight, so the same command resumes the grid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import shutil
import signal
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import analyze_model
from ..compilation import active_cache_folder, enable_compilation_cache
from ..data.dysts_source import (
    DYSTS_PREFIX,
    GRANULARITIES,
    check_dysts_name,
    dysts_names,
    dysts_series,
    dysts_version,
)
from ..data.sampling import check_irregular
from ..data.split import held_out_start
from ..dysts_protocol import dysts_task, score_dysts
from ..entry import BLAS_THREADS
from ..errors import DataError, DiffdynError, UnknownNameError, did_you_mean, stop_if_terminated
from ..files import folder_lock
from ..models.registry import MODELS, model_spec
from ..options import check_number
from ..resources import pin_process, worker_cpus
from ..systems.registry import SYSTEMS, file_reference, is_file_reference, system_class
from ..train import (
    DataSource,
    Evaluation,
    TrainResult,
    evaluate_model,
    explain_model,
    load_data,
    train_model,
)
from ..train.checkpoint import read_sidecar
from ..train.data_source import TEST_FRACTION
from ..train.devices import use_devices
from ..train.training import check_train_request
from .store import STORE_FILE, ResultsStore

DEFAULT_SYSTEMS = ("lorenz63", "mackey-glass")
DEFAULT_MODELS = ("all",)
# Wall-clock seconds per cell, compiling and validation included. 34 cells of the default grid
# (2 systems x 17 models, 28 of them gradient-trained, 2 workers) must fit 5 minutes on 2
# cores: at 20 s the training alone took 28 x 20 of the 600 core-seconds, and the grid 358 s
# on a quiet machine (2026-12-02); at 15 s 297-301 s, at 14 s 282 and 295 s, with the best
# gradient models at 3.53 and 3.30 (Lorenz-63, lstm), 1.82 and 1.90 (Mackey-Glass, gru).
DEFAULT_BUDGET = 14.0
# Cells side by side in the command's default: one per core, at most two (measured on 2 cores:
# compiling is single-threaded, so a second cell fills the idle core), each worker pinned to
# its own core (`worker_cpus`).
DEFAULT_WORKERS = max(1, min(2, os.cpu_count() or 1))
MODELS_FOLDER = "models"
# How a cell is scored: `default` (a fresh trajectory of a system, or a file's held-out end:
# VPT, NRMSE, sMAPE, long-run columns), or the dysts benchmark's protocol (`dysts_protocol`:
# 10 periods to train, sMAPE of one forecast of 2 periods; `dysts` on the first coordinate as
# its univariate table, `dysts-multivariate` on every coordinate), for `dysts:NAME` datasets.
DEFAULT_PROTOCOL = "default"
PROTOCOLS = (DEFAULT_PROTOCOL, "dysts", "dysts-multivariate")
# A `dysts:NAME` dataset under the default protocol: this many periods at this granularity to
# train on, and as many from another start (`FRESH_SEED_OFFSET`) to score on.
DYSTS_DEFAULT_GRANULARITY = "fine"
DYSTS_DEFAULT_PERIODS = 40
FRESH_SEED_OFFSET = 7919  # as `load_data(fresh=True)`
DEFAULT_OUTPUT = Path("runs/compare")
REPORT_FORECAST_LYAPUNOV_TIMES = 5  # the forecast a cell keeps for the report ...
REPORT_FORECAST_SAMPLES = 200  # ... and its length when λ₁ is unknown
FORECAST, ATTENTION = "forecast", "attention"  # the artifacts of a cell
# The long-run columns (`analysis.analyze_model`): the model's spectrum averaged over this many
# Lyapunov times (at least this many steps), shorter than `diffdyn analyze`'s 200. Measured on
# the default grid's trained models (2026-12-01): 20 against 50 Lyapunov times moved λ₁ by
# 1-14 % for models with a chaotic closed loop (ESN on Lorenz-63 0.963 against 0.847; the
# system's 0.906) and cut the analysis from 4-6 s to 1-2 s a cell, a sixth of the grid's time.
LONG_RUN_SPECTRUM_LYAPUNOV_TIMES = 20.0
LONG_RUN_SPECTRUM_STEPS = 1_000


@dataclasses.dataclass(frozen=True)
class CompareSummary:
    """What `run_compare` did: the `store` file, the grid's `cells`, how many `ran` now,
    were `skipped` (finished before) and `failed` (of those run now), in `seconds` of
    wall-clock time; `failed_cells`: every cell of the grid recorded as failed, now or in an
    earlier run, as (dataset, model, seed)."""

    store: Path
    cells: int
    ran: int
    skipped: int
    failed: int
    seconds: float
    failed_cells: tuple[tuple[str, str, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "store": str(self.store)}


def choose_datasets(
    systems: Sequence[str] | None, files: Sequence[str | Path]
) -> list[str | Path]:
    """The datasets of a grid: the systems named (built-in, or a user's `FILE.py:CLASS`, which
    is loaded here so a bad one is refused before any cell), then the files (which must exist,
    as `Path`s); neither given → `DEFAULT_SYSTEMS`."""
    for path in files:
        if not Path(path).is_file():
            raise DataError(f"--data {path}: no such file; check the path.")
    if systems is not None and not systems and not files:
        raise DiffdynError(
            "no system names given in --systems; give names such as lorenz63,henon "
            "(`diffdyn systems` lists them), or --data FILE."
        )
    systems = None if systems is None else _expand_dysts(systems)
    for name in systems or []:
        if is_file_reference(name):
            system_class(name)
        elif is_dysts_name(name):
            check_dysts_name(name)
        elif name not in SYSTEMS:
            raise UnknownNameError(
                f"unknown system {name!r} in --systems.{did_you_mean(name, list(SYSTEMS))} "
                "Run `diffdyn systems` to list them; give your own files with --data FILE."
            )
    chosen: list[str | Path] = (
        list(DEFAULT_SYSTEMS) if systems is None and not files else list(systems or [])
    )
    return chosen + [Path(p) for p in files]


def is_dysts_name(name: str) -> bool:
    return name.lower().startswith(DYSTS_PREFIX)


def _expand_dysts(systems: Sequence[str]) -> list[str]:
    """`dysts:all` → every system of the dysts catalogue (`dysts_names`), in its place."""
    out: list[str] = []
    for name in systems:
        if is_dysts_name(name) and name[len(DYSTS_PREFIX) :].strip().lower() == "all":
            out += [f"{DYSTS_PREFIX}{n}" for n in dysts_names()]
        else:
            out.append(name)
    return out


def resolve_models(models: Sequence[str]) -> list[str]:
    """`["all"]` → every registered model (sorted); otherwise the names, checked."""
    model_spec("persistence")  # loads the built-in registry
    models = [models] if isinstance(models, str) else list(models)
    if not [m for m in models if m.strip()]:
        raise DiffdynError(
            "no model names given; give --models all, or names such as persistence,ngrc "
            "(`diffdyn models` lists them)."
        )
    names: list[str] = []
    for name in models:
        if name == "all":
            names.extend(sorted(MODELS))
        else:
            names.append(model_spec(name).name)
    return list(dict.fromkeys(names))


def resolve_datasets(datasets: Sequence[str | Path]) -> list[dict[str, str]]:
    """System names and file paths (a `Path` is always a file) → `[{"name", "kind", "ref"}]`;
    unknown ones raise."""
    out: list[dict[str, str]] = []
    for item in datasets:
        if not isinstance(item, Path) and item in SYSTEMS:
            out.append({"name": item, "kind": "system", "ref": item})
        elif not isinstance(item, Path) and is_dysts_name(item):
            system = check_dysts_name(item)
            out.append({"name": f"{DYSTS_PREFIX}{system}", "kind": "dysts", "ref": system})
        elif not isinstance(item, Path) and is_file_reference(item):
            # Named FILE.py:CLASS without the folders (the name is a folder of the run); the
            # reference has the absolute path, so that every worker finds the same file.
            ref = file_reference(item)
            path, _, class_name = ref.rpartition(":")
            out.append({"name": f"{Path(path).name}:{class_name}", "kind": "system", "ref": ref})
        elif Path(item).is_file():
            path = Path(item).resolve()
            out.append({"name": path.name, "kind": "file", "ref": str(path)})
        elif isinstance(item, Path):
            raise DataError(f"--data {item}: no such file; check the path.")
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


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (16 hex digits): the content a file cell is recognised by."""
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()[:16]
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}.") from None


def check_datasets(datasets: list[dict[str, str]], models: list[str]) -> None:
    """Read every data file of a grid as `diffdyn train` does (`load_data`) and check it is
    long enough for every model's training window (context + horizon + 1 rows after its last
    `TEST_FRACTION` is held out for scoring, as training holds it out); record its content
    hash in `dataset["content"]`. Systems get `"content": "system"`.

    **Raises** `DataError` naming the file: unreadable, not numbers, ragged, NaN, unsorted
    time, too short.
    """
    needs: dict[str, int] = {}
    for dataset in datasets:
        if dataset["kind"] == "dysts":  # fixed by name, seed and the installed dysts
            dataset["content"] = f"dysts {dysts_version()}"
            continue
        if dataset["kind"] != "file":
            # A user's system is recognised by its file's content: a changed file reruns.
            ref = dataset["ref"]
            user = is_file_reference(ref)
            dataset["content"] = file_digest(ref.rpartition(":")[0]) if user else "system"
            continue
        content = file_digest(dataset["ref"])
        series, _ = load_data(data=dataset["ref"], irregular=dataset.get("irregular", "refuse"))
        if not needs:  # each model's training window, as training checks it
            for model in models:
                _, config = check_train_request(model, None)
                needs[model] = config.context + config.horizon + 1
        rows = len(series)
        train_rows = held_out_start(rows, TEST_FRACTION)
        short = sorted((n, m) for m, n in needs.items() if train_rows < n)
        if short:
            raise DataError(
                f"{dataset['ref']} has {rows} rows: holding out the last "
                f"{TEST_FRACTION:.0%} for scoring leaves {train_rows} for training, fewer than "
                "one training window (context + horizon + 1 rows) of "
                f"{', '.join(f'{m} ({n})' for n, m in short)}; give a longer series, or leave "
                f"{'that model' if len(short) == 1 else 'those models'} out of --models."
            )
        dataset["content"] = content


def cell_request(
    dataset: dict[str, str],
    model: str,
    seed: int,
    budget_per_model: float,
    threshold: float,
    lyapunov_exponent: float | None,
) -> dict[str, Any]:
    """Everything a cell's result depends on: what the store recognises it by."""
    return {
        "dataset": dataset["name"],
        "kind": dataset["kind"],
        "ref": dataset["ref"],
        "content": dataset["content"],
        **({"irregular": dataset["irregular"]} if "irregular" in dataset else {}),
        **({"long_run": False} if dataset.get("long_run") == "no" else {}),
        **({"protocol": dataset["protocol"]} if "protocol" in dataset else {}),
        **({"allocate": dataset["allocate"]} if "allocate" in dataset else {}),
        "model": model,
        "seed": seed,
        "budget_per_model": budget_per_model,
        "threshold": threshold,
        "lyapunov_exponent": lyapunov_exponent,
    }


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


def _longest_first(cells: list[tuple]) -> list[tuple]:
    """The cells in the order they are handed to the workers: every gradient-trained model
    (its whole budget) before the closed-form ones and persistence (a few seconds each), so
    that the last cells to finish are short ones and no worker idles long at the end."""
    return sorted(cells, key=lambda cell: model_spec(cell[1]).cls.fit_kind != "gradient")


def _check_protocol(protocol: str, granularity: str, sets: list[dict[str, str]]) -> None:
    if protocol not in PROTOCOLS:
        raise UnknownNameError(
            f"unknown --protocol {protocol!r}.{did_you_mean(protocol, list(PROTOCOLS))} Give "
            f"one of {', '.join(PROTOCOLS)}."
        )
    if granularity not in GRANULARITIES:
        raise UnknownNameError(
            f"unknown --granularity {granularity!r}; give {' or '.join(GRANULARITIES)} "
            "(points per period: " + ", ".join(f"{k} {v}" for k, v in GRANULARITIES.items()) + ")."
        )
    others = [d["name"] for d in sets if d["kind"] != "dysts"]
    if protocol != DEFAULT_PROTOCOL and others:
        raise DiffdynError(
            f"--protocol {protocol} scores dysts systems only, not {', '.join(others[:3])}; give "
            "--systems dysts:NAME,... (or dysts:all), or leave --protocol out."
        )


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text}"[:500]


def run_compare(
    out_dir: str | Path,
    datasets: Sequence[str | Path] = DEFAULT_SYSTEMS,
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
    irregular: str = "refuse",
    long_run: bool = True,
    ray: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    granularity: str = DYSTS_DEFAULT_GRANULARITY,
    allocate: str = "equal",
) -> CompareSummary:
    """Run (or resume) a comparison grid in `out_dir`; return a summary.

    `workers` runs that many cells at once, each in its own process (spawned; the driver
    alone writes the store): XLA compiles on one core, so two cells side by side keep two cores
    busy. `ray` runs the cells as Ray tasks instead: `"local"` on a Ray instance started for
    the run with `workers` CPUs, or the address of a running cluster (`"auto"`, `HOST:PORT`),
    whose nodes see `out_dir` at the same path; the driver alone still writes the store. A
    cell whose worker process dies is recorded `lost` and retried by the next run. `devices`
    splits each training batch over that many local devices (`train(devices=)`); it changes
    speed, not results (to float32 rounding), so it is not part of the configuration a resumed
    run is checked against.

    Each cell is also analyzed as a dynamical system (`analysis.analyze_model`: λ₁ of its
    closed loop, its spectrum's error against the system's, the long run's power-spectrum and
    density distances and behaviour: the report's long-run columns); `long_run=False` skips
    that (a few seconds of compiling per cell) and is part of each cell's request.

    `datasets` are built-in system names or data files (a `Path` is always a file); `models`
    names or `"all"`. Results go to `out_dir/results.sqlite`; trained models to
    `out_dir/models/DATASET/MODEL-seedN`.

    Before any cell runs or `out_dir` is made, every name and number is checked and every
    data file is read (`check_datasets`). A cell counts as finished while its request — data
    content (a hash of the file's bytes), model, seed, budget, threshold, λ₁ — is the one
    recorded; the cells of a file whose content changed are deleted and run again. The folder
    is locked for the run (`files.folder_lock`: a second process is refused). On
    `KeyboardInterrupt` (Ctrl-C; SIGTERM under the CLI) the worker processes are stopped and
    the model folders of the unfinished cells removed; every recorded cell stays.

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
    check_number("the budget per model", budget_per_model, above=0)
    check_number("--threshold", threshold, above=0)
    if lyapunov_exponent is not None:
        check_number("--lyapunov-exponent", lyapunov_exponent, above=0)
    check_irregular(irregular)
    names = resolve_models(models)
    sets = resolve_datasets(datasets)
    _check_protocol(protocol, granularity, sets)
    if allocate not in ALLOCATIONS:
        raise UnknownNameError(
            f"unknown --allocate {allocate!r}.{did_you_mean(allocate, list(ALLOCATIONS))} Give "
            "equal (every model the same budget) or halving (successive halving)."
        )
    if allocate == "halving" and protocol != DEFAULT_PROTOCOL:
        raise DiffdynError(
            f"--allocate halving ranks models by VPT on validation data; --protocol {protocol} "
            "scores one forecast per system: use the equal allocation with it."
        )
    for dataset in sets:
        if dataset["kind"] == "file" and irregular != "refuse":
            dataset["irregular"] = irregular
        if not long_run or protocol != DEFAULT_PROTOCOL:
            dataset["long_run"] = "no"
        if protocol != DEFAULT_PROTOCOL:
            dataset.update(protocol=protocol, granularity=granularity)
    check_datasets(sets, names)  # every file read and checked before any folder is made
    if ray is not None:
        check_ray(ray)
    out = check_run_folder(out_dir)
    config = compare_config(sets, names, seeds, budget_per_model, threshold, lyapunov_exponent)
    if allocate != "equal":
        config["allocate"] = allocate
        for dataset in sets:
            dataset["allocate"] = allocate
    started = time.perf_counter()
    cells = [(d, m, s) for d in sets for s in range(seeds) for m in names]
    requests = {
        (d["name"], m, s): cell_request(d, m, s, budget_per_model, threshold, lyapunov_exponent)
        for d, m, s in cells
    }
    with folder_lock(out, "compare run"), ResultsStore(out / STORE_FILE) as store:
        store.claim(config)
        done = store.reconcile(requests)
        todo = [c for c in cells if (c[0]["name"], c[1], c[2]) not in done]
        failed = 0
        settings = (threshold, lyapunov_exponent, devices)
        with _Progress(len(cells), len(cells) - len(todo), enabled=progress) as bar:
            if allocate == "halving":
                results = _run_halving(out, todo, names, budget_per_model, settings, workers,
                                       bar, ray)  # fmt: skip
            else:
                jobs = [(out, dataset, model, seed, budget_per_model, *settings)
                        for dataset, model, seed in _longest_first(todo)]  # fmt: skip
                results = _cells(jobs, workers, bar, ray)
            with contextlib.closing(results):
                for (dataset, model, seed), (metrics, artifacts) in results:
                    failed += metrics.get("status") != "ok"
                    key = (dataset["name"], model, seed)
                    store.write_cell(*key, metrics, artifacts, request=requests[key])
                    if on_cell is not None:
                        on_cell(dataset["name"], model, seed, metrics)
                    bar.advance()
        recorded = store.cells()
        return CompareSummary(
            store=out / STORE_FILE,
            cells=len(cells),
            ran=len(todo),
            skipped=len(cells) - len(todo),
            failed=failed,
            seconds=time.perf_counter() - started,
            failed_cells=tuple(
                key for key in requests if recorded.get(key, {}).get("status", "ok") != "ok"
            ),
        )


ALLOCATIONS = ("equal", "halving")
HALVING_ROUND, VALIDATION_VPT = "halving_round", "validation_vpt"  # metrics of a halving cell
VALIDATION_SEED_OFFSET = 104_729  # a halving validation trajectory: another start and key
HALVING_VALIDATION_FRACTION = 0.2  # ... or a file's last training rows
HALVING_STARTS = 20  # forecasts the validation VPT averages


def halving_rounds(arms: int, total: float) -> list[tuple[int, float]]:
    """Successive halving's plan (Karnin, Koren & Somekh 2013; Jamieson & Talwalkar 2016):
    `[(models, seconds each)]` per round. ⌈log₂ n⌉ rounds share `total` equally; round r
    trains the better ⌈n / 2^r⌉ of the previous round's models (by validation VPT) for
    `total / (rounds · models)` seconds each, so every round costs the same and the last
    two models get the longest budgets."""
    rounds = max(1, math.ceil(math.log2(max(arms, 1))))
    plan, left = [], arms
    for _ in range(rounds):
        plan.append((left, total / (rounds * left)))
        left = max(1, math.ceil(left / 2))
    return plan


def _halving_jobs(
    out: Path, todo: list[tuple], names: list[str], budget: float, settings: tuple
) -> tuple[list[tuple], dict[tuple, list[tuple]], list[tuple[int, float]]]:
    """Round 0 of successive halving: the closed-form models and persistence at the equal
    budget (they fit in one solve), and the gradient-trained ones still to run in each
    (dataset, seed) group at their round's budget. A resumed grid starts each group at the
    round whose number of models is the number left."""
    gradient = [m for m in names if model_spec(m).cls.fit_kind == "gradient"]
    plan = halving_rounds(len(gradient), len(gradient) * budget)
    jobs, groups = [], {}
    for dataset, model, seed in todo:
        if model not in gradient:
            jobs.append((out, dataset, model, seed, budget, *settings))
        else:
            groups.setdefault((dataset["name"], seed), []).append((dataset, model, seed))
    return jobs, groups, plan


def _round_of(plan: list[tuple[int, float]], left: int) -> int:
    return next((r for r, (arms, _) in enumerate(plan) if arms <= left), len(plan) - 1)


def _run_halving(out, todo, names, budget, settings, workers, bar, ray):
    """Yield every cell's `(key, (metrics, artifacts))` as successive halving decides it: a
    model dropped after a round is recorded with that round's scores; the last round's
    models are recorded with theirs and the long-run analysis."""
    jobs, groups, plan = _halving_jobs(out, todo, names, budget, settings)
    live = {group: cells for group, cells in groups.items() if cells}
    start = {group: _round_of(plan, len(cells)) for group, cells in live.items()}
    for r in range(len(plan)):
        arms, seconds = plan[r]
        last = r == len(plan) - 1
        for group, cells in live.items():
            if start[group] > r:
                continue
            for dataset, model, seed in cells:
                marked = {**dataset, HALVING_ROUND: r}
                if not last:
                    marked["long_run"] = "no"  # the analysis is for the models that stay
                jobs.append((out, marked, model, seed, seconds, *settings))
        results: dict[tuple, list] = {}
        jobs.sort(key=lambda job: model_spec(job[2]).cls.fit_kind != "gradient")
        with contextlib.closing(_cells(jobs, workers, bar, ray)) as finished:
            for (dataset, model, seed), outcome in finished:
                metrics = outcome[0]
                if dataset.get(HALVING_ROUND) is None or last:
                    yield (dataset, model, seed), outcome
                    continue
                metrics["halving_budget_s"] = seconds
                results.setdefault((dataset["name"], seed), []).append(
                    ((dataset, model, seed), outcome)
                )
        jobs = []
        nxt = plan[r + 1][0] if not last else 0
        for group, ran in results.items():
            ran.sort(key=lambda item: -float(item[1][0].get(VALIDATION_VPT, -1.0)))
            keep, drop = ran[:nxt], ran[nxt:]
            for (dataset, model, seed), outcome in drop:
                why = f"dropped by successive halving after round {r + 1} of {len(plan)}"
                outcome[0]["note"] = "; ".join(filter(None, [outcome[0].get("note"), why]))
                clean = {k: v for k, v in dataset.items() if k != HALVING_ROUND}
                yield (clean, model, seed), outcome
            kept = {(m, s) for (_, m, s), _ in keep}
            live[group] = [cell for cell in groups[group] if cell[1:] in kept]


_CACHE: dict[Any, Any] = {}  # each process's simulated datasets (one system at a time)


PARENT_CHECK_SECONDS = 0.5


def _pin_worker(counter: Any, workers: int) -> None:
    """Keep this worker on its share of the CPUs (`worker_cpus`), its slot the next value of
    the pool's shared `counter`; where the platform cannot, it runs unpinned."""
    if counter is None or not hasattr(os, "sched_getaffinity"):
        return
    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    pin_process(worker_cpus(slot, workers, sorted(os.sched_getaffinity(0))))


def _worker_started(
    driver: int | None = None,
    cache: str | None = None,
    counter: Any = None,
    workers: int = 1,
) -> None:
    """Set up a spawned worker: Ctrl-C (SIGINT reaches every process of the terminal's group)
    is the driver's to handle, and SIGTERM, how the driver stops a worker, ends it at once,
    even inside compiled code; the driver then removes what its cell left. A worker shares
    the driver's compilation cache (`cache`, its folder), so a program compiled by one worker
    is loaded by the others, and runs on its own share of the CPUs (`worker_cpus`; `counter`
    hands out the slots), set before its JAX starts computing."""
    _pin_worker(counter, workers)
    if cache:
        enable_compilation_cache(cache)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # A driver killed outright (SIGKILL) cannot stop its workers: each watches its parent and
    # ends itself when the parent is gone, so no orphan keeps computing or holds the terminal.
    import threading

    parent = os.getppid() if driver is None else driver

    def watch() -> None:
        # Compared with the driver's pid, not the parent found at start: a driver killed while
        # this worker was still starting has already handed it to another parent.
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="diffdyn-parent-watch", daemon=True).start()


def _cell_job(out, dataset, model, seed, budget, threshold, lyapunov_exponent, devices):
    """One cell, as a worker runs it: its metrics and artifacts, or a failed row."""
    try:
        if devices is not None and devices > 1:
            use_devices(devices)  # a spawned worker: before its JAX starts computing
        return _run_cell(out, dataset, model, seed, budget, threshold, lyapunov_exponent,
                         _CACHE, devices)  # fmt: skip
    except Exception as error:  # a failing model is a result, not a crash
        return {"status": "failed", "reason": _reason(error)}, {}


def _cell_folder(out: Path, dataset: dict[str, str], model: str, seed: int) -> Path:
    return out / MODELS_FOLDER / dataset["name"] / f"{model}-seed{seed}"


LOST = (
    "lost"  # the status of a cell whose worker process died: not finished, the next run retries it
)


def _lost(job: tuple, why: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The row of a cell whose worker died: recorded (so the report and the exit status say
    so), not finished (`ResultsStore.finished` leaves it out, so the next run retries it)."""
    shutil.rmtree(_cell_folder(job[0], job[1], job[2], job[3]), ignore_errors=True)
    return {"status": LOST, "reason": f"{why}; the next run of the same command retries it"}, {}


def _cells(
    jobs, workers: int, bar, ray_address: str | None = None
) -> Generator[tuple[tuple, tuple[dict, dict]]]:
    """Yield `((dataset, model, seed), (metrics, artifacts))` for every job: in this process
    in order, in `workers` spawned processes, or as Ray tasks (`ray_address`), as they finish
    (the caller alone writes the store, so a kill loses only the cells in flight). A worker
    that dies makes its cell a `lost` row, which the next run retries. Closed early (Ctrl-C,
    SIGTERM, an error), it stops the workers and removes the model folders of the unfinished
    cells."""
    if ray_address is not None:
        yield from _ray_cells(jobs, workers, bar, ray_address)
        return
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            bar.describe(f"{job[1]['name']} · {job[2]} · seed {job[3]}")
            yield (job[1], job[2], job[3]), _cell_job(*job)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    def new_pool() -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_worker_started,
            initargs=(os.getpid(), active_cache_folder(), context.Value("i", 0), workers),
        )

    # Workers started from Python rather than the `diffdyn` command: one BLAS thread each too
    # (`entry.BLAS_THREADS`: two spinning on a pinned core slow an ESN fit 5-8x).
    blas = os.environ.get(BLAS_THREADS)
    os.environ[BLAS_THREADS] = blas or "1"
    pool = new_pool()
    unfinished, queue = list(jobs), list(jobs)
    running: dict[Any, tuple] = {}
    try:
        bar.describe(f"{len(jobs)} cells on {workers} worker processes")
        while queue or running:
            while queue and len(running) < workers:  # no more in flight than workers
                job = queue.pop(0)
                running[pool.submit(_cell_job, *job)] = job
            done, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
            stop_if_terminated()  # a SIGTERM whose exception was lost (errors.terminate)
            broken = False
            for future in done:
                job = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    result = _lost(job, "a worker process died while running it (out of memory?)")
                unfinished.remove(job)  # the caller records it (a recorded cell keeps its model)
                yield (job[1], job[2], job[3]), result
            if broken:  # every cell still in the dead pool is lost with it; go on in a new one
                for job in running.values():
                    unfinished.remove(job)
                    yield (job[1], job[2], job[3]), _lost(job, "its worker pool broke")
                running.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = new_pool()
    except BaseException:  # KeyboardInterrupt, Terminated, GeneratorExit, an error
        _stop_workers(pool)
        for job in unfinished:
            shutil.rmtree(_cell_folder(job[0], job[1], job[2], job[3]), ignore_errors=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if blas is None:
            os.environ.pop(BLAS_THREADS, None)


RAY_LOCAL = "local"  # `--ray local`: a Ray instance started for the run, stopped after it
RAY_OBJECT_STORE_BYTES = 200 * 1024**2  # cells return a few kB: a small object store


RAY_CONNECT_SECONDS = 5.0


def _import_ray():
    try:
        import ray
    except ImportError:
        raise DiffdynError(
            "--ray needs Ray: pip install 'diffdyn[ray]' (or run without --ray; --workers N "
            "uses local processes)."
        ) from None
    return ray


def check_ray(address: str) -> None:
    """Before any folder is made: Ray is installed and, for `HOST:PORT`, reachable."""
    if not address.strip():
        raise DiffdynError("--ray needs an address: local, auto or HOST:PORT.")
    _import_ray()
    if address != RAY_LOCAL:
        _check_reachable(address)


def _check_reachable(address: str) -> None:
    """Refuse a `HOST:PORT` (or `ray://HOST:PORT`) that does not accept a connection within
    `RAY_CONNECT_SECONDS`: `ray.init` itself retries an unreachable address for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # `auto` and other forms Ray resolves itself
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), RAY_CONNECT_SECONDS).close()
    except OSError as error:
        raise DiffdynError(
            f"--ray {address}: cannot start or reach Ray (no answer at {host}:{port}: "
            f"{error.strerror or error}); check the address, or use --ray local."
        ) from None


def _ray_cell_job(cache: str | None, *job):
    """One cell as a Ray task runs it: the driver's compilation cache, then `_cell_job`."""
    if cache:
        enable_compilation_cache(cache)
    return _cell_job(*job)


def _ray_cells(
    jobs, workers: int, bar, address: str
) -> Generator[tuple[tuple, tuple[dict, dict]]]:
    """The cells as Ray tasks, one CPU each: on a local instance started now with `workers`
    CPUs (`address == "local"`, stopped at the end), or on the running cluster at `address`
    (`auto`, `HOST:PORT`, `ray://HOST:PORT`), whose nodes must see the run folder at the same
    path (a shared file system) and have diffdyn installed. Only this process writes the
    store; a task whose worker dies becomes a `lost` row."""
    ray = _import_ray()
    import logging

    from ray.exceptions import RayError

    started = not ray.is_initialized()
    if started:
        settings: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if address == RAY_LOCAL:
            settings.update(num_cpus=workers, object_store_memory=RAY_OBJECT_STORE_BYTES)
            if "OMP_NUM_THREADS" not in os.environ:
                # Ray sets OMP_NUM_THREADS=1 in its workers, which changes how NumPy's BLAS
                # splits a sum, and so the last bits of an ESN's reservoir scaling and (the
                # model being chaotic) its scores: workers keep the driver's threading, so a
                # cell gives the numbers it gives in a local process.
                threads = str(os.cpu_count() or 1)
                settings["runtime_env"] = {"env_vars": {"OMP_NUM_THREADS": threads}}
        else:
            settings["address"] = address
        try:
            ray.init(**settings)
        except (ConnectionError, RuntimeError, ValueError) as error:
            why = " ".join(str(error).split())[:200]
            raise DiffdynError(
                f"--ray {address}: cannot start or reach Ray ({why}); check the address, or use "
                "--ray local."
            ) from None
    task = ray.remote(num_cpus=1, max_retries=0)(_ray_cell_job)
    cache = active_cache_folder()
    refs = {task.remote(cache, *job): job for job in jobs}
    try:
        bar.describe(f"{len(jobs)} cells as Ray tasks ({address})")
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
            stop_if_terminated()
            for ref in ready:
                job = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except RayError as error:
                    result = _lost(job, f"its Ray worker died ({type(error).__name__})")
                yield (job[1], job[2], job[3]), result
    except BaseException:
        for ref, job in refs.items():
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        for job in refs.values():
            shutil.rmtree(_cell_folder(job[0], job[1], job[2], job[3]), ignore_errors=True)
        raise
    finally:
        if started:
            ray.shutdown()


def _stop_workers(pool: Any, grace: float = 10.0) -> None:
    """Stop a process pool's workers now: SIGTERM, then, after `grace` seconds, SIGKILL for
    any still running; wait for each."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(5)


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
    if dataset["kind"] == "dysts":  # the default protocol: a system's training and fresh runs
        key = (dataset["name"], seed, fresh)
        if key not in cache:
            series = dysts_series(
                dataset["ref"],
                granularity=DYSTS_DEFAULT_GRANULARITY,
                periods=DYSTS_DEFAULT_PERIODS,
                seed=seed + (FRESH_SEED_OFFSET if fresh else 0),
            )
            cache[key] = series, DataSource.of_series(series)
        return cache[key]
    if dataset["kind"] == "file":
        key = (dataset["name"], dataset["content"])
        if key not in cache:
            if file_digest(dataset["ref"]) != dataset["content"]:
                raise DataError(
                    f"{dataset['ref']} changed while the grid ran; run the same command again "
                    "to run its cells on the new content."
                )
            cache[key] = load_data(
                data=dataset["ref"], irregular=dataset.get("irregular", "refuse")
            )
        return cache[key]
    key = (dataset["name"], seed, fresh)
    if key not in cache:
        # One system and seed at a time, its training and its fresh evaluation trajectory
        # both: a cell uses the two in turn, and the next cell of the system reuses them.
        for other in [k for k in cache if k[:2] != key[:2]]:
            del cache[other]
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
    """Train and score one cell; return its metrics and its artifacts for the report. An
    interrupted cell (Ctrl-C, SIGTERM) removes its model folder: a rerun trains it afresh."""
    folder = _cell_folder(out, dataset, model, seed)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists():  # left by a cell killed outright
        shutil.rmtree(folder)
    try:
        return _train_and_score(
            folder, dataset, model, seed, budget, threshold, lyapunov_exponent, cache, devices
        )
    except KeyboardInterrupt:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _train_and_score(
    folder: Path,
    dataset: dict[str, str],
    model: str,
    seed: int,
    budget: float,
    threshold: float,
    lyapunov_exponent: float | None,
    cache: dict,
    devices: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    if dataset.get("protocol", DEFAULT_PROTOCOL) != DEFAULT_PROTOCOL:
        return _dysts_cell(folder, dataset, model, seed, budget, threshold, devices)
    started = time.perf_counter()
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
    simulated = dataset["kind"] in ("system", "dysts")  # scored on a fresh trajectory
    eval_series, eval_source = _data(dataset, seed, True, cache) if simulated else (series, source)
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
    metrics["evaluate_seconds"] = time.perf_counter() - started - float(trained.seconds)
    if dataset.get(HALVING_ROUND) is not None:  # a round of successive halving
        metrics[HALVING_ROUND] = int(dataset[HALVING_ROUND])
        metrics[VALIDATION_VPT] = _validation_vpt(folder, dataset, seed, trained, threshold,
                                                  lyapunov_exponent, cache)  # fmt: skip
    if dataset.get("long_run") != "no":
        analysed = time.perf_counter()
        metrics.update(_long_run_metrics(folder, eval_series, eval_source, result, metrics))
        metrics["long_run_seconds"] = time.perf_counter() - analysed
    artifacts = _artifacts(folder, model, result, eval_series, eval_source, metrics)
    metrics["cell_seconds"] = time.perf_counter() - started
    return metrics, artifacts


def _validation_vpt(
    folder: Path,
    dataset: dict[str, str],
    seed: int,
    trained: TrainResult,
    threshold: float,
    lyapunov_exponent: float | None,
    cache: dict,
) -> float:
    """What successive halving ranks a model by: its mean VPT on validation data that neither
    training nor the cell's score uses — a third trajectory of a system (another start and
    key), or the last `HALVING_VALIDATION_FRACTION` of a file's training rows."""
    if dataset["kind"] == "system":
        series, _ = load_data(system=dataset["ref"], seed=seed + VALIDATION_SEED_OFFSET,
                              fresh=True)  # fmt: skip
    elif dataset["kind"] == "dysts":
        series = dysts_series(dataset["ref"], granularity=DYSTS_DEFAULT_GRANULARITY,
                              periods=DYSTS_DEFAULT_PERIODS,
                              seed=seed + VALIDATION_SEED_OFFSET)  # fmt: skip
    else:
        whole, _ = _data(dataset, seed, False, cache)
        start = held_out_start(trained.train_rows, HALVING_VALIDATION_FRACTION)
        series = whole.slice(max(0, start - trained.training.context), trained.train_rows)
    source = DataSource.of_series(series)
    result = evaluate_model(
        folder, series, source, threshold=threshold, lyapunov_exponent=lyapunov_exponent,
        starts=HALVING_STARTS,
    )  # fmt: skip
    return float(result.vpt.mean) if math.isfinite(result.vpt.mean) else 0.0


def _dysts_cell(
    folder: Path,
    dataset: dict[str, str],
    model: str,
    seed: int,
    budget: float,
    threshold: float,
    devices: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A cell under the dysts forecasting protocol (`dysts_protocol`, Gilpin 2021): trained on
    the first 10 of 12 periods, scored by the sMAPE of one closed-loop forecast of the last 2."""
    protocol = dataset["protocol"]
    task = dysts_task(
        dataset["ref"],
        granularity=dataset.get("granularity", DYSTS_DEFAULT_GRANULARITY),
        setting="multivariate" if protocol == "dysts-multivariate" else "univariate",
        seed=seed,
    )
    trained = train_model(task.train, task.source, model, folder, seed=seed, budget=budget,
                          progress=False, devices=devices)  # fmt: skip
    score = score_dysts(folder, task.train, task.test, threshold=threshold)
    metrics = _cell_metrics(trained, score.evaluation)
    metrics.update(
        smape=score.smape,
        horizon=score.horizon,
        protocol=protocol,
        granularity=str(score.granularity),
        points_per_period=score.points_per_period,
    )
    example = score.evaluation.example(0, score.horizon).to_json()
    return metrics, {FORECAST: example}


def _long_run_metrics(
    folder: Path, series: Any, source: DataSource, result: Evaluation, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The model as a dynamical system (`analysis.analyze_model`, a shorter spectrum than
    `diffdyn analyze`'s, no sensitivity): λ₁ of its closed loop, its spectrum's error against
    the system's, the long run's distances and behaviour. A model with exogenous inputs has
    none; an analysis that fails leaves a note, the scores stand."""
    if read_sidecar(folder).get("exog_variables"):
        return {}
    lam, dt = result.lyapunov_exponent, result.dt
    duration = LONG_RUN_SPECTRUM_STEPS * dt
    if lam:
        duration = max(duration, LONG_RUN_SPECTRUM_LYAPUNOV_TIMES / lam)
    try:
        analysis = analyze_model(folder, series, source, duration=duration, windows=0)
    except Exception as error:  # the cell's scores stand; the reason is in its note
        reason = f"no long-run analysis: {_reason(error)}"
        metrics["note"] = "; ".join(filter(None, [metrics.get("note"), reason]))
        return {}
    run = analysis.long_run
    out: dict[str, Any] = {"long_run": run.behaviour.kind}
    if analysis.spectrum_problem:
        reason = f"no Lyapunov spectrum: {analysis.spectrum_problem}"
        metrics["note"] = "; ".join(filter(None, [metrics.get("note"), reason]))
    numbers = {
        "model_lyapunov_exponent": analysis.largest_exponent,
        "spectrum_error": analysis.spectrum_error,
        "power_spectrum_distance": run.mean_power_spectrum_distance,
        "density_distance": run.density_distance,
        "correlation_dimension": run.correlation_dimension,
    }
    out.update({k: float(v) for k, v in numbers.items() if v is not None and math.isfinite(v)})
    if analysis.system_spectrum is not None:
        out["system_lyapunov_exponent"] = float(analysis.system_spectrum.largest)
    return out


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
