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
from .control import (
    Halting as Halting,
    SoftIf as SoftIf,
    SoftSwitch as SoftSwitch,
    halting_loop as halting_loop,
    soft_if as soft_if,
    soft_switch as soft_switch,
)
from .dnc import DNC as DNC
from .implicit import (
    DeepEquilibriumCell as DeepEquilibriumCell,
    fixed_point as fixed_point,
    root_find as root_find,
)
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
from .perturbed import (
    fenchel_young_loss as fenchel_young_loss,
    perturbed_argmax as perturbed_argmax,
    perturbed_ranks as perturbed_ranks,
)
from .plasticity import (
    PlasticCell as PlasticCell,
    PlasticLinear as PlasticLinear,
    PlasticNetwork as PlasticNetwork,
    hebbian_update as hebbian_update,
    neuromodulated_update as neuromodulated_update,
    oja_update as oja_update,
    plastic_episode as plastic_episode,
    run_plastic_sequence as run_plastic_sequence,
)
from .recurrent import (
    AbstractRecurrentCell as AbstractRecurrentCell,
    ElmanCell as ElmanCell,
    GRUCell as GRUCell,
    LSTMCell as LSTMCell,
    run_sequence as run_sequence,
)
from .ridge import ridge_regression as ridge_regression
from .soft import (
    isotonic_decreasing as isotonic_decreasing,
    permutahedron_projection as permutahedron_projection,
    soft_quantile as soft_quantile,
    soft_rank as soft_rank,
    soft_sort as soft_sort,
    soft_top_k as soft_top_k,
)
