"""`AbstractSystem`: what every dynamical system in the catalogue (and every user's) offers.

A system is an `eqx.Module` whose *parameters are array fields*: a simulator built from it is
differentiable in its parameters exactly like a network is in its weights, and `jax.vmap` over a
batch of systems sweeps parameters. Facts about the system that do not change with its
parameters (name, kind, variable names, recommended sampling step, reference Lyapunov exponent)
are class attributes.

The four kinds are abstract subclasses, each with the one method a user writes:

| kind | class | write |
| --- | --- | --- |
| flow (ODE) | `AbstractFlow` | `vector_field(t, state)` |
| map | `AbstractMap` | `step(state, exog)` |
| delay (DDE) | `AbstractDelayFlow` | `vector_field(t, state, delayed)` |
| PDE | `AbstractSemilinearPDE` | `linear_symbol()` and `nonlinear(u_hat)` |
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

KINDS = ("flow", "map", "delay", "pde")


def param(default: float) -> Any:
    """Declare a system parameter: an array field with a default value.

    Parameters declared this way are pytree leaves, so `jax.grad` flows to them and `jax.vmap`
    can batch them.

    **Example:**

    ```python
    class Decay(AbstractFlow):
        rate: Float[Array, ""] = param(0.5)
        y0 = (1.0,)

        def vector_field(self, t, state):
            return -self.rate * state
    ```
    """
    return eqx.field(default=default, converter=jnp.asarray)


class AbstractSystem(eqx.Module):
    """A dynamical system: parameters as array fields, facts as class attributes.

    Class attributes a concrete system sets (those marked * are required):

    - `name`*: registry name, lower case with hyphens (`"lorenz63"`).
    - `y0`*: the default initial state, a tuple of floats (or override `initial_state`).
    - `dt`: recommended sampling step in time units (maps: always 1).
    - `variable_names`: names of the state variables (default `x0, x1, ...`).
    - `description`: one line for `diffdyn systems`.
    - `lyapunov_exponent`: largest Lyapunov exponent at the default parameters, per time unit.
    - `lyapunov_source`: where that number comes from (a paper, or diffdyn's own computation
      with its settings).
    - `default_steps`, `default_transient`: what `simulate` uses when not told.
    """

    kind: ClassVar[str]
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    y0: ClassVar[tuple[float, ...] | None] = None
    variable_names: ClassVar[tuple[str, ...] | None] = None
    dt: ClassVar[float] = 0.01
    autonomous: ClassVar[bool] = True
    lyapunov_exponent: ClassVar[float | None] = None
    lyapunov_source: ClassVar[str] = ""
    default_steps: ClassVar[int] = 2000
    default_transient: ClassVar[float] = 0.0
    exog_variables: ClassVar[tuple[str, ...]] = ()

    # -- state -----------------------------------------------------------------------------
    def initial_state(self) -> Float[Array, " n"]:
        """The default initial state of the observed variables."""
        if self.y0 is None:
            raise NotImplementedError(
                f"{type(self).__name__} must set the class attribute y0 (a default initial "
                "state) or override initial_state()."
            )
        return jnp.asarray(self.y0, dtype=float)

    @property
    def variables(self) -> tuple[str, ...]:
        """Names of the observed variables."""
        if self.variable_names is not None:
            return tuple(self.variable_names)
        return tuple(f"x{i}" for i in range(int(self.initial_state().shape[0])))

    @property
    def dim(self) -> int:
        """Number of observed variables."""
        return len(self.variables)

    def prepare_state(self, y0: Float[Array, " d"], h: float) -> Float[Array, " n"]:
        """The internal state that starts from the observed state `y0`.

        The identity, except where the state needs more than the observed variables: a delay
        system's history buffer, NARMA's past outputs and inputs.
        """
        return y0

    def observe(self, state: Float[Array, " n"]) -> Float[Array, " d"]:
        """Map an internal state to the observed variables (identity unless overridden)."""
        return state

    # -- parameters ------------------------------------------------------------------------
    def parameters(self) -> dict[str, Array]:
        """The system's parameters (its array fields), by name.

        A field holding a module (a network inside the vector field: a universal differential
        equation) is not a parameter here: see `networks`.
        """
        out = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("static", False):
                continue
            value = getattr(self, f.name)
            if eqx.is_array(value):
                out[f.name] = value
        return out

    def networks(self) -> dict[str, Any]:
        """The fields holding something else than one array, with arrays inside (an Equinox
        MLP called in `vector_field`), by name."""
        out = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("static", False):
                continue
            value = getattr(self, f.name)
            arrays = jax.tree_util.tree_leaves(eqx.filter(value, eqx.is_array))
            if not eqx.is_array(value) and arrays:
                out[f.name] = value
        return out

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """Names of the array parameters, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("static"))

    @classmethod
    def structural_names(cls) -> tuple[str, ...]:
        """Names of static (shape-defining) settings, e.g. Lorenz-96's `n`."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("static"))

    # -- driving input ---------------------------------------------------------------------
    def exogenous_names(self) -> tuple[str, ...]:
        """The names of what `exogenous` returns (`exog_variables`, unless the system is driven
        by something of its own, as a controlled flow by a recorded input)."""
        return tuple(self.exog_variables)

    def exogenous(self, key: PRNGKeyArray | None, times: Float[Array, " T"]) -> Array | None:
        """The exogenous input `[T, m]` at `times`, or `None` for an undriven system.

        Random inputs (NARMA) draw from `key`; deterministic forcings ignore it.
        """
        return None

    @property
    def needs_key(self) -> bool:
        """Whether simulating needs a random key (a random driving input)."""
        return False

    # -- facts -----------------------------------------------------------------------------
    @property
    def lyapunov_time(self) -> float | None:
        """`1/λ₁` at the default parameters, or `None` when the system is not chaotic."""
        lam = self.lyapunov_exponent
        if lam is None or not lam > 0 or not math.isfinite(lam):
            return None
        return 1.0 / lam

    # -- time stepping (implemented by each kind) ------------------------------------------
    @abc.abstractmethod
    def internal_step(self, dt: float) -> float:
        """The fixed internal step used for a sampling step `dt` (a divisor of `dt`)."""

    @abc.abstractmethod
    def make_stepper(self, h: float) -> Callable[[Array, Array, Array | None], Array]:
        """A function `(state, t, exog) -> state` advancing the internal state by `h`.

        Used by `simulate` for maps, delay systems and PDEs, and by `lyapunov_spectrum` for
        every kind (its Jacobian is the tangent map). Coefficients that depend only on `h` and
        the parameters are computed once here, not at every step.
        """


def substeps(dt: float, max_step: float) -> int:
    """Number of equal internal steps no longer than `max_step` that make up `dt`."""
    return max(1, int(math.ceil(dt / max_step - 1e-9)))
