"""Notebook 04's widgets: a domain-shift slider, and a comparison re-run for k labels per class."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_positive_int
from ..data import Dataset
from ..lessons.new_domain import (
    METHODS,
    SHIFTS,
    TransferComparison,
    TransferSettings,
    _check_kinds,
    _check_strength,
    _example_indices,
    compare_transfer,
    shift_curve,
    shift_images,
)
from ..metrics import accuracy
from ..models import predict_logits
from .base import Widget

__all__ = ["ShiftExplorer", "KComparison"]


class ShiftExplorer(Widget):
    """A slider for the shift strength (and a menu for its kind) that redraws examples and the
    teacher's target accuracy live. Pure computation, no training: a redraw takes milliseconds.

    ``update(strength, kind)`` is what the slider calls; it returns the teacher's accuracy on the
    shifted test set.
    """

    def __init__(self, teacher: nn.Module, data: Dataset, kind: str = "rotate", strength: float = 0.4,
                 seed: int = 0) -> None:
        import ipywidgets as w
        import plotly.graph_objects as go

        self.teacher, self.data, self.seed = teacher, data, seed
        self.kind, self.strength = _check_kinds(kind)[0], _check_strength(strength)
        self.idx = _example_indices(data.y_test, data.n_classes)
        self.source_accuracy = accuracy(predict_logits(teacher, data.x_test), data.y_test)
        self.strengths = [round(0.05 * i, 2) for i in range(21)]
        self._curves: dict[str, list[float]] = {}

        self.images = go.FigureWidget(
            data=[go.Heatmap(z=self.montage(data.x_test), zmin=0, zmax=1, colorscale="gray", reversescale=True,
                             showscale=False, hoverinfo="skip", name="examples")],
            layout=dict(height=200, showlegend=False, width=760, margin=dict(l=70, r=10, t=30, b=10),
                        title="one test image per class: source (top) and target (bottom)",
                        xaxis=dict(visible=False), yaxis=dict(visible=False, autorange="reversed", scaleanchor="x")))
        self.curve = go.FigureWidget(
            data=[go.Scatter(x=self.strengths, y=[], mode="lines+markers", name="teacher on target"),
                  go.Scatter(x=[self.strength], y=[0], mode="markers", marker=dict(size=14, color="#D55E00"),
                             name="current strength")],
            layout=dict(height=280, width=760, title="The source teacher's accuracy on the target test set",
                        xaxis_title="shift strength", yaxis_title="accuracy", yaxis_range=[0, 1],
                        margin=dict(l=60, r=20, t=50, b=50)))
        self.slider = w.FloatSlider(value=self.strength, min=0.0, max=1.0, step=0.05, description="strength",
                                    continuous_update=True, readout_format=".2f")
        self.menu = w.Dropdown(options=list(SHIFTS), value=self.kind, description="shift")
        self.label = w.HTML()
        self.slider.observe(self.on_strength, names="value")
        self.menu.observe(self.on_kind, names="value")
        self.ui = w.VBox([w.HBox([self.menu, self.slider]), self.label, self.images, self.curve])
        self.update()

    def montage(self, shifted: torch.Tensor):
        """One image of the examples: the source images on top, ``shifted`` ones below, separated by
        light grey 1-pixel lines (NaN gaps would not survive the widget's JSON)."""
        import numpy as np

        h, w = self.data.input_shape
        n = len(self.idx)
        out = np.full((2 * h + 1, n * (w + 1) - 1), 0.25, dtype=np.float32)
        for col, i in enumerate(self.idx):
            out[:h, col * (w + 1): col * (w + 1) + w] = self.data.x_test[i].reshape(h, w).numpy()
            out[h + 1:, col * (w + 1): col * (w + 1) + w] = shifted[i].reshape(h, w).numpy()
        return out

    def curve_for(self, kind: str) -> list[float]:
        """The teacher's target accuracy at every slider position (computed once per kind)."""
        if kind not in self._curves:
            self._curves[kind] = shift_curve(self.teacher, self.data, kind, self.strengths, seed=self.seed + 1)
        return self._curves[kind]

    def update(self, strength: float | None = None, kind: str | None = None) -> float:
        """Shift the test set, redraw the examples and the accuracy; return the accuracy."""
        if strength is not None:
            self.strength = _check_strength(strength)
        if kind is not None:
            self.kind = _check_kinds(kind)[0]
        x = shift_images(self.data.x_test, self.data.input_shape, self.kind, self.strength, seed=self.seed + 1)
        acc = accuracy(predict_logits(self.teacher, x), self.data.y_test)
        curve = self.curve_for(self.kind)
        self.images.data[0].z = self.montage(x)
        with self.curve.batch_update():
            self.curve.data[0].y = curve
            self.curve.data[0].name = f"teacher on target ({self.kind})"
            self.curve.data[1].x = [self.strength]
            self.curve.data[1].y = [acc]
        self.label.value = (f"<b>{self.kind} {self.strength:.2f}</b>: the source teacher gets "
                            f"{self.source_accuracy:.3f} on the source test set and <b>{acc:.3f}</b> on the "
                            f"shifted one (a drop of {self.source_accuracy - acc:.3f}).")
        self.accuracy = acc
        return acc

    def on_strength(self, change: dict) -> None:
        self.update(strength=change["new"])

    def on_kind(self, change: dict) -> None:
        self.update(kind=change["new"])


class KComparison(Widget):
    """A slider for ``k`` (labels per class) that re-runs :func:`compare_transfer`.

    The slider fires on release only (``continuous_update=False``); progress is streamed to a bar
    and a line of text; the chart is redrawn after every seed. Trainings run one at a time: a
    new ``k`` chosen while a run is going is queued and run next (the latest one wins).
    ``run(k)`` is the plain method the slider calls.
    """

    def __init__(self, teacher: nn.Module, target: Dataset, seeds: Sequence[int] = (0, 1, 2),
                 settings: TransferSettings | None = None, k: int = 5, max_k: int = 20,
                 initial: TransferComparison | None = None) -> None:
        import ipywidgets as w
        import plotly.graph_objects as go

        from ..plots import OKABE_ITO

        self.teacher, self.target, self.seeds = teacher, target, tuple(seeds)
        self.settings = settings or TransferSettings()
        self.result: TransferComparison | None = None
        self.running = False
        self._pending: int | None = None
        self.runs = 0
        self.messages: list[str] = []
        self.slider = w.IntSlider(value=k, min=1, max=max_k, step=1, description="k per class",
                                  continuous_update=False)
        self.bar = w.IntProgress(value=0, min=0, max=7 * len(self.seeds), description="progress")
        self.status = w.HTML("Move the slider to re-run the comparison.")
        self.chart = go.FigureWidget(
            data=[go.Bar(x=list(METHODS), y=[0] * len(METHODS), marker_color=list(OKABE_ITO[: len(METHODS)]),
                         error_y=dict(type="data", array=[0] * len(METHODS), visible=True),
                         name="mean and 95% CI")],
            layout=dict(height=360, showlegend=False, width=760, yaxis_range=[0, 1], yaxis_title="target test accuracy",
                        xaxis_title="method", title=f"k = {k}", margin=dict(l=60, r=20, t=50, b=80)))
        self.slider.observe(self.on_k, names="value")
        self.ui = w.VBox([self.slider, w.HBox([self.bar, self.status]), self.chart])
        if initial is not None:
            self.show(initial)

    def show(self, result: TransferComparison) -> None:
        """Redraw the chart from a (possibly partial) result."""
        from ..compare import summary

        means = result.means()
        names = [m for m in METHODS if m in means]
        half = {m: summary(result.accuracies[m]).half_width or 0.0 for m in names}
        with self.chart.batch_update():
            self.chart.data[0].x = names
            self.chart.data[0].y = [means[m] for m in names]
            self.chart.data[0].error_y.array = [0.0 if m == "source teacher" else half[m] for m in names]
            self.chart.data[0].text = [f"{means[m]:.3f}" for m in names]
            self.chart.layout.title = (f"k = {result.k}: mean and 95% CI over "
                                       f"{len(next(iter(result.accuracies.values())))} of {len(result.seeds)} seeds")

    def progress(self, message: str, done: int, total: int) -> None:
        self.bar.max, self.bar.value = total, done
        self.status.value = f"{done}/{total} trainings &mdash; {message}"
        self.messages.append(message)

    def run(self, k: int) -> TransferComparison | None:
        """Run the comparison for ``k`` (or queue it if a run is going). Returns the result."""
        k = check_positive_int(k, "k")
        if self.running:
            self._pending = k
            return None
        self.running = True
        try:
            while True:
                self.result = compare_transfer(self.teacher, self.target, k, self.seeds, self.settings,
                                               on_progress=self.progress, on_result=self.show)
                self.runs += 1
                if self._pending is None or self._pending == k:
                    self._pending = None
                    break
                k, self._pending = self._pending, None
        finally:
            self.running = False
        return self.result

    def on_k(self, change: dict) -> None:
        self.run(change["new"])
