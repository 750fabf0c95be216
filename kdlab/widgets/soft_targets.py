"""Notebook 01's widget: a digit (from the data set, or drawn by the learner) and the teacher's
soft targets at a temperature the learner sets."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .._checks import (
    check_positive_int,
    check_targets,
    check_temperature,
)
from ..losses import soft_targets
from ..metrics import entropy
from ..models import predict_logits
from ..plots import OKABE_ITO, ROLE_COLORS
from .base import Widget

__all__ = ["SoftTargetExplorer"]


class SoftTargetExplorer(Widget):
    """Pick a test example (or draw a digit) and a temperature; see teacher and students side by side.

    The figure (a Plotly ``FigureWidget``) shows the input image and grouped bars: the teacher's and
    each student's distribution at temperature ``T``. Every control calls :meth:`redraw`, a plain
    method: tests set ``explorer.temperature.value`` (or call :meth:`redraw`) and read
    ``explorer.figure.data``. Logits of the test examples are computed once, so a redraw is a
    softmax and a figure update; a drawing costs one forward pass per model.

    Parameters
    ----------
    teacher : nn.Module
        The trained teacher.
    students : nn.Module or mapping of name to nn.Module
        One student, or several named ones (e.g. ``{"student (distilled)": s1,
        "student (hard labels)": s2}``).
    x, y : torch.Tensor
        The examples to choose from (e.g. the test set) and their labels.
    class_names : sequence of str
        One name per class.
    input_shape : (height, width)
        The image shape, for display and for the drawing grid.
    T : float
        The initial temperature.
    index : int
        The initial example.
    """

    T_MIN, T_MAX = 0.5, 20.0
    #: 600 px figure + a 200 px grid fit a JupyterLab notebook on a 1280 px laptop screen
    FIGURE_WIDTH = 600

    def __init__(
        self,
        teacher: nn.Module,
        students: nn.Module | Mapping[str, nn.Module],
        x: torch.Tensor,
        y: torch.Tensor,
        class_names: Sequence[str],
        *,
        input_shape: Sequence[int] = (8, 8),
        T: float = 1.0,
        index: int = 0,
    ) -> None:
        import ipywidgets as W
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        if not isinstance(teacher, nn.Module):
            raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
        if isinstance(students, nn.Module):
            students = {"student": students}
        if not isinstance(students, Mapping) or not students or not all(
                isinstance(m, nn.Module) for m in students.values()):
            raise TypeError("students must be an nn.Module or a non-empty mapping of names to nn.Modules, "
                            f"got {type(students).__name__}")
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 2 or len(x) == 0:
            raise TypeError(f"x must be a non-empty floating-point tensor (n, n_features), got {type(x).__name__}")
        self.input_shape = tuple(input_shape)
        if math.prod(self.input_shape) != x.shape[1]:
            raise ValueError(f"input_shape {self.input_shape} does not match the {x.shape[1]} features of x")
        T = check_temperature(T)
        if not self.T_MIN <= T <= self.T_MAX:
            raise ValueError(f"T must be in [{self.T_MIN}, {self.T_MAX}], got {T}")
        index = check_positive_int(index, "index", minimum=0)
        if index >= len(x):
            raise ValueError(f"index must be in [0, {len(x) - 1}], got {index}")

        self.models = {"teacher": teacher, **students}
        self.x = x
        self.class_names = list(class_names)
        self.logits = {name: predict_logits(m, x) for name, m in self.models.items()}
        n_classes = self.logits["teacher"].shape[1]
        if len(self.class_names) != n_classes:
            raise ValueError(f"class_names must name the {n_classes} classes, got {len(self.class_names)}")
        self.y = check_targets(y, len(x), n_classes, name="y")
        self._suspend = False

        self.example = W.IntSlider(value=index, min=0, max=len(x) - 1, description="example",
                                   continuous_update=True)
        self.temperature = W.FloatLogSlider(value=T, base=10, min=math.log10(self.T_MIN),
                                            max=math.log10(self.T_MAX), step=0.01, description="T",
                                            readout_format=".2f", continuous_update=True)
        self.source = W.ToggleButtons(options=["test example", "my drawing"], value="test example",
                                      description="input")
        self.pixels = [W.ToggleButton(value=False, layout=W.Layout(width="22px", height="22px", padding="0px"))
                       for _ in range(x.shape[1])]
        self.copy_button = W.Button(description="copy example to grid")
        self.clear_button = W.Button(description="clear grid")

        fig = make_subplots(rows=1, cols=2, column_widths=[0.28, 0.72], horizontal_spacing=0.08,
                            subplot_titles=("input", "distribution at T"))
        fig.add_trace(go.Heatmap(z=np.zeros(self.input_shape), colorscale="Greys", zmin=0, zmax=1,
                                 showscale=False, name="input"), row=1, col=1)
        for i, name in enumerate(self.models):
            color = ROLE_COLORS.get(name, OKABE_ITO[(i + 4) % len(OKABE_ITO)])
            fig.add_trace(go.Bar(x=self.class_names, y=[0.0] * n_classes, name=name, marker_color=color),
                          row=1, col=2)
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=1)
        fig.update_xaxes(showticklabels=False, row=1, col=1)
        fig.update_xaxes(title_text="class", type="category", row=1, col=2)
        fig.update_yaxes(title_text="probability", range=[0, 1], row=1, col=2)
        fig.update_layout(barmode="group", height=340, width=self.FIGURE_WIDTH, margin=dict(l=40, r=10, t=60, b=40),
                          legend=dict(orientation="h", y=-0.2), title="")
        self.figure = go.FigureWidget(fig)

        self.example.observe(self._on_example, names="value")
        self.temperature.observe(self.redraw, names="value")
        self.source.observe(self.redraw, names="value")
        for p in self.pixels:
            p.observe(self._on_pixel, names="value")
        self.copy_button.on_click(lambda _: self.copy_example_to_grid())
        self.clear_button.on_click(lambda _: self.set_drawing(np.zeros(x.shape[1])))
        h, w = self.input_shape
        grid = W.GridBox(self.pixels, layout=W.Layout(grid_template_columns=f"repeat({w}, 24px)",
                                                      width=f"{24 * w + 8}px"))
        drawing = W.VBox([W.HTML("<b>draw</b> (click pixels)"), grid, W.HBox([self.copy_button, self.clear_button])])
        controls = W.VBox([self.example, self.temperature, self.source])
        # the figure and the grid side by side when they fit, the grid below the figure when they do not
        self.ui = W.VBox([controls, W.HBox([self.figure, drawing], layout=W.Layout(flex_flow="row wrap"))])
        self.redraw()

    # the state -------------------------------------------------------------------------------
    def drawing(self) -> torch.Tensor:
        """The 0/1 image on the drawing grid, flattened, as a float tensor."""
        return torch.tensor([float(p.value) for p in self.pixels])

    def set_drawing(self, image: Sequence[float] | np.ndarray | torch.Tensor) -> None:
        """Set the grid from an image (pixels above 0.5 are on) and show it, with one redraw."""
        values = np.asarray(image, dtype=float).ravel()
        if values.size != len(self.pixels):
            raise ValueError(f"image must have {len(self.pixels)} pixels, got {values.size}")
        self._suspend = True
        try:
            for p, v in zip(self.pixels, values):
                p.value = bool(v > 0.5)
            self.source.value = "my drawing"
        finally:
            self._suspend = False
        self.redraw()

    def copy_example_to_grid(self) -> None:
        """Start a drawing from the current test example (thresholded at 0.5)."""
        self.set_drawing(self.x[self.example.value].numpy())

    def set_T(self, T: float) -> None:
        """Show temperature ``T``: move the T slider there (its callback redraws).

        Code and slider stay in step, so what the slider shows is what the figure shows.
        """
        T = check_temperature(T)
        if not self.T_MIN <= T <= self.T_MAX:
            raise ValueError(f"T must be in [{self.T_MIN}, {self.T_MAX}], got {T}")
        self.temperature.value = T

    def current_input(self) -> torch.Tensor:
        """The image shown: the chosen test example or the drawing, flattened."""
        if self.source.value == "my drawing":
            return self.drawing()
        return self.x[self.example.value]

    def probabilities(self) -> dict[str, torch.Tensor]:
        """Each model's distribution at the current temperature for the current input."""
        T = float(self.temperature.value)
        if self.source.value == "my drawing":
            img = self.drawing()[None]
            return {name: soft_targets(predict_logits(m, img)[0], T) for name, m in self.models.items()}
        i = self.example.value
        return {name: soft_targets(z[i], T) for name, z in self.logits.items()}

    # the callbacks ---------------------------------------------------------------------------
    def _on_example(self, change: object = None) -> None:
        self._suspend = True
        self.source.value = "test example"
        self._suspend = False
        self.redraw()

    def _on_pixel(self, change: object = None) -> None:
        if self._suspend:
            return
        self._suspend = True
        self.source.value = "my drawing"
        self._suspend = False
        self.redraw()

    def redraw(self, change: object = None) -> None:
        """Recompute the distributions and update the figure (the callback of every control)."""
        if self._suspend:
            return
        probs = self.probabilities()
        img = self.current_input().reshape(self.input_shape).numpy()
        T = float(self.temperature.value)
        p_t = probs["teacher"]
        h = float(entropy(p_t))
        if self.source.value == "my drawing":
            what = "your drawing"
        else:
            what = f"test example {self.example.value} (label {self.class_names[int(self.y[self.example.value])]})"
        with self.figure.batch_update():
            self.figure.data[0].z = img
            for trace, p in zip(self.figure.data[1:], probs.values()):
                trace.y = p.numpy().round(5)
            self.figure.layout.title.text = (f"{what}, T = {T:.2f}: teacher's entropy {h:.2f} nats "
                                             f"(max {math.log(len(p_t)):.2f})")

    def redraw_latency_ms(self, repeats: int = 25) -> float:
        """Median wall-clock time of :meth:`redraw` over ``repeats`` calls, in milliseconds."""
        repeats = check_positive_int(repeats, "repeats")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            self.redraw()
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)
