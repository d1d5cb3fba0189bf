"""Writing files safely: one atomic writer and one set of output-path checks for all of diffdyn.

Every file diffdyn writes (series, figures, later checkpoints and reports) goes through
`atomic_write`, so a reader never sees a half-written file and a failure leaves nothing behind;
`check_output_path` makes the checks *before* any expensive work, so bad input loses nothing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from .errors import DataError


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
