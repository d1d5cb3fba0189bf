"""The `diffdyn` command: parses, calls the library, prints.

Every `DiffdynError` (bad input the user can fix) and every usage error becomes one line on
stderr, `error: ...`, and exit status 2 — never a traceback.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import jax
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from . import __version__
from .compare import export_csv, read_leaderboards, run_compare, write_report
from .compare.grid import (
    DEFAULT_BUDGET,
    DEFAULT_OUTPUT,
    DEFAULT_PROTOCOL,
    DEFAULT_WORKERS,
    DYSTS_DEFAULT_GRANULARITY,
    choose_datasets,
)
from .compilation import enable_compilation_cache
from .data.io import check_series_path, write_series
from .errors import DiffdynError, Terminated, interrupt, stop_requested, terminate
from .files import check_output_path
from .options import (
    MAX_INT,
    check_number,
    merge_options,
    parse_assignments,
    parse_budget,
    parse_list,
)
from .plot import (
    check_figure_path,
    format_parameters,
    memory_block_labels,
    plot_attention,
    plot_forecast,
    plot_gates,
    plot_series,
)
from .resources import check_output_size
from .systems import SYSTEMS, get_system, simulate, system_class
from .systems.base import AbstractSystem
from .train import (
    DataSource,
    Evaluation,
    Explanation,
    TrainResult,
    check_explain_request,
    check_train_request,
    evaluate_model,
    explain_model,
    forecast_model,
    load_data,
    load_forecast_data,
    train_model,
)
from .train.checkpoint import read_sidecar, write_json
from .train.config import TrainConfig
from .train.devices import use_devices

try:  # Typer >= 0.26 vendors Click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:
    from click.exceptions import ClickException, UsageError  # pyright: ignore[reportMissingImports]


def _fail(message: str, status: int = 2) -> NoReturn:
    # click.echo, not Rich: Rich would wrap a long message onto several lines.
    typer.echo("error: " + " ".join(message.split()), err=True)
    if status in (130, 143) and stop_requested():
        # Interrupted: the cleanup has run as the exception unwound; leave now, before XLA's
        # teardown, which can crash while its threads still finish the interrupted call.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


class _Stopped(Exception):
    """Ctrl-C or SIGTERM, carried past Typer (which would turn it into a silent exit 130)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class _OneLineErrors(TyperGroup):
    """The command group, answering bad input with one line on stderr and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            terminated = isinstance(exc, Terminated)
            what = "stopped by SIGTERM" if terminated else "interrupted"
            hint = _RESUME_HINTS.get(ctx.invoked_subcommand or "", "")
            raise _Stopped(
                f"{what}; nothing half-written was left{hint}.", 143 if terminated else 130
            ) from exc

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except UsageError as exc:
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            _fail(exc.format_message() + hint, exc.exit_code)
        except ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except DiffdynError as exc:
            _fail(str(exc))
        except _Stopped as exc:
            _fail(str(exc), exc.status)
        if status == 130 and stop_requested():
            # Typer turned an interrupt outside a command (while parsing) into a silent 130.
            terminated = stop_requested() == "SIGTERM"
            what = "stopped by SIGTERM" if terminated else "interrupted"
            _fail(
                f"{what} before the command started; nothing was done.", 143 if terminated else 130
            )
        if not standalone_mode:
            return status
        sys.exit(status if isinstance(status, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    name="diffdyn",
    epilog="Example: diffdyn simulate lorenz63 --steps 5000 -o lorenz63.csv --plot lorenz63.png",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped output is not wrapped at 80 columns: one line per row reads and greps better.
        console = Console(highlight=False, width=200)
    return console


_RESUME_HINTS = {
    "train": "; the same command with --resume continues from the last checkpoint",
    "compare": "; the same command again resumes the grid",
}


def _unraisable(info) -> None:
    # An interrupt raised inside a garbage-collection callback is dropped by Python; the
    # training and grid loops raise it again (`errors.stop_if_terminated`), so say nothing.
    if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
        return
    sys.__unraisablehook__(info)


def main() -> None:
    """The `diffdyn` console script.

    Exit statuses: 0 done; 2 bad input (one line on stderr, nothing written); 3 a `compare`
    grid finished but some cells failed (each failure is recorded with its reason); 130
    interrupted by Ctrl-C; 143 stopped by SIGTERM. Interrupted work leaves no temporary file
    and resumes where it stopped.
    """
    signal.signal(signal.SIGTERM, terminate)
    # A background job starts with SIGINT ignored; `kill -INT` should stop it all the same.
    signal.signal(signal.SIGINT, interrupt)
    sys.unraisablehook = _unraisable
    enable_compilation_cache()  # before anything compiles (DIFFDYN_CACHE_DIR=off: none)
    app(prog_name="diffdyn")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"diffdyn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Differentiable programming for dynamical systems: simulate, learn, forecast."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


# -- diffdyn systems -------------------------------------------------------------------------
def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _facts(cls: type[AbstractSystem]) -> dict[str, Any]:
    system = cls()
    # 7 significant digits: parameters are float32, and 2.6666667461395264 is noise.
    parameters = {k: float(f"{float(v):.7g}") for k, v in system.parameters().items()}
    parameters.update({k: getattr(system, k) for k in cls.structural_names()})
    return {
        "name": cls.name,
        "kind": cls.kind,
        "dimension": system.dim,
        "variables": list(system.variables),
        "parameters": parameters,
        "lyapunov_exponent": cls.lyapunov_exponent,
        "lyapunov_time": system.lyapunov_time,
        "lyapunov_source": cls.lyapunov_source or None,
        "dt": float(cls.dt),
        "default_steps": cls.default_steps,
        "default_transient": cls.default_transient,
        "exogenous_inputs": list(cls.exog_variables),
        "needs_seed": system.needs_key,
        "description": cls.description,
        "equations": next(iter((cls.__doc__ or "").strip().splitlines()), ""),
    }


def _variables_text(variables: list[str]) -> str:
    if len(variables) > 6:
        return f"{variables[0]} … {variables[-1]} ({len(variables)})"
    return ", ".join(variables)


@app.command(epilog="Example: diffdyn systems lorenz63    (or: diffdyn systems --json)")
def systems(
    name: Annotated[
        str | None, typer.Argument(help="Show one system in detail (e.g. lorenz63).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
) -> None:
    """List the catalogue of dynamical systems, or describe one.

    λ₁ is the largest Lyapunov exponent at the default parameters (per time unit); the Lyapunov
    time 1/λ₁ is the time over which small errors grow e-fold.
    """
    classes = [system_class(name)] if name is not None else list(SYSTEMS.values())
    facts = [_facts(cls) for cls in classes]
    if as_json:
        typer.echo(json.dumps(facts[0] if name is not None else facts, indent=2))
        return
    if name is not None:
        _console().print(_detail(facts[0]))
        return
    console = _console()
    with_description = console.width >= 110
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("kind", no_wrap=True)
    table.add_column("dim", justify="right", no_wrap=True)
    table.add_column("parameters (defaults)", min_width=16)
    table.add_column("λ₁", justify="right", no_wrap=True)
    table.add_column("1/λ₁", justify="right", no_wrap=True)
    table.add_column("dt", justify="right", no_wrap=True)
    if with_description:
        table.add_column("description", min_width=20)
    for f in facts:
        row = [
            f["name"],
            f["kind"],
            str(f["dimension"]),
            format_parameters(f["parameters"]),
            _number(f["lyapunov_exponent"]),
            _number(f["lyapunov_time"]),
            f"{f['dt']:g}",
        ]
        table.add_row(*map(Text, row), *([Text(f["description"])] if with_description else []))
    console.print(table)
    console.print(
        "λ₁: largest Lyapunov exponent at the defaults; 1/λ₁: Lyapunov time. "
        "Details: diffdyn systems NAME",
        soft_wrap=True,
    )


def _detail(f: dict[str, Any]) -> Table:
    table = Table(
        title=f"{f['name']} — {f['description']}",
        show_header=False,
        box=None,
        title_justify="left",
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    rows = [
        ("equations", f["equations"]),
        ("kind", f["kind"]),
        ("variables", _variables_text(f["variables"])),
        ("parameters", format_parameters(f["parameters"])),
        ("exogenous inputs", ", ".join(f["exogenous_inputs"]) or "—"),
        ("recommended dt", f"{f['dt']:g}"),
        ("default steps", str(f["default_steps"])),
        ("default transient", f"{f['default_transient']:g}"),
        ("λ₁", _number(f["lyapunov_exponent"])),
        ("Lyapunov time", _number(f["lyapunov_time"])),
        ("λ₁ source", f["lyapunov_source"] or "—"),
        ("example", f"diffdyn simulate {f['name']} -o {f['name']}.csv --plot {f['name']}.png"),
    ]
    for label, value in rows:
        table.add_row(label, Text(value))
    return table


# -- diffdyn simulate ------------------------------------------------------------------------
@app.command(
    "simulate",
    short_help="Simulate a system from the catalogue (or your own, FILE.py:CLASS) and write "
    "its trajectory to a file.",
    epilog="Example: diffdyn simulate lorenz63 --param rho=35 --steps 5000 --observe x,z "
    "-o lorenz63.csv --plot lorenz63.png",
)
def simulate_command(
    system: Annotated[
        str, typer.Argument(help="System name (see `diffdyn systems`), or FILE.py:CLASS.")
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write the series: .csv, .parquet or .npz."),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", metavar="NAME=VALUE", help="NAME=VALUE, repeatable (e.g. -p rho=35)."
        ),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(min=2, help="Number of saved samples (default: the system's).")
    ] = None,
    t1: Annotated[
        float | None,
        typer.Option(help="Duration to save instead of --steps."),
    ] = None,
    dt: Annotated[
        float | None,
        typer.Option(help="Sampling step (default: the system's)."),
    ] = None,
    transient: Annotated[
        float | None, typer.Option(min=0, help="Time discarded before saving starts.")
    ] = None,
    noise: Annotated[
        float, typer.Option(min=0, help="Observation noise, fraction of each variable's std.")
    ] = 0.0,
    observe: Annotated[
        str | None, typer.Option(help="Comma-separated variables to keep, e.g. x,z.")
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Random seed (noise, random inputs).")
    ] = 0,
    rtol: Annotated[float, typer.Option(help="Solver rtol (flows).")] = 1e-6,
    atol: Annotated[float, typer.Option(help="Solver atol (flows).")] = 1e-8,
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the series to this image (.png, .pdf, .svg).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output files.")] = False,
) -> None:
    """Simulate a system from the catalogue (or your own, FILE.py:CLASS) and write its
    trajectory to a file."""
    check_series_path(output, force=force)
    if plot is not None:
        check_figure_path(plot, force=force)
    variables = None if observe is None else [v.strip() for v in observe.split(",") if v.strip()]
    built = get_system(system, **parse_assignments(param or []))
    rows = steps if steps is not None else built.default_steps
    if t1 is not None:
        step = check_number("--dt", dt if dt is not None else built.dt, above=0)
        rows = int(check_number("--t1", t1, above=0) / step) + 1
    columns = 1 + len(variables or built.variables) + len(built.exog_variables)
    check_output_size(output, rows, columns, f"simulating {rows} samples of {built.name}")
    with Console(stderr=True).status(f"simulating {built.name} …"):
        series = simulate(
            built,
            steps=steps,
            t1=t1,
            dt=dt,
            transient=transient,
            noise=noise,
            observe=variables,
            key=jax.random.key(seed),
            rtol=rtol,
            atol=atol,
        )
        written = write_series(series, output, force=force)
        if plot is not None:
            plot_series(series, plot, force=force)
    _console().print(_summary(series, written, plot), soft_wrap=True, markup=False)


def _summary(series, written: Path, plot: Path | None) -> str:
    times = series.times
    text = (
        f"{series.metadata['system']}: {len(series)} × {series.dim} "
        f"[{_variables_text(list(series.variables))}], "
        f"t = {float(times[0]):g} … {float(times[-1]):g} (dt = {series.dt:g})"
    )
    if series.lyapunov_exponent is not None:
        text += f", λ₁ = {series.lyapunov_exponent:.4g}"
    if series.lyapunov_time is not None:
        text += (
            f", Lyapunov time {series.lyapunov_time:.3g} "
            f"({series.duration / series.lyapunov_time:.1f} Lyapunov times)"
        )
    text += f" → {written}"
    if plot is not None:
        text += f", plot {plot}"
    return text


# -- options shared by train, evaluate and forecast ------------------------------------------
DevicesOption = Annotated[
    int | None,
    typer.Option(
        "--devices",
        min=1,
        help="Split each training batch over N local devices (GPUs; on CPU, N cores as host "
        "devices). Default: 1.",
    ),
]
DataOption = Annotated[
    Path | None, typer.Option("--data", help="A series file: .csv, .parquet or .npz.")
]
IrregularOption = Annotated[
    str,
    typer.Option(
        "--irregular",
        help="What to do with a file sampled at uneven steps: refuse (default), resample "
        "(interpolate linearly onto the median step) or proceed (treat rows as equally spaced).",
    ),
]
SystemOption = Annotated[
    str | None,
    typer.Option(
        "--system", help="Simulate this catalogue system instead (see `diffdyn systems`)."
    ),
]
SystemParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--system-param",
        "-P",
        metavar="NAME=VALUE",
        help="System parameter, repeatable (e.g. -P rho=35); with --system.",
    ),
]


def _source_arguments(source: DataSource) -> str:
    """The `--data` / `--system` arguments that reproduce a data source."""
    if source.kind == "file":
        return f"--data {shlex.quote(str(source.path))}"
    text = f"--system {source.system}"
    for key, value in source.parameters.items():
        text += f" --system-param {shlex.quote(f'{key}={value}')}"
    return text


def _source_text(source: DataSource, rows: int) -> str:
    if source.kind == "file":
        return f"{source.path} ({rows} rows)"
    settings = "".join(f", {k}={v}" for k, v in source.parameters.items())
    return f"{source.system}, simulated ({rows} samples, seed {source.seed}{settings})"


def _value_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _assignments_text(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={_value_text(v)}" for k, v in values.items()) or "—"


def _key_value_table(rows: list[tuple[str, str]], title: str | None = None) -> Table:
    table = Table(title=title, show_header=False, box=None, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for label, value in rows:
        table.add_row(label, Text(value))
    return table


# -- diffdyn models --------------------------------------------------------------------------
FIT_KIND_TEXT = {"gradient": "gradient", "closed_form": "closed form", "none": "none"}


@app.command(epilog="Example: diffdyn models    (or: diffdyn models --json)")
def models(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
) -> None:
    """List the forecasting models: how each is fitted, its hyperparameters and defaults.

    Fit: gradient (trained by `diffdyn train` with a strategy, epochs, a budget ...), closed
    form (one linear solve) or none (nothing to learn). Hyperparameters are set with
    `diffdyn train --param NAME=VALUE`; "training" lists the training options a model sets
    itself (the others take the shared defaults printed below the table).
    """
    from .models.registry import MODELS, _load_builtin

    _load_builtin()
    facts = [
        {
            "name": spec.name,
            "fit_kind": spec.cls.fit_kind,
            "hyperparameters": spec.defaults,
            "training": TrainConfig.from_options(spec.training).to_dict(),
            "model_training_defaults": spec.training,
            "description": spec.description,
        }
        for spec in MODELS.values()
    ]
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    console = _console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("fit", no_wrap=True)
    table.add_column("hyperparameters", min_width=16)
    table.add_column("training", min_width=12)
    table.add_column("description", min_width=20)
    for f in facts:
        row = [
            f["name"],
            FIT_KIND_TEXT.get(f["fit_kind"], f["fit_kind"]),
            _assignments_text(f["hyperparameters"]),
            _assignments_text(f["model_training_defaults"]),
            f["description"],
        ]
        table.add_row(*map(Text, row))
    console.print(table)
    console.print(
        "Training options a model does not set take the shared defaults ("
        + _assignments_text(TrainConfig().to_dict())
        + "). Train: diffdyn train --system lorenz63 --model NAME -o runs/NAME",
        soft_wrap=True,
        markup=False,
    )


# -- diffdyn train ---------------------------------------------------------------------------
@app.command(
    "train",
    epilog="Example: diffdyn train --system lorenz63 --steps 5000 --model persistence "
    "-o runs/lorenz63-persistence    (gradient models: add --budget 5m, -p NAME=VALUE ...)",
)
def train_command(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model name (see `diffdyn models`).")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Folder to save the model in (created; its parent must exist)."
        ),
    ],
    data: DataOption = None,
    irregular: IrregularOption = "refuse",
    system: SystemOption = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="NAME=VALUE",
            help="Model hyperparameter, repeatable (e.g. -p hidden=64).",
        ),
    ] = None,
    context: Annotated[
        int | None, typer.Option(min=1, help="Input window length, in samples.")
    ] = None,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="Forecast length the loss covers, in samples.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Passes over the data.")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Windows per gradient step.")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", help="Adam step size.")
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="teacher (one-step loss), free (loss over a closed-loop rollout) or "
            "curriculum (a rollout growing to --horizon)."
        ),
    ] = None,
    loss: Annotated[
        str | None,
        typer.Option(
            help="What the rollout is scored by: mse (default), soft-dtw (soft-DTW divergence; "
            "--option soft_dtw_gamma=0.1) or soft-vpt (smooth valid prediction time; --option "
            "soft_vpt_epsilon=0.5, soft_vpt_temperature=0.1)."
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            metavar="NAME=VALUE",
            help="Other training option, repeatable: clip, weight_decay, schedule, validation, "
            "patience, stride, max_failures, soft_dtw_gamma, soft_vpt_epsilon, "
            "soft_vpt_temperature.",
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            help="Wall-clock limit of the training: 90 (seconds), 60s, 5m or 1h; compiling "
            "and validation count against it."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Random seed (initial weights, shuffling).")
    ] = 0,
    steps: Annotated[
        int | None,
        typer.Option(min=2, help="Samples to simulate for training (--system; default: its own)."),
    ] = None,
    system_param: SystemParamOption = None,
    lyapunov_exponent: Annotated[
        float | None,
        typer.Option(
            "--lyapunov-exponent",
            help="λ₁ of the data (per time unit), recorded for evaluate; default: the system's.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing model folder (the old one stays until the new model is "
            "complete).",
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted or budget-limited training in the folder (same "
            "data, model and options; --budget and --devices may change).",
        ),
    ] = False,
    devices: DevicesOption = None,
) -> None:
    """Train a model on a file or a simulated system and save it in a folder.

    A file's last 20% of rows is held out (`diffdyn evaluate` on the same file scores only
    those); a simulated system is used whole (evaluate simulates a fresh trajectory). Every
    epoch is checkpointed: after an interruption or a spent --budget, --resume continues.
    --budget is wall-clock time: compiling and validation count against it.
    """
    devices = use_devices(devices)
    seconds = parse_budget(budget)
    flags = {
        "context": context,
        "horizon": horizon,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "strategy": strategy,
        "loss": loss,
    }
    options = merge_options(parse_assignments(option or []), flags)
    hyperparameters = parse_assignments(param or [])
    check_train_request(
        model,
        output,
        hyperparameters=hyperparameters,
        options=options,
        force=force,
        resume=resume,
        seed=seed,
    )
    with Console(stderr=True).status("preparing the data …"):
        series, source = load_data(
            data=None if data is None else str(data),
            irregular=irregular,
            system=system,
            params=parse_assignments(system_param or []),
            steps=steps,
            seed=seed,
        )
    result = train_model(
        series,
        source,
        model,
        output,
        hyperparameters=hyperparameters,
        options=options,
        seed=seed,
        budget=seconds,
        force=force,
        resume=resume,
        progress=True,
        lyapunov_exponent=lyapunov_exponent,
        devices=devices,
    )
    _console().print(_train_summary(result))


def _compiling(result: TrainResult) -> str:
    compiling = result.sidecar.get("compile_seconds")
    return "" if not compiling or compiling < 0.05 else f", of which {compiling:.3g} s compiling"


def _train_summary(result: TrainResult) -> Table:
    used = _source_text(result.data, result.rows)
    if result.data.kind == "file":
        held = result.rows - result.train_rows
        used += f"; trained on the first {result.train_rows}, the last {held} held out"
    rows = [
        ("model", f"{result.model} ({result.parameters} parameters)"),
        ("data", used),
        ("training", f"{result.seconds:.3g} s{_compiling(result)}; {result.stop_reason}"),
    ]
    if result.best_val_loss is not None:
        rows.append(
            ("best validation loss", f"{result.best_val_loss:.4g} (MSE, standardised data)")
        )
    if result.tuning is not None:
        tuning = result.tuning
        rows.append(("tuned", ", ".join(f"{k} {v:.4g}" for k, v in tuning.tuned.items())))
        rows.append((
            "tuning",
            f"from {', '.join(f'{k} {v:.4g}' for k, v in tuning.initial.items())}; validation "
            f"loss {tuning.initial_loss:.4g} → {tuning.tuned_loss:.4g} in {tuning.steps} steps "
            f"({tuning.readout_solves} readout solves, {tuning.seconds:.3g} s); -p tune=off "
            "skips it",
        ))  # fmt: skip
    folder = result.folder or Path()
    rows.append(("saved in", str(folder)))
    if not result.finished:
        rows.append(("unfinished", "run the same command with --resume to continue training"))
    rows.append(
        ("next", f"diffdyn evaluate {shlex.quote(str(folder))} {_source_arguments(result.data)}")
    )
    return _key_value_table(rows)


# -- diffdyn evaluate ------------------------------------------------------------------------
@app.command(
    "evaluate",
    epilog="Example: diffdyn evaluate runs/lorenz63-lstm --system lorenz63 --threshold 0.4",
)
def evaluate_command(
    model_dir: Annotated[Path, typer.Argument(help="A model folder written by `diffdyn train`.")],
    data: DataOption = None,
    irregular: IrregularOption = "refuse",
    system: SystemOption = None,
    threshold: Annotated[
        float, typer.Option(help="ε: the NRMSE above which a forecast stops being valid.")
    ] = 0.5,
    lyapunov_exponent: Annotated[
        float | None,
        typer.Option(
            "--lyapunov-exponent",
            help="λ₁ (per time unit) to give VPT in Lyapunov times; default: the one known at "
            "training, else the data's.",
        ),
    ] = None,
    horizon: Annotated[
        int | None,
        typer.Option(min=1, help="Forecast length in samples (default: 10 Lyapunov times)."),
    ] = None,
    starts: Annotated[
        int, typer.Option(min=2, help="Forecast start points, spread evenly over the data.")
    ] = 50,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Random seed of the fresh simulation.")
    ] = 0,
    steps: Annotated[
        int | None,
        typer.Option(min=2, help="Samples to simulate (--system; default: the system's)."),
    ] = None,
    system_param: SystemParamOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the scores as JSON (default: MODEL_DIR/evaluation.json, "
            "replaced on each run; another existing file needs --force).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing --output file.")
    ] = False,
) -> None:
    """Score a trained model: NRMSE at several lead times, sMAPE, RMSE and valid prediction time.

    With --system, a fresh trajectory (another initial condition than training's) is
    simulated; with the training file, only its held-out end is scored; any other file is
    scored whole. Forecasts start at many points (--starts), never one.
    """
    read_sidecar(model_dir)
    default = model_dir / "evaluation.json"
    if output is not None and output.resolve().parent == model_dir.resolve():
        if output.name != default.name:
            raise DiffdynError(
                f"{output} is in the model folder {model_dir}, whose files are the model; "
                f"write the scores elsewhere or leave -o out ({default})."
            )
    given = output is not None and output.resolve() != default.resolve()
    scores = check_output_path(
        default if output is None else output, force=force or not given, suffixes=[".json"]
    )
    with Console(stderr=True).status("evaluating …"):
        series, source = load_data(
            data=None if data is None else str(data),
            irregular=irregular,
            system=system,
            params=parse_assignments(system_param or []),
            steps=steps,
            seed=seed,
            fresh=True,
        )
        result = evaluate_model(
            model_dir,
            series,
            source,
            threshold=threshold,
            lyapunov_exponent=lyapunov_exponent,
            horizon=horizon,
            starts=starts,
        )
        write_json(scores, result.to_json())
    scored = _source_text(result.data, len(series))
    if result.held_out:
        scored += ": its held-out end, not used in training"
    elif result.data.kind == "system":
        scored += ", from a fresh initial condition"
    console = _console()
    console.print(f"{result.model} on {scored}", soft_wrap=True, markup=False)
    console.print(_scores_table(result))
    console.print(f"scores written to {scores}", soft_wrap=True, markup=False)


def _scores_table(result: Evaluation) -> Table:
    lam, vpt = result.lyapunov_exponent, result.vpt
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("score", style="bold", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("")
    for lead, value in result.nrmse.items():
        where = f"{float(lead) * lam:.3g} Lyapunov times" if lam else ""
        table.add_row(f"NRMSE at t = {lead}", f"{value:.4g}", where)
    table.add_row("sMAPE", f"{result.smape:.4g}", "%, 0–200")
    table.add_row("RMSE", f"{result.rmse:.4g}", "data units")
    table.add_row(
        "VPT", f"{vpt.mean:.3g} ± {vpt.std:.2g}", f"{vpt.unit}, ε = {result.threshold:g}"
    )
    table.add_row(
        "start points",
        str(result.start_points),
        f"context {result.context}, horizon {result.horizon} samples",
    )
    censored = "never crossed ε: their VPT is a lower bound" if vpt.censored else ""
    table.add_row("censored", str(vpt.censored), censored)
    if result.note:
        table.add_row("note", "", Text(result.note))
    return table


# -- diffdyn forecast ------------------------------------------------------------------------
@app.command(
    "forecast",
    epilog="Example: diffdyn forecast runs/lorenz63-lstm --system lorenz63 --steps 500 "
    "-o forecast.csv --plot forecast.png",
)
def forecast_command(
    model_dir: Annotated[Path, typer.Argument(help="A model folder written by `diffdyn train`.")],
    steps: Annotated[int, typer.Option(min=1, help="Samples to forecast (closed loop).")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Where to write the forecast: .csv, .parquet or .npz."
        ),
    ],
    data: DataOption = None,
    irregular: IrregularOption = "refuse",
    system: SystemOption = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Also draw history, forecast and (with --system) truth to an image."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output files.")] = False,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Random seed of the fresh simulation.")
    ] = 0,
    system_param: SystemParamOption = None,
) -> None:
    """Forecast the samples after the end of a series, closed loop, and write them to a file.

    With --system, a fresh trajectory is simulated (the system's default length) and
    continued --steps further: the model forecasts from the first part and the plot shows the
    continuation as the truth. A file's future is unknown: the forecast follows its last row.
    """
    check_series_path(output, force=force)
    if plot is not None:
        check_figure_path(plot, force=force)
    sidecar = read_sidecar(model_dir)
    columns = 1 + len(sidecar.get("variables", [])) + len(sidecar.get("exog_variables", []))
    check_output_size(output, steps, columns, f"forecasting {steps} samples")
    with Console(stderr=True).status("forecasting …"):
        history, truth, _ = load_forecast_data(
            data=None if data is None else str(data),
            irregular=irregular,
            system=system,
            params=parse_assignments(system_param or []),
            steps=steps,
            seed=seed,
        )
        result = forecast_model(model_dir, history, steps, truth=truth)
        forecast, truth = result.forecast, result.truth
        written = write_series(forecast, output, force=force)
        if plot is not None:
            plot_forecast(history, forecast, truth, plot, force=force)
    times = forecast.times
    text = (
        f"{forecast.metadata['model']}: {steps} samples forecast "
        f"[{_variables_text(list(forecast.variables))}], "
        f"t = {float(times[0]):g} … {float(times[-1]):g} → {written}"
    )
    if plot is not None:
        text += f", plot {plot}" + (" (truth dashed)" if truth is not None else "")
    _console().print(text, soft_wrap=True, markup=False)


# -- diffdyn explain -------------------------------------------------------------------------
@app.command(
    "explain",
    epilog="Example: diffdyn explain runs/lorenz63-seq2seq-attention --system lorenz63 "
    "-o attention.png",
)
def explain_command(
    model_dir: Annotated[
        Path,
        typer.Argument(
            help="A model folder written by `diffdyn train` (a model with attention or gates)."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Where to draw the alignment or gates (.png, .pdf, .svg)."
        ),
    ],
    data: DataOption = None,
    irregular: IrregularOption = "refuse",
    system: SystemOption = None,
    horizon: Annotated[
        int | None,
        typer.Option(min=1, help="Forecast steps to explain (default: the training horizon)."),
    ] = None,
    start: Annotated[
        int,
        typer.Option(
            min=0, help="Where the context window starts in the evaluation data (samples)."
        ),
    ] = 0,
    as_json: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the weights and the summary as JSON."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output files.")] = False,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Random seed of the fresh simulation.")
    ] = 0,
    steps: Annotated[
        int | None,
        typer.Option(min=2, help="Samples to simulate (--system; default: the system's)."),
    ] = None,
    system_param: SystemParamOption = None,
) -> None:
    """Draw where an attention model looks, or which branches a gated model takes.

    One context window of the evaluation data (a fresh trajectory with --system, the held-out
    end of the training file) is forecast once; the figure shows the weight each forecast step
    gives each context step (tutorial Fig. 5) and, for DA-RNN, the mean input-attention
    weight of each driving series; for a gated model (switching, act-rnn) the weight of each
    expert or ponder step per forecast step, the forecast coloured by its heaviest branch and
    the ponder steps.
    """
    check_figure_path(output, force=force)
    if as_json is not None:
        check_output_path(as_json, force=force, suffixes=[".json"])
    check_explain_request(model_dir)
    with Console(stderr=True).status("explaining …"):
        series, source = load_data(
            data=None if data is None else str(data),
            irregular=irregular,
            system=system,
            params=parse_assignments(system_param or []),
            steps=steps,
            seed=seed,
            fresh=True,
        )
        result = explain_model(model_dir, series, source, horizon=horizon, start=start)
        where = _source_text(result.data, len(series))
        source_name = source.system or Path(source.path or "").name
        if result.gates is not None:
            plot_gates(
                result.gates,
                output,
                label=result.gate_label or "branch",
                ponder=result.ponder,
                forecast=result.forecast,
                variable_names=list(result.driving_series),
                title=f"{result.model} gates on {source_name}, "
                f"context from sample {result.first_sample}",
                force=force,
            )
        else:
            plot_attention(
                result.attention,  # pyright: ignore[reportArgumentType]  (an attention model)
                output,
                input_attention=result.input_attention,
                variable_names=list(result.driving_series),
                memory_attention=result.memory_attention,
                block_length=result.block_length,
                title=f"{result.model} attention on {source_name}, "
                f"context from sample {result.first_sample}",
                force=force,
            )
        if as_json is not None:
            write_json(as_json, result.to_json())
    console = _console()
    if result.held_out:
        where += ", its held-out end"
    first, context, horizon = result.first_sample, result.context, result.horizon
    console.print(
        f"{result.model} on {where}: context {context} (samples {first}–{first + context - 1}"
        f"), horizon {horizon} (samples {first + context}–{first + context + horizon - 1})"
        + ("" if result.attention is None else "; lag 1 is the most recent observation"),
        soft_wrap=True,
        markup=False,
    )
    console.print(_attention_table(result))
    written = f"{'gates' if result.gates is not None else 'alignment'} drawn to {output}"
    if as_json is not None:
        written += f", weights written to {as_json}"
    console.print(written, soft_wrap=True, markup=False)


EXPLAIN_ROWS = 5  # forecast steps, lags and driving series listed in the summary


def _attention_table(result: Explanation) -> Table:
    if result.gates is not None:
        return _gates_table(result)
    if result.memory_attention is not None:
        # Weights spread evenly over a block's steps: name the block, not one of its lags.
        labels = memory_block_labels(result.memory_attention.shape[1], result.block_length)
        rows = [
            (
                f"forecast step {k}",
                f"memory block {labels[p.block]} gets most weight ({p.weight:.3g})",
            )
            for k, p in enumerate(result.memory_peaks[:EXPLAIN_ROWS], 1)
        ]
    else:
        rows = [
            (f"forecast step {k}", f"lag {p.lag} gets most weight ({p.weight:.3g})")
            for k, p in enumerate(result.peaks[:EXPLAIN_ROWS], 1)
        ]
        top = result.ranked_lags()[:EXPLAIN_ROWS]
        rows.append(
            ("mean weight per lag", ", ".join(f"lag {p.lag}: {p.weight:.3g}" for p in top))
        )
    if result.input_attention is not None:
        shares = result.ranked_inputs()[:EXPLAIN_ROWS]
        rows.append(("input attention", ", ".join(f"{p.name}: {p.weight:.3g}" for p in shares)))
    if result.memory_attention is not None:
        top_blocks = result.ranked_blocks()[:EXPLAIN_ROWS]
        rows.append(
            ("memory blocks", ", ".join(f"{labels[p.block]}: {p.weight:.3g}" for p in top_blocks))
        )
    return _key_value_table(rows)


def _gates_table(result: Explanation) -> Table:
    gates, label = result.gates, result.gate_label or "branch"
    if gates is None:
        return _key_value_table([])
    rows = [
        (f"forecast step {k}", f"{label} {int(row.argmax()) + 1} gets most weight "
         f"({float(row.max()):.3g})")
        for k, row in enumerate(gates[:EXPLAIN_ROWS], 1)
    ]  # fmt: skip
    mean = gates.mean(axis=0)
    order = sorted(range(len(mean)), key=lambda k: -mean[k])[:EXPLAIN_ROWS]
    rows.append((f"mean weight per {label}", ", ".join(f"{k + 1}: {mean[k]:.3g}" for k in order)))
    if result.ponder is not None:
        ponder = result.ponder
        spread = f"mean {ponder.mean():.3g}, from {ponder.min():g} to {ponder.max():g}"
        rows.append(("ponder steps", spread))
    return _key_value_table(rows)


# -- diffdyn analyze -------------------------------------------------------------------------
@app.command(
    "analyze",
    short_help="Study a trained model as a dynamical system: its Lyapunov spectrum beside the "
    "system's, its long-run statistics against the truth, and how far back it looks.",
    epilog="Example: diffdyn analyze runs/lorenz63-esn --system lorenz63 -o runs/esn-analysis",
)
def analyze_command(
    model_dir: Annotated[Path, typer.Argument(help="A model folder written by `diffdyn train`.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Folder for analysis.json and the figures (created)."),
    ],
    data: DataOption = None,
    irregular: IrregularOption = "refuse",
    system: SystemOption = None,
    exponents: Annotated[
        int | None,
        typer.Option(
            "--exponents", min=1, help="Lyapunov exponents to compute (default: variables + 1)."
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            help="Averaging time of the model's spectrum, in time units (default: 200 "
            "Lyapunov times, or 20 000 steps)."
        ),
    ] = None,
    horizon: Annotated[
        int | None,
        typer.Option(
            help="Samples of the closed-loop long run (default: 100 Lyapunov times, or 10 000)."
        ),
    ] = None,
    windows: Annotated[
        int,
        typer.Option(help="Context windows averaged for the sensitivity to lag (0: skip it)."),
    ] = 32,
    lyapunov_exponent: Annotated[
        float | None,
        typer.Option(
            "--lyapunov-exponent",
            help="λ₁ of the truth (per time unit) for the default time scales; default: the "
            "one known at training, else the data's.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an earlier analysis in the folder.")
    ] = False,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Random seed of the fresh simulation.")
    ] = 0,
    system_param: SystemParamOption = None,
) -> None:
    """Study a trained model as a dynamical system: its Lyapunov spectrum beside the system's,
    its long-run statistics against the truth, and how far back it looks.

    The closed-loop forecaster is written as a map on its full state (the window it feeds
    back and any hidden state) and its Lyapunov exponents are computed by Benettin's QR
    method, in the data's time units. It then runs closed loop for a long horizon, compared
    with a long true trajectory (a fresh one with --system; the file with --data): power
    spectra (Hellinger distance), state density (sliced Wasserstein), correlation dimension,
    and what the run does (bounded, fixed point, cycle, diverges). Last, the sensitivity of
    its next prediction to each lag of its context, from its own gradients.
    """
    from .analysis import analysis_samples, analyze_model, check_analyze_request
    from .analysis.analyze import check_analysis_options
    from .analysis.report import check_analysis_folder, write_analysis

    check_analysis_options(
        n_exponents=exponents,
        duration=duration,
        horizon=horizon,
        windows=windows,
        lyapunov_exponent=lyapunov_exponent,
    )
    sidecar = check_analyze_request(model_dir)
    check_analysis_folder(output, force=force)
    steps = None
    if system is not None:
        steps = analysis_samples(sidecar, lyapunov_exponent=lyapunov_exponent, horizon=horizon)
    with Console(stderr=True).status("loading the data …"):
        series, source = load_data(
            data=None if data is None else str(data),
            irregular=irregular,
            system=system,
            params=parse_assignments(system_param or []),
            steps=steps,
            seed=seed,
            fresh=True,
        )
    result = analyze_model(
        model_dir,
        series,
        source,
        n_exponents=exponents,
        duration=duration,
        horizon=horizon,
        windows=windows,
        lyapunov_exponent=lyapunov_exponent,
        progress="analyze",
    )
    written = write_analysis(result, output, force=force)
    console = _console()
    where = _source_text(result.data, len(series))
    console.print(f"{result.model} on {where}", soft_wrap=True, markup=False)
    for table in _analysis_tables(result):
        if isinstance(table, str):
            console.print(table, soft_wrap=True, markup=False)
        else:
            console.print(table)
    console.print(
        f"written to {output}: {', '.join(p.name for p in written)}", soft_wrap=True, markup=False
    )


def _analysis_tables(result) -> list[Table | str]:
    spectrum, true = result.spectrum, result.system_spectrum
    tables = []
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Lyapunov spectrum (per time unit)")
    table.add_column("", style="bold", no_wrap=True)
    table.add_column(result.model, justify="right", no_wrap=True)
    table.add_column(result.system or "true", justify="right", no_wrap=True)
    count = max(len(spectrum.exponents) if spectrum else 0, len(true.exponents) if true else 0)
    for i in range(count):
        model_value = (
            f"{spectrum.exponents[i]:.4g}" if spectrum and i < len(spectrum.exponents) else ""
        )
        true_value = f"{true.exponents[i]:.4g}" if true and i < len(true.exponents) else ""
        table.add_row(f"λ{i + 1}", model_value, true_value)
    if spectrum or true:
        table.add_row(
            "Kaplan–Yorke dimension",
            f"{spectrum.kaplan_yorke_dimension:.4g}" if spectrum else "",
            f"{true.kaplan_yorke_dimension:.4g}" if true else "",
        )
    if result.spectrum_error is not None:
        table.add_row(
            "spectrum error",
            f"{100 * result.spectrum_error:.3g} %",
            f"{result.compared} exponents",
        )
    tables.append(table)
    if spectrum is not None:
        settings = spectrum.settings
        tables.append(
            f"state of {result.model}'s closed loop: {settings['state']} "
            f"({settings['state_size']} numbers); averaged over {settings['duration']:.4g} "
            "time units"
        )
    else:
        tables.append(f"no spectrum of {result.model}: {result.spectrum_problem}")
    for i, j in result.exponent_pairs:
        tables.append(
            f"λ{i} and λ{j} of {result.model} are nearly equal: a complex-conjugate pair of its "
            "own state; where the true spectrum has no such pair they are likely the model's "
            "own exponents, not the attractor's (docs/analysis.md)."
        )
    run = result.long_run
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="long run, standardised units")
    table.add_column("", style="bold", no_wrap=True)
    table.add_column(result.model, justify="right")
    table.add_column("truth", justify="right", no_wrap=True)
    length = f"{run.steps} samples"
    if run.lyapunov_times:
        length += f" ({run.lyapunov_times:.3g} Lyapunov times)"
    table.add_row("length", length, f"{run.truth_steps} samples")
    table.add_row("behaviour", Text(run.behaviour.words), "")
    if run.power_spectrum_distance is not None:
        shown = ", ".join(
            f"{name} {value:.3g}"
            for name, value in zip(run.variables, run.power_spectrum_distance)
        )
        table.add_row("power spectrum (Hellinger)", shown, "0 = identical")
    if run.density_distance is not None:
        table.add_row("state density (sliced W₁)", f"{run.density_distance:.3g}", "0 = identical")

    def dimension(value):
        return "—" if value is None else f"{value:.3g}"

    table.add_row(
        "correlation dimension",
        dimension(run.correlation_dimension),
        dimension(run.true_correlation_dimension),
    )
    tables.append(table)
    if result.sensitivity is not None:
        s = result.sensitivity
        table = Table(
            box=box.SIMPLE_HEAD, pad_edge=False, title="sensitivity to lag", show_header=False
        )
        table.add_column("", style="bold", no_wrap=True)
        table.add_column("", justify="right")
        table.add_row("largest at lag", f"{s.peak_lag} (0 = the newest value)")
        memory = (
            f"lag {s.memory}"
            if s.memory is not None
            else f"not within the context ({result.context})"
        )
        table.add_row("falls below 1 % of its peak", memory)
        table.add_row("windows", str(s.windows))
        tables.append(table)
    return tables


# -- diffdyn compare / results ---------------------------------------------------------------
def _leaderboard_tables(run_dir: Path) -> list[tuple[Table, str]]:
    out = []
    for board in read_leaderboards(run_dir):
        table = Table(
            title=board.dataset, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left"
        )
        for i, title in enumerate(board.head):
            table.add_column(title, justify="left" if i in (1, len(board.head) - 1) else "right")
        for row in board.body:
            table.add_row(*(Text(c) for c in row))
        out.append((table, board.recommendation))
    return out


@app.command(
    "compare",
    epilog="Example: diffdyn compare --systems lorenz63,mackey-glass --models esn,ngrc,lstm "
    "--budget-per-model 60s -o runs/compare    (no options: the default 5-minute grid)",
)
def compare_command(
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Run folder (created; rerun the same command to resume)."
        ),
    ] = DEFAULT_OUTPUT,
    systems_: Annotated[
        str | None,
        typer.Option(
            "--systems",
            help="Built-in systems or FILE.py:CLASS, comma-separated (default: "
            "lorenz63,mackey-glass).",
        ),
    ] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="A CSV/Parquet/NPZ series to compare on, repeatable."),
    ] = None,
    models_: Annotated[
        str, typer.Option("--models", help="all, or model names comma-separated.")
    ] = "all",
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per model and dataset.")] = 1,
    budget_per_model: Annotated[
        str | None,
        typer.Option(
            "--budget-per-model",
            help="Wall-clock limit of each cell's training, compiling and validation included: "
            "90, 60s, 5m, 1h (default 14s: the default grid's 34 cells in 5 minutes on 2 cores).",
        ),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="ε: the NRMSE above which a forecast stops being valid.")
    ] = 0.5,
    lyapunov_exponent: Annotated[
        float | None,
        typer.Option(
            "--lyapunov-exponent",
            help="λ₁ (per time unit) to give VPT in Lyapunov times; default: each system's.",
        ),
    ] = None,
    irregular: IrregularOption = "refuse",
    devices: DevicesOption = None,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, help="Cells run side by side, each in its own process."),
    ] = DEFAULT_WORKERS,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run the cells as Ray tasks (pip install 'diffdyn\\[ray]'): --ray local on a "
            "Ray instance started for the run with --workers CPUs; --ray auto or HOST:PORT on "
            "that running cluster (its nodes must see the run folder at the same path).",
        ),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol",
            help="How cells are scored: default (a fresh trajectory or a file's held-out end), "
            "dysts (the dysts benchmark, Gilpin 2021: train on 10 periods, sMAPE of a 2-period "
            "forecast of the first coordinate; needs --systems dysts:NAME,... or dysts:all) or "
            "dysts-multivariate (every coordinate).",
        ),
    ] = DEFAULT_PROTOCOL,
    granularity: Annotated[
        str,
        typer.Option(
            "--granularity",
            help="Under --protocol dysts: fine (100 points per period) or coarse (15).",
        ),
    ] = DYSTS_DEFAULT_GRANULARITY,
    allocate: Annotated[
        str,
        typer.Option(
            "--allocate",
            help="How the grid's budget (models × --budget-per-model) is shared: equal (each "
            "model the same) or halving (successive halving: all gradient-trained models "
            "start small, the better half by validation VPT trains longer, round after round).",
        ),
    ] = "equal",
) -> None:
    """Train and rank models on systems or your data; write results.sqlite and a report.

    Each dataset × model × seed trains with the model's defaults under the
    budget and is scored on held-out data (a fresh trajectory, or the last 20%
    of a file). Every name, number and data file is checked before any cell
    runs or any folder is made. Interrupted runs resume where they stopped; a
    model that fails is recorded with its reason; a data file whose content
    changed is run again. One compare at a time per folder.

    Exit status: 0 every cell finished; 2 bad input (one line, nothing run or
    written); 3 the grid finished but some cells failed (recorded with their
    reasons, report written); 130 / 143 interrupted by Ctrl-C / SIGTERM (the
    same command resumes).
    """
    devices = use_devices(devices)
    summary = run_compare(
        output,
        choose_datasets(None if systems_ is None else parse_list(systems_), data or []),
        parse_list(models_),
        seeds=seeds,
        budget_per_model=parse_budget(budget_per_model) or DEFAULT_BUDGET,
        threshold=threshold,
        lyapunov_exponent=lyapunov_exponent,
        progress=True,
        devices=devices,
        workers=workers,
        irregular=irregular,
        ray=ray,
        protocol=protocol,
        granularity=granularity,
        allocate=allocate,
    )
    paths = write_report(output)
    console = _console()
    for table, advice in _leaderboard_tables(output):
        console.print(table)
        console.print(advice, soft_wrap=True, markup=False)
        console.print()
    done = f"{summary.ran} cell(s) run in {summary.seconds:.0f} s"
    if summary.skipped:
        done += f", {summary.skipped} already finished"
    if summary.failed:
        done += f", {summary.failed} failed"
    console.print(done, soft_wrap=True, markup=False)
    console.print(f"Report: {paths.html} (and {paths.markdown})", soft_wrap=True, markup=False)
    if summary.failed_cells:
        shown = ", ".join(f"{d} · {m} · seed {s}" for d, m, s in summary.failed_cells[:3])
        more = len(summary.failed_cells) - 3
        shown += f" and {more} more" if more > 0 else ""
        typer.echo(
            f"{len(summary.failed_cells)} of {summary.cells} cell(s) failed ({shown}); the "
            f"reasons are in {paths.markdown} (a rerun keeps them: give another -o folder to "
            "try them again).",
            err=True,
        )
        raise typer.Exit(3)


@app.command(
    "results", epilog="Example: diffdyn results runs/compare --csv runs/compare/results.csv"
)
def results_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `diffdyn compare`.")],
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="Also export every stored row (one per metric) as CSV."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing CSV file.")] = False,
) -> None:
    """Print the leaderboards of a compare run again, and export its rows as CSV.

    RUN_DIR is a run folder (or its results.sqlite). It only reads: the store
    is opened read-only and nothing in the folder is written. Exit status: 0,
    or 2 when RUN_DIR holds no diffdyn results (one line) or the CSV cannot be
    written.
    """
    if csv is not None:
        check_output_path(csv, force=force, suffixes=[".csv"])
    tables = _leaderboard_tables(run_dir)
    console = _console()
    if not tables:
        console.print(f"{run_dir}: no finished cells yet.", soft_wrap=True, markup=False)
    for table, advice in tables:
        console.print(table)
        console.print(advice, soft_wrap=True, markup=False)
        console.print()
    if csv is not None:
        written = export_csv(run_dir, csv)
        console.print(f"{written} rows written to {csv}", soft_wrap=True, markup=False)


@app.command(
    "task",
    epilog="Example: diffdyn task copy --model dnc --budget 5m -o copy-dnc.json    "
    "(two-hop: diffdyn task two-hop --model memn2n -p hops=2)",
)
def task_command(
    name: Annotated[
        str,
        typer.Argument(
            help="copy, repeat-copy, associative-recall, two-hop or pattern-completion."
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Sequence model: lstm, dnc, memn2n (two-hop only), plastic or rnn "
            "(pattern-completion only).",
        ),
    ] = "lstm",
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            help="Wall-clock limit of the training, compiling included: 90, 60s, 5m, 1h "
            "(default 2m).",
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            min=1,
            help="Train for this many steps, with no time limit unless --budget is given too.",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=MAX_INT, help="Seed of weights and data.")
    ] = 0,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="NAME=VALUE",
            help="Model hyperparameter, repeatable (e.g. -p hidden=64, -p memory_size=32, "
            "-p hops=3, -p linear_start_steps=500, -p eta=0.01).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the result as JSON.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing JSON.")] = False,
) -> None:
    """Train a sequence model on a memory task and print its score per size.

    Trains on the task's sizes (copy: 1–8 vectors of 8 bits; associative-recall: 2–6 items;
    two-hop: stories of 3 chains; pattern-completion: 5 patterns of 1000 bits, Miconi et al.
    2018) for --budget or --steps, then scores fresh examples of every size up to twice the
    largest trained one: the larger ones test generalisation. Bit tasks report the bit error,
    two-hop the accuracy.
    """
    import json

    from .files import atomic_write
    from .tasks.runner import check_task, run_task

    seconds = parse_budget(budget) or (None if steps else 120.0)
    hyper = parse_assignments(param or [])
    check_task(name, model, hyper)
    if output is not None:
        check_output_path(output, force=force, suffixes=[".json"])
    console = _console()
    result = run_task(
        name, model, budget=seconds, max_steps=steps, seed=seed, hyperparameters=hyper,
        progress=f"{name}, {model}",
    )  # fmt: skip
    low, high = result["trained_sizes"]
    size, metric = result["size"], result["metric"]
    per = "length" if size == "length" else f"number of {size}"
    label = metric.replace("_", " ")
    trained = f"{low}–{high}" if low != high else str(high)
    # The title on its own line: a table title wraps to the (narrow) table's width.
    console.print(
        f"{name}, {model}: {label} per {per} (trained on {trained})", soft_wrap=True, markup=False
    )
    table = Table()
    table.add_column(size, justify="right")
    table.add_column(label, justify="right")
    for n, score in result[f"{metric}_per_{size}"].items():
        table.add_row(str(n) + ("" if n <= high else " *"), f"{100 * score:.2f} %")
    console.print(table)
    notes = f"{result['steps']} steps in {result['seconds']:.0f} s, "
    notes += f"{result['parameters']} parameters"
    if result["softmax_reinserted_at"] is not None:
        notes += f", softmax re-inserted at step {result['softmax_reinserted_at']}"
    console.print(notes + "; * = larger than trained.", soft_wrap=True, markup=False)
    if output is not None:
        text = (json.dumps(result, indent=2) + "\n").encode()
        atomic_write(output, lambda f: f.write(text))
        console.print(f"result written to {output}", soft_wrap=True, markup=False)


# -- diffdyn identify ------------------------------------------------------------------------
def _array_text(value: Any) -> str:
    """A fitted value for a table: 6 significant digits, up to 4 entries of an array."""
    import numpy as np

    flat = [float(v) for v in np.ravel(np.asarray(value, dtype=float))]
    if np.ndim(value) == 0:
        return f"{flat[0]:.6g}"
    if len(flat) > 4:
        return f"[{len(flat)} values]"
    return "[" + ", ".join(f"{v:.4g}" for v in flat) + "]"


@app.command(
    "identify",
    epilog="Example: diffdyn identify lorenz63 --data lorenz.csv --fit sigma,rho,beta "
    "-p sigma=13 -p rho=20 -p beta=3.5 --segments 20 -o runs/lorenz --plot fit.png    "
    "(your own system: my_systems.py:MyFlow)",
)
def identify_command(
    system: Annotated[
        str, typer.Argument(help="A system name (see `diffdyn systems`) or FILE.py:CLASS.")
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="The observed series (.csv, .parquet, .npz); for a controlled system, columns "
            "named after its controls (pendulum: torque) are its recorded input.",
        ),
    ],
    fit: Annotated[
        str, typer.Option("--fit", help="Fields to fit, comma-separated (e.g. rho,beta).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for result.json and the fitted system.")
    ],
    observe: Annotated[
        str | None,
        typer.Option(help="Observed variables, comma-separated (default: every data column)."),
    ] = None,
    segments: Annotated[
        int, typer.Option(min=1, help="Multiple shooting: segments with their own initial state.")
    ] = 1,
    budget: Annotated[
        str | None, typer.Option(help="Adam's wall-clock limit, compiling included: 90, 60s, 5m.")
    ] = None,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Adam steps per restart (default 200).")
    ] = None,
    learning_rate: Annotated[
        float, typer.Option(min=0, help="Adam's learning rate (cosine decay).")
    ] = 0.05,
    refine_steps: Annotated[
        int | None,
        typer.Option(min=1, help="Levenberg–Marquardt steps after Adam, at most (default 100)."),
    ] = None,
    refine: Annotated[
        bool, typer.Option("--refine/--no-refine", help="Levenberg–Marquardt after Adam.")
    ] = True,
    seed: Annotated[int, typer.Option(min=0, max=MAX_INT, help="Seed of the restarts.")] = 0,
    restarts: Annotated[int, typer.Option(min=1, help="Fits from perturbed starts.")] = 1,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="NAME=VALUE", help="Start value, repeatable."),
    ] = None,
    bound: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME=LOW:HIGH", help="Bounds of a fitted field (e.g. rho=0:50)."),
    ] = None,
    irregular: IrregularOption = "refuse",
    plot: Annotated[
        Path | None, typer.Option(help="Draw the data beside the fitted trajectory.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier result.")] = False,
) -> None:
    """Fit a system's parameters and initial states to a measured series.

    Gradients through the simulator (Adam, then Levenberg–Marquardt); the
    table shows each fitted value ± its standard error and the start value.
    Writes DIR/result.json and DIR/system.eqx (loadable without pickle).
    """
    from .identify import identify_to_folder

    result = identify_to_folder(
        system, data, output, fit=fit, observe=observe, segments=segments,
        steps=steps, budget=parse_budget(budget), seed=seed, restarts=restarts,
        learning_rate=learning_rate, refine=refine, refine_steps=refine_steps,
        start=parse_assignments(param or []), bounds=parse_assignments(bound or []),
        irregular=irregular, force=force, plot=plot, progress=f"identify {system}",
    )  # fmt: skip
    table = Table(box=box.SIMPLE)
    for column in ("field", "fitted ± standard error", "start", "fitted as"):
        table.add_column(column, justify="left" if column in ("field", "fitted as") else "right")
    errors = result.standard_errors or {}
    for name, value in result.fitted.items():
        error = errors.get(name)
        shown = _array_text(value) + ("" if error is None else f" ± {_array_text(error)}")
        table.add_row(name, shown, _array_text(result.start[name]), result.transforms[name])
    for name, weights in result.networks.items():
        table.add_row(name, f"{weights} weights", "", result.transforms[name])
    console = _console()
    console.print(table)
    noise = ", ".join(f"{v} {x:.3g}" for v, x in result.noise.items())
    shooting = "single shooting" if result.segments == 1 else f"{result.segments} segments"
    console.print(
        f"{shooting}; loss {result.loss:.4g}; residual RMS {noise}; {result.adam_steps} Adam "
        f"+ {result.refine_steps} Levenberg–Marquardt steps in {result.seconds:.1f} s; "
        f"written to {output / 'result.json'} and {output / 'system.eqx'}"
        + (f", plot {plot}" if plot is not None else ""),
        soft_wrap=True,
        markup=False,
    )
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True, markup=False)


# -- diffdyn discover ------------------------------------------------------------------------
def _print_discovery(console: Console, found) -> None:
    """A discovery's equations, its inclusion probabilities (with bagging) and its notes."""
    for line in found.equations():
        console.print("  " + line, soft_wrap=True, markup=False)
    if found.inclusion is not None:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="inclusion probability")
        table.add_column("term")
        for target in found.targets:
            table.add_column(Text(target), justify="right")  # Text: "x[n+1]" is not markup
        for j, term in enumerate(found.terms):
            if found.inclusion[j].max() > 0:
                table.add_row(Text(term), *(f"{p:.2f}" for p in found.inclusion[j]))
        console.print(table)
    for note in found.notes:
        console.print(f"note: {note}", soft_wrap=True, markup=False)


