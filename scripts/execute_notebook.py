"""Execute notebooks in place, from a fresh kernel, and store light, deterministic outputs.

    python scripts/execute_notebook.py notebooks/00_quickstart.ipynb [more.ipynb ...]

First brings each notebook's shared cells up to date (scripts/prepare_notebooks.py: the Colab cell,
the badge and glossary line, the closing line). Then runs each notebook top to bottom in its own folder with the current environment's Python (the
same kernel nbval uses), then drops what makes a stored notebook heavy or noisy: saved widget
state (plotly widgets embed megabytes), per-cell timing metadata, and the outputs of widget views
(progress bars, sliders) in cells tagged ``nbval-ignore-output``. Prints each notebook's
runtime and size, and fails if a notebook raises or exceeds 1 MB.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare_notebooks import prepare_files  # noqa: E402  (a sibling script, not a package)

MAX_BYTES = 1_000_000
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def execute(path: Path) -> tuple[float, int]:
    prepare_files([path])
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if "nbval-ignore-output" in cell.metadata.get("tags", []):
            # A widget view (a progress bar, a slider) shows only a meaningless text fallback when
            # the notebook is read without a kernel: drop it; the notebook shows static figures.
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    nbformat.write(nb, path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{path}: {size} bytes, over the 1 MB limit")
    return seconds, size


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        seconds, size = execute(Path(arg))
        print(f"{arg}: ran in {seconds:.1f} s, {size / 1000:.0f} kB")
