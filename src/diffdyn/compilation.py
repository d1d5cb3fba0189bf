"""The persistent compilation cache: XLA programs compiled once are kept on disk and reused.

On CPU, compiling is often the largest part of a short run: XLA compiles every new shape of
every operation, model initialisation included (each `jax.random.uniform` of a new shape is a
program of its own: about 0.4 s on a 2-core machine, ten of them for a small Transformer), and
the `compare` grid's worker processes compile the same programs again and again. JAX can keep
compiled programs in a folder, keyed on the program, the compile options, the backend and the
JAX version, so a later process with the same program loads it instead (JAX's persistent
compilation cache, `jax_compilation_cache_dir`). Measured on a 2-core machine at load 6:
building the Transformer forecaster took 10.5-14.8 s without it and 2.1-2.6 s with it.

The `diffdyn` command turns it on (`cli.main`, and every `compare` worker); in Python, call
`enable_compilation_cache()` before the first computation. The folder is `DIFFDYN_CACHE_DIR`
when set (`off` turns the cache off), else `$XDG_CACHE_HOME/diffdyn/xla` or
`~/.cache/diffdyn/xla`; it is kept under `MAX_BYTES` by evicting the least recently used
programs. A cache that cannot be written is skipped: it only saves time.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

ENV = "DIFFDYN_CACHE_DIR"
MAX_BYTES = 2 * 2**30
_OFF = ("", "off", "none", "0", "false", "no")


def cache_folder() -> Path | None:
    """The folder of the compilation cache, or `None` when `DIFFDYN_CACHE_DIR` turns it off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "diffdyn" / "xla"


def enable_compilation_cache(folder: str | Path | None = None) -> Path | None:
    """Keep compiled XLA programs in `folder` (default: `cache_folder()`) and reuse them.

    Call it before the process compiles anything: JAX sets its cache up at the first
    compilation. Returns the folder in use, or `None` when the cache is off or its folder
    cannot be created or written.

    **Example:**

    ```python
    from diffdyn.compilation import enable_compilation_cache

    enable_compilation_cache()  # ~/.cache/diffdyn/xla, or $DIFFDYN_CACHE_DIR
    ```
    """
    where = cache_folder() if folder is None else Path(folder)
    if where is None:
        return None
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(where, os.W_OK | os.X_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", str(where))
    # Every program: most of a short run's compiling is many small ones.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    try:  # JAX caps the size only with `filelock` (a dependency of diffdyn)
        import filelock  # noqa: F401
    except ImportError:
        pass
    else:
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return where


def active_cache_folder() -> str | None:
    """The folder this process's compilation cache uses, or `None` (handed to `compare`'s
    worker processes, which then share it)."""
    # JAX sets its flags on `jax.config` at run time; its stubs do not declare them.
    return jax.config.jax_compilation_cache_dir or None  # pyright: ignore[reportAttributeAccessIssue]
