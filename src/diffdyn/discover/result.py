"""What equation discovery returns: `Discovery` (the equations), `Reproduction` (how well they
reproduce the data when simulated) and `DiscoveryReport` (both, what `diffdyn discover`
prints and writes). Typed, frozen, with `to_json`; `Discovery.from_json` reads its JSON back.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..data.series import Series
from ..errors import DataError, DiffdynError
from .library import Library
from .system import DiscoveredFlow, DiscoveredMap

FORMAT = "diffdyn-discovery-1"


def _number(value: float, precision: int) -> str:
    magnitude = abs(value)
    if magnitude >= 10.0 ** (-precision) and magnitude < 1e6:
        return f"{magnitude:.{precision}f}"
    return f"{magnitude:.3g}"


def _floats(array: Any) -> Any:
    return None if array is None else np.asarray(array, dtype=float).tolist()


def _optional_tuple(values: Any) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


@dataclasses.dataclass(frozen=True, eq=False)
class Discovery:
    """Sparse equations found by `discover_series` or `discover_terms`.

    - `kind`: `"flow"` (rates dx/dt), `"map"` (next states x[n+1]) or `"terms"` (given
      outputs that are not the rates of the states: `discover_terms` with k ≠ d outputs).
    - `variables`: the state variables, one equation each; `inputs`: exogenous inputs that
      enter the terms but have no equation.
    - `library`: the candidate terms (`terms` are their names); `coefficients` `[terms,
      variables]` in the data's units, 0 for a term left out.
    - `targets`: what each equation gives, e.g. `"dx/dt"`, `"x[n+1]"`, or a network output.
    - `derivative`: `"finite-difference"`, `"weak"`, `"next-state"` (maps) or `"given"`
      (`discover_terms`); `smoothing`: the Savitzky–Golay window in samples (`None`: plain
      central differences); `support`: the weak form's test-function half-width in samples.
    - `threshold`: the coefficient threshold given, or `None` when it was chosen on held-out
      rows: then `importance` holds each equation's importance threshold τ_k and
      `held_out_error` its relative error on the held-out rows (`regression` module).
    - `ridge`: each equation's ridge on the scaled normal equations (chosen with the
      threshold, or given); `rows`: regression rows used.
    - `bagging`: bootstrap fits (0: none); `inclusion` `[terms, variables]`: the share of
      them that kept each term (`None` without bagging); `seed`: the resampling seed.
    - `dt`, `t0`, `start`: the data's sampling step, first time and first state.
    - `notes`: facts worth reading beside the equations (e.g. what was assumed).
    """

    kind: str
    variables: tuple[str, ...]
    inputs: tuple[str, ...]
    library: Library
    coefficients: np.ndarray
    targets: tuple[str, ...]
    derivative: str
    smoothing: int | None
    support: int | None
    threshold: float | None
    importance: tuple[float, ...] | None
    held_out_error: tuple[float, ...] | None
    ridge: tuple[float, ...]
    rows: int
    bagging: int
    inclusion: np.ndarray | None
    seed: int
    dt: float | None
    t0: float
    start: tuple[float, ...]
    notes: tuple[str, ...] = ()

    @property
    def terms(self) -> tuple[str, ...]:
        """The names of the candidate terms, in the rows' order of `coefficients`."""
        return self.library.names

    def active_terms(self, variable: str) -> dict[str, float]:
        """Term name → coefficient of the terms kept in `variable`'s equation."""
        column = self.coefficients[:, self.variables.index(variable)]
        return {name: float(c) for name, c in zip(self.terms, column) if c != 0}

    def equations(self, precision: int = 2) -> list[str]:
        """One line per equation: `["dx/dt = -10.00 x + 10.00 y", ...]` (coefficients with
        `precision` decimals; those smaller than 10^-precision in 3 significant digits)."""
        lines = []
        for target, column in zip(self.targets, self.coefficients.T):
            parts = []
            for name, c in zip(self.terms, column):
                if c == 0:
                    continue
                sign = "-" if c < 0 else "+"
                text = _number(float(c), precision) + ("" if name == "1" else f" {name}")
                parts.append((sign, text))
            if not parts:
                lines.append(f"{target} = 0")
                continue
            first_sign, first = parts[0]
            body = ("-" if first_sign == "-" else "") + first
            body += "".join(f" {sign} {text}" for sign, text in parts[1:])
            lines.append(f"{target} = {body}")
        return lines

    def method(self) -> str:
        """How the equations were found, in one sentence (library, rates, threshold)."""
        library = f"{self.library.size} candidate terms (monomials to degree {self.library.degree}"
        library += " and sin, cos)" if self.library.trig else ")"
        rates = {
            "finite-difference": "rates by central differences"
            if self.smoothing is None
            else f"rates by Savitzky–Golay quintics over {self.smoothing} samples",
            "weak": f"weak form, test functions of half-width {self.support} samples",
            "next-state": "next states regressed directly (a map)",
            "given": "values of the term given" if self.kind == "terms" else "rates given",
        }[self.derivative]
        if self.threshold is not None:
            threshold = f"threshold {self.threshold:g}"
        else:
            assert self.importance is not None and self.held_out_error is not None
            threshold = "threshold chosen on the held-out last 20 % (importance " + ", ".join(
                f"{t:.2g}" for t in self.importance
            )
            threshold += (
                "; held-out error " + ", ".join(f"{e:.2g}" for e in self.held_out_error) + ")"
            )
        text = f"{library}; {rates}; {threshold}; {self.rows} regression rows"
        if self.bagging:
            text += f"; median of {self.bagging} bootstrap fits (seed {self.seed})"
        return text

    def as_system(
        self,
        y0: Any = None,
        *,
        input_times: Any = None,
        input_values: Any = None,
    ) -> DiscoveredFlow | DiscoveredMap:
        """The equations as a system for `diffdyn.simulate`: a `DiscoveredFlow` (rates) or a
        `DiscoveredMap` (next states).

        **Arguments:**

        - `y0`: its default initial state (default: the data's first state, `start`).
        - `input_times`, `input_values`: the inputs `[T, m]` over time, needed when the
          equations use inputs (`inputs` not empty); interpolated linearly.

        **Example:** `simulate(discovery.as_system(), steps=1000, dt=discovery.dt,
        transient=0.0)`
        """
        if self.kind == "terms":
            raise DiffdynError(
                f"these equations give {', '.join(self.targets)}, not the rates of "
                f"{', '.join(self.library.variables)}: they are not a system to simulate."
            )
        start = self.start if y0 is None else tuple(float(v) for v in np.ravel(y0))
        if len(start) != len(self.variables):
            raise DiffdynError(
                f"y0 must have {len(self.variables)} values ({', '.join(self.variables)}); "
                f"got {len(start)}."
            )
        times = values = None
        if self.inputs:
            if input_times is None or input_values is None:
                raise DiffdynError(
                    f"these equations use the inputs {', '.join(self.inputs)}: pass "
                    "input_times and input_values to simulate them."
                )
            times = jnp.asarray(np.asarray(input_times, float))
            values = jnp.asarray(np.asarray(input_values, float).reshape(times.shape[0], -1))
        cls = DiscoveredMap if self.kind == "map" else DiscoveredFlow
        return cls(
            jnp.asarray(self.coefficients),
            jnp.asarray(start),
            self.library,
            self.variables,
            input_times=times,
            input_values=values,
        )

    def to_json(self) -> dict[str, Any]:
        """Everything above as JSON; `Discovery.from_json` reads it back."""
        return {
            "format": FORMAT,
            "kind": self.kind,
            "equations": self.equations(),
            "variables": list(self.variables),
            "inputs": list(self.inputs),
            "library": self.library.to_json(),
            "terms": list(self.terms),
            "coefficients": {
                v: dict(zip(self.terms, map(float, self.coefficients[:, j])))
                for j, v in enumerate(self.variables)
            },
            "targets": list(self.targets),
            "derivative": self.derivative,
            "smoothing": self.smoothing,
            "support": self.support,
            "threshold": self.threshold,
            "importance": _floats(self.importance),
            "held_out_error": _floats(self.held_out_error),
            "ridge": list(self.ridge),
            "rows": self.rows,
            "bagging": self.bagging,
            "inclusion": None
            if self.inclusion is None
            else {
                v: dict(zip(self.terms, map(float, self.inclusion[:, j])))
                for j, v in enumerate(self.variables)
            },
            "seed": self.seed,
            "dt": self.dt,
            "t0": self.t0,
            "start": list(self.start),
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Discovery:
        """A `Discovery` from `to_json`'s output (the whole `diffdyn discover -o` file too)."""
        if not isinstance(stored, dict) or stored.get("format") != FORMAT:
            raise DataError(f"not a diffdyn discovery (its JSON has no format {FORMAT!r}).")
        try:
            library = Library.from_json(stored["library"])
            variables = tuple(stored["variables"])
            terms = library.names

            def table(name: str) -> np.ndarray:
                by_variable = stored[name]
                return np.array([[by_variable[v][t] for v in variables] for t in terms], float)

            return cls(
                kind=stored["kind"],
                variables=variables,
                inputs=tuple(stored["inputs"]),
                library=library,
                coefficients=table("coefficients"),
                targets=tuple(stored["targets"]),
                derivative=stored["derivative"],
                smoothing=stored["smoothing"],
                support=stored["support"],
                threshold=stored["threshold"],
                importance=_optional_tuple(stored["importance"]),
                held_out_error=_optional_tuple(stored["held_out_error"]),
                ridge=tuple(float(v) for v in stored["ridge"]),
                rows=int(stored["rows"]),
                bagging=int(stored["bagging"]),
                inclusion=None if stored["inclusion"] is None else table("inclusion"),
                seed=int(stored["seed"]),
                dt=stored["dt"],
                t0=float(stored["t0"]),
                start=tuple(float(v) for v in stored["start"]),
                notes=tuple(stored["notes"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(
                f"a damaged diffdyn discovery: {error!r} is missing or wrong."
            ) from None


@dataclasses.dataclass(frozen=True, eq=False)
class Reproduction:
    """How well the discovered system, simulated from the data's first state, follows the data.

    - `simulated`: the simulated trajectory at the data's times, up to where it stayed finite
      and within reach of the data (`None` if not even the first step did).
    - `nrmse`: sqrt(mean over time and variables of (ŷ − y)² / σ²), σ each variable's standard
      deviation in the data, over `compared` samples; `nrmse_at` NRMSE(t) per compared sample.
    - `threshold`: ε; `departure_time`: the time from the start until NRMSE(t) first exceeds
      ε (`None`: it never does); `lyapunov_time`: 1/λ₁ of the data when known.
    - `diverged_at`: the time (since the start) at which the simulation blew up or left the
      data far behind, else `None`; `message`: that, in words.
    - `duration`: the time spanned by the data.
    """

    simulated: Series | None
    nrmse: float | None
    nrmse_at: np.ndarray
    compared: int
    threshold: float
    departure_time: float | None
    lyapunov_time: float | None
    diverged_at: float | None
    message: str
    duration: float

    def summary(self) -> str:
        """One sentence: how long it follows the data (in Lyapunov times when known), the
        NRMSE, and whether it blew up."""
        if self.diverged_at is not None and self.compared < 2:
            return self.message
        overall = f"NRMSE {self.nrmse:.3g} over the {self.compared} samples compared"
        if self.departure_time is None:
            text = f"stays within NRMSE ε = {self.threshold:g} of the data throughout ({overall})"
        else:
            text = f"follows the data for t = {self.departure_time:.4g}"
            if self.lyapunov_time:
                text += f" ({self.departure_time / self.lyapunov_time:.3g} Lyapunov times)"
            text += f", then departs (NRMSE(t) > ε = {self.threshold:g}; {overall})"
        if self.diverged_at is not None:
            text += f"; {self.message}"
        return text

    def to_json(self) -> dict[str, Any]:
        departure = self.departure_time
        lyapunov = self.lyapunov_time
        return {
            "nrmse": self.nrmse,
            "compared_samples": self.compared,
            "threshold": self.threshold,
            "departure_time": departure,
            "departure_lyapunov_times": None
            if departure is None or not lyapunov
            else departure / lyapunov,
            "lyapunov_time": lyapunov,
            "diverged_at": self.diverged_at,
            "duration": self.duration,
            "message": self.message,
            "summary": self.summary(),
            "nrmse_at": [float(v) if math.isfinite(v) else None for v in self.nrmse_at],
        }


@dataclasses.dataclass(frozen=True, eq=False)
class DiscoveryReport:
    """What `diffdyn discover` works out: the equations and how well they reproduce the data.

    - `discovery`: the `Discovery`; `reproduction`: its `Reproduction`.
    - `data`: the series it came from (for plots); `source`: the file read.
    """

    discovery: Discovery
    reproduction: Reproduction
    data: Series
    source: str

    def to_json(self) -> dict[str, Any]:
        """The discovery's JSON with `"source"` and `"reproduction"` added (still readable by
        `Discovery.from_json`)."""
        return {
            **self.discovery.to_json(),
            "source": self.source,
            "reproduction": self.reproduction.to_json(),
        }


@dataclasses.dataclass(frozen=True, eq=False)
class TermDiscovery:
    """What `diffdyn discover DIR --term FIELD` works out (`discover_network_term`).

    - `discovery`: the `Discovery` (kind `"terms"`, targets named after the field, e.g.
      `net[prey]`).
    - `folder`: the identification folder; `field`: the network field; `system`: the fitted
      system as `identify` was given it.
    - `states`: `"data"` (the data's states: every variable was observed) or
      `"fitted trajectory"` (some were latent); `states_values` `[N, d]` those states and
      `outputs` `[N, k]` the network there.
    - `data`: the data file the folder was fitted to.
    """

    discovery: Discovery
    folder: str
    field: str
    system: str
    states: str
    states_values: np.ndarray
    outputs: np.ndarray
    data: str

    def to_json(self) -> dict[str, Any]:
        """The discovery's JSON with where it came from added (still readable by
        `Discovery.from_json`)."""
        return {
            **self.discovery.to_json(),
            "folder": self.folder,
            "field": self.field,
            "system": self.system,
            "states": self.states,
            "data": self.data,
        }
