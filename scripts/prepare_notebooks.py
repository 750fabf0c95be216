"""Give every notebook the cells and lines that are the same in all of them; safe to run again.

    python scripts/prepare_notebooks.py                    # every notebooks/NN_*.ipynb
    python scripts/prepare_notebooks.py notebooks/02_temperature_and_alpha.ipynb
    python scripts/prepare_notebooks.py --check            # exit 1 if a notebook would change

Each notebook gets, or has brought up to date:

1. in its opening cell, under the title, one line: an "Open in Colab" badge and a link to the
   bilingual glossary (docs/glossary.md);
2. as its first code cell (right after the opening), the Colab setup cell (tag ``kdlab-colab``):
   on Colab only, it installs kdlab from GitHub with ``--no-deps`` and the dependencies Colab
   lacks at kdlab's pins, while a constraints file holds Colab's own torch, numpy, pandas,
   scikit-learn, matplotlib and Jupyter packages at the versions Colab has; it then turns on
   Colab's custom widget manager (plotly's FigureWidget and anywidget need it). Elsewhere it does
   nothing;
3. as its last cell (tag ``kdlab-next``), a markdown cell: shut this kernel down before the next
   notebook (a Binder session has 2 GB for all its kernels), and a link to the next notebook;
4. in its opening, the run time of its "**Time**:" line, from benchmarks/results.json (``python -m
   kdlab.bench``): wall time from a fresh kernel on all cores and on one core, and the kernel's peak
   memory, so that no run time in an opening is typed by hand. The reading time ("about N minutes to
   read") is the author's and stays; a notebook the benchmark has not measured keeps its line.

Notebooks are written only when they change. The inserted code cell has no output; store the
notebook executed afterwards (scripts/execute_notebook.py does both). tests/test_prepare_notebooks.py
checks every notebook against this script.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

import nbformat
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
REPOSITORY = "kdlab/kdlab"
BRANCH = "main"
COLAB_TAG, NEXT_TAG = "kdlab-colab", "kdlab-next"
# Colab's own packages that kdlab uses as they are (replacing them there would break Colab's
# other packages or need a runtime restart); JupyterLab is not needed (Colab has its own front end).
COLAB_KEEPS = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "matplotlib", "ipywidgets", "ipykernel", "tqdm")
NOT_ON_COLAB = ("jupyterlab",)
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LAUNCH_LINE = re.compile(r"^\[!\[Open in Colab\]\(.*$", re.M)
TIME_LINE = re.compile(r"^\*\*Time\*\*:.*(?:\n.+)*", re.M)  # the paragraph
READING = re.compile(r"about (\d+) minutes to read")
RESULTS = ROOT / "benchmarks" / "results.json"


def notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def colab_url(path: Path) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{path.name}"


def colab_installs(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """kdlab's pinned dependencies that the Colab cell installs (those Colab does not keep)."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    keep = {*COLAB_KEEPS, *NOT_ON_COLAB}
    return [d for d in deps if Requirement(d).name.lower() not in keep]


def colab_cell_source(installs: list[str]) -> str:
    keeps = ", ".join(f'"{name}"' for name in COLAB_KEEPS)
    return f'''# Colab only: install kdlab and what Colab lacks, keeping Colab's own PyTorch, numpy, pandas,
# scikit-learn, matplotlib and Jupyter packages as they are. Elsewhere this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import importlib.metadata
    import subprocess
    import tempfile

    held = []  # pip may add packages but must not change these
    for name in [{keeps}]:
        try:
            held.append(f"{{name}}=={{importlib.metadata.version(name)}}")
        except importlib.metadata.PackageNotFoundError:
            pass
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\\n".join(held) + "\\n")
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + ["--no-deps", "kdlab @ git+https://github.com/{REPOSITORY}@{BRANCH}"], check=True)
    subprocess.run(pip + ["--constraint", constraints.name, {", ".join(f'"{d}"' for d in installs)}], check=True)
    from google.colab import output

    output.enable_custom_widget_manager()  # plotly's FigureWidget and anywidget need it
'''


def title(nb: nbformat.NotebookNode, path: Path) -> str:
    """The notebook's title without its subtitle: "01 · Soft targets" from "# 01 · Soft targets: what ..."."""
    match = re.search(r"^#\s+(.+)$", nb.cells[0].source, re.M) if nb.cells else None
    return match.group(1).split(":")[0].strip() if match else path.stem


def launch_line(path: Path) -> str:
    return f"[![Open in Colab]({BADGE})]({colab_url(path)}) · [Glossary · 术语表](../docs/glossary.md)"


