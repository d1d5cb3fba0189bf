"""Analysis of dynamics: Lyapunov spectra (more in later issues)."""

from .lyapunov import LyapunovSpectrum as LyapunovSpectrum, lyapunov_spectrum as lyapunov_spectrum
