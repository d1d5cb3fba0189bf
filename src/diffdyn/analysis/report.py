"""What `diffdyn analyze` writes: a folder with `analysis.json` (every number) and the figures.

The folder is checked before any work (`check_analysis_folder`) and written only when the
analysis is done (`write_analysis`), each file atomically: bad input or a failed analysis
leaves nothing behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from ..train.checkpoint import SIDECAR, write_json
from .analyze import Analysis
from .figures import FIGURES, write_figures

RESULT_FILE = "analysis.json"


def check_analysis_folder(folder: str | os.PathLike, *, force: bool = False) -> Path:
    """Check that the analysis can be written into `folder` (created if missing; its parent
    must exist); an earlier analysis there is replaced only with `force`. A model folder is
    refused: its files are the model."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} is a file; give a folder for the analysis.")
    if not folder.parent.is_dir():
        raise DataError(f"folder {folder.parent} does not exist; create it first.")
    if (folder / SIDECAR).exists():
        raise DataError(
            f"{folder} is a model folder, whose files are the model; write the analysis "
            "into another folder."
        )
    ours = [RESULT_FILE, *FIGURES.values()]
    present = [name for name in ours if (folder / name).exists()]
    if present and not force:
        raise DataError(
            f"{folder} already holds an analysis ({', '.join(present)}); pass --force to "
            "replace it, or give another folder."
        )
    blocked = [name for name in ours if (folder / name).is_dir()]
    if blocked:
        raise DataError(f"{folder / blocked[0]} is a folder; remove it or give another folder.")
    return folder


def write_analysis(result: Analysis, folder: str | os.PathLike, *, force: bool = False):
    """Write `analysis.json` and the figures into `folder` (checked again, then created);
    return the paths written, the JSON first."""
    folder = check_analysis_folder(folder, force=force)
    folder.mkdir(exist_ok=True)
    write_json(folder / RESULT_FILE, result.to_json())
    return [folder / RESULT_FILE, *write_figures(result, folder, force=True)]
