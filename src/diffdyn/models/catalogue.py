"""Registers the built-in models (one import per model family)."""

from .persistence import Persistence
from .registry import ModelSpec, register_model

register_model(
    ModelSpec(
        "persistence",
        Persistence,
        {},
        "last observed value held constant: the baseline every model must beat",
    )
)
