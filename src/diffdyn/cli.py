"""The `diffdyn` command: parses, calls the library, prints.

Every `DiffdynError` (bad input the user can fix) and every usage error becomes one line on
stderr, `error: ...`, and exit status 2 — never a traceback.
"""

from __future__ import annotations

import json
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
from .data.io import check_series_path, write_series
from .errors import DiffdynError
from .plot import check_figure_path, format_parameters, plot_series
from .systems import SYSTEMS, get_system, parse_assignments, simulate, system_class
from .systems.base import AbstractSystem

try:  # Typer >= 0.26 vendors Click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:
    from click.exceptions import ClickException, UsageError  # pyright: ignore[reportMissingImports]


def _fail(message: str, status: int = 2) -> NoReturn:
    # click.echo, not Rich: Rich would wrap a long message onto several lines.
    typer.echo("error: " + " ".join(message.split()), err=True)
    sys.exit(status)


class _OneLineErrors(TyperGroup):
    """The command group, answering bad input with one line on stderr and exit status 2."""

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
        except typer.Abort:
            _fail("interrupted.", 130)
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


def main() -> None:
    """The `diffdyn` console script."""
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
    epilog="Example: diffdyn simulate lorenz63 --param rho=35 --steps 5000 --observe x,z "
    "-o lorenz63.csv --plot lorenz63.png",
)
def simulate_command(
    system: Annotated[str, typer.Argument(help="System name (see `diffdyn systems`).")],
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
    seed: Annotated[int, typer.Option(help="Random seed (noise, random inputs).")] = 0,
    rtol: Annotated[float, typer.Option(help="Solver rtol (flows).")] = 1e-6,
    atol: Annotated[float, typer.Option(help="Solver atol (flows).")] = 1e-8,
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the series to this image (.png, .pdf, .svg).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output files.")] = False,
) -> None:
    """Simulate a system from the catalogue and write its trajectory to a file."""
    check_series_path(output, force=force)
    if plot is not None:
        check_figure_path(plot, force=force)
    variables = None if observe is None else [v.strip() for v in observe.split(",") if v.strip()]
    built = get_system(system, **parse_assignments(param or []))
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
