"""Notebook 06's beta explorer: a ``beta`` slider re-fits a one-mode student to a two-mode teacher.

Every move minimises the generalised JSD of :func:`kdlab.generalized_jsd` over the student's two
parameters (:func:`kdlab.lessons.language.fit_gaussian`, a grid search of a few milliseconds) and
redraws: forward KL (``beta = 0``) spreads the student over both modes, reverse KL (``beta = 1``)
puts it on one.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from .._checks import check_alpha, check_positive_int
from ..lessons.language import GaussianFit, fit_gaussian
from .base import BLUE, VERMILLION, Widget, check_size, large_css, style

__all__ = ["BetaExplorer"]


class BetaExplorer(Widget):
    """A ``beta`` slider that re-fits a discretised Gaussian student to a teacher distribution live.

    Parameters
    ----------
    teacher_probs : torch.Tensor
        The teacher's distribution over outcomes, shape ``(n_outcomes,)``, positive (e.g.
        :func:`kdlab.lessons.language.two_mode_teacher`).
    beta : float
        Initial ``beta`` in ``[0, 1]``: 0 forward KL(teacher || student), 1 reverse KL.
    size : {"normal", "large"}
        ``"large"`` enlarges fonts and the figure for a projector.

    Attributes
    ----------
    beta_slider : ipywidgets.FloatSlider
        Moving it calls :meth:`set_beta`.
    fig : plotly.graph_objects.FigureWidget
        Trace 0: the teacher's bars; trace 1: the fitted student.
    fit : GaussianFit
        The current fit.
    """

    def __init__(self, teacher_probs: torch.Tensor, beta: float = 0.0, *, size: str = "normal") -> None:
        import ipywidgets as W
        import plotly.graph_objects as go

        if not isinstance(teacher_probs, torch.Tensor) or teacher_probs.ndim != 1 or not (teacher_probs > 0).all():
            raise ValueError("teacher_probs must be a 1-D tensor of positive probabilities, got "
                             f"{getattr(teacher_probs, 'shape', teacher_probs)!r}")
        beta = check_alpha(beta, "beta")
        size = check_size(size, False)
        st = style(size)
        self.teacher_probs = teacher_probs.detach().double() / teacher_probs.detach().double().sum()
        k = np.arange(len(self.teacher_probs))
        fig = go.Figure()
        fig.add_trace(go.Bar(x=k, y=self.teacher_probs.numpy(), name="teacher", marker_color=BLUE, opacity=0.6))
        fig.add_trace(go.Scatter(x=k, y=self.teacher_probs.numpy(), mode="lines+markers", name="student (one Gaussian)",
                                 line=dict(color=VERMILLION, width=3), marker=dict(size=st["marker"])))
        fig.update_layout(height=st["height"] * 0.85, font=dict(size=st["font"]), margin=dict(t=80, l=60, r=20, b=60),
                          legend=dict(orientation="h", y=-0.25), title=dict(text="", font=dict(size=st["title"])))
        fig.update_xaxes(title_text="outcome")
        fig.update_yaxes(title_text="probability", range=[0, float(self.teacher_probs.max()) * 1.6])
        self.fig = go.FigureWidget(fig)
        self.beta_slider = W.FloatSlider(value=beta, min=0.0, max=1.0, step=0.05, description="beta",
                                         continuous_update=True, readout_format=".2f",
                                         style={"description_width": "initial"}, layout=W.Layout(width=st["slider"]))
        self.beta_slider.observe(self._on_slider, names="value")
        self.ui = W.VBox([self.beta_slider, self.fig])
        if size == "large":
            self.ui = W.VBox([W.HTML(large_css()), *self.ui.children])
            self.ui.add_class("kdlab-large")
        self.fit: GaussianFit = self.set_beta(beta)

    def set_beta(self, beta: float) -> GaussianFit:
        """Re-fit the student for ``beta`` and redraw (the slider's callback); returns the fit."""
        fit = fit_gaussian(self.teacher_probs, check_alpha(beta, "beta"))
        name = {0.0: "forward KL", 1.0: "reverse KL"}.get(fit.beta, "generalised JSD")
        with self.fig.batch_update():
            self.fig.data[1].y = fit.probs.numpy()
            self.fig.layout.title.text = (
                f"beta = {fit.beta:.2f} ({name}): student mu = {fit.mu:.1f}, sigma = {fit.sigma:.1f}; "
                f"mass left / right {fit.mass_left:.2f} / {fit.mass_right:.2f}, "
                f"where the teacher has < 1%: {fit.mass_off_support:.2f}")
        self.fit = fit
        return fit

    def fit_latency_ms(self, repeats: int = 21) -> float:
        """The median time of :meth:`set_beta` (fit and redraw) over ``repeats`` moves across [0, 1], in ms."""
        repeats = check_positive_int(repeats, "repeats", minimum=2)
        start_beta, times = self.fit.beta, []
        for i in range(repeats):
            t0 = time.perf_counter()
            self.set_beta(i / (repeats - 1))
            times.append(time.perf_counter() - t0)
        self.set_beta(start_beta)
        return statistics.median(times) * 1e3

    def _on_slider(self, change: dict) -> None:
        self.set_beta(change["new"])
