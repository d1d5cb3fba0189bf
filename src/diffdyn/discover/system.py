"""The discovered equations as systems `diffdyn.simulate` runs: a flow ẋ = Θ(x, u) ξ and a map
x_{n+1} = Θ(x_n, u_n) ξ, with Θ the `Library` and ξ the sparse coefficients (an array field,
so a discovered system is differentiable in its coefficients like any catalogue system)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..systems.flow import AbstractFlow
from ..systems.map import AbstractMap
from .library import Library


def _inputs_at(times: Array | None, values: Array | None, t) -> Array | None:
    """Recorded inputs `values [T, m]` at `times [T]`, linearly interpolated at `t`."""
    if times is None or values is None:
        return None
    return jax.vmap(lambda column: jnp.interp(t, times, column), in_axes=1, out_axes=-1)(values)


def _terms(library: Library, state: Array, inputs: Array | None) -> Array:
    point = state if inputs is None else jnp.concatenate([state, inputs], axis=-1)
    return library.evaluate(point[None, :], xp=jnp)[0]


class DiscoveredFlow(AbstractFlow):
    """ẋ = Θ(x, u(t))ᵀ ξ: a flow found by `diffdyn.discover`.

    **Arguments:**

    - `coefficients`: ξ, `[terms, states]`.
    - `start`: the default initial state (the data's first state); an array, so that another
      start does not compile the solver again.
    - `library`: the candidate terms Θ (states first, then inputs).
    - `names`: the state variables.
    - `input_times`, `input_values`: recorded inputs u `[T, m]`, interpolated linearly in
      time, when the library uses inputs; else `None`.

    **Example:**

    ```python
    from diffdyn.discover import discover_series
    from diffdyn.systems import get_system, simulate

    data = simulate(get_system("lorenz63"), steps=2000, dt=0.005)
    system = discover_series(data, degree=2).as_system()
    again = simulate(system, steps=len(data), dt=data.dt, transient=0.0)
    ```
    """

    name: ClassVar[str] = "discovered"
    description: ClassVar[str] = "a flow found by sparse regression (diffdyn.discover)"

    coefficients: Float[Array, "terms states"]
    start: Float[Array, " states"]
    library: Library = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)
    input_times: Float[Array, " T"] | None = None
    input_values: Float[Array, "T inputs"] | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        return self.names

    def initial_state(self) -> Float[Array, " n"]:
        return self.start

    def forcing(self, t: Float[ArrayLike, ""]) -> Float[Array, " m"] | None:
        return _inputs_at(self.input_times, self.input_values, t)

    def vector_field(self, t, state):
        return _terms(self.library, state, self.forcing(t)) @ self.coefficients


class DiscoveredMap(AbstractMap):
    """x_{n+1} = Θ(x_n, u_n)ᵀ ξ: a map found by `diffdyn.discover` (fields as
    `DiscoveredFlow`; the inputs u_n are the recorded ones at iteration n's time)."""

    name: ClassVar[str] = "discovered"
    description: ClassVar[str] = "a map found by sparse regression (diffdyn.discover)"

    coefficients: Float[Array, "terms states"]
    start: Float[Array, " states"]
    library: Library = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)
    input_times: Float[Array, " T"] | None = None
    input_values: Float[Array, "T inputs"] | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        return self.names

    def initial_state(self) -> Float[Array, " n"]:
        return self.start

    def forcing(self, t) -> Array | None:
        """The recorded inputs at time `t` (`None` without inputs)."""
        return _inputs_at(self.input_times, self.input_values, t)

    def step(self, state, exog):
        return _terms(self.library, state, exog) @ self.coefficients

    def make_stepper(self, h: float):
        # The inputs are looked up by time (simulate passes the iteration's time), so they
        # never become a recorded exogenous series without names.
        def stepper(state, t, exog):
            return self.step(state, self.forcing(t))

        return stepper
