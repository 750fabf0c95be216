"""Notebook 07's widgets: the capacity-gap heatmap, whose cells show their students' curves, and the
self-distillation explorer, a rounds slider over kernel ridge regression refitted on its own
predictions (Mobahi et al. 2020). Everything is computed up front: both are pure redraws."""

from __future__ import annotations

from collections.abc import Collection

from ..lessons.when_kd_works import SelfDistillation
from .base import BLUE, GREEN, VERMILLION, Widget, check_size, large_css, style

__all__ = ["SelfDistillationExplorer", "CapacityGapExplorer"]


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


class CapacityGapExplorer(Widget):
    """The capacity-gap heatmap, clickable: a student x teacher cell shows both students' test curves.

    Parameters
    ----------
    grid : mapping of student name to SweepResult
        From :func:`kdlab.lessons.when_kd_works.capacity_grid`.
    gains : mapping of (student, method) to Paired
        From :func:`kdlab.lessons.when_kd_works.gain_table` (the heatmap's values).
    eval_set : str
    size : {"normal", "large"}

    Attributes
    ----------
    student, method : ipywidgets.Dropdown
        Changing either (or clicking a cell) calls :meth:`select`.
    fig : plotly.graph_objects.FigureWidget
        Trace 0: the heatmap; traces 1-2: mean test accuracy per epoch on hard labels and with
        the selected method; traces 3-4: their 95% CI bands.
    """

    def __init__(self, grid, gains, eval_set: str = "test", *, size: str = "normal",
                 not_called: Collection[tuple[str, str]] = ()) -> None:
        import ipywidgets as W
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        if not grid or not gains:
            raise ValueError("grid and gains must not be empty: run capacity_grid and gain_table first")
        st = style(check_size(size, False))
        self.grid, self.gains, self.eval_set = grid, gains, eval_set
        self.not_called = set(not_called)  # cells whose verdict changed with SEED: numbers, no verdict
        self.students = list(dict.fromkeys(s for s, _ in gains))
        self.methods = list(dict.fromkeys(m for _, m in gains))
        z = [[gains[s, m].mean if (s, m) in gains else None for m in self.methods] for s in self.students]
        text = [[f"{gains[s, m].mean:+.3f} ({self._verdict(s, m)})" if (s, m) in gains else "" for m in self.methods]
                for s in self.students]
        fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55],
                            subplot_titles=("gain over hard labels (click a cell)", "test accuracy per epoch"))
        limit = max(abs(p.mean) for p in gains.values()) or 1.0
        fig.add_heatmap(z=z, x=[m.removeprefix("KD from ") for m in self.methods], y=self.students, text=text,
                        texttemplate="%{text}", colorscale="PuOr", zmin=-limit, zmax=limit, showscale=False,
                        row=1, col=1)
        for color, name in ((BLUE, "hard labels"), (VERMILLION, "distilled")):
            fig.add_scatter(x=[], y=[], mode="lines", name=name, line=dict(color=color, width=2), row=1, col=2)
        for color in (BLUE, VERMILLION):
            fig.add_scatter(x=[], y=[], mode="lines", fill="toself", line=dict(width=0), fillcolor=color, opacity=0.2,
                            showlegend=False, hoverinfo="skip", row=1, col=2)
        fig.update_xaxes(title_text="epoch", row=1, col=2)
        fig.update_yaxes(title_text=f"{eval_set} accuracy", row=1, col=2)
        fig.update_layout(height=st["height"], font=dict(size=st["font"]), margin=dict(t=60, b=40))
        self.fig = go.FigureWidget(fig)
        self.fig.data[0].on_click(self._clicked)
        self.student = W.Dropdown(options=self.students, description="student")
        self.method = W.Dropdown(options=self.methods, description="method")
        self.student.observe(lambda change: self.select(change["new"], self.method.value), names="value")
        self.method.observe(lambda change: self.select(self.student.value, change["new"]), names="value")
        self.ui = W.VBox([W.HTML(large_css()) if size == "large" else W.HTML(""),
                          W.HBox([self.student, self.method]), self.fig])
        self.select(self.students[0], self.methods[0])

    def _verdict(self, student: str, method: str) -> str:
        return "not called" if (student, method) in self.not_called else self.gains[student, method].verdict

    def _clicked(self, trace, points, state) -> None:
        if points.point_inds:
            row, col = points.point_inds[0]
            self.select(self.students[row], self.methods[col])

    def select(self, student: str, method: str) -> None:
        """Show the test curves of ``student`` on hard labels and with ``method`` (the dropdowns and clicks call this)."""
        from scipy.stats import t as student_t

        if (student, method) not in self.gains:
            raise ValueError(f"(student, method) must be a cell of the grid, got {(student, method)!r}; students "
                             f"{self.students}, methods {self.methods}")
        res = self.grid[student]
        with self.fig.batch_update():
            for k, name in enumerate(("hard labels", method)):
                c = res.curve(name, self.eval_set)
                n = c.shape[1]
                mean = c.mean(1)
                half = student_t.ppf(0.975, n - 1) * c.std(1, ddof=1) / n**0.5 if n > 1 else 0 * mean
                epochs = list(range(1, len(mean) + 1))
                self.fig.data[1 + k].x, self.fig.data[1 + k].y = epochs, mean
                self.fig.data[1 + k].name = name
                self.fig.data[3 + k].x = epochs + epochs[::-1]
                self.fig.data[3 + k].y = list(mean + half) + list((mean - half)[::-1])
            p = self.gains[student, method]
            self.fig.layout.title = f"{student}, {method}: {p.mean:+.3f} at the end ({self._verdict(student, method)})"
        if self.student.value != student:
            self.student.value = student
        if self.method.value != method:
            self.method.value = method
