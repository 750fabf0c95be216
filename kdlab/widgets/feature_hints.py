"""Notebook 03's widget: the hint weight and the guided/hint layers, re-trained on demand."""

from __future__ import annotations

from collections.abc import Sequence

from ..lessons.feature_hints import HintSetup, run_method
from .base import Widget

__all__ = ["HintExplorer"]


class HintExplorer(Widget):
    """A widget: choose the hint weight, the guided layer and the hint layer; train (hints + KD
    together) and see the student's test accuracy and its CKA with the teacher's hint layer.

    Training starts only when a control is released (``continuous_update=False``), shows its
    progress per epoch, and never two at once. :meth:`run` is the plain method the controls call;
    tests and scripts call it directly. Every run is appended to :attr:`results`.

    Parameters
    ----------
    setup : HintSetup
        The data, teacher, student factory and training settings.
    weights : sequence of float
        The hint weights offered (0 is plain KD).
    seed : int
        The student's seed (the same for every run, so only the controls differ).
    """

    def __init__(self, setup: HintSetup, weights: Sequence[float] = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0),
                 seed: int = 0) -> None:
        import ipywidgets as w

        self.setup, self.seed = setup, seed
        self.results: list[dict] = []
        self._busy = False
        n_student = len(setup.make_student(seed).blocks)
        n_teacher = len(setup.teacher.blocks)
        self.weight = w.SelectionSlider(options=[float(v) for v in weights], value=float(setup.hint_weight),
                                        description="hint weight", continuous_update=False,
                                        style={"description_width": "initial"})
        self.student_layer = w.Dropdown(options=[(f"student block {i}", i) for i in range(n_student)],
                                        value=setup.student_layer, description="guided layer",
                                        style={"description_width": "initial"})
        self.teacher_layer = w.Dropdown(options=[(f"teacher block {i}", i) for i in range(n_teacher)],
                                        value=setup.teacher_layer, description="hint layer",
                                        style={"description_width": "initial"})
        self.progress = w.IntProgress(value=0, min=0, max=setup.epochs, description="epochs")
        self.status = w.HTML("Change a control to train a student (hints + KD together).")
        self.table = w.HTML(self._table_html())
        for control in (self.weight, self.student_layer, self.teacher_layer):
            control.observe(self._on_change, names="value")
        self.ui = w.VBox([w.HBox([self.weight, self.student_layer, self.teacher_layer]),
                            w.HBox([self.progress, self.status]), self.table])

    def _on_progress(self, state) -> None:
        self.progress.value = state.epoch

    def _on_change(self, _change=None) -> None:
        self.run(self.weight.value, self.student_layer.value, self.teacher_layer.value)

    def run(self, hint_weight: float, student_layer: int, teacher_layer: int) -> dict | None:
        """Train one student with these settings; returns its result (None if a run is under way)."""
        if self._busy:
            self.status.value = "Still training the previous student: wait for it to finish."
            return None
        self._busy = True
        self.progress.value = 0
        self.status.value = (f"training: weight {hint_weight:g}, student block {student_layer} → "
                             f"teacher block {teacher_layer} …")
        try:
            method = "hints + KD" if hint_weight > 0 else "KD"
            result = run_method(self.setup, method, self.seed, hint_weight=hint_weight,
                                student_layer=student_layer, teacher_layer=teacher_layer,
                                callbacks=[self._on_progress])
            result.update(hint_weight=float(hint_weight), student_layer=student_layer, teacher_layer=teacher_layer)
            self.results.append(result)
            self.status.value = (f"accuracy <b>{result['accuracy']:.3f}</b>, CKA(guided, hint) "
                                 f"<b>{result['cka']:.3f}</b>")
            self.table.value = self._table_html()
            return result
        finally:
            self._busy = False

    def _table_html(self) -> str:
        if not self.results:
            return "<i>no runs yet</i>"
        rows = "".join(
            f"<tr><td>{r['hint_weight']:g}</td><td>{r['student_layer']}</td><td>{r['teacher_layer']}</td>"
            f"<td>{r['accuracy']:.3f}</td><td>{r['cka']:.3f}</td></tr>" for r in self.results)
        return ("<table><tr><th>hint weight</th><th>guided (student block)</th><th>hint (teacher block)</th>"
                f"<th>test accuracy</th><th>CKA</th></tr>{rows}</table>")
