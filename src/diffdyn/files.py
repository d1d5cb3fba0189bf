"""Writing files safely: one atomic writer and one set of output-path checks for all of diffdyn.

Every file diffdyn writes (series, figures, later checkpoints and reports) goes through
`atomic_write`, so a reader never sees a half-written file and a failure leaves nothing behind;
`check_output_path` makes the checks *before* any expensive work, so bad input loses nothing;
`folder_lock` keeps a second writer out of a folder another process is writing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import DataError, DiffdynError


def check_output_path(
    path: str | os.PathLike, *, force: bool = False, suffixes: Iterable[str] | None = None
) -> Path:
    """Check that a file can be written at `path`; return it as a `Path`.

    **Arguments:**

    - `path`: the file to write.
    - `force`: whether an existing file may be replaced (`--force` on the command line).
    - `suffixes`: the allowed suffixes (lower case, with the dot), or `None` for any.

    **Raises** `DataError` when the suffix is not allowed, the folder does not exist, `path` is
    a folder, or the file exists and `force` is false.

    **Example:**

    ```python
    from diffdyn.files import check_output_path

    check_output_path("out.csv", suffixes=(".csv", ".npz"))
    ```
    """
    path = Path(path)
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if path.suffix.lower() not in suffixes:
            raise DataError(
                f"cannot write {path}: unknown file type {path.suffix or '(no suffix)'!r}; "
                f"give a file name ending in {', '.join(suffixes)}."
            )
    if not path.parent.is_dir():
        if path.parent.exists():
            raise DataError(f"{path.parent} is a file, not a folder; give a path in a folder.")
        raise DataError(f"folder {path.parent} does not exist; create it first.")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a file name.")
    if path.exists() and not force:
        raise DataError(
            f"{path} already exists; pass force=True (--force on the command line) to replace it."
        )
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Write through `write(file)` to a temporary file beside `path`, then move it onto `path`.

    On any failure the temporary file is removed and an existing `path` is left untouched.

    **Example:**

    ```python
    from diffdyn.files import atomic_write

    atomic_write("hello.txt", lambda f: f.write(b"hello"))
    ```
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise DataError(f"cannot write in {path.parent}: {error.strerror}.") from error
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise DataError(f"could not write {path}: {error.strerror or error}.") from error
        raise
    return path


LOCK_FILE = ".lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold `folder/.lock` while the `with` block runs, so that one process at a time writes
    `folder`; `what` names the work in messages and in the lock (`"compare run"`, `"training"`).

    The lock file is created with `O_EXCL` and holds one line of JSON: the pid, the host name,
    `what` and the time it was taken. It is removed when the block ends — normally, by an
    exception or by `KeyboardInterrupt` (Ctrl-C, or SIGTERM in the CLI). A lock left by a
    process that was killed (its pid is not running on this host, or is a zombie) is stale and
    is taken over; a lock from another host is never taken over. `folder` must exist. Not
    re-entrant: a process that holds the lock and asks again is refused like any other.

    **Raises** `DiffdynError` naming the pid (and host) holding the lock, with what to do, and
    `DataError` when the lock cannot be written.

    **Example:**

    ```python
    import tempfile
    from diffdyn.files import folder_lock

    with folder_lock(tempfile.mkdtemp(), "compare run") as lock:
        ...  # write the folder; lock is its .lock file
    ```
    """
    folder = Path(folder)
    path = folder / LOCK_FILE
    mine = (
        json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "what": what, "since": time.time()}
        ).encode()
        + b"\n"
    )
    for _ in range(50):  # a lock another process is just writing, or just taking over
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raw = _read_lock(path)
            if raw is None:  # released meanwhile
                continue
            holder = _parse_lock(raw)
            if holder is None:  # unreadable: being written now, or left by a kill doing so
                if time.time() - _mtime(path) < 5:
                    time.sleep(0.1)
                    continue
            elif not _is_stale(holder):
                raise DiffdynError(_held_message(folder, path, holder)) from None
            _take_over(path, raw)
            continue
        except OSError as error:
            raise DataError(f"cannot lock {folder}: {error.strerror or error}.") from None
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(mine)
                file.flush()
                os.fsync(file.fileno())
        except BaseException as error:
            path.unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise DataError(f"cannot lock {folder}: {error.strerror or error}.") from None
            raise
        break
    else:
        raise DiffdynError(
            f"could not lock {folder}: its lock file {path} keeps changing; make sure no other "
            "diffdyn process is writing there and try again."
        )
    try:
        yield path
    finally:
        if _read_lock(path) == mine:  # still ours (not removed by hand meanwhile)
            path.unlink(missing_ok=True)


def _read_lock(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise DataError(f"cannot read the lock {path}: {error.strerror or error}.") from None


def _parse_lock(raw: bytes) -> dict[str, Any] | None:
    try:
        holder = json.loads(raw)
        int(holder["pid"])
        return holder if isinstance(holder, dict) else None
    except (ValueError, TypeError, KeyError):
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _is_stale(holder: dict[str, Any]) -> bool:
    """Whether the process that took a lock is gone (decidable only on this host)."""
    if holder.get("host") != socket.gethostname() or os.name != "posix":
        return False
    pid = int(holder["pid"])
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. another user's process: alive
        return False
    try:  # a zombie (killed, not yet reaped by its parent) is gone too
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].startswith("Z")
    except (OSError, ValueError):
        return False


def _held_message(folder: Path, path: Path, holder: dict[str, Any]) -> str:
    since = holder.get("since")
    when = (
        f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
        if isinstance(since, int | float)
        else ""
    )
    return (
        f"{folder} is in use by another {holder.get('what') or 'diffdyn process'} (pid "
        f"{holder['pid']} on {holder.get('host', 'an unknown host')}{when}); wait for it to "
        f"finish, or, if that process is gone, delete {path}."
    )


def _take_over(path: Path, stale: bytes) -> None:
    """Remove the stale lock `path` whose content is `stale`, unless another process has
    replaced it meanwhile (then that one is put back)."""
    aside = path.with_name(f"{path.name}.{secrets.token_hex(6)}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:  # another process took it over first
        return
    except OSError as error:
        raise DataError(f"cannot remove the stale lock {path}: {error.strerror}.") from None
    try:
        if aside.read_bytes() != stale:  # a live lock taken in between: give it back
            with contextlib.suppress(OSError):  # FileExistsError: a third one holds it
                os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)
