"""The persistent compilation cache (`diffdyn.compilation`)."""

import subprocess
import sys

from diffdyn.compilation import cache_folder, enable_compilation_cache

PROGRAM = """
import sys, jax, jax.numpy as jnp
from diffdyn.compilation import enable_compilation_cache
print(enable_compilation_cache())
print(float(jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.5)(jnp.arange(7.0)).sum()))
"""


def test_the_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFDYN_CACHE_DIR", str(tmp_path / "c"))
    assert cache_folder() == tmp_path / "c"
    for off in ("off", "OFF", "", "0", "none"):
        monkeypatch.setenv("DIFFDYN_CACHE_DIR", off)
        assert cache_folder() is None
        assert enable_compilation_cache() is None
    monkeypatch.delenv("DIFFDYN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "diffdyn" / "xla"


def test_a_folder_that_cannot_be_made_is_skipped(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert enable_compilation_cache(blocker / "xla") is None


def test_a_second_process_loads_what_the_first_compiled(tmp_path):
    folder = tmp_path / "xla"

    def run():
        env = {"DIFFDYN_CACHE_DIR": str(folder), "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True,
                              text=True, timeout=120, check=True)  # fmt: skip
        return done.stdout.split()

    first = run()
    assert first[0] == str(folder)
    entries = {p.name for p in folder.iterdir()}
    assert any("cache" in name for name in entries)  # the programs were written
    second = run()
    assert second == first  # the same result, from the stored programs
    assert {p.name for p in folder.iterdir()} == entries  # nothing compiled anew
