"""The one display protocol every kdlab widget follows, and the sizes shared by all.

A widget builds its ipywidgets tree once, as ``self.ui``; displaying the object displays that
tree (``_repr_mimebundle_``). Callbacks are plain methods that tests and notebooks call directly;
a slider's observer calls the same method.
"""

from __future__ import annotations

from .._checks import check_choice
from ..plots import OKABE_ITO

__all__ = ["SIZES", "check_size", "style", "large_css", "Widget"]

BLUE, ORANGE, GREEN, VERMILLION = OKABE_ITO[0], OKABE_ITO[1], OKABE_ITO[2], OKABE_ITO[3]
SIZES = ("normal", "large")


def check_size(size: str, demo: bool) -> str:
    check_choice(size, "size", SIZES)
    return "large" if demo else size


def style(size: str) -> dict:
    # No widths: figures take the page's width. "large" fits a 1280x720 projector below a heading
    # and two rows of sliders.
    if size == "large":
        return {"font": 22, "title": 26, "height": 520, "slider": "600px", "marker": 9}
    return {"font": 12, "title": 14, "height": 420, "slider": "420px", "marker": 5}


def large_css() -> str:
    """CSS that enlarges slider labels and read-outs inside widgets tagged ``kdlab-large``."""
    return ("<style>.kdlab-large .widget-label, .kdlab-large .widget-readout, .kdlab-large .widget-html-content "
            "{font-size: 24px !important; line-height: 1.4 !important;} .kdlab-large .widget-label "
            "{min-width: 11em !important;}</style>")


class Widget:
    """Base of every kdlab widget: ``self.ui`` holds its ipywidgets tree, built once.

    Displaying the object (the last line of a cell, or ``display(obj)``) displays ``self.ui``.
    """

    ui: object  # an ipywidgets.Widget, set by the subclass's __init__

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.ui._repr_mimebundle_(**kwargs)
