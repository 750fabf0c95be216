"""Sphinx configuration of kdlab's static site: the notebooks with their stored outputs, never re-run.

    pip install -e ".[site]" && python -m sphinx -b html -c site . _build/site

The source folder is the repository's root (so the notebooks' links to ../docs and ../benchmarks
resolve as they do in JupyterLab and on GitHub); ``include_patterns`` picks the pages.
tests/test_site.py builds it with the network blocked.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # notebook_reader

REPOSITORY = "https://github.com/kdlab/kdlab"

project = "kdlab"
author = "the kdlab authors"
copyright = "2026, the kdlab authors"
language = "en"

extensions = ["myst_nb"]
root_doc = "site/index"
include_patterns = [
    "site/index.md", "README.md", "README.zh-CN.md", "CONTRIBUTING.md",
    "notebooks/[0-9][0-9]_*.ipynb", "docs/*.md", "benchmarks/RESULTS.md",
]
exclude_patterns = ["_build", ".git", ".venv", ".hypothesis", ".ruff_cache", "**/.ipynb_checkpoints", "**/node_modules"]
suppress_warnings = ["myst.header"]  # READMEs start at level 1 and jump headings like GitHub pages do

# Stored outputs only. Widget views are dropped on reading (each widget has a static figure beside
# it), so no page needs a kernel or loads ipywidgets' JavaScript from a CDN.
nb_execution_mode = "off"
nb_custom_formats = {".ipynb": "notebook_reader.read_without_widget_views"}
nb_ipywidgets_js = {}
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "kdlab: knowledge distillation you can run, poke and test"
html_extra_path = ["_extra"]  # index.html at the top, pointing to site/index.html
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "main",
    "path_to_docs": "",
    "use_repository_button": True,
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "colab_url": "https://colab.research.google.com",
        "notebook_interface": "jupyterlab",
    },
}
