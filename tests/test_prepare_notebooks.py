"""scripts/prepare_notebooks.py (the Colab cell, the Colab badge and glossary link, the closing line, the
run time in the opening) and every notebook against it.

The last test is an expected failure until the script has been run on the notebooks (issue 13:
it runs once they are final); from the first notebook that carries the Colab cell on, it is
enforced for all of them.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

from notebook_tools import NOTEBOOKS, read, tags

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("prepare_notebooks", ROOT / "scripts/prepare_notebooks.py")
prep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prep)


def lesson(path: Path, title: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}: a subtitle\n\n**You will be able to** ...\n\n**Time**: 5 min."),
        nbformat.v4.new_code_cell("SEED = 0\nFAST = False", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(SEED)"),
    ]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setattr(prep, "NOTEBOOK_DIR", tmp_path / "notebooks")
    lesson(tmp_path / "notebooks/00_first.ipynb", "00 · First")
    lesson(tmp_path / "notebooks/01_second.ipynb", "01 · Second")
    return tmp_path / "notebooks"


def test_the_time_line_comes_from_the_benchmark(folder, tmp_path, monkeypatch):
    first, second = prep.notebooks()
    nb = nbformat.read(first, as_version=4)
    nb.cells[0].source = ("# 00 · First: a subtitle\n\n**Time**: about 20 minutes to read. It took\nabout 9 s once.\n\n"
                          "**Prerequisites**: none.")
    nbformat.write(nb, first)
    machine = {"cpu_count": 2, "date": "2026-12-01 22:41 UTC"}
    run = {"seconds": 31.4, "peak_mb": 530.8, "mode": "default", "ok": True}
    results = {"machine": machine, "notebooks": {"00_first": run, "01_second": {**run, "mode": "fast"}},
               "notebooks_one_core": {"00_first": {**run, "seconds": 40.2, "peak_mb": 600.0, "cores": 1},
                                      "01_second": {**run, "cores": 1}}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    monkeypatch.setattr(prep, "RESULTS", tmp_path / "results.json")
    assert set(prep.timings()) == {"00_first"}, "a FAST-mode run is no run time for an opening"
    prep.prepare_files([first, second])
    opening = nbformat.read(first, as_version=4).cells[0].source
    assert ("**Time**: about 20 minutes to read. It runs top to bottom in 31 s from a fresh kernel on the project's "
            "2-core machine, 40 s on one core (as on Binder), with at most 600 MB of kernel memory") in opening
    assert "about 9 s once" not in opening and opening.endswith("\n\n**Prerequisites**: none.")
    assert "**Time**: 5 min." in nbformat.read(second, as_version=4).cells[0].source  # not measured: kept
    assert prep.prepare_files([first, second]) == [], "a second run must change nothing"


def test_prepare_adds_the_cells_once(folder):
    paths = prep.notebooks()
    assert prep.prepare_files(paths) == paths
    assert prep.prepare_files(paths) == [], "a second run must change nothing"
    first, second = (nbformat.read(p, as_version=4) for p in paths)
    opening = first.cells[0].source
    assert opening.startswith("# 00 · First: a subtitle\n\n[![Open in Colab]")
    assert opening.count("colab-badge.svg") == 1 and "(../docs/glossary.md)" in opening
    assert f"blob/main/notebooks/{paths[0].name})" in opening
    assert prep.COLAB_TAG in tags(first.cells[1]) and first.cells[1].cell_type == "code"
    assert "parameters" in tags(first.cells[2]), "the parameters cell keeps its place after the Colab cell"
    assert prep.NEXT_TAG in tags(first.cells[-1]) and "Next: [01 · Second](01_second.ipynb)" in first.cells[-1].source
    assert "last notebook" in second.cells[-1].source
    assert len(first.cells) == 5 and len(second.cells) == 5
    nbformat.validate(first)


def test_prepare_brings_stale_cells_up_to_date(folder):
    path = prep.notebooks()[0]
    prep.prepare_files([path])
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("blob/main", "blob/old-branch")
    colab = nb.cells.pop(1)
    colab.source = colab.source.replace("plotly==", "plotly==0.")
    nb.cells.insert(3, colab)  # moved, and stale
    nb.cells.append(nbformat.v4.new_markdown_cell("old closing line", metadata={"tags": [prep.NEXT_TAG]}))
    nbformat.write(nb, path)
    assert prep.prepare_files([path], check=True) == [path]
    prep.prepare_files([path])
    nb = nbformat.read(path, as_version=4)
    assert "old-branch" not in nb.cells[0].source and nb.cells[0].source.count("colab-badge.svg") == 1
    assert [i for i, c in enumerate(nb.cells) if prep.COLAB_TAG in tags(c)] == [1]
    assert nb.cells[1].source == prep.colab_cell_source(prep.colab_installs())
    assert [c.source for c in nb.cells if prep.NEXT_TAG in tags(c)] == [nb.cells[-1].source]
    assert "old closing line" not in nb.cells[-1].source


def test_prepare_refuses_a_notebook_without_its_opening(folder):
    path = folder / "02_bad.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="02_bad.ipynb: the first cell must be the markdown opening"):
        prep.prepare_files([path])


# ---------------------------------------------------------------- the Colab cell


def test_colab_cell_installs_kdlab_pins_but_never_torch():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    project = {Requirement(d).name: str(Requirement(d).specifier) for d in deps}
    installs = {Requirement(d).name: str(Requirement(d).specifier) for d in prep.colab_installs()}
    assert "torch" not in installs and not set(installs) & set(prep.COLAB_KEEPS)
    assert installs and all(project[name] == spec for name, spec in installs.items()), "pins as in pyproject.toml"
    assert set(project) == set(installs) | (set(project) & {*prep.COLAB_KEEPS, *prep.NOT_ON_COLAB})


def run_cell(monkeypatch, on_colab: bool) -> tuple[list[list[str]], list[str]]:
    """Execute the Colab cell with pip stubbed out; return pip's calls and the widget-manager calls."""
    calls, enabled = [], []
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append(list(args)))
    if on_colab:
        colab = types.ModuleType("google.colab")
        colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: enabled.append(True))
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
        monkeypatch.setitem(sys.modules, "google.colab", colab)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(prep.colab_cell_source(prep.colab_installs()), {})
    return calls, enabled


