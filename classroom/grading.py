"""Student notebooks and their autograding, with nbgrader, from the checks the notebooks call.

:func:`export` turns kdlab notebooks into an nbgrader course folder (``course/source/<notebook>/``,
one assignment per notebook, see :func:`classroom.exercises.nbgrader_source`), runs nbgrader's
``generate_assignment`` (solutions and outputs removed, autograder cells locked) and copies the
student versions to ``student/``. :func:`grade` puts each learner's notebook in
``course/submitted/<student>/<notebook>/``, runs nbgrader's ``autograde`` (it restores the
autograder cells, runs the notebook in a fresh kernel and scores each autograder cell: full points
if the check's feedback is ``ok``, none otherwise) and reads the points per exercise from nbgrader's
gradebook (``course/gradebook.db``), with the check's feedback for the exercises that failed.
"""

from __future__ import annotations

import csv
import os
import shutil
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import nbformat

from .exercises import Exercise, nbgrader_source

__all__ = ["Score", "export", "grade", "format_scores", "write_csv"]

#: Seconds a cell may run under the autograder (nbgrader's default, 30 s, is short for training cells).
DEFAULT_TIMEOUT = 600


@dataclass(frozen=True)
class Score:
    """Points of one exercise in one learner's notebook."""

    student: str
    notebook: str
    exercise: str
    points: float
    max_points: float
    feedback: str = ""


def _config(course: Path, timeout: int):
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course.resolve())
    config.Execute.timeout = timeout
    return config


