"""How the site reads a notebook: as stored, minus widget views (used by site/conf.py)."""

from __future__ import annotations

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def read_without_widget_views(text: str) -> nbformat.NotebookNode:
    """The notebook in ``text`` without widget-view outputs and without saved widget state.

    A widget view needs a live kernel: on a static page it shows a placeholder or the widget's
    text repr ("VBox(children=...)"). The notebooks show a static figure beside each widget.
    """
    nb = nbformat.reads(text, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    return nb
