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
from .dnc import DNC as DNC
from .memn2n import MemN2N as MemN2N, position_encoding as position_encoding
from .memory import (
    DNCInterface as DNCInterface,
    DNCMemory as DNCMemory,
    DNCState as DNCState,
    allocation_weighting as allocation_weighting,
    content_weighting as content_weighting,
    dnc_initial_state as dnc_initial_state,
    dnc_interface_size as dnc_interface_size,
    dnc_step as dnc_step,
    oneplus as oneplus,
    parse_dnc_interface as parse_dnc_interface,
)
from .recurrent import (
    AbstractRecurrentCell as AbstractRecurrentCell,
    ElmanCell as ElmanCell,
    GRUCell as GRUCell,
    LSTMCell as LSTMCell,
    run_sequence as run_sequence,
)
from .ridge import ridge_regression as ridge_regression
