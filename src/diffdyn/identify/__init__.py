"""Identification through simulators: fit a system's parameters, network terms and initial
states to an observed series (single and multiple shooting, Adam through the training core,
Levenberg–Marquardt, standard errors from the Gauss–Newton Hessian)."""

from .checks import check_fit as check_fit, match_observed as match_observed
from .fit import identify as identify
from .folder import identify_to_folder as identify_to_folder, load_identified as load_identified
from .plot import plot_identification as plot_identification
from .result import Identification as Identification
from .setup import Setup as Setup, prepare as prepare
from .shooting import Objective as Objective, Problem as Problem, Unknowns as Unknowns
from .transforms import Transform as Transform, choose_transform as choose_transform
from .uncertainty import (
    Uncertainty as Uncertainty,
    gauss_newton_uncertainty as gauss_newton_uncertainty,
)
