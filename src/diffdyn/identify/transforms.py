"""Bounds as reparametrisations: each fitted array is optimised as an unconstrained `u`.

Gradient steps in `u` can never leave the bounds, and Adam's steps become relative where it
matters: a positive parameter fitted as `u = log p` moves by the same fraction whether it is
10 or 0.01. The rule (what `identify` does unless told otherwise through `bounds`):

| start value | transform | `p = forward(u)` |
| --- | --- | --- |
| every element > 0 (the default for rates, σ, ρ, β ...) | log | `exp(u)` (stays positive) |
| every element < 0 | log of −p | `−exp(u)` (stays negative) |
| elements of both signs, or a zero | free, scaled | `s · u`, `s = |start|` (1 where 0) |
| `bounds=(low, None)` | log above `low` | `low + exp(u)` |
| `bounds=(None, high)` | log below `high` | `high − exp(u)` |
| `bounds=(low, high)` | logistic | `low + (high − low) · σ(u)` |
| `bounds=(None, None)` | free, scaled | `s · u` |

A network field (an MLP inside the vector field) is fitted as it is: `forward(u) = u`.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..errors import DiffdynError
from ..options import check_number

KINDS = ("free", "lower", "upper", "interval", "network")


class Transform(eqx.Module):
    """`p = forward(u)` from an unconstrained `u` to a parameter within its bounds.

    **Arguments:**

    - `kind`: `"free"` (`p = scale · u`), `"lower"` (`p = low + exp(u)`), `"upper"`
      (`p = high − exp(u)`), `"interval"` (`p = low + (high − low) · sigmoid(u)`), or
      `"network"` (`p = u`, for a module of weights).
    - `low`, `high`, `scale`: the bounds and the scale (scalars or arrays broadcasting
      against the parameter; unused ones are 0 or 1).
    """

    kind: str = eqx.field(static=True)
    low: Array
    high: Array
    scale: Array

    def forward(self, u: Any) -> Any:
        """The parameter for the unconstrained value `u`."""
        if self.kind == "network":
            return u
        if self.kind == "lower":
            return self.low + jnp.exp(u)
        if self.kind == "upper":
            return self.high - jnp.exp(u)
        if self.kind == "interval":
            return self.low + (self.high - self.low) * jax.nn.sigmoid(u)
        return self.scale * u

    def inverse(self, p: Any) -> Any:
        """The unconstrained value whose `forward` is `p` (which must lie inside the bounds)."""
        if self.kind == "network":
            return p
        if self.kind == "lower":
            return jnp.log(p - self.low)
        if self.kind == "upper":
            return jnp.log(self.high - p)
        if self.kind == "interval":
            q = (p - self.low) / (self.high - self.low)
            return jnp.log(q) - jnp.log1p(-q)
        return p / self.scale

    def describe(self) -> str:
        """The transform in words, for tables and `result.json`."""
        low, high = _number(self.low), _number(self.high)
        if self.kind == "network":
            return "network weights, unconstrained"
        if self.kind == "lower":
            return "log p (positive)" if low == "0" else f"log(p − {low}) (above {low})"
        if self.kind == "upper":
            return "log(−p) (negative)" if high == "0" else f"log({high} − p) (below {high})"
        if self.kind == "interval":
            return f"logit in [{low}, {high}]"
        return "free (scaled by |start|)"


def _number(x: Array) -> str:
    a = np.asarray(x)
    return f"{float(a.reshape(-1)[0]):g}" if a.size else "?"


def choose_transform(
    name: str, start: Any, bounds: tuple[float | None, float | None] | None
) -> Transform:
    """The transform of parameter `name` from its start value and optional `(low, high)`.

    **Arguments:**

    - `name`: the field, for messages.
    - `start`: its start value (an array), or a module (a network: `kind="network"`).
    - `bounds`: `None` for the default rule (the sign of the start value is kept), or
      `(low, high)` with either side `None` for unbounded.

    **Returns:** a `Transform`. **Raises** `DiffdynError` when the bounds are not numbers,
    `low >= high`, or the start value is not strictly inside them.

    **Example:** `choose_transform("rho", jnp.asarray(20.0), None).describe()  # 'log p
    (positive)'`
    """
    zero, one = jnp.zeros(()), jnp.ones(())
    if not eqx.is_array(start):
        if bounds is not None:
            raise DiffdynError(f"{name} is a network: it takes no bounds; leave them out.")
        return Transform("network", zero, zero, one)
    value = np.asarray(start, dtype=float)
    dtype = jnp.result_type(float)
    if bounds is None:
        if value.size and (value > 0).all():
            bounds = (0.0, None)
        elif value.size and (value < 0).all():
            bounds = (None, 0.0)
        else:
            bounds = (None, None)
    low, high = (_bound(name, b) for b in bounds)
    if low is not None and high is not None and not low < high:
        raise DiffdynError(
            f"the bounds of {name} are empty: low {low:g} is not below high {high:g}."
        )
    inside = (low is None or bool((value > low).all())) and (
        high is None or bool((value < high).all())
    )
    if not inside:
        span = (
            f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
        )
        raise DiffdynError(
            f"the start value of {name} ({_shown(value)}) is not strictly inside its bounds "
            f"{span}; give a start value inside them."
        )
    as_array = lambda x: jnp.asarray(x, dtype=dtype)  # noqa: E731
    if low is not None and high is not None:
        return Transform("interval", as_array(low), as_array(high), one)
    if low is not None:
        return Transform("lower", as_array(low), zero, one)
    if high is not None:
        return Transform("upper", zero, as_array(high), one)
    scale = np.where(np.abs(value) > 0, np.abs(value), 1.0)
    return Transform("free", zero, zero, as_array(scale))


def _bound(name: str, bound: Any) -> float | None:
    return None if bound is None else check_number(f"a bound of {name}", bound)


def _shown(value: np.ndarray) -> str:
    return f"{value.item():g}" if value.size == 1 else f"{value.size} values"
