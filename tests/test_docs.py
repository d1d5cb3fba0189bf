"""The Python examples in the docs run as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# systems.md's examples simulate every kind of system (13 s): make test-slow.
DOCS = [pytest.param(ROOT / "docs" / "systems.md", marks=pytest.mark.slow), ROOT / "README.md"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_examples_run(path, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples may write files
    blocks = python_blocks(path)
    assert blocks, f"{path.name} has no python example"
    for block in blocks:
        exec(compile(block, str(path), "exec"), {"__name__": "__docs__"})
