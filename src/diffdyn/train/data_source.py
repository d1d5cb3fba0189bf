"""The data a command works on: a file or a simulated system, and where it came from.

`load_data` and `load_forecast_data` build the `Series` and its `DataSource`; `model_part` and
`evaluation_part` cut from a series what a saved model reads (its variables; the held-out end
of its training file).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..data.io import read_series
from ..data.sampling import regularise
from ..data.series import Series
from ..errors import DataError, DiffdynError
from ..options import check_number
from ..systems.registry import get_system, system_class
from ..systems.simulate import simulate

TEST_FRACTION = 0.2  # the end of a user's file held out from training
KINDS = ("file", "system", "series")


def fingerprint(series: Series) -> str:
    """A short hash of a series' values (and inputs): tells the training file from another."""
    digest = hashlib.sha256(np.asarray(series.values, np.float64).tobytes())
    if series.exog is not None:
        digest.update(np.asarray(series.exog, np.float64).tobytes())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where a series came from: enough to describe it, and to rebuild it.

    - `kind`: `"file"` (read from `path`), `"system"` (simulated: `system` with the parameter
      overrides `parameters`, as typed, and `seed`) or `"series"` (a `Series` handed over in
      Python, e.g. to a `Forecaster`; `system` names its source system when its metadata do).
    - `fingerprint`: `fingerprint(series)`, so that scoring a model on its own training file
      scores only the held-out end, and scoring on the training data themselves is noticed.

    A model trained on a `"file"` holds out its last `TEST_FRACTION` of rows; on a `"system"`
    or a `"series"` it trains on all of it (evaluate on another trajectory or series).
    """

    kind: str
    fingerprint: str = ""
    path: str | None = None
    system: str | None = None
    parameters: dict[str, str] = dataclasses.field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise DiffdynError(f"a data source is one of {', '.join(KINDS)}; got {self.kind!r}.")

    @classmethod
    def of_series(cls, series: Series) -> DataSource:
        """The source of a series given in Python (`kind="series"`)."""
        return cls("series", fingerprint(series), system=series.metadata.get("system"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "file":
            out["path"] = self.path
        elif self.kind == "system":
            out.update(system=self.system, parameters=dict(self.parameters), seed=self.seed)
        elif self.system is not None:
            out["system"] = self.system
        out["fingerprint"] = self.fingerprint
        return out

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> DataSource:
        return cls(
            str(stored["kind"]),
            str(stored.get("fingerprint") or ""),
            path=stored.get("path"),
            system=stored.get("system"),
            parameters=dict(stored.get("parameters") or {}),
            seed=stored.get("seed"),
        )


def load_data(
    *,
    data: str | None = None,
    system: str | None = None,
    params: dict[str, str] | None = None,
    steps: int | None = None,
    seed: int = 0,
    fresh: bool = False,
    irregular: str = "refuse",
) -> tuple[Series, DataSource]:
    """The series a command works on, and where it came from.

    Exactly one of `data` (a file) or `system` (a catalogue name). With `fresh=True` a system
    is simulated from another initial condition (a perturbed one, and another random key)
    than training uses, so evaluation never sees the training trajectory. A file sampled
    irregularly is refused, resampled or taken as it is, by `irregular`
    (`diffdyn.data.sampling.regularise`).

    **Example:** `series, source = load_data(system="lorenz63", steps=5000)`
    """
    if (data is None) == (system is None):
        raise DiffdynError("give exactly one of --data FILE or --system NAME.")
    if data is not None and (steps is not None or params):
        raise DiffdynError(
            "--steps and --system-param describe a simulation; they go with --system, "
            "not with --data."
        )
    if data is not None:
        series = regularise(read_series(data), irregular, name=str(data))
        return series, DataSource("file", fingerprint(series), path=str(data))
    built = get_system(system or "", **(params or {}))
    key = jax.random.key(seed + (7919 if fresh else 0))
    y0 = None
    if fresh:
        base = built.initial_state()
        y0 = base + 0.01 * (1 + jnp.abs(base)) * jax.random.normal(
            jax.random.fold_in(key, 1), base.shape, base.dtype
        )
    series = simulate(built, steps=steps, y0=y0, key=key).numpy()
    source = DataSource(
        "system",
        fingerprint(series),
        system=built.name or system,  # a user's FILE.py:CLASS may have no name
        parameters=dict(params or {}),
        seed=seed,
    )
    return series, source


def load_forecast_data(
    *,
    data: str | None = None,
    system: str | None = None,
    params: dict[str, str] | None = None,
    steps: int,
    seed: int = 0,
    irregular: str = "refuse",
) -> tuple[Series, Series | None, DataSource]:
    """The history to forecast from, the truth to compare with (or `None`), and the source.

    A file is all history (its future is unknown). A system is simulated afresh
    (`load_data(fresh=True)`) for its default length plus `steps`: the first part is the
    history, the last `steps` samples the truth the forecast should follow.
    """
    if steps < 1:
        raise DiffdynError(f"--steps must be at least 1; got {steps}.")
    if system is None:
        series, source = load_data(
            data=data, system=system, params=params, seed=seed, fresh=True, irregular=irregular
        )
        return series, None, source
    length = system_class(system).default_steps + steps
    series, source = load_data(system=system, params=params, steps=length, seed=seed, fresh=True)
    return series.slice(0, length - steps), series.slice(length - steps, None), source


def lyapunov_exponent_of(series: Series, given: float | None) -> float | None:
    """λ₁ per time unit: the one given (checked), else the series' own when positive."""
    if given is not None:
        return check_number("--lyapunov-exponent", given, above=0)
    return series.lyapunov_exponent if (series.lyapunov_exponent or 0) > 0 else None


