"""Live widgets for the temperature-and-alpha notebook, and a playground for the classroom.

Two widgets, both built on ipywidgets sliders and a plotly ``FigureWidget`` (rendered through
anywidget in JupyterLab, Notebook 7 and Voila):

- :class:`TemperatureExplorer`: a T slider reshapes a teacher's softened distribution (bars) and
  moves a marker along its entropy curve. A pure redraw, measured in milliseconds.
- :class:`Playground` (build it with :func:`playground`): on a 2-D data set, the teacher's and the
  student's decision regions side by side, sliders for T, alpha and the student's size, and live
  accuracy/agreement curves while the student re-trains. ``playground(size="large")`` is the
  demo mode for a presenter: big fonts, readable from the back of a room, on a 1280x720 projector.
  The figure takes the width of the page (no sideways scrolling) and opens trained: the first
  training runs before the figure is built, because a ``FigureWidget`` forgets changes made
  before its first view exists.
- :meth:`Playground.state` sums up the view in a short string (``"kd1:spirals,T=4,alpha=0.9,..."``),
  and ``playground(state=...)`` rebuilds the same view from it, like TensorFlow Playground's URL.

Every callback is a plain method (:meth:`TemperatureExplorer.set_T`, :meth:`Playground.retrain`,
:meth:`Playground.set`) that tests and notebooks call directly; moving a slider calls the same method.

How the playground avoids overlapping trainings
------------------------------------------------
Sliders use ``continuous_update=False``: a change arrives once, when the slider is released.
With ``background=True`` (the default) a change does not train in the slider's callback (which
would block the kernel); it records the newest settings and wakes one worker thread. There is
only ever one worker and it trains one student at a time. While it trains, it checks after every
epoch whether newer settings have arrived; if so it abandons the current student (stopping
:func:`kdlab.train` cleanly from its callback) and starts on the newest settings. Settings
that were superseded while waiting are skipped, never queued. So a learner who drags three
sliders in a row sees one training, for the last settings, and the kernel stays responsive.
``background=False`` trains synchronously in the callback instead (kept short: about one to
three seconds), which is simpler to reason about and is what the tests use.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .._checks import check_alpha, check_choice, check_positive_int, check_temperature
from ..metrics import accuracy
from ..models import count_parameters, make_model, predict_logits
from ..plots import decision_grid
from ..teachers import load as load_teacher
from ..teachers import recipe as teacher_recipe
from ..training import History, TrainState, train
from .base import BLUE, GREEN, ORANGE, SIZES, VERMILLION, Widget, check_size, large_css, style

__all__ = ["STUDENT_SIZES", "STATE_VERSION", "Settings", "Playground", "playground", "parse_state"]

#: Student sizes offered by the playground's size slider: name -> hidden widths (``()`` = linear).
STUDENT_SIZES: dict[str, tuple[int, ...]] = {
    "linear": (),
    "MLP 4": (4,),
    "MLP 16": (16,),
    "MLP 64": (64,),
    "MLP 32x32": (32, 32),
}


#: The playground's 2-D data sets (each has a shipped teacher in :mod:`kdlab.teachers`).
DATASETS = ("spirals", "moons")
#: The defaults of the settings a state string may leave out.
DEFAULT_EPOCHS = 40
DEFAULT_TEACHER_WIDTHS = (64, 64, 64)


#: The version prefix of :meth:`Playground.state` strings.
STATE_VERSION = "kd1"
# Student sizes in a state string: no spaces, lower case ("MLP 32x32" -> "mlp32x32").
_STUDENT_KEYS = {name: name.replace(" ", "").lower() for name in STUDENT_SIZES}
_STATE_EXAMPLE = "kd1:spirals,T=4,alpha=0.9,student=mlp4,seed=0"
_STATE_HELP = (f"a playground state is '{STATE_VERSION}:' followed by the data set and comma-separated settings, "
               f"e.g. '{_STATE_EXAMPLE}' (optional: epochs=N, teacher=64x64x64, demo); Playground.state() makes one")


def _number(x: float) -> str:
    """The shortest text that reads back as exactly ``x`` ("4" for 4.0)."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def parse_state(state: str) -> dict:
    """The settings in a :meth:`Playground.state` string, as keyword arguments of :func:`playground`.

    Parameters
    ----------
    state : str
        A string made by :meth:`Playground.state`, e.g. ``"kd1:spirals,T=4,alpha=0.9,student=mlp4,seed=0"``.

    Returns
    -------
    dict
        ``dataset``, ``T``, ``alpha``, ``student``, ``seed``, ``epochs``, ``teacher_widths`` and ``size``.

    Raises
    ------
    TypeError
        ``state`` is not a string.
    ValueError
        It is not a playground state, or one of its settings is missing or out of range; the message
        says which, and what a valid state looks like.

    Example
    -------
    >>> parse_state("kd1:moons,T=2,alpha=0.5,student=linear,seed=3,demo")["size"]
    'large'
    """
    if not isinstance(state, str):
        raise TypeError(f"state must be a string made by Playground.state(), got {type(state).__name__}; {_STATE_HELP}")

    def bad(problem: str) -> ValueError:
        return ValueError(f"state {state!r} {problem}; {_STATE_HELP}")

    version, sep, body = state.strip().partition(":")
    if not sep or version != STATE_VERSION:
        raise bad(f"does not start with '{STATE_VERSION}:' (the version of the format)")
    dataset, *items = body.split(",")
    if dataset not in DATASETS:
        raise bad(f"names the data set {dataset!r}; the playground has {' and '.join(map(repr, DATASETS))}")
    found: dict[str, str] = {}
    size = "normal"
    for item in items:
        key, eq, value = item.partition("=")
        if item == "demo":
            size = "large"
        elif not eq or key not in ("T", "alpha", "student", "seed", "epochs", "teacher"):
            raise bad(f"has an unknown setting {item!r}")
        elif key in found:
            raise bad(f"sets {key} twice")
        else:
            found[key] = value
    missing = [k for k in ("T", "alpha", "student", "seed") if k not in found]
    if missing:
        raise bad(f"has no {' or '.join(missing)}")
    students = {key: name for name, key in _STUDENT_KEYS.items()}
    if found["student"] not in students:
        raise bad(f"has student={found['student']!r}; the sizes are {', '.join(students)}")
    teacher = found.get("teacher", "x".join(map(str, DEFAULT_TEACHER_WIDTHS)))
    try:
        return dict(dataset=dataset, T=check_temperature(float(found["T"])), alpha=check_alpha(float(found["alpha"])),
                    student=students[found["student"]], seed=int(found["seed"]),
                    epochs=check_positive_int(int(found.get("epochs", DEFAULT_EPOCHS)), "epochs"),
                    teacher_widths=tuple(check_positive_int(int(w), "teacher width") for w in teacher.split("x")),
                    size=size)
    except ValueError as error:  # float("abc"), int("1.5"), or a check's message
        raise bad(f"has a bad value ({error})") from None


