"""Notebook 07's self-distillation explorer: a rounds slider over kernel ridge regression refitted
on its own predictions (Mobahi et al. 2020). Every round is computed up front: moving the slider is
a pure redraw."""

from __future__ import annotations

from ..lessons.when_kd_works import SelfDistillation
from .base import BLUE, GREEN, VERMILLION, Widget, check_size, large_css, style

__all__ = ["SelfDistillationExplorer"]


class SelfDistillationExplorer(Widget):
    """A rounds slider: the fit after k refits, and where k sits on the test-error curve.

    Parameters
    ----------
    sd : SelfDistillation
        From :func:`kdlab.lessons.when_kd_works.self_distillation`.
    round_ : int
        The round shown first.
    size : {"normal", "large"}

    Attributes
    ----------
    slider : ipywidgets.IntSlider
        Moving it calls :meth:`show`.
    fig : plotly.graph_objects.FigureWidget
        Traces: 0 training labels, 1 true function, 2 the fit at the shown round (left); 3 test
        error per round, 4 the marker at the shown round (right).

    Example
    -------
    >>> from kdlab.lessons.when_kd_works import self_distillation
    >>> w = SelfDistillationExplorer(self_distillation(rounds=4))
    >>> w.show(3); w.fig.data[4].x
    (3,)
    """

    def __init__(self, sd: SelfDistillation, round_: int = 0, *, size: str = "normal") -> None:
        import ipywidgets as W
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        if not isinstance(sd, SelfDistillation):
            raise TypeError(f"sd must be a SelfDistillation (from self_distillation()), got {type(sd).__name__}")
        st = style(check_size(size, False))
        self.sd = sd
        rounds = list(range(len(sd.test_error)))
        fig = make_subplots(rows=1, cols=2, subplot_titles=("the fit", "test error against the true function"))
        fig.add_scatter(x=sd.x_train, y=sd.y_train, mode="markers", name="noisy training labels",
                        marker=dict(color="gray", size=st["marker"]), row=1, col=1)
        fig.add_scatter(x=sd.x_test, y=sd.f_true_test, mode="lines", name="true function", line=dict(color=BLUE),
                        row=1, col=1)
        fig.add_scatter(x=sd.x_test, y=sd.predictions_test[0], mode="lines", name="fit", line=dict(color=VERMILLION,
                        width=3), row=1, col=1)
        fig.add_scatter(x=rounds, y=sd.test_error, mode="lines+markers", name="test MSE", line=dict(color=GREEN),
                        row=1, col=2)
        fig.add_scatter(x=[0], y=[sd.test_error[0]], mode="markers", name="shown round",
                        marker=dict(color=VERMILLION, size=3 * st["marker"]), row=1, col=2)
        fig.update_xaxes(title_text="x", row=1, col=1)
        fig.update_yaxes(title_text="y", row=1, col=1)
        fig.update_xaxes(title_text="rounds of self-distillation (refits)", row=1, col=2)
        fig.update_yaxes(title_text="test MSE", row=1, col=2)
        fig.update_layout(height=st["height"], font=dict(size=st["font"]), margin=dict(t=60, b=40))
        self.fig = go.FigureWidget(fig)
        self.slider = W.IntSlider(value=0, min=0, max=rounds[-1], description="refits",
                                  layout=W.Layout(width=st["slider"]))
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.ui = W.VBox([W.HTML(large_css()) if size == "large" else W.HTML(""), self.slider, self.fig])
        self.show(round_)

    def show(self, round_: int) -> None:
        """Redraw for ``round_`` refits (the slider calls this)."""
        if isinstance(round_, bool) or not isinstance(round_, int) or not 0 <= round_ < len(self.sd.test_error):
            raise ValueError(f"round_ must be an integer in [0, {len(self.sd.test_error) - 1}], got {round_!r}")
        k = self.sd.effective_basis(round_)
        with self.fig.batch_update():
            self.fig.data[2].y = self.sd.predictions_test[round_]
            self.fig.data[2].name = f"fit after {round_} refits"
            self.fig.data[4].x = (round_,)
            self.fig.data[4].y = (self.sd.test_error[round_],)
            self.fig.layout.title = (f"{round_} refits: test MSE {self.sd.test_error[round_]:.3f}; "
                                     f"{k} eigen-directions keep > 1% of their weight")
        if self.slider.value != round_:
            self.slider.value = round_