def model_part(series: Series, sidecar: dict[str, Any]) -> Series:
    """The columns a saved model was trained on, or a clear error naming what is missing."""
    wanted, have = sidecar["variables"], list(series.variables)
    missing = [v for v in wanted if v not in have]
    if missing:
        raise DataError(
            f"the data lack variable(s) {', '.join(missing)} that the model was trained on "
            f"(the data have {', '.join(have)}; the model needs {', '.join(wanted)})."
        )
    exog_wanted = sidecar.get("exog_variables", [])
    exog_have = list(series.exog_variables)
    missing_exog = [v for v in exog_wanted if v not in exog_have]
    if missing_exog:
        raise DataError(
            f"the data lack exogenous input(s) {', '.join(missing_exog)} that the model was "
            "trained with."
        )
    out = series.select(wanted)
    if exog_wanted:
        index = [exog_have.index(v) for v in exog_wanted]
        out = out.replace(
            exog=np.asarray(series.exog)[:, index], exog_variables=tuple(exog_wanted)
        )
    else:
        out = out.replace(exog=None, exog_variables=())
    return out


def evaluation_part(
    series: Series, source: DataSource, sidecar: dict[str, Any], context: int
) -> tuple[Series, bool]:
    """What a saved model is scored on, and whether it is the held-out end of its training file.

    The training file itself: only its held-out end, with `context` rows reaching back before
    it; any other series: all of it.
    """
    trained_on = sidecar["data"]
    if (
        source.kind == "file"
        and trained_on.get("kind") == "file"
        and source.fingerprint == trained_on.get("fingerprint")
    ):
        return series.slice(max(0, trained_on["train_rows"] - context), None), True
    return series, False


def is_training_data(source: DataSource, sidecar: dict[str, Any]) -> bool:
    """Whether `source` holds the very series the model was trained on (all of it)."""
    trained_on = sidecar["data"]
    return (
        bool(source.fingerprint)
        and source.fingerprint == trained_on.get("fingerprint")
        and trained_on.get("train_rows") == trained_on.get("rows")
    )
