"""Implicit layers: outputs defined by an equation, differentiated by the implicit function
theorem instead of through the solver's iterations.

A fixed point z* = f(z*, x) (a deep-equilibrium layer, Bai, Kolter & Koltun 2019) or a root
g(y*, x) = 0 depends on x and on the parameters θ of f or g through the equation alone; by
the implicit function theorem

    ∂y*/∂θ = −(∂g/∂y)⁻¹ ∂g/∂θ      (g(y, ·) = f(y, ·) − y for a fixed point),

so the backward pass is one linear solve with the Jacobian at the solution (Optimistix's
`ImplicitAdjoint`, the solve by Lineax), whatever the number of forward iterations, and the
iterations are never stored. Blondel et al. 2022, "Efficient and modular implicit
differentiation", §2; Blondel & Roulet, *The Elements of Differentiable Programming*, ch. 11.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import DiffdynError


def _check_tolerances(rtol: float, atol: float, max_steps: int) -> None:
    if not (rtol > 0 and atol > 0):
        raise DiffdynError(f"rtol and atol must be positive; got rtol={rtol}, atol={atol}.")
    if not (isinstance(max_steps, int) and max_steps >= 1):
        raise DiffdynError(f"max_steps must be a whole number ≥ 1; got {max_steps!r}.")


def fixed_point(
    f: Callable,
    z0: Float[Array, " n"],
    x,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    max_steps: int = 256,
) -> Float[Array, " n"]:
    """Solve z* = f(z*, x) by fixed-point iteration (`optimistix.fixed_point`), gradients with
    respect to `x` and to the arrays of `f` by the implicit function theorem.

    `f` may be an `eqx.Module` (its parameters are differentiated like `x`). The iteration
    converges when f is a contraction in z; it stops with an error after `max_steps`.

    **Arguments:**

    - `f`: `f(z, x) -> z`.
    - `z0`: the initial guess `[n]`.
    - `x`: the input (any pytree).
    - `rtol`, `atol`: Optimistix's tolerances on successive iterates.
    - `max_steps`: iterations before giving up.

    **Returns:** the fixed point `[n]`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import fixed_point

    z = fixed_point(lambda z, a: jnp.cos(a * z), jnp.zeros(1), 1.0)  # 0.739…: z = cos z
    jax.grad(lambda a: fixed_point(lambda z, a: jnp.cos(a * z), jnp.zeros(1), a)[0])(1.0)
    ```
    """
    _check_tolerances(rtol, atol, max_steps)
    solution = optx.fixed_point(
        lambda z, args: args[0](z, args[1]),
        optx.FixedPointIteration(rtol=rtol, atol=atol),
        z0,
        args=(f, x),
        max_steps=max_steps,
        adjoint=optx.ImplicitAdjoint(),
    )
    return solution.value


def root_find(
    g: Callable,
    y0: Float[Array, " n"],
    x,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    max_steps: int = 64,
) -> Float[Array, " n"]:
    """Solve g(y*, x) = 0 by Newton's method (`optimistix.root_find`), gradients with respect
    to `x` and the arrays of `g` by the implicit function theorem (one Lineax solve with
    ∂g/∂y at y*).

    **Arguments:**

    - `g`: `g(y, x) -> residual` of `y`'s shape.
    - `y0`: the initial guess `[n]`.
    - `x`: the input (any pytree).
    - `rtol`, `atol`: Newton's tolerances.
    - `max_steps`: iterations before giving up.

    **Returns:** the root `[n]`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import root_find

    sqrt = lambda a: root_find(lambda y, a: y**2 - a, jnp.ones(1), a)[0]
    sqrt(2.0), jax.grad(sqrt)(2.0)  # 1.414…, 1/(2√2) = 0.354…
    ```
    """
    _check_tolerances(rtol, atol, max_steps)
    solution = optx.root_find(
        lambda y, args: args[0](y, args[1]),
        optx.Newton(rtol=rtol, atol=atol),
        y0,
        args=(g, x),
        max_steps=max_steps,
        adjoint=optx.ImplicitAdjoint(),
    )
    return solution.value


class DeepEquilibriumCell(eqx.Module):
    """A recurrent cell whose new state is an equilibrium (Bai, Kolter & Koltun 2019):

        h_t = z*,   z* = tanh(W z* + U x_t + V h_{t−1} + b),

    solved by fixed-point iteration, differentiated implicitly (`fixed_point`). tanh is
    1-Lipschitz, so the iteration contracts while ‖W‖₂ < 1; W starts at spectral norm
    `contraction`.

    **Arguments** (`__init__`):

    - `input_size`, `hidden_size`: sizes of x_t and h_t.
    - `contraction`: the initial spectral norm of W (< 1).
    - `key`: initialisation key.

    `cell(state [hidden], x [input]) -> state [hidden]`, one unbatched step.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.nn import DeepEquilibriumCell

    cell = DeepEquilibriumCell(3, 8, key=jax.random.key(0))
    h = cell(jnp.zeros(8), jnp.ones(3))
    ```
    """

    weight: Float[Array, "hidden hidden"]
    input_weight: Float[Array, "hidden input"]
    recurrent_weight: Float[Array, "hidden hidden"]
    bias: Float[Array, " hidden"]
    rtol: float = eqx.field(static=True)
    atol: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        contraction: float = 0.5,
        rtol: float = 1e-6,
        atol: float = 1e-6,
        max_steps: int = 256,
        key: PRNGKeyArray,
    ):
        if not 0 < contraction < 1:
            raise DiffdynError(f"contraction must be in (0, 1); got {contraction}.")
        k1, k2, k3 = jax.random.split(key, 3)
        w = jax.random.normal(k1, (hidden_size, hidden_size))
        self.weight = contraction * w / jnp.linalg.norm(w, ord=2)
        bound = 1.0 / jnp.sqrt(hidden_size)
        self.input_weight = jax.random.uniform(k2, (hidden_size, input_size), minval=-1) * bound
        self.recurrent_weight = (
            jax.random.uniform(k3, (hidden_size, hidden_size), minval=-1) * bound
        )
        self.bias = jnp.zeros(hidden_size)
        self.rtol, self.atol, self.max_steps = rtol, atol, max_steps

    def equation(self, z, drive):
        """f(z, drive) = tanh(W z + drive): the map whose fixed point is the new state."""
        return jnp.tanh(self.weight @ z + drive)

    def __call__(self, state: Float[Array, " hidden"], x: Float[Array, " input"]):
        drive = self.input_weight @ x + self.recurrent_weight @ state + self.bias
        return fixed_point(
            lambda z, args: args[0].equation(z, args[1]),
            state,
            (self, drive),
            rtol=self.rtol,
            atol=self.atol,
            max_steps=self.max_steps,
        )

    def initial_state(self) -> Float[Array, " hidden"]:
        return jnp.zeros(self.bias.shape[0])
