"""Command-line text → typed values: `NAME=VALUE` assignments, numbers, durations and lists.

The one place where the text a user types becomes numbers and names, and where numbers are
checked (finite, in range, whole where they must be), so `diffdyn train`, `diffdyn task` and
`diffdyn compare` read `--budget 5m` or `-p hidden=64` the same way and reject bad text with
the same sentence. Library functions check the numbers they are given with `check_number`
too, so a value from Python meets the same rules as one typed on the command line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, overload

from .errors import DiffdynError

_BUDGET = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)")
_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


# Whole numbers a user gives (sizes, counts, seeds) stay far below what indexes overflow at.
MAX_INT = 2**31 - 1


@overload
def check_number(
    label: str,
    value: Any,
    *,
    whole: Literal[True],
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> int: ...
@overload
def check_number(
    label: str,
    value: Any,
    *,
    whole: bool = False,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> float: ...
def check_number(
    label: str,
    value: Any,
    *,
    whole: bool = False,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> Any:
    """Return `value` (text or a number) as a float, or as an int when `whole`, after checking
    that it is finite and within `low <= value <= high`, `above < value < below` (each bound
    optional); whole numbers are also bounded by `MAX_INT`. Otherwise raise `DiffdynError`
    with one sentence naming `label` (e.g. `"training option clip"`, `"--seed"`).

    **Example:** `check_number("--rtol", "1e-6", above=0)  # 1e-06`
    """
    try:
        number = float(value) if not isinstance(value, int) or isinstance(value, bool) else value
    except (TypeError, ValueError, OverflowError):
        number = None
    if isinstance(value, bool) or number is None or not math.isfinite(number):
        kind = "a whole number" if whole else "a finite number"
        raise DiffdynError(f"{label} must be {kind}; got {value!r}.")
    # the implicit bounds of whole numbers are named only when the value breaks them
    implicit_low = implicit_high = False
    if whole:
        if number != int(number):
            raise DiffdynError(f"{label} must be a whole number; got {value!r}.")
        number = int(number)
        implicit_high = high is None
        implicit_low = low is None
        high = MAX_INT if high is None else min(high, MAX_INT)
        low = -MAX_INT if low is None else low
    inside = (
        (low is None or number >= low)
        and (above is None or number > above)
        and (high is None or number <= high)
        and (below is None or number < below)
    )
    if not inside:
        want = []
        if low is not None and not (implicit_low and number >= low):
            want.append(f"at least {_bound(low)}")
        if above is not None:
            want.append("positive" if above == 0 else f"above {_bound(above)}")
        if high is not None and not (implicit_high and number <= high):
            want.append(f"at most {_bound(high)}")
        if below is not None:
            want.append(f"below {_bound(below)}")
        raise DiffdynError(f"{label} must be {' and '.join(want)}; got {value!r}.")
    return number


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """Parse `["rho=35", "sigma=10"]` into `{"rho": "35", "sigma": "10"}`.

    Values stay text; the receiver converts them to the types it expects (a system's
    parameters, a model's hyperparameters, `TrainConfig.from_options`).
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise DiffdynError(f"expected NAME=VALUE, got {item!r} (e.g. --param rho=35).")
        out[key.strip()] = value.strip()
    return out


def parse_budget(text: str | None) -> float | None:
    """A wall-clock duration in seconds: `"90"` or `"90s"` → 90.0, `"5m"` → 300.0, `"1h"` →
    3600.0; `None` → `None`.

    **Example:** `parse_budget("1.5m")  # 90.0`
    """
    if text is None:
        return None
    match = _BUDGET.fullmatch(text.strip().lower())
    if match is None or float(match[1]) <= 0:
        raise DiffdynError(
            f"--budget must be a positive duration such as 90 (seconds), 60s, 5m or 1h; "
            f"got {text!r}."
        )
    return float(match[1]) * _SECONDS[match[2]]


def parse_list(text: str | None) -> list[str]:
    """Comma-separated names → a list, blanks dropped: `"esn, ngrc,"` → `["esn", "ngrc"]`."""
    return [] if text is None else [t.strip() for t in text.split(",") if t.strip()]


def merge_options(assignments: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """`--option NAME=VALUE` assignments together with the flags that were given.

    A flag left out is `None` and adds nothing; a name given both as a flag (`--epochs 4`) and
    as an assignment (`--option epochs=3`) is an error rather than a silent choice.
    """
    merged = dict(assignments)
    for key, value in flags.items():
        if value is None:
            continue
        if key in merged:
            raise DiffdynError(
                f"{key} is given twice: as --{key.replace('_', '-')} and as --option {key}=...; "
                "keep one."
            )
        merged[key] = value
    return merged
