"""Every notebook in notebooks/: its shape, its stored outputs, and a papermill run in fast mode.

nbval (configured in pyproject.toml) separately re-runs each notebook in its default mode and
compares the outputs of the cells not tagged ``nbval-ignore-output``.
"""

from __future__ import annotations

import re

import papermill as pm
import pytest

from notebook_tools import NOTEBOOK_DIR, NOTEBOOKS, compared_cells, parameters_cell, read

ids = [p.stem for p in NOTEBOOKS]


def test_the_suite_has_notebooks():
    assert (NOTEBOOK_DIR / "00_quickstart.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_is_light(path):
    assert path.stat().st_size < 1_000_000, f"{path.name} is {path.stat().st_size} bytes; keep it under 1 MB"
    assert "widgets" not in read(path).metadata, "saved widget state: clear it (scripts/execute_notebook.py does)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_opens_and_closes_like_a_lesson(path):
    nb = read(path)
    opening = nb.cells[0].source.lower()
    assert nb.cells[0].cell_type == "markdown"
    for words in ("you will be able to", "prerequisites", "time"):
        assert words in opening, f"{path.name}: the opening cell should say {words!r}"
    headings = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert any(re.search(r"^#+ .*summary", h, re.I | re.M) for h in headings), "no Summary section"
    assert any(re.search(r"^#+ .*exercise", h, re.I | re.M) for h in headings), "no Exercises section"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert re.search(r"\bcheck_\w+\(", code), f"{path.name}: no exercise checked by kdlab.exercises"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_has_parameters_for_ci(path):
    cell = parameters_cell(read(path))
    assert cell is not None, "tag one cell 'parameters' (papermill injects the CI values after it)"
    assert re.search(r"^SEED\s*=", cell.source, re.M) and re.search(r"^FAST\s*=\s*False", cell.source, re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_stored_outputs_are_clean_and_compared(path):
    nb = read(path)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells), "store the notebook executed, top to bottom"
    counts = [c.execution_count for c in code_cells]
    assert counts == sorted(counts), "cells were run out of order"
    for c in code_cells:
        for out in c.outputs:
            assert out.output_type != "error", f"stored error: {out.get('ename')}"
            text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            assert not re.search(r"/(tmp|root|home|work)/", text), f"a machine path in an output: {text[:120]}"
    # nbval compares these; a notebook where nothing is compared would test nothing
    assert len(compared_cells(nb)) >= 3, f"{path.name}: fewer than 3 cells with outputs that nbval compares"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_under_papermill_in_fast_mode(path, tmp_path):
    pm.execute_notebook(
        str(path),
        str(tmp_path / path.name),
        parameters={"SEED": 1, "FAST": True},
        cwd=str(NOTEBOOK_DIR),
        kernel_name="python3",
        progress_bar=False,
    )