def next_source(path: Path, following: tuple[Path, str] | None) -> str:
    text = ("**Before you open another notebook**, shut this one's kernel down: *Kernel → Shut Down "
            "Kernel* (on Binder, closing the tab does it too). A kernel keeps its memory until it is shut "
            "down, and a Binder session has 2 GB for all of its kernels.\n\n")
    if following:
        next_path, next_title = following
        return text + f"Next: [{next_title}]({next_path.name})."
    return text + "This is the last notebook. The [claims list](../docs/claims.md) says where each popular claim is tested."


def with_launch_line(source: str, line: str) -> str:
    if LAUNCH_LINE.search(source):
        return LAUNCH_LINE.sub(lambda _: line, source, count=1)
    lines = source.split("\n")
    at = next((i for i, text in enumerate(lines) if text.startswith("# ")), -1) + 1  # under the title
    after = lines[at:]
    return "\n".join(lines[:at] + ([""] if at else []) + [line] + ([""] if after and after[0] else []) + after)


def timings(results: Path | None = None) -> dict[str, dict]:
    """Per notebook stem: the benchmark's default-mode run on all cores and on one core, and the machine."""
    results = results or RESULTS
    if not results.exists():
        return {}
    data = json.loads(results.read_text())
    one_core = data.get("notebooks_one_core") or {}
    out = {}
    for name, run in (data.get("notebooks") or {}).items():
        alone = one_core.get(name) or {}
        if run.get("mode") == "default" and run.get("ok") and alone.get("ok"):
            out[name] = {"seconds": run["seconds"], "one_core": alone["seconds"],
                         "peak_mb": max(run["peak_mb"], alone["peak_mb"]),
                         "cores": data["machine"]["cpu_count"], "date": data["machine"]["date"][:10]}
    return out


def time_line(line: str, timing: dict | None) -> str:
    """The opening's "**Time**:" line with the benchmark's run time (unchanged without a timing)."""
    reading = READING.search(line)
    if timing is None or reading is None:
        return line
    return (f"**Time**: about {reading.group(1)} minutes to read. It runs top to bottom in {timing['seconds']:.0f} s "
            f"from a fresh kernel on the project's {timing['cores']}-core machine, {timing['one_core']:.0f} s on one "
            f"core (as on Binder), with at most {timing['peak_mb']:.0f} MB of kernel memory (`python -m kdlab.bench`, "
            f"{timing['date']}, [benchmarks/RESULTS.md](../benchmarks/RESULTS.md)); the time of this run depends on the "
            "machine and on what else it is doing.")


def _tagged(nb: nbformat.NotebookNode, tag: str) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", [])]


def prepare(nb: nbformat.NotebookNode, path: Path, following: tuple[Path, str] | None,
            installs: list[str], timing: dict | None = None) -> nbformat.NotebookNode:
    """Bring ``nb`` (the notebook at ``path``) up to date in place; return it."""
    opening = nb.cells[0]
    if opening.cell_type != "markdown":
        raise ValueError(f"{path.name}: the first cell must be the markdown opening, got a {opening.cell_type} cell")
    opening.source = with_launch_line(opening.source, launch_line(path))
    opening.source = TIME_LINE.sub(lambda m: time_line(m.group(0), timing), opening.source, count=1)

    source = colab_cell_source(installs)
    found = _tagged(nb, COLAB_TAG)
    cell = nb.cells.pop(found[0]) if found else None
    if cell is None or cell.source != source:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [COLAB_TAG, "remove-cell"]})
        cell.id = COLAB_TAG
    nb.cells.insert(1, cell)

    source = next_source(path, following)
    for i in reversed(_tagged(nb, NEXT_TAG)):
        del nb.cells[i]
    cell = nbformat.v4.new_markdown_cell(source, metadata={"tags": [NEXT_TAG]})
    cell.id = NEXT_TAG
    nb.cells.append(cell)
    return nb


def prepare_files(paths: list[Path], check: bool = False) -> list[Path]:
    """Prepare the notebooks at ``paths``; return those that changed (with ``check``, write nothing)."""
    order = notebooks()
    installs = colab_installs()
    times = timings()
    changed = []
    for path in paths:
        path = path.resolve()
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        following = None
        if path in order and order.index(path) + 1 < len(order):
            next_path = order[order.index(path) + 1]
            following = (next_path, title(nbformat.read(next_path, as_version=4), next_path))
        after = nbformat.writes(prepare(nb, path, following, installs, times.get(path.stem)))
        if after != before:
            changed.append(path)
            if not check:
                nbformat.validate(nb)
                path.write_text(after + ("\n" if not after.endswith("\n") else ""))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook would change")
    args = parser.parse_args(argv)
    changed = prepare_files(args.paths or notebooks(), check=args.check)
    for path in changed:
        print(f"{'would update' if args.check else 'updated'} {path.relative_to(ROOT)}")
    if not changed:
        print("every notebook is up to date")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