@dataclass(frozen=True)
class Settings:
    """One training request of the playground."""

    T: float
    alpha: float
    student: str


@lru_cache(maxsize=4)
def _teacher(dataset: str, widths: tuple[int, ...], seed: int):
    """The data and teacher for these settings: the shipped teacher (no training) when the playground's
    recipe with this seed and these widths is the one :mod:`kdlab.teachers` was built from, else
    trained here from that recipe (a few seconds)."""
    shipped = teacher_recipe(dataset)
    rec = dataclasses.replace(shipped, widths=widths, seed=seed,
                              dataset_kwargs={**shipped.dataset_kwargs, "seed": seed})
    if rec == shipped:
        teacher = load_teacher(dataset)
        return teacher.dataset, teacher.model
    data, model = rec.load_data(), rec.make_model()
    train(model, data.x_train, data.y_train, epochs=rec.epochs, lr=rec.lr, batch_size=rec.batch_size,
          seed=rec.seed, progress=False)
    return data, model


class Playground(Widget):
    """Teacher and student decision regions on a 2-D data set, with T, alpha and student-size sliders.

    Build it with :func:`playground`. Changing a slider re-trains the student from the same seeded
    initial weights with :func:`kdlab.train` (so the same settings always give the same student),
    streaming its decision regions and its test accuracy and agreement with the teacher every
    ``update_every`` epochs. See the module docstring for how overlapping trainings are avoided.

    Attributes
    ----------
    t_slider, alpha_slider, size_slider : ipywidgets widgets
        Setting ``.value`` (in a test, or in the browser) requests a re-training.
    fig : plotly.graph_objects.FigureWidget
        Traces: 0 teacher's p(class 1), 1 student's p(class 1), 2-5 the test points of each class
        (on both panels), 6 student accuracy, 7 agreement with the teacher, 8 the teacher's
        accuracy (reference line).
    history : kdlab.History or None
        The last finished training.
    trained_settings : Settings or None
        The settings of that training.
    last_seconds : float
        Wall-clock seconds of the last training, figure updates included.
    trainings : int
        Number of trainings started so far.
    """

    def __init__(
        self,
        dataset: str = "spirals",
        *,
        T: float = 4.0,
        alpha: float = 0.9,
        student: str = "MLP 4",
        size: str = "normal",
        epochs: int = DEFAULT_EPOCHS,
        update_every: int = 4,
        resolution: int | None = None,
        teacher_widths: Sequence[int] = DEFAULT_TEACHER_WIDTHS,
        seed: int = 0,
        background: bool = True,
        train_now: bool = False,
    ) -> None:
        import ipywidgets as W

        check_choice(dataset, "dataset", DATASETS)
        check_choice(student, "student", list(STUDENT_SIZES))
        self.size = check_choice(size, "size", SIZES)
        self.epochs = check_positive_int(epochs, "epochs")
        self.update_every = check_positive_int(update_every, "update_every")
        self.seed = int(seed)
        self.dataset = dataset
        self.teacher_widths = tuple(check_positive_int(w, "teacher_widths") for w in teacher_widths)
        self.background = bool(background)
        st = self._st = style(self.size)
        self.data, self.teacher = _teacher(dataset, self.teacher_widths, self.seed)
        self.resolution = check_positive_int(resolution or (70 if self.size == "large" else 50), "resolution", 10)
        xx, yy, self._grid = decision_grid(self.data.x_train, self.resolution, margin=0.3)
        self._grid_axes = (xx[0], yy[:, 0])
        self._teacher_test = predict_logits(self.teacher, self.data.x_test)
        self.teacher_accuracy = accuracy(self._teacher_test, self.data.y_test)

        self.history: History | None = None
        self.trained_settings: Settings | None = None
        self.last_seconds = 0.0
        self.trainings = 0
        self.student_model = None
        self._lock = threading.Lock()  # held while a student trains: never two at once
        self._pending: Settings | None = None
        self._wake = threading.Condition()
        self._worker: threading.Thread | None = None
        self._active = 0
        self.max_concurrent = 0  # the most trainings ever running at the same time (tests check it is 1)
        self._muted = False

        slider_kw = dict(continuous_update=False, style={"description_width": "initial"},
                         layout=W.Layout(width=st["slider"]))
        self.t_slider = W.FloatLogSlider(value=check_temperature(T), base=2, min=-1, max=5, step=0.25,
                                         description="temperature T", readout_format=".2f", **slider_kw)
        self.alpha_slider = W.FloatSlider(value=check_alpha(alpha), min=0, max=1, step=0.05,
                                          description="alpha (weight of soft loss)", readout_format=".2f", **slider_kw)
        self.size_slider = W.SelectionSlider(options=list(STUDENT_SIZES), value=student,
                                             description="student size", **slider_kw)
        self.status = W.HTML(value="", layout=W.Layout(flex="1 1 320px"))
        self.status.add_class("kdlab-status")
        self.share = W.HTML(value="")  # the state string of the view, for learners to copy
        self.share.add_class("kdlab-share")
        self.fig = None
        if train_now:
            self.retrain()  # before the figure exists: the figure is then built with this student in it
        for s in (self.t_slider, self.alpha_slider, self.size_slider):
            s.observe(self._on_slider, names="value")
        self.fig = self._make_figure()
        self._show_state()
        # Sliders side by side, wrapping onto a second row on a narrow page: no sideways scrolling.
        row = dict(display="flex", flex_flow="row wrap", align_items="center", grid_gap="0 24px")
        controls = W.Box([self.t_slider, self.alpha_slider, self.size_slider, self.status], layout=W.Layout(**row))
        if self.size == "large":  # the state string beside the heading: one line less above the figure
            heading = W.HTML(large_css() + "<h1 style='font-size:34px;margin:0'>Knowledge distillation playground</h1>")
            children = [W.Box([heading, self.share], layout=W.Layout(**row, justify_content="space-between")),
                        controls, self.fig]
        else:
            children = [controls, self.share, self.fig]
        self.ui = W.VBox(children, layout=W.Layout(width="100%", overflow="hidden"))
        if self.size == "large":
            self.ui.add_class("kdlab-large")

    # -- settings --------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """The sliders' current values."""
        return Settings(float(self.t_slider.value), float(self.alpha_slider.value), str(self.size_slider.value))

    def set(self, *, T: float | None = None, alpha: float | None = None, student: str | None = None,
            retrain: bool = True) -> None:
        """Set several sliders at once, then request one re-training (not one per slider)."""
        if T is not None:
            T = check_temperature(T)
        if alpha is not None:
            alpha = check_alpha(alpha)
        if student is not None:
            check_choice(student, "student", list(STUDENT_SIZES))
        self._muted = True
        try:
            if T is not None:
                self.t_slider.value = T
            if alpha is not None:
                self.alpha_slider.value = alpha
            if student is not None:
                self.size_slider.value = student
        finally:
            self._muted = False
        if retrain:
            self.request_retrain()

    def _on_slider(self, change: dict) -> None:
        if not self._muted:
            self.request_retrain()

    # -- training --------------------------------------------------------------------------------
    def request_retrain(self) -> None:
        """What a slider change calls: train now (``background=False``) or hand the newest settings
        to the single worker thread, which abandons a training whose settings are out of date."""
        if not self.background:
            self.retrain()
            return
        with self._wake:
            self._pending = self.settings
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="kdlab-playground", daemon=True)
                self._worker.start()
            self._wake.notify()
        self.status.value = "<b>re-training…</b>"

    def _work(self) -> None:
        while True:
            with self._wake:
                if self._pending is None:
                    self._worker = None
                    return
                settings, self._pending = self._pending, None
            try:
                self._train(settings, supersedable=True)
            except Exception as exc:  # a background thread must report, not die silently
                self.status.value = f"<b>training failed:</b> {type(exc).__name__}: {exc}"

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the background worker is idle; returns False on timeout."""
        deadline = time.perf_counter() + timeout
        while True:
            worker = self._worker
            if worker is None or not worker.is_alive():
                return True
            worker.join(timeout=max(0.0, deadline - time.perf_counter()))
            if time.perf_counter() >= deadline:
                return not worker.is_alive()

    def retrain(self, settings: Settings | None = None) -> History:
        """Train the student for the current sliders (or ``settings``) now, in this thread.

        Waits for any running training to finish first: two trainings never overlap.
        """
        return self._train(settings or self.settings, supersedable=False)

    def make_student(self, student: str | None = None) -> torch.nn.Module:
        """A fresh student of the given size, with the playground's seeded initial weights."""
        widths = STUDENT_SIZES[check_choice(student or self.settings.student, "student", list(STUDENT_SIZES))]
        return make_model("mlp" if widths else "linear", self.data.input_shape, self.data.n_classes,
                          widths=widths or None, seed=self.seed)

    def _train(self, settings: Settings, supersedable: bool) -> History:
        with self._lock:
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
            self.trainings += 1
            try:
                return self._train_locked(settings, supersedable)
            finally:
                self._active -= 1

    def _train_locked(self, settings: Settings, supersedable: bool) -> History:
        student = self.make_student(settings.student)
        n_params = count_parameters(student)
        start = time.perf_counter()
        self.status.value = f"<b>training</b> {settings.student} at T={settings.T:.2f}, alpha={settings.alpha:.2f}…"
        curves: dict[str, list] = {"epoch": [], "acc": [], "agree": []}

        def on_epoch(state: TrainState) -> None:
            if supersedable and self._pending is not None:
                raise KeyboardInterrupt  # newer settings arrived: kdlab.train stops cleanly
            h = state.history
            curves["epoch"].append(state.epoch)
            curves["acc"].append(h.eval_accuracy[-1])
            curves["agree"].append(h.eval_agreement[-1])
            if self.fig is not None and (state.epoch % self.update_every == 0 or state.epoch == state.epochs):
                self._draw_student(self.fig, state.model, curves, settings, n_params, state.epoch)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an abandoned training warns that it was interrupted
            history = train(student, self.data.x_train, self.data.y_train, teacher=self.teacher, T=settings.T,
                            alpha=settings.alpha, epochs=self.epochs, batch_size=64, lr=1e-2, seed=self.seed,
                            eval_set=(self.data.x_test, self.data.y_test), callbacks=[on_epoch], progress=False)
        self.last_seconds = time.perf_counter() - start
        if not history.interrupted:
            self.history, self.student_model, self.trained_settings = history, student, settings
            self.status.value = (f"trained in {self.last_seconds:.1f} s: test accuracy "
                                 f"{history.eval_accuracy[-1]:.1%}, agreement {history.eval_agreement[-1]:.1%}")
            self._show_state()
        return history

    def _show_state(self) -> None:
        self.share.value = f"<span style='font-size:14px'>share this view: <code>{self.state()}</code></span>"

    # -- the view as a string --------------------------------------------------------------------
    def state(self) -> str:
        """The view as a short string, which ``playground(state=...)`` turns back into the same view.

        It holds the data set, the sliders (T, alpha, student size), the seed and the demo flag, and
        the number of epochs and the teacher's widths when they differ from the defaults: everything
        that decides what the playground shows. The same string gives the same teacher, the same
        seeded student and so the same figure.

        Returns
        -------
        str
            ``"kd1:"`` (the format version) and comma-separated settings, e.g.
            ``"kd1:spirals,T=4,alpha=0.9,student=mlp4,seed=0"``.

        Example
        -------
        >>> pg = playground("moons", T=2.0, alpha=0.5, train_now=False)
        >>> pg.state()
        'kd1:moons,T=2,alpha=0.5,student=mlp4,seed=0'
        >>> playground(state=pg.state(), train_now=False).settings == pg.settings
        True
        """
        s = self.settings
        items = [self.dataset, f"T={_number(s.T)}", f"alpha={_number(s.alpha)}",
                 f"student={_STUDENT_KEYS[s.student]}", f"seed={self.seed}"]
        if self.epochs != DEFAULT_EPOCHS:
            items.append(f"epochs={self.epochs}")
        if self.teacher_widths != DEFAULT_TEACHER_WIDTHS:
            items.append("teacher=" + "x".join(map(str, self.teacher_widths)))
        if self.size == "large":
            items.append("demo")
        return STATE_VERSION + ":" + ",".join(items)

    # -- drawing ---------------------------------------------------------------------------------
    def _p_class1(self, model: torch.nn.Module) -> np.ndarray:
        probs = torch.softmax(predict_logits(model, self._grid), -1)[:, 1]
        return probs.reshape(self.resolution, self.resolution).numpy().round(3)

    def _make_figure(self):
        """The FigureWidget, with the last trained student already drawn in it (if there is one)."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        st = self._st
        large = self.size == "large"
        xs, ys = self._grid_axes
        scale = [[0.0, ORANGE], [0.5, "#FFFFFF"], [1.0, BLUE]]
        fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.14 if large else 0.12,
                            subplot_titles=(f"teacher: test accuracy {self.teacher_accuracy:.1%}",
                                            "student (not trained yet)", "student while it trains"))
        fig.add_trace(go.Heatmap(x=xs, y=ys, z=self._p_class1(self.teacher), zmin=0, zmax=1, colorscale=scale,
                                 showscale=False, hoverinfo="skip", name="teacher p(class 1)"), 1, 1)
        fig.add_trace(go.Heatmap(x=xs, y=ys, z=np.full((self.resolution,) * 2, 0.5), zmin=0, zmax=1,
                                 colorscale=scale, hoverinfo="skip", name="student p(class 1)",
                                 colorbar=dict(title=dict(text="p(class 1)", side="top",
                                                          font=dict(size=st["font"] - 4)),
                                               x=0.635, len=0.9, thickness=12, tickvals=[0, 0.5, 1])), 1, 2)
        x, y = self.data.x_test.numpy(), self.data.y_test.numpy()
        for col in (1, 2):
            for c, (color, symbol) in enumerate(((ORANGE, "circle"), (BLUE, "triangle-up"))):
                fig.add_trace(go.Scatter(x=x[y == c, 0], y=x[y == c, 1], mode="markers", name=f"class {c} (test)",
                                         legendgroup=f"class {c}", showlegend=col == 1,
                                         marker=dict(color=color, symbol=symbol, size=st["marker"],
                                                     line=dict(color="black", width=0.5))), 1, col)
        fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name="student test accuracy",
                                 line=dict(color=GREEN, width=3)), 1, 3)
        fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name="agreement with teacher",
                                 line=dict(color=VERMILLION, width=3, dash="dot")), 1, 3)
        fig.add_trace(go.Scatter(x=[1, self.epochs], y=[self.teacher_accuracy] * 2, mode="lines",
                                 name="teacher test accuracy", line=dict(color=BLUE, width=2, dash="dash")), 1, 3)
        for col in (1, 2):
            fig.update_xaxes(title_text="x₁", row=1, col=col)
            fig.update_yaxes(title_text="x₂", row=1, col=col)
        fig.update_xaxes(title_text="epoch", range=[0, self.epochs + 1], row=1, col=3)
        fig.update_yaxes(title_text="fraction of test points", range=[0.3, 1.02], row=1, col=3)
        # No width: the figure takes its container's width when it is drawn (and follows the window
        # with plotly's "responsive" option), so it never overflows a projector's or a notebook's page.
        # In demo mode the page's heading is the title, which leaves the height to the plots.
        fig.update_layout(height=st["height"], autosize=True, font=dict(size=st["font"]),
                          title=None if large else dict(
                              text="Knowledge distillation playground: move a slider to re-train the student",
                              font=dict(size=st["title"])),
                          legend=dict(orientation="h", y=-0.2, x=0, yanchor="top"),
                          margin=dict(t=50 if large else 100, l=60, r=20, b=110 if large else 90))
        fig.update_annotations(font_size=st["font"] + 2)
        if self.student_model is not None:
            h = self.history
            self._draw_student(fig, self.student_model, {"epoch": h.epoch, "acc": h.eval_accuracy,
                                                         "agree": h.eval_agreement},
                               self.trained_settings, count_parameters(self.student_model), h.epoch[-1])
        widget = go.FigureWidget(fig)
        widget._config = {"responsive": True}  # plotly.js option: redraw at the new width when the window resizes
        return widget

    def _draw_student(self, fig, model, curves: dict, settings: Settings, n_params: int, epoch: int) -> None:
        # z alone, outside the batch: batched with the curve traces, plotly sends this heatmap's
        # x/y as undefined and JupyterLab then draws it against cell indices (browser test).
        fig.data[1].z = self._p_class1(model)
        with fig.batch_update():
            fig.data[6].x, fig.data[6].y = list(curves["epoch"]), list(curves["acc"])
            fig.data[7].x, fig.data[7].y = list(curves["epoch"]), list(curves["agree"])
            fig.layout.annotations[1].text = f"student {settings.student} ({n_params} params), epoch {epoch}"
            fig.layout.annotations[2].text = f"T = {settings.T:.2f}, alpha = {settings.alpha:.2f}"

    def to_matplotlib(self):
        """A static matplotlib picture of the current state (for readers who cannot run widgets)."""
        import matplotlib.pyplot as plt

        from ..plots import plot_decision_regions

        if self.student_model is None:
            raise ValueError("no student trained yet: call retrain() first")
        big = self.size == "large"
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.6) if not big else (22, 7))
        s = self.settings
        plot_decision_regions(self.teacher, self.data.x_test, self.data.y_test, ax=axes[0],
                              title=f"teacher: test accuracy {self.teacher_accuracy:.1%}")
        plot_decision_regions(self.student_model, self.data.x_test, self.data.y_test, ax=axes[1],
                              title=f"student {s.student}, T={s.T:.2f}, alpha={s.alpha:.2f}")
        h = self.history
        axes[2].plot(h.epoch, h.eval_accuracy, color=GREEN, lw=2, label="student test accuracy")
        axes[2].plot(h.epoch, h.eval_agreement, color=VERMILLION, lw=2, ls=":", label="agreement with teacher")
        axes[2].axhline(self.teacher_accuracy, color=BLUE, ls="--", label="teacher test accuracy")
        axes[2].set(xlabel="epoch", ylabel="fraction of test points", title="student while it trained", ylim=(0.3, 1.02))
        axes[2].legend(loc="lower right")
        fig.tight_layout()
        return fig


def playground(
    dataset: str = "spirals",
    *,
    size: str = "normal",
    demo: bool = False,
    train_now: bool = True,
    state: str | None = None,
    **kwargs: object,
) -> Playground:
    """Build the distillation playground (one cell: ``kdlab.widgets.playground()``).

    Parameters
    ----------
    dataset : {"spirals", "moons"}
        The 2-D data set.
    size : {"normal", "large"}
        ``"large"`` is the demo mode: big fonts for a projector, a figure as wide as the page.
    demo : bool
        Shorthand for ``size="large"``.
    train_now : bool
        Train the student once for the initial sliders before returning (synchronously), so that
        the figure is complete when it appears.
    state : str, optional
        A string from :meth:`Playground.state`: rebuilds that view (data set, sliders, seed, epochs,
        teacher, demo mode), overriding those arguments. A malformed string raises ValueError.
    **kwargs
        Passed to :class:`Playground` (``T``, ``alpha``, ``student``, ``epochs``, ``background``, ...).

    Examples
    --------
    >>> pg = playground("moons", train_now=False, background=False, epochs=4)
    >>> pg.set(T=2.0, alpha=0.5)   # re-trains once
    >>> pg.trainings
    1
    """
    size = check_size(size, demo)
    if state is not None:
        restored = parse_state(state)
        dataset, restored_size = restored.pop("dataset"), restored.pop("size")
        size = "large" if demo else restored_size
        kwargs.update(restored)
    return Playground(dataset, size=size, train_now=train_now, **kwargs)
