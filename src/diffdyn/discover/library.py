"""`Library`: the candidate terms of a sparse regression — monomials, optionally sin and cos.

SINDy (Brunton, Proctor & Kutz 2016, PNAS 113(15), eq. 3) writes each rate as a sparse linear
combination of candidate functions Θ(x) = [1, x, y, …, x², x y, …, sin(x), cos(x), …]; this
file builds Θ. Terms are ordered by degree, then as `itertools.combinations_with_replacement`
orders the variables (the order PySINDy's `PolynomialLibrary` uses too), then sin and cos of
each variable.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Any

import numpy as np

from ..errors import DiffdynError
from ..options import check_number


def library_size(variables: int, degree: int, trig: bool = False) -> int:
    """The number of candidate terms: C(variables + degree, degree) monomials (the constant
    included), plus sin and cos of each variable when `trig`.

    **Example:** `library_size(3, 3)  # 20`
    """
    return math.comb(variables + degree, degree) + (2 * variables if trig else 0)


@functools.cache
def _exponents(variables: int, degree: int) -> np.ndarray:
    rows = []
    for k in range(degree + 1):
        for combo in itertools.combinations_with_replacement(range(variables), k):
            row = [0] * variables
            for i in combo:
                row[i] += 1
            rows.append(row)
    out = np.asarray(rows, dtype=np.int64).reshape(-1, variables)
    out.setflags(write=False)
    return out


def _power_name(name: str, power: int) -> str:
    return name if power == 1 else f"{name}^{power}"


@dataclasses.dataclass(frozen=True)
class Library:
    """Monomials of `variables` up to total degree `degree` (the constant `1` included) and,
    with `trig`, `sin(v)` and `cos(v)` of each variable.

    Hashable, so it can be a static field of a module (`DiscoveredFlow`); `evaluate` works on
    NumPy arrays (fitting) and on JAX arrays (inside a vector field).

    **Arguments:**

    - `variables`: the names of the variables the terms are built from (states, then inputs).
    - `degree`: the largest total degree of a monomial, at least 1.
    - `trig`: also add `sin(v)` and `cos(v)` of every variable.

    **Example:**

    ```python
    import numpy as np
    from diffdyn.discover import Library

    library = Library(("x", "y"), degree=2)
    library.names  # ('1', 'x', 'y', 'x^2', 'x y', 'y^2')
    library.evaluate(np.array([[2.0, 3.0]]))  # [[1, 2, 3, 4, 6, 9]]
    ```
    """

    variables: tuple[str, ...]
    degree: int
    trig: bool = False

    def __post_init__(self):
        object.__setattr__(self, "variables", tuple(self.variables))
        check_number("degree", self.degree, whole=True, low=1)
        if not self.variables:
            raise DiffdynError("a library needs at least one variable.")

    @property
    def size(self) -> int:
        """The number of terms (columns of Θ)."""
        return library_size(len(self.variables), self.degree, self.trig)

    @property
    def exponents(self) -> np.ndarray:
        """`[monomials, variables]`: the power of each variable in each monomial."""
        return _exponents(len(self.variables), self.degree)

    @property
    def names(self) -> tuple[str, ...]:
        """Readable names: `1`, `x`, `x y`, `z^2`, `x^2 y`, `sin(x)`, `cos(x)` …"""
        names = []
        for row in self.exponents:
            parts = [_power_name(v, int(p)) for v, p in zip(self.variables, row) if p]
            names.append(" ".join(parts) if parts else "1")
        if self.trig:
            names += [f"{f}({v})" for v in self.variables for f in ("sin", "cos")]
        return tuple(names)

    def evaluate(self, values: Any, xp: Any = np) -> Any:
        """Θ(values): `[N, variables]` → `[N, size]`, with the array module `xp` (`numpy`
        or `jax.numpy`).

        Powers are built by repeated multiplication, not `**` with array exponents, so a
        negative base stays exact (JAX would take exp(p·log x) and give NaN).
        """
        powers = [xp.ones_like(values), values]
        for _ in range(2, self.degree + 1):
            powers.append(powers[-1] * values)
        stacked = xp.stack(powers)  # [degree + 1, N, variables]
        exponents = self.exponents
        columns = None
        for i in range(len(self.variables)):
            factor = stacked[exponents[:, i], :, i]  # [monomials, N]
            columns = factor if columns is None else columns * factor
        assert columns is not None
        out = columns.T
        if self.trig:
            waves = xp.stack([xp.sin(values), xp.cos(values)], axis=-1)  # [N, v, 2]
            out = xp.concatenate([out, waves.reshape(values.shape[0], -1)], axis=1)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"variables": list(self.variables), "degree": self.degree, "trig": self.trig}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Library:
        return cls(tuple(stored["variables"]), int(stored["degree"]), bool(stored["trig"]))
