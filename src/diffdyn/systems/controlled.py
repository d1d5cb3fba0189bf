"""Controlled systems: flows and maps that take a control input u.

A controlled flow is dy/dt = f(t, y, u). Write `controlled_field(t, state, u)`; its
`vector_field(t, state)` is the field with u = 0, so an uncontrolled use of the system
(`simulate`, `diffdyn systems`, Lyapunov spectra, identification) sees the free dynamics.

A map is controlled through the input it already takes: `AbstractControlledMap.step(state,
exog)` calls `controlled_step(state, u)` with u = `exog` (zeros when the map is simulated
undriven), so `simulate` still iterates the free map and a closed-loop rollout
(`diffdyn.control.rollout`) passes the policy's u as `exog`.

Class attributes of both:

- `control_names`: names of the inputs (`("torque",)`); their number is the input dimension.
- `control_limit`: the actuator limit |u| ≤ limit the tasks use by default (`None`: no limit).
- `control_target`, `control_start`: optional states the generic tasks use for a user's system
  (`stabilise` steers to `control_target`; `swing-up` also starts from `control_start`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..errors import DiffdynError
from .base import AbstractSystem
from .flow import AbstractFlow
from .map import AbstractMap


class RecordedInput(eqx.Module):
    """A recorded control input u(t): its samples `values` `[T, m]` at `times` `[T]`
    (increasing), interpolated linearly between them and held constant beyond the ends.

    **Example:** `RecordedInput(jnp.array([0.0, 1.0]), jnp.array([[0.0], [2.0]]))(0.25)  # [0.5]`
    """

    times: Float[Array, " T"]
    values: Float[Array, "T m"]

    def __call__(self, t: Float[ArrayLike, ""]) -> Float[Array, " m"]:
        return jax.vmap(lambda column: jnp.interp(t, self.times, column), in_axes=1)(self.values)


class AbstractControlledFlow(AbstractFlow):
    """A flow dy/dt = f(t, y, u) with a control input u. Write `controlled_field(t, state, u)`.

    `vector_field(t, state)` is `controlled_field(t, state, 0)`: the uncontrolled system, or,
    once `driven_by` gave it a recorded input u(t) (a `RecordedInput`, the field
    `recorded_input`), `controlled_field(t, state, u(t))`: what `identify` fits to data whose
    input columns are the controls, and what `simulate` then integrates.
    `observe_for_control(state)` is what a policy sees (default: the observed state; a system
    with an angle gives its cosine and sine, so the policy is periodic in it).

    **Example:**

    ```python
    import jax.numpy as jnp
    from diffdyn.systems import AbstractControlledFlow, param

    class Cart(AbstractControlledFlow):
        name = "cart"
        y0 = (1.0, 0.0)
        variable_names = ("x", "v")
        control_names = ("force",)
        control_limit = 1.0
        control_target = (0.0, 0.0)
        mass: Float[Array, ""] = param(1.0)

        def controlled_field(self, t, state, u):
            x, v = state
            return jnp.stack([v, u[0] / self.mass])
    ```
    """

    control_names: ClassVar[tuple[str, ...]] = ("u",)
    control_limit: ClassVar[float | None] = None
    control_target: ClassVar[tuple[float, ...] | None] = None
    control_start: ClassVar[tuple[float, ...] | None] = None
    # keyword-only with a default, so subclasses declare their own fields in any order
    recorded_input: RecordedInput | None = eqx.field(default=None, kw_only=True)

    @abc.abstractmethod
    def controlled_field(
        self, t: Float[ArrayLike, ""], state: Float[Array, " n"], u: Float[Array, " m"]
    ) -> Float[Array, " n"]:
        """dy/dt at time `t`, state `state` and control `u` (shape `[len(control_names)]`)."""

    def vector_field(self, t, state):
        if self.recorded_input is None:
            u = jnp.zeros(len(self.control_names), state.dtype)
        else:
            u = self.recorded_input(t).astype(state.dtype)
        return self.controlled_field(t, state, u)

    def exogenous_names(self) -> tuple[str, ...]:
        """The controls while a recorded input drives the system (`simulate` then records it as
        the series' `exog`, which `identify` reads back); none for the free system."""
        return tuple(self.control_names) if self.recorded_input is not None else ()

    def forcing(self, t):
        return None if self.recorded_input is None else self.recorded_input(t)

    def driven_by(self, times: ArrayLike | None, values: ArrayLike | None = None):
        """This system under the recorded input `values` `[T, m]` (one column per control, in
        `control_names`' order) sampled at `times` `[T]`; `driven_by(None)` gives the free
        system back.

        **Example:**

        ```python
        import numpy as np
        from diffdyn.systems import get_system, simulate

        t = np.linspace(0.0, 10.0, 201)
        pendulum = get_system("pendulum").driven_by(t, np.sin(t)[:, None])
        series = simulate(pendulum, t1=10.0)  # the pendulum under the torque sin t
        series.exog_variables  # ('torque',): the input is recorded with the states
        ```
        """
        recorded = None
        if times is not None:
            times = np.asarray(times, dtype=float)
            values = np.asarray(values, dtype=float)
            m = len(self.control_names)
            if times.ndim != 1 or len(times) < 2 or np.any(np.diff(times) <= 0):
                raise DiffdynError(
                    "a recorded input needs at least two increasing times; got "
                    f"{times.shape[0] if times.ndim == 1 else times.shape} of them."
                )
            if values.shape != (len(times), m):
                raise DiffdynError(
                    f"{self.name or type(self).__name__} has {m} control(s) "
                    f"({', '.join(self.control_names)}); the recorded input must be "
                    f"[{len(times)}, {m}], got {list(values.shape)}."
                )
            if not np.all(np.isfinite(values)):
                raise DiffdynError("the recorded input holds NaN or inf; give finite values.")
            recorded = RecordedInput(jnp.asarray(times), jnp.asarray(values))
        return eqx.tree_at(lambda s: s.recorded_input, self, recorded, is_leaf=lambda x: x is None)

    def observe_for_control(self, state: Float[Array, " n"]) -> Float[Array, " f"]:
        """The features a policy sees (default: the observed variables)."""
        return self.observe(state)


class AbstractControlledMap(AbstractMap):
    """A map y_{n+1} = F(y_n, u_n) controlled through its `exog`. Write `controlled_step(state,
    u)`; `step(state, exog)` passes `exog` as u (zeros when the map runs undriven)."""

    control_names: ClassVar[tuple[str, ...]] = ("u",)
    control_limit: ClassVar[float | None] = None
    control_target: ClassVar[tuple[float, ...] | None] = None
    control_start: ClassVar[tuple[float, ...] | None] = None

    @abc.abstractmethod
    def controlled_step(
        self, state: Float[Array, " n"], u: Float[Array, " m"]
    ) -> Float[Array, " n"]:
        """The next state under control `u`."""

    def step(self, state, exog):
        if exog is None:
            exog = jnp.zeros(len(self.control_names), state.dtype)
        return self.controlled_step(state, exog)

    def observe_for_control(self, state: Float[Array, " n"]) -> Float[Array, " f"]:
        """The features a policy sees (default: the observed variables)."""
        return self.observe(state)


ControlledSystem = AbstractControlledFlow | AbstractControlledMap


def is_controlled(system: AbstractSystem | type[AbstractSystem]) -> bool:
    """Whether `system` (an instance or a class) takes a control input."""
    cls = system if isinstance(system, type) else type(system)
    return issubclass(cls, AbstractControlledFlow | AbstractControlledMap)


def check_controlled(system: AbstractSystem) -> ControlledSystem:
    """`system` itself if it takes a control input; otherwise a `DiffdynError` saying how to
    give it one."""
    if not is_controlled(system):
        label = system.name or type(system).__name__
        raise DiffdynError(
            f"{label} has no control input; use a controlled system (pendulum, cartpole, "
            "lorenz63-control) or subclass AbstractControlledFlow / AbstractControlledMap."
        )
    assert isinstance(system, AbstractControlledFlow | AbstractControlledMap)
    return system


def controlled_stepper(
    system: ControlledSystem, h: float
) -> Callable[[Array, Array, Array], Array]:
    """A function `(state, t, u) -> state` advancing the state by one internal step `h` with u
    held: classical RK4 for a flow (as `rk4_step`), one iteration for a map."""
    from .flow import rk4_step

    if isinstance(system, AbstractControlledFlow):

        def step(state, t, u):
            return rk4_step(lambda s, y: system.controlled_field(s, y, u), t, state, h)

        return step

    def step_map(state, t, u):
        return system.controlled_step(state, u)

    return step_map
