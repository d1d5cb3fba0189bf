"""Differentiable building blocks, each on one unbatched example (batch with `jax.vmap`)."""

from .attention import (
    SCORES as SCORES,
    AbstractScore as AbstractScore,
    AdditiveScore as AdditiveScore,
    CosineScore as CosineScore,
    DotScore as DotScore,
    GeneralScore as GeneralScore,
    LearnedPositionalEncoding as LearnedPositionalEncoding,
    MultiHeadSelfAttention as MultiHeadSelfAttention,
    ScaledDotScore as ScaledDotScore,
    attend as attend,
    make_score as make_score,
    masked_softmax as masked_softmax,
    sinusoidal_encoding as sinusoidal_encoding,
)
from .recurrent import (
    AbstractRecurrentCell as AbstractRecurrentCell,
    ElmanCell as ElmanCell,
    GRUCell as GRUCell,
    LSTMCell as LSTMCell,
    run_sequence as run_sequence,
)
from .ridge import ridge_regression as ridge_regression
