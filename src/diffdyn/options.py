"""Command-line text → typed values: `NAME=VALUE` assignments, durations and lists.

The one place where the text a user types becomes numbers and names, so `diffdyn train`,
`diffdyn task` and `diffdyn compare` read `--budget 5m` or `-p hidden=64` the same way and
reject bad text with the same sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import DiffdynError

_BUDGET = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)")
_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


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
