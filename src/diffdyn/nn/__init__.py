"""Differentiable building blocks, each on one unbatched example (batch with `jax.vmap`)."""

from .recurrent import (
    AbstractRecurrentCell as AbstractRecurrentCell,
    ElmanCell as ElmanCell,
    GRUCell as GRUCell,
    LSTMCell as LSTMCell,
    run_sequence as run_sequence,
)
from .ridge import ridge_regression as ridge_regression
