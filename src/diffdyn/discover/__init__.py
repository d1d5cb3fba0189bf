"""Equation discovery: sparse regression (STLSQ, with bagging) on a library of candidate terms,
with rates from smoothed finite differences or from the weak form, and on the network term of a
fitted hybrid model (`docs/discover.md`)."""

from .derivative import (
    central_differences as central_differences,
    savitzky_golay_derivative as savitzky_golay_derivative,
    weak_form as weak_form,
)
from .discover import (
    check_options as check_options,
    discover_file as discover_file,
    discover_series as discover_series,
    discover_terms as discover_terms,
    reproduce as reproduce,
)
from .library import Library as Library, library_size as library_size
from .plot import plot_discovery as plot_discovery
from .result import (
    Discovery as Discovery,
    DiscoveryReport as DiscoveryReport,
    Reproduction as Reproduction,
    TermDiscovery as TermDiscovery,
)
from .system import DiscoveredFlow as DiscoveredFlow, DiscoveredMap as DiscoveredMap
from .term import discover_network_term as discover_network_term
