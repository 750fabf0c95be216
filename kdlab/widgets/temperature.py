"""Notebook 02's temperature explorer: a T slider reshapes a teacher's softened distribution
(bars) and moves a marker along its entropy curve. A pure redraw, measured in milliseconds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .._checks import check_temperature
from ..metrics import entropy
from ..plots import OKABE_ITO
from .base import BLUE, GREEN, VERMILLION, Widget, check_size, large_css, style

__all__ = ["TemperatureExplorer"]


class TemperatureExplorer(Widget):
    """A T slider that reshapes one teacher distribution live: bars and the entropy curve.

    Parameters
    ----------
    logits : torch.Tensor
        The teacher's logits for one example, shape ``(n_classes,)``.
    class_names : sequence of str
        One name per class, for the bars.
    T : float
        Initial temperature.
    title : str
        What the example is (shown in the figure's title).
    size : {"normal", "large"}
        ``"large"`` enlarges fonts and the figure for a projector.

    Attributes
    ----------
    t_slider : ipywidgets.FloatLogSlider
        Moving it calls :meth:`set_T` (continuous updates: it is a pure redraw).
    fig : plotly.graph_objects.FigureWidget
        Trace 0: the bars at the current T; trace 1: the bars at T = 1 (outline); trace 2: entropy
        against T; trace 3: the marker at the current T.
    """

    T_MIN, T_MAX = 0.25, 32.0

    def __init__(self, logits: torch.Tensor, class_names: Sequence[str], T: float = 1.0, *,
                 title: str = "teacher", size: str = "normal") -> None:
        import ipywidgets as W
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        if not isinstance(logits, torch.Tensor) or logits.ndim != 1 or not logits.is_floating_point():
            raise ValueError(f"logits must be a 1-D float tensor (one example), got {getattr(logits, 'shape', logits)!r}")
        if len(class_names) != len(logits):
            raise ValueError(f"class_names must have one name per class ({len(logits)}), got {len(class_names)}")
        T = check_temperature(T)
        size = check_size(size, False)
        st = style(size)
        self.logits = logits.detach().float()
        self.class_names = [str(c) for c in class_names]
        self.title = title
        self._t_grid = np.geomspace(self.T_MIN, self.T_MAX, 200)
        z = self.logits[None, :] / torch.tensor(self._t_grid, dtype=torch.float32)[:, None]
        self._entropy_curve = entropy(torch.softmax(z, -1)).numpy()
        self.max_entropy = math.log(len(logits))

        fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.12,
                            subplot_titles=("softened distribution softmax(z / T)", "entropy of the distribution"))
        p1 = torch.softmax(self.logits, -1).numpy()
        fig.add_trace(go.Bar(x=self.class_names, y=p1, name="at the slider's T", marker_color=BLUE), 1, 1)
        fig.add_trace(go.Bar(x=self.class_names, y=p1, name="at T = 1", marker_color="rgba(0,0,0,0)",
                             marker_line=dict(color=OKABE_ITO[7], width=1.5)), 1, 1)
        fig.add_trace(go.Scatter(x=self._t_grid, y=self._entropy_curve, mode="lines", name="entropy H(T)",
                                 line=dict(color=GREEN, width=3)), 1, 2)
        fig.add_trace(go.Scatter(x=[T], y=[0.0], mode="markers", name="current T",
                                 marker=dict(color=VERMILLION, size=3 * st["marker"], symbol="diamond")), 1, 2)
        fig.add_hline(y=self.max_entropy, line_dash="dash", line_color=OKABE_ITO[7], row=1, col=2,
                      annotation_text=f"log {len(logits)} (uniform)", annotation_position="bottom right")
        fig.update_layout(barmode="overlay", height=st["height"] * 0.85, font=dict(size=st["font"]),
                          margin=dict(t=80, l=60, r=20, b=60), legend=dict(orientation="h", y=-0.25),
                          title=dict(text="", font=dict(size=st["title"])))
        fig.update_xaxes(title_text="class", row=1, col=1)
        fig.update_yaxes(title_text="probability", range=[0, 1], row=1, col=1)
        ticks = [t for t in (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64) if self.T_MIN <= t <= self.T_MAX]
        fig.update_xaxes(title_text="temperature T (log scale)", type="log", tickvals=ticks,
                         ticktext=[f"{t:g}" for t in ticks], row=1, col=2)
        fig.update_yaxes(title_text="entropy (nats)", range=[0, self.max_entropy * 1.1], row=1, col=2)
        self.fig = go.FigureWidget(fig)
        self.t_slider = W.FloatLogSlider(value=T, base=2, min=math.log2(self.T_MIN), max=math.log2(self.T_MAX),
                                         step=0.05, description="temperature T", continuous_update=True,
                                         readout_format=".2f", style={"description_width": "initial"},
                                         layout=W.Layout(width=st["slider"]))
        self._moving = False  # set_T is moving the slider: its callback must not redraw twice
        self.t_slider.observe(self._on_slider, names="value")
        self.ui = W.VBox([self.t_slider, self.fig])
        if size == "large":
            self.ui = W.VBox([W.HTML(large_css()), *self.ui.children])
            self.ui.add_class("kdlab-large")
        self.T = T
        self.set_T(T)

    def probabilities(self, T: float) -> torch.Tensor:
        """The teacher's softened distribution ``softmax(logits / T)``."""
        return torch.softmax(self.logits / check_temperature(T), -1)

    def set_T(self, T: float) -> float:
        """Show temperature ``T``: move the slider there and redraw; returns the entropy in nats.

        The slider's callback calls it too. Moving the slider from code keeps the slider and the
        figure in step, so the slider's value the browser sends back is this ``T`` (to its rounding),
        not an older one.
        """
        T = check_temperature(T)
        if not self._moving:
            self._moving = True
            try:
                self.t_slider.value = T
            finally:
                self._moving = False
        p = self.probabilities(T)
        h = float(entropy(p))
        self.T, self.current_entropy = T, h
        with self.fig.batch_update():
            self.fig.data[0].y = p.numpy()
            self.fig.data[3].x = [T]
            self.fig.data[3].y = [h]
            self.fig.layout.title.text = (f"{self.title}: T = {T:.2f}, entropy {h:.2f} nats "
                                          f"(max {self.max_entropy:.2f}), top class {p.max():.0%}")
        return h

    def _on_slider(self, change: dict) -> None:
        if not self._moving:
            self.set_T(change["new"])