@app.command(
    "discover",
    epilog="Example: diffdyn discover --data lorenz.csv -o lorenz-equations.json --plot "
    "lorenz-equations.png    (noisy data: add --weak; a fitted hybrid model's network: "
    "diffdyn discover lv-fit --term net)",
)
def discover_command(
    folder: Annotated[
        Path | None,
        typer.Argument(
            metavar="DIR",
            help="An identify folder: with --term, read equations off its fitted network.",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="A series file: .csv, .parquet or .npz.")
    ] = None,
    term_field: Annotated[
        str | None,
        typer.Option("--term", help="With DIR: the fitted system's network field (e.g. net)."),
    ] = None,
    system: Annotated[
        str | None,
        typer.Option(
            "--system", help="With DIR: the FILE.py:CLASS its system came from (runs that file)."
        ),
    ] = None,
    degree: Annotated[
        int, typer.Option(help="Largest total degree of the candidate monomials.")
    ] = 3,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Least |coefficient| kept, in the data's units (default: chosen per equation "
            "on the held-out last 20 % of the data)."
        ),
    ] = None,
    trig: Annotated[
        bool, typer.Option("--trig", help="Also offer sin(v) and cos(v) of every variable.")
    ] = False,
    weak: Annotated[
        bool,
        typer.Option(
            "--weak", help="Use the weak (integral) form: no derivative of the data (noisy data)."
        ),
    ] = False,
    smoothing: Annotated[
        str,
        typer.Option(
            help="Finite differences: auto (a Savitzky–Golay window chosen by cross-validation), "
            "none (plain central differences) or a window in samples (odd, ≥ 7)."
        ),
    ] = "auto",
    support: Annotated[
        int | None,
        typer.Option(help="--weak: test-function half-width in samples (default: from the data)."),
    ] = None,
    bagging: Annotated[
        int, typer.Option(help="Bootstrap fits to take the median of (E-SINDy); 0: one fit.")
    ] = 0,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Random seed of the bootstrap resamples.")
    ] = 0,
    map_: Annotated[
        bool,
        typer.Option(
            "--map", help="The data are a map: regress the next state x_{n+1}, not dx/dt."
        ),
    ] = False,
    irregular: IrregularOption = "refuse",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the equations and coefficients as JSON."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Draw the data beside the discovered system (.png, .pdf, .svg)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output files.")] = False,
) -> None:
    """Find sparse equations of a series (SINDy) and check them by simulating them.

    Each rate dx/dt (each next state with --map) is fitted as a sparse sum of candidate
    terms — monomials up to --degree, with --trig also sin and cos — by sequentially
    thresholded least squares. The discovered system is then simulated from the data's first
    state and compared with the data: the NRMSE over the series and the time until it
    departs (NRMSE > 0.5). Nothing is written unless -o / --plot are given.

    DIR --term FIELD instead reads equations off the network FIELD of a hybrid model fitted
    by `diffdyn identify -o DIR`, evaluated over the states of its data.
    """
    from .data.sampling import check_irregular
    from .discover import check_options, discover_file, discover_network_term, plot_discovery

    if (data is None) == (folder is None):
        raise DiffdynError(
            "give either --data FILE (a series) or DIR --term FIELD (the network of an "
            "identify folder)" + (", not both." if data is not None else ".")
        )
    if data is not None and (term_field is not None or system is not None):
        given = "--term" if term_field is not None else "--system"
        raise DiffdynError(f"{given} goes with an identify folder DIR, not with --data.")
    if folder is not None:
        if term_field is None:
            raise DiffdynError(
                f"{folder} needs --term FIELD: the network field to read equations off "
                "(e.g. --term net)."
            )
        series_only = [name for name, given in (("--weak", weak), ("--map", map_),
                       ("--smoothing", smoothing != "auto"), ("--support", support is not None),
                       ("--irregular", irregular != "refuse"), ("--plot", plot is not None))
                       if given]  # fmt: skip
        if series_only:
            raise DiffdynError(
                f"{', '.join(series_only)} go(es) with --data (a series); a network's outputs "
                "are regressed as they are."
            )
        options = check_options(degree=degree, threshold=threshold, bagging=bagging, seed=seed)
        if output is not None:
            check_output_path(output, force=force, suffixes=[".json"])
        with Console(stderr=True).status("discovering …"):
            found_term = discover_network_term(
                folder, term_field, system, trig=trig,
                **{n: options[n] for n in ("degree", "threshold", "bagging", "seed")},
            )  # fmt: skip
            if output is not None:
                write_json(output, found_term.to_json())
        console = _console()
        console.print(
            f"{folder}: the network {term_field} of {found_term.system} over the "
            f"{len(found_term.states_values)} states of the {found_term.states}; "
            f"{found_term.discovery.method()}",
            soft_wrap=True,
            markup=False,
        )
        _print_discovery(console, found_term.discovery)
        if output is not None:
            console.print(f"equations written to {output}", soft_wrap=True, markup=False)
        return
    assert data is not None
    options = check_options(
        degree=degree,
        threshold=threshold,
        derivative="weak" if weak else "finite-difference",
        smoothing=smoothing,
        support=support,
        bagging=bagging,
        seed=seed,
    )
    check_irregular(irregular)
    if output is not None:
        check_output_path(output, force=force, suffixes=[".json"])
    if plot is not None:
        check_figure_path(plot, force=force)
    with Console(stderr=True).status("discovering …"):
        report = discover_file(
            data, irregular=irregular, trig=trig, discrete=True if map_ else None, **options
        )
        if output is not None:
            write_json(output, report.to_json())
        if plot is not None:
            plot_discovery(report, plot, force=force)
    found, series = report.discovery, report.data
    console = _console()
    console.print(
        f"{data}: {len(series)} samples of {_variables_text(list(series.variables))}"
        + (f" (dt = {series.dt:g})" if found.kind != "map" else " (a map)")
        + f"; {found.method()}",
        soft_wrap=True,
        markup=False,
    )
    _print_discovery(console, found)
    console.print(
        f"simulated from the first state: {report.reproduction.summary()}",
        soft_wrap=True,
        markup=False,
    )
    written = [f"equations written to {output}"] if output is not None else []
    written += [f"plot drawn to {plot}"] if plot is not None else []
    if written:
        console.print(", ".join(written), soft_wrap=True, markup=False)


