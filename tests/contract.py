"""Shared checks of the CLI contract: bad input gets one line on stderr, exit status 2, no
traceback, and leaves every file it was given (and every folder around it) as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

from typer.testing import CliRunner

from diffdyn.cli import app

runner = CliRunner()


def run(*args):
    """Invoke `diffdyn ARGS` in this process."""
    return runner.invoke(app, [str(a) for a in args])


def snapshot(*roots: Path) -> dict[str, str]:
    """Every path under `roots` with a hash of its bytes (folders map to "dir")."""
    out = {}
    for root in roots:
        root = Path(root)
        paths = [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]
        for path in paths:
            if path.is_dir():
                out[str(path)] = "dir"
            elif path.exists():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_refused(result, *fragments: str) -> str:
    """Exit status 2, exactly one `error: ...` line on stderr naming `fragments`, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
