"""Shared helpers for the notebook generator scripts (make_notebooks_*.py).

Cells get stable ids (notebook number + position), so regenerating a notebook changes only
what was edited and `git diff` stays readable.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
sys.path.insert(0, str(ROOT))
from deadlift_utils.io_utils import atomic_write_text  # noqa: E402


def md(text: str):
    return new_markdown_cell(text.strip())


def code(text: str, tags: list[str] | None = None):
    cell = new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def params(text: str):
    """The papermill `parameters` cell."""
    return code(text, tags=["parameters"])


def write_notebook(cells: list, name: str) -> Path:
    """Validate and write notebooks/<name> atomically, without outputs, with stable cell ids."""
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    prefix = name.split("_", 1)[0]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"nb{prefix}-{i:02d}"
    nbformat.validate(nb)
    path = NB_DIR / name
    atomic_write_text(path, nbformat.writes(nb))
    print("wrote", path)
    return path
