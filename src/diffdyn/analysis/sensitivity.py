"""How far back a model looks: the sensitivity of its next prediction to each lag of its input.

S(k) = ‖∂ŷ_{t+1} / ∂y_{t−k}‖_F for k = 0 … C − 1 (C the context length; k = 0 is the newest
value), from the model's own gradients (`jax.jacrev`), averaged over many context windows.
This is the tutorial's Fig. 6 (Hernández & Amigó): the gradient a recurrent network passes to
old inputs vanishes with the lag (Bengio, Simard & Frasconi 1994), gated cells and attention
keep it longer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..errors import DiffdynError
from ..models.base import AbstractForecaster

MEMORY_FRACTION = 0.01  # "falls below 1 % of its peak"


@dataclasses.dataclass(frozen=True, eq=False)
class Sensitivity:
    """S(k) for k = 0 … C − 1, mean over `windows` context windows (and its spread).

    - `lags`: 0 … C − 1 (0: the newest value of the context).
    - `norms`: mean over windows of ‖∂ŷ_{t+1}/∂y_{t−k}‖_F (a d × d block per lag).
    - `spread`: standard deviation over windows.
    - `windows`: how many windows were averaged.
    """

    lags: np.ndarray
    norms: np.ndarray
    spread: np.ndarray
    windows: int

    @property
    def peak_lag(self) -> int:
        """The lag with the largest sensitivity."""
        return int(np.argmax(self.norms))

    @property
    def memory(self) -> int | None:
        """The lag from which on S stays below `MEMORY_FRACTION` of its peak: the smallest k
        such that S(j) < 1 % of max S for every j ≥ k; `None` when S at the oldest lag is
        still above it (the model looks at least as far back as its context)."""
        peak = float(np.max(self.norms))
        if not peak > 0:
            return 0
        above = np.nonzero(self.norms >= MEMORY_FRACTION * peak)[0]
        last = int(above.max())
        return None if last == len(self.norms) - 1 else last + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "lags": self.lags.tolist(),
            "norms": self.norms.tolist(),
            "spread": self.spread.tolist(),
            "windows": self.windows,
            "peak_lag": self.peak_lag,
            "memory": self.memory,
            "memory_fraction": MEMORY_FRACTION,
        }


@eqx.filter_jit
def _norms(model, contexts, exogs):
    def one(context, exog):
        jacobian = jax.jacrev(lambda c: model(c, exog, horizon=1)[0][0])(context)  # [d, C, d]
        return jnp.sqrt(jnp.sum(jacobian**2, axis=(0, 2)))[::-1]  # lag 0 = newest row

    return jax.vmap(one)(contexts, exogs)


def sensitivity_to_lag(
    model: AbstractForecaster,
    contexts: Float[Array, "windows context dim"],
    exogs: Float[Array, "windows context_plus_1 m"] | None = None,
) -> Sensitivity:
    """S(k) = ‖∂ŷ_{t+1}/∂y_{t−k}‖_F for k = 0 … C − 1, averaged over the context windows.

    **Arguments:**

    - `model`: any forecaster.
    - `contexts`: `[B, C, d]` windows, in the model's (standardised) units.
    - `exogs`: `[B, C + 1, m]` for a model with exogenous inputs, else `None`.

    **Returns:** a `Sensitivity`; a lag the model does not read gets exactly 0.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from diffdyn.analysis import sensitivity_to_lag
    from diffdyn.models import build_model

    model = build_model("tdnn", 2, key=jax.random.key(0), delays=3, width=8)
    result = sensitivity_to_lag(model, jnp.ones((4, 10, 2)))
    result.norms[3:]  # all 0: the model reads 3 lags
    ```
    """
    contexts = jnp.asarray(contexts)
    if contexts.ndim != 3 or contexts.shape[0] < 1 or contexts.shape[1] < 1:
        raise DiffdynError(
            f"contexts must be [windows, context, d] with at least one window; got "
            f"{tuple(contexts.shape)}."
        )
    norms = np.asarray(_norms(model, contexts, None if exogs is None else jnp.asarray(exogs)))
    if not np.all(np.isfinite(norms)):
        raise DiffdynError(
            "the model's gradient with respect to its context is not finite on some window; "
            "its sensitivity cannot be measured there."
        )
    return Sensitivity(
        lags=np.arange(contexts.shape[1]),
        norms=norms.mean(axis=0),
        spread=norms.std(axis=0),
        windows=int(contexts.shape[0]),
    )