def _run_nbgrader(app_class, course: Path, timeout: int, **coursedir_attrs: str) -> None:
    """Run one nbgrader converter (GenerateAssignment, Autograde) on the course; raise if it fails."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    config = _config(course, timeout)
    coursedir = CourseDirectory(config=config)
    for name, value in coursedir_attrs.items():
        setattr(coursedir, name, value)
    app = app_class(coursedir=coursedir, config=config)
    app.force = True
    for flag in ("create_assignment", "create_student"):
        if hasattr(app, flag):
            setattr(app, flag, True)
    # nbgrader runs the `alembic` command to set up a new gradebook: make sure this Python's scripts
    # folder (where pip put it) is on PATH, also when the virtual environment is not activated.
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), path])
    try:
        result = capture_log(app)
    finally:
        os.environ["PATH"] = path
    if not result["success"]:
        raise RuntimeError(f"nbgrader {app_class.__name__} failed for {coursedir_attrs}:\n"
                           f"{result.get('error', '')}\n{result.get('log', '')}")


def export(notebooks: Iterable[str | Path], out: str | Path) -> dict[str, list[Exercise]]:
    """Make the student notebooks and the nbgrader course that grades them.

    Parameters
    ----------
    notebooks : iterable of path
        kdlab notebooks (the instructor's versions).
    out : path
        Folder to write: ``student/<notebook>.ipynb`` (hand these out) and ``course/`` (nbgrader's
        course folder: keep it for :func:`grade`).

    Returns
    -------
    dict
        For each notebook (by file stem), the exercises found in it.

    Example
    -------
    >>> export(["notebooks/05_pitfalls.ipynb"], "class")  # doctest: +SKIP
    {'05_pitfalls': [Exercise(id='fixed_kldivloss_loss', ...), ...]}
    """
    from nbgrader.converters import GenerateAssignment

    out = Path(out)
    course, student_dir = out / "course", out / "student"
    student_dir.mkdir(parents=True, exist_ok=True)
    found = {}
    for path in map(Path, notebooks):
        source, exercises = nbgrader_source(nbformat.read(path, as_version=4))
        assignment = path.stem
        target = course / "source" / assignment / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(source, target)
        _run_nbgrader(GenerateAssignment, course, DEFAULT_TIMEOUT, assignment_id=assignment)
        shutil.copyfile(course / "release" / assignment / path.name, student_dir / path.name)
        found[assignment] = exercises
    return found


def _set_fast(nb: nbformat.NotebookNode) -> None:
    """FAST = True at the end of the ``parameters`` cell, as papermill would set it."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = cell.source.rstrip() + "\nFAST = True  # set by the autograder (--fast)"
            return
    raise ValueError("fast=True needs a code cell tagged 'parameters' (defining FAST); this notebook has none")


def _failures(autograded: Path) -> dict[str, str]:
    """grade id -> the first line of the error an autograder cell showed (the check's feedback)."""
    messages = {}
    for cell in nbformat.read(autograded, as_version=4).cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        for output in cell.get("outputs", []):
            if grade_id and output.get("output_type") == "error":
                text = f"{output.get('ename', '')}: {output.get('evalue', '')}".strip()
                messages[grade_id] = text.splitlines()[0] if text else "error"
    return messages


def grade(course: str | Path, submissions: Sequence[tuple[str, str | Path]], *, fast: bool = False,
          timeout: int = DEFAULT_TIMEOUT) -> list[Score]:
    """Autograde learners' notebooks: the points of each exercise, from its check's feedback.

    Parameters
    ----------
    course : path
        The ``course`` folder written by :func:`export`.
    submissions : sequence of (student, path)
        Each learner's id and notebook; the file name must be that of an exported notebook.
    fast : bool
        Run the notebooks with ``FAST = True`` (fewer epochs and seeds): quicker, and the checks grade
        the same answers.
    timeout : int
        Seconds a cell may run before nbgrader stops it.

    Returns
    -------
    list of Score
        One per exercise and submission, in notebook order.
    """
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde

    course = Path(course)
    scores = []
    for student, path in submissions:
        path = Path(path)
        assignment = path.stem
        if not (course / "source" / assignment / path.name).is_file():
            exported = sorted(p.name for p in (course / "source").glob("*/*.ipynb"))
            raise ValueError(f"{path} is not one of the exported notebooks in {course} "
                             f"({', '.join(exported) or 'none'}): export it first with `python -m classroom export`")
        nb = nbformat.read(path, as_version=4)
        if fast:
            _set_fast(nb)
        target = course / "submitted" / student / assignment / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        _run_nbgrader(Autograde, course, timeout, assignment_id=assignment, student_id=student)
        failures = _failures(course / "autograded" / student / assignment / path.name)
        source = nbformat.read(course / "source" / assignment / path.name, as_version=4)
        order = [c.metadata["nbgrader"]["grade_id"] for c in source.cells
                 if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
        with Gradebook(f"sqlite:///{(course / 'gradebook.db').resolve()}") as gradebook:  # nbgrader's default
            graded = {g.name: g for g in gradebook.find_submission_notebook(assignment, assignment, student).grades}
            for grade_id in order:
                g = graded[grade_id]
                scores.append(Score(student, assignment, grade_id, float(g.score), float(g.max_score),
                                    "" if g.score == g.max_score else failures.get(grade_id, "")))
    return scores


def format_scores(scores: Sequence[Score]) -> str:
    """A plain-text table: points per exercise, and a total per learner and notebook."""
    rows = [("student", "notebook", "exercise", "points", "feedback")]
    totals: dict[tuple[str, str], list[float]] = {}
    for s in scores:
        rows.append((s.student, s.notebook, s.exercise, f"{s.points:g}/{s.max_points:g}", s.feedback[:100]))
        total = totals.setdefault((s.student, s.notebook), [0.0, 0.0])
        total[0] += s.points
        total[1] += s.max_points
    for (student, notebook), (got, best) in totals.items():
        rows.append((student, notebook, "TOTAL", f"{got:g}/{best:g}", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths)) + ("  " + r[4] if r[4] else "")
                     for r in rows)


def write_csv(scores: Sequence[Score], path: str | Path) -> None:
    """One row per exercise and learner: student, notebook, exercise, points, max_points, feedback."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([field.name for field in fields(Score)])
        writer.writerows(astuple(s) for s in scores)
