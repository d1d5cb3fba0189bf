"""Persistence: the forecast is the last observed value, held for the whole horizon."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from .base import AbstractForecaster


class Persistence(AbstractForecaster):
    """ŷ(t + k) = y(t) for every lead k: the baseline every model must beat."""

    name: ClassVar[str] = "persistence"
    fit_kind: ClassVar[str] = "none"
    dim: int

    def __init__(self, dim: int, exog_dim: int = 0, *, key=None):
        self.dim = dim

    def __call__(self, context, exog=None, *, horizon, key=None):
        return jnp.broadcast_to(context[-1], (horizon, context.shape[-1])), {}
