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
from . import ngrc  # noqa: E402, F401, I001
from . import esn  # noqa: E402, F401, I001
from . import esn_ensemble  # noqa: E402, F401, I001
from . import rnn  # noqa: E402, F401, I001
from . import encoder_decoder  # noqa: E402, F401, I001
from . import tdnn  # noqa: E402, F401, I001
from . import attention_seq2seq  # noqa: E402, F401, I001
from . import transformer  # noqa: E402, F401, I001
from . import darnn  # noqa: E402, F401, I001
from . import dnc_forecaster  # noqa: E402, F401, I001
from . import mtnet  # noqa: E402, F401, I001
from . import neural_ode  # noqa: E402, F401, I001
from . import plastic_rnn  # noqa: E402, F401, I001
from . import switching  # noqa: E402, F401, I001
from . import act_rnn  # noqa: E402, F401, I001
