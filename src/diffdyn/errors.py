"""The exceptions diffdyn raises for problems a user can fix.

Every error that a user can cause with bad input is a `DiffdynError`, a subclass of
`ValueError`, whose message is one actionable sentence. The command-line interface prints that
sentence on stderr and exits with status 2; it never shows a traceback for them.
"""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (the CLI installs the handler), so that the same
    cleanup as for Ctrl-C runs: temporary files removed, checkpoints and stores left whole."""


_terminating = False
_interrupted = False


def interrupt(signum=None, frame=None):
    """The SIGINT handler: note the request, then raise `KeyboardInterrupt` (see `terminate`)."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt()


def stop_requested() -> str | None:
    """`"SIGTERM"` or `"SIGINT"` when such a signal arrived in this process, else `None`."""
    return "SIGTERM" if _terminating else "SIGINT" if _interrupted else None


def terminate(signum=None, frame=None):
    """The SIGTERM handler: note the request, then raise `Terminated`.

    Python drops an exception raised while a garbage-collection callback runs (JAX has one),
    so the request is also noted: long loops call `stop_if_terminated` between steps, which
    raises again if the first exception was lost.
    """
    global _terminating
    _terminating = True
    raise Terminated()


def stop_if_terminated() -> None:
    """Raise `Terminated` (or `KeyboardInterrupt`) if SIGTERM (SIGINT) arrived and its exception
    was lost (see `terminate`)."""
    if _terminating:
        raise Terminated()
    if _interrupted:
        raise KeyboardInterrupt()


class DiffdynError(ValueError):
    """Bad input, bad configuration or a failed computation the user can act on."""


class DataError(DiffdynError):
    """A file or array of time-series data that cannot be used as it is."""


class SimulationError(DiffdynError):
    """A simulation that failed, e.g. a trajectory that blew up."""


class UnknownNameError(DiffdynError, KeyError):
    """A name (system, model, parameter, variable) that does not exist."""

    def __str__(self) -> str:
        # KeyError would otherwise wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ' Did you mean X?' for the closest of `choices`, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name.lower(), [c.lower() for c in choices], n=3, cutoff=0.5)
    by_lower = {c.lower(): c for c in choices}
    close = [by_lower[c] for c in close]
    if not close:
        return ""
    if len(close) == 1:
        return f" Did you mean {close[0]!r}?"
    return " Did you mean " + ", ".join(repr(c) for c in close[:-1]) + f" or {close[-1]!r}?"
