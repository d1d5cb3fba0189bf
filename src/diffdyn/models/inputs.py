"""How the neural forecasters read their inputs: checks, and the exogenous inputs of each step.

A forecaster stepping from time t to t + 1 knows the exogenous inputs at both ends of the step,
u_t and u_{t+1} (a forcing is known in advance). The recurrent models feed x_t = y_t ⊕ u_t ⊕
u_{t+1}; `step_exog` lays those pairs out for every step of context and horizon.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import DiffdynError


def check_inputs(
    context: Float[Array, "context dim"],
    exog: Float[Array, "context_plus_horizon m"] | None,
    horizon: int,
    *,
    dim: int,
    exog_dim: int,
) -> Float[Array, "context_plus_horizon m"]:
    """Check shapes at trace time; return the exogenous inputs (`[C + H, 0]` when unused).

    A model built with `exog_dim = 0` ignores `exog`; one built with `exog_dim = m > 0` needs
    `exog` of shape `[C + H, m]`.
    """
    if not isinstance(horizon, int) or horizon < 1:
        raise DiffdynError(f"horizon must be a positive whole number; got {horizon!r}.")
    if context.ndim != 2 or context.shape[1] != dim:
        raise DiffdynError(
            f"context must have shape [time, {dim}] (one unbatched example; batch with "
            f"jax.vmap); got {tuple(context.shape)}."
        )
    length = context.shape[0] + horizon
    if exog_dim == 0:
        return jnp.zeros((length, 0), context.dtype)
    if exog is None:
        raise DiffdynError(
            f"this model was built for {exog_dim} exogenous input(s): pass exog of shape "
            f"[context + horizon, {exog_dim}] = [{length}, {exog_dim}]."
        )
    if exog.shape != (length, exog_dim):
        raise DiffdynError(
            f"exog must have shape [context + horizon, {exog_dim}] = [{length}, {exog_dim}]; "
            f"got {tuple(exog.shape)}."
        )
    return exog


def step_exog(exog: Float[Array, "time m"]) -> Float[Array, "time-1 2*m"]:
    """Row t is u_t ⊕ u_{t+1}: the inputs known at both ends of the step from t to t + 1."""
    return jnp.concatenate([exog[:-1], exog[1:]], axis=1)
