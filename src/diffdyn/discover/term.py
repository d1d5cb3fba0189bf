"""`discover_network_term`: equations read off the network of a fitted hybrid model — what
`diffdyn discover DIR --term FIELD` prints.

A universal differential equation (Rackauckas et al. 2020, §2.1) keeps the known terms of a
model and lets a network learn the rest; once fitted, sparse regression on the network's
outputs over the states it was fitted on names the missing terms (their eq. 5, SINDy on
U(x)). Here the network is a field of a system fitted by `diffdyn identify`, read back from
its folder (`identify.folder.read_identified`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import DataError, DiffdynError, UnknownNameError, did_you_mean
from ..identify.checks import _label
from ..identify.folder import read_identified
from .discover import DEFAULT_DEGREE, check_options, discover_terms
from .result import TermDiscovery


def _network(system, field: str) -> Callable[..., Any]:
    """The module in `system`'s field `field`, or a one-sentence refusal."""
    label = _label(system)
    networks = sorted(system.networks())
    names = list(type(system).parameter_names())
    offered = (
        f"its network fields: {', '.join(networks)}" if networks else "it has no network field"
    )
    if field not in names:
        raise UnknownNameError(
            f"{label} has no field {field!r} ({offered}).{did_you_mean(field, names)}"
        )
    value = getattr(system, field)
    if not isinstance(value, eqx.Module) or not callable(value):
        what = "an array" if eqx.is_array(value) else f"a {type(value).__name__}"
        fix = f"give one of {', '.join(networks)}" if networks else "it has no network field"
        raise DiffdynError(
            f"the field {field} of {label} is {what}, not a network (an Equinox module the "
            f"vector field calls); {fix}."
        )
    return value


def _outputs(
    network: Callable[..., Any], states: np.ndarray, field: str, label: str
) -> np.ndarray:
    """The network at every state, `[N, k]`, or a one-sentence refusal."""
    points = jnp.asarray(states, dtype=jnp.result_type(float))
    try:
        out = np.asarray(jax.vmap(network)(points), dtype=np.float64)
    except Exception as error:  # whatever the user's module raises on a state vector
        first = (str(error).strip().splitlines() or [""])[0]
        raise DiffdynError(
            f"the network {field} of {label} cannot be evaluated on a state (a vector of "
            f"{states.shape[1]} values: {type(error).__name__}: {first}); --term needs a "
            "module that the vector field calls on the state alone."
        ) from None
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise DiffdynError(
            f"the network {field} of {label} gives an output of shape {out.shape[1:]} per "
            "state; a term needs one number or one vector per state."
        )
    bad = ~np.isfinite(out)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise DataError(
            f"the network {field} of {label} is not finite at state {row + 1} "
            f"({', '.join(f'{v:.4g}' for v in states[row])}); it cannot be read as terms."
        )
    return out


def discover_network_term(
    folder: str | os.PathLike,
    field: str,
    system: str | None = None,
    *,
    degree: int = DEFAULT_DEGREE,
    threshold: float | None = None,
    trig: bool = False,
    bagging: int = 0,
    seed: int = 0,
    ridge: float | None = None,
) -> TermDiscovery:
    """Sparse equations for the network field `field` of a system fitted by `diffdyn
    identify`: its outputs over the states of the data it was fitted to, ≈ Θ(x) ξ.

    The states are the data's when every variable was observed; when some were latent, the
    fitted trajectory's (every variable, segment by segment from the fitted initial states).
    The equations are named after the field (`net[prey] = -0.90 prey predator`): the network
    is a term of the rates, not all of them, so the `Discovery` is of kind `"terms"`.

    **Arguments:**

    - `folder`: an identification folder (`diffdyn identify -o DIR`: `result.json`,
      `system.eqx`); the data file named there must be where it was, unchanged.
    - `field`: the network field of the fitted system (an Equinox module the vector field
      calls on the state).
    - `system`: for a system of the user's file, the same `path/to/file.py:ClassName`
      (diffdyn never runs code that a saved file names); `None` for a catalogue system.
    - `degree`, `threshold`, `trig`, `bagging`, `seed`, `ridge`: as for `discover_series`.

    **Returns:** a `TermDiscovery`: the `Discovery`, and where its states came from.

    **Raises** `DiffdynError` (one sentence) for a folder that is not an identification, a
    user's system not given, a missing or changed data file, a field that is not a network,
    and a network that cannot be evaluated on the states (or is not finite there).

    **Example:**

    ```python
    from diffdyn.discover import discover_network_term

    found = discover_network_term("lv-hybrid", "net", "lv_hybrid.py:HybridLotkaVolterra")
    print("\\n".join(found.discovery.equations()))
    # net[prey] = -0.90 prey predator
    # net[predator] = 0.80 prey predator
    ```
    """
    options = check_options(degree=degree, threshold=threshold, bagging=bagging, seed=seed,
                            ridge=ridge)  # fmt: skip
    identified = read_identified(folder, system)
    fitted, label = identified.system, _label(identified.system)
    network = _network(fitted, field)
    variables = tuple(fitted.variables)
    if identified.latent:
        states = np.asarray(identified.trajectory().values, dtype=np.float64)
        where = "fitted trajectory"
        note = (
            f"{field} evaluated over the fitted trajectory at the data's {len(states)} times "
            f"({', '.join(identified.latent)} latent: not in the data)"
        )
    else:
        series = identified.series
        columns = [series.variables.index(v) for v in variables]
        states = np.asarray(series.values, dtype=np.float64)[:, columns]
        where = "data"
        note = f"{field} evaluated over the {len(states)} states of the data"
    outputs = _outputs(network, states, field, label)
    k = outputs.shape[1]
    if k == len(variables):
        targets = [f"{field}[{v}]" for v in variables]
    else:
        targets = [field] if k == 1 else [f"{field}[{i + 1}]" for i in range(k)]
    note += f" ({identified.source.path})"
    chosen = {n: options[n] for n in ("degree", "threshold", "bagging", "seed", "ridge")}
    discovery = discover_terms(
        states, outputs, variable_names=variables, trig=trig, target_names=targets, term=True,
        notes=[note], **chosen,
    )  # fmt: skip
    return TermDiscovery(
        discovery=discovery,
        folder=str(folder),
        field=field,
        system=identified.reference,
        states=where,
        states_values=states,
        outputs=outputs,
        data=str(identified.source.path),
    )
