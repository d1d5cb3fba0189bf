"""Analysis of dynamics: Lyapunov spectra of systems and of trained models, long-run
statistics of closed-loop runs, and the sensitivity of a model to each lag of its input."""

from .analyze import (
    Analysis as Analysis,
    analysis_samples as analysis_samples,
    analyze_model as analyze_model,
    analyze_trained as analyze_trained,
    check_analyze_request as check_analyze_request,
)
from .closed_loop import (
    AbstractClosedLoop as AbstractClosedLoop,
    NotAMapError as NotAMapError,
    closed_loop as closed_loop,
    memory_length as memory_length,
)
from .long_run import (
    Behaviour as Behaviour,
    LongRun as LongRun,
    correlation_dimension as correlation_dimension,
    hellinger as hellinger,
    long_run_behaviour as long_run_behaviour,
    long_run_statistics as long_run_statistics,
    power_spectrum as power_spectrum,
    sliced_wasserstein as sliced_wasserstein,
)
from .lyapunov import LyapunovSpectrum as LyapunovSpectrum, lyapunov_spectrum as lyapunov_spectrum
from .model_lyapunov import model_lyapunov_spectrum as model_lyapunov_spectrum
from .sensitivity import Sensitivity as Sensitivity, sensitivity_to_lag as sensitivity_to_lag
