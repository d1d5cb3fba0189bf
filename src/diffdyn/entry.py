"""The `diffdyn` console script's entry point: signal handlers first, then the CLI.

Importing the CLI imports JAX, which takes a second or more. An exception raised inside that
import (as Python's default SIGINT handler does) is turned by NumPy or jaxlib into an
`ImportError` traceback, or aborts the process. So until the CLI is imported, Ctrl-C or
SIGTERM leaves at once with the one-line answer and exit status 130 or 143: nothing has been
read or written yet. `diffdyn.cli.main` then installs the handlers that unwind the command.
"""

from __future__ import annotations

import os
import signal
import sys

# One BLAS thread per process, read when NumPy and SciPy load OpenBLAS (jaxlib's CPU linear
# algebra, the ridge readouts' QR and SVD, runs in SciPy's): parallelism comes from processes
# (`compare --workers`, each pinned to its own core) and XLA. OpenBLAS's threads spin while they
# wait, so two of them on one pinned core slowed an ESN fit from 2 s to 15-18 s beside another
# worker; one thread was also the faster alone (2.67 s against 2.84 s on 2 cores). The driver
# and its workers then split sums alike, so a closed-form model's row is the same bit for bit
# whichever process fits it (a thread count changes the last bits of the QR, and a chaotic
# forecast carries them). A value the user sets is kept.
BLAS_THREADS = "OPENBLAS_NUM_THREADS"


def _stopped_while_starting(signum, frame) -> None:
    terminated = signum == signal.SIGTERM
    what = "stopped by SIGTERM" if terminated else "interrupted"
    sys.stderr.write(f"error: {what} while diffdyn was starting; nothing was done.\n")
    sys.stderr.flush()
    os._exit(143 if terminated else 130)


def main() -> None:
    """Install the start-up signal handlers, import the CLI and run it (`diffdyn.cli.main`)."""
    signal.signal(signal.SIGTERM, _stopped_while_starting)
    # A background job starts with SIGINT ignored; `kill -INT` should stop it all the same.
    signal.signal(signal.SIGINT, _stopped_while_starting)
    os.environ.setdefault(BLAS_THREADS, "1")
    from .cli import main as cli_main

    cli_main()
