"""Helpers for the notebook tests: find the notebooks and read their cells."""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb"))
IGNORE_TAGS = {"nbval-ignore-output", "nbval-skip"}


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def parameters_cell(nb):
    return next((c for c in nb.cells if c.cell_type == "code" and "parameters" in tags(c)), None)


def compared_cells(nb) -> list:
    """Code cells whose stored outputs nbval compares (not tagged ignore/skip) and that have outputs."""
    return [c for c in nb.cells if c.cell_type == "code" and not (tags(c) & IGNORE_TAGS) and c.outputs]