# -- diffdyn control -------------------------------------------------------------------------
@app.command(
    "control",
    epilog="Example: diffdyn control cartpole --task swing-up -o runs/cartpole    "
    "(also: pendulum --task swing-up, lorenz63-control --task stabilise; your own system: "
    "my_systems.py:MyFlow)",
)
def control_command(
    system: Annotated[
        str,
        typer.Argument(
            help="A controlled system (pendulum, cartpole, lorenz63-control) or FILE.py:CLASS."
        ),
    ],
    task: Annotated[str, typer.Option("--task", help="swing-up, stabilise or track.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="New folder for the policy, result and figures.")
    ],
    budget: Annotated[
        str | None,
        typer.Option(
            help="Training wall-clock limit, compiling included: 90, 60s, 2m "
            "(default: the task's)."
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(min=1, help="Training iterations (no time limit unless --budget)."),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_INT, help="Seed of policy and starts.")] = 0,
    policy: Annotated[
        str | None, typer.Option(help="linear or mlp (default: the task's).")
    ] = None,
    limit: Annotated[
        float | None, typer.Option(help="Actuator limit |u| ≤ LIMIT (default: the system's).")
    ] = None,
    horizon: Annotated[
        float | None, typer.Option(help="Episode length in time units (default: the task's).")
    ] = None,
    dt: Annotated[
        float | None, typer.Option(help="Control step: u is held over it (default: the task's).")
    ] = None,
    truncation: Annotated[
        int | None,
        typer.Option(min=1, help="Cut the gradient through the state every N control steps."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="NAME=VALUE", help="System parameter, repeatable."),
    ] = None,
) -> None:
    """Train a controller by gradients through the closed-loop simulation.

    A policy (linear feedback or an MLP, saturated smoothly at the actuator limit) is trained
    on a batch of initial states; the cost is printed with the progress bar, then the
    success rate on fresh starts. Writes DIR/policy.eqx, result.json, cost.png,
    trajectory.png and, for the pendulum and cart-pole, animation.gif.
    """
    from .control import control_to_folder

    result = control_to_folder(
        system, output, task=task, budget=parse_budget(budget), steps=steps, seed=seed,
        policy=policy, limit=limit, horizon=horizon, dt=dt, truncation=truncation,
        params=parse_assignments(param or []), progress=f"control {system} {task}",
    )  # fmt: skip
    found = result.evaluation
    table = Table(box=box.SIMPLE)
    for column in ("task", "policy", "iterations", "rollouts", "seconds", "final cost",
                   "success", "max |u|"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("task", "policy") else "right")
    limit_text = "" if found.limit is None else f" (limit {found.limit:g})"
    table.add_row(
        f"{result.task} {result.system}", f"{result.policy_kind} ({result.parameters})",
        str(result.iterations), str(result.rollouts), f"{result.seconds:.1f}",
        f"{result.final_cost:.4g}",
        f"{100 * found.success_rate:.0f} % of {found.episodes}",
        f"{found.max_abs_control:.3g}{limit_text}",
    )  # fmt: skip
    console = _console()
    console.print(table)
    console.print(f"success: {found.criterion}; written to {output}", soft_wrap=True,
                  markup=False)  # fmt: skip