def test_colab_cell_does_nothing_elsewhere(monkeypatch):
    assert run_cell(monkeypatch, on_colab=False) == ([], [])


def test_colab_cell_on_colab_keeps_colab_torch(monkeypatch):
    calls, enabled = run_cell(monkeypatch, on_colab=True)
    assert enabled == [True], "the custom widget manager must be turned on"
    assert len(calls) == 2
    assert "--no-deps" in calls[0] and "kdlab @ git+https://github.com/kdlab/kdlab@main" in calls[0]
    constraints = Path(calls[1][calls[1].index("--constraint") + 1])
    held = constraints.read_text().split()
    constraints.unlink()
    assert f"torch=={md.version('torch')}" in held and f"numpy=={md.version('numpy')}" in held
    assert not [a for a in calls[1] if a.startswith(("torch", "numpy"))], "Colab's torch and numpy stay"
    assert set(prep.colab_installs()) <= set(calls[1])


# ---------------------------------------------------------------- every notebook

PREPARED = any(prep.COLAB_TAG in tags(c) for p in NOTEBOOKS for c in read(p).cells)


@pytest.mark.xfail(not PREPARED, strict=True,
                   reason="not yet run on the notebooks: `python scripts/prepare_notebooks.py` (issue 13)")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_the_colab_cell_badge_glossary_and_closing_line(path):
    assert prep.prepare_files([path], check=True) == [], (
        f"{path.name} is not up to date: run python scripts/prepare_notebooks.py, then store it executed")
