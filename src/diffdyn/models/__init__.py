"""Forecasting models: the contract, the registry and the model families."""

from .act_rnn import ACTForecaster as ACTForecaster
from .attention_seq2seq import AttentionEncoderDecoder as AttentionEncoderDecoder
from .base import AbstractForecaster as AbstractForecaster
from .darnn import DARNN as DARNN
from .dnc_forecaster import DNCForecaster as DNCForecaster
from .encoder_decoder import EncoderDecoder as EncoderDecoder
from .esn import ESN as ESN
from .esn_ensemble import ESNEnsemble as ESNEnsemble
from .mtnet import MTNet as MTNet
from .neural_ode import NeuralODE as NeuralODE
from .ngrc import NGRC as NGRC
from .persistence import Persistence as Persistence
from .registry import (
    MODELS as MODELS,
    ModelSpec as ModelSpec,
    build_model as build_model,
    model_spec as model_spec,
    register_model as register_model,
    resolve_hyperparameters as resolve_hyperparameters,
)
from .rnn import RecurrentForecaster as RecurrentForecaster
from .switching import SwitchingForecaster as SwitchingForecaster
from .tdnn import TimeDelayNetwork as TimeDelayNetwork
from .transformer import SelfAttentionForecaster as SelfAttentionForecaster
