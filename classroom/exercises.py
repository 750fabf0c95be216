"""Find the graded exercises in a kdlab notebook, and turn it into nbgrader's source and a student copy.

An exercise is a call of a check from :mod:`kdlab.exercises` (``check_kd_loss(kd_loss)``,
``exercises.check_gradient_shrink_factor(...)``, ...) in a code cell below the notebook's
"Exercises" heading: checks above it are part of the lesson. Nothing depends on cell positions, so
a rewritten notebook needs no change here. Each such call is worth one point; its id is the
answer it checks (``kd_loss``) or, for an expression, the check's name without ``check_``.

A cell tagged ``ungraded`` holds no graded exercise (e.g. "predict, then check" cells whose check
is meant to fail); a cell tagged ``solution``, and any cell that calls ``solution(...)``, is removed
from the student copy. Code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's
markers) is replaced by ``raise NotImplementedError()`` in the student copy.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass

import nbformat

import kdlab.exercises

__all__ = ["CHECKS", "Exercise", "find_exercises", "calls_solution", "without_solutions", "test_cell_source",
           "nbgrader_source"]

#: The checks that grade an exercise: every ``check_*`` that :mod:`kdlab.exercises` exports.
CHECKS = frozenset(name for name in kdlab.exercises.__all__ if name.startswith("check_"))
SOLUTION_TAG, UNGRADED_TAG = "solution", "ungraded"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
_EXERCISES_HEADING = re.compile(r"^#{1,6}\s*(\d+\.?\s*)?exercises?\b", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Exercise:
    """One graded check call in a notebook.

    Attributes
    ----------
    id : str
        Its grade id, unique in the notebook: the answer's name (``"kd_loss"``) or the check's.
    check : str
        The check's name, e.g. ``"check_kd_loss"``.
    call : str
        The call's source as the notebook writes it, e.g. ``"check_kd_loss(kd_loss)"``.
    cell : int
        The index of the learner's cell in the notebook.
    points : int
        What the exercise is worth.
    """

    id: str
    check: str
    call: str
    cell: int
    points: int = 1


def _calls(source: str) -> list[tuple[str, ast.Call, str]]:
    """Every call of a named function in the cell: (its name, the node, the code it was parsed from).

    IPython's ``%magics`` and ``!shell`` lines are translated to Python first; a cell that still does
    not parse (a learner's half-written code) has no calls.
    """
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return [(_called_name(n), n, code) for n in ast.walk(tree) if isinstance(n, ast.Call) and _called_name(n)]


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def calls_solution(source: str) -> bool:
    """Does the cell call ``solution(...)`` (``kdlab.exercises.solution``), which prints an answer?"""
    return any(name == "solution" for name, _, _ in _calls(source))


def _exercises_start(nb: nbformat.NotebookNode) -> int:
    """Index of the first markdown cell with an "Exercises" heading (0 if there is none)."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and _EXERCISES_HEADING.search(cell.source):
            return i
    return 0


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def find_exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """The graded exercises of a notebook, in order (see the module docstring for the rules).

    Parameters
    ----------
    nb : nbformat.NotebookNode
        A notebook read with ``nbformat.read(path, as_version=4)``.

    Returns
    -------
    list of Exercise

    Example
    -------
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## Exercises"),
    ...                                      nbformat.v4.new_code_cell("check_kd_loss(kd_loss)")])
    >>> [(e.id, e.check) for e in find_exercises(nb)]
    [('kd_loss', 'check_kd_loss')]
    """
    found: list[Exercise] = []
    used: set[str] = set()
    for index in range(_exercises_start(nb), len(nb.cells)):
        cell = nb.cells[index]
        tags = _tags(cell)
        if cell.cell_type != "code" or UNGRADED_TAG in tags or SOLUTION_TAG in tags or calls_solution(cell.source):
            continue
        for name, node, code in _calls(cell.source):
            if name not in CHECKS:
                continue
            first = node.args[0] if node.args else None
            base = first.id if isinstance(first, ast.Name) else name.removeprefix("check_")
            grade_id, k = base, 2
            while grade_id in used:
                grade_id, k = f"{base}_{k}", k + 1
            used.add(grade_id)
            found.append(Exercise(grade_id, name, ast.get_source_segment(code, node), index))
    return found


def without_solutions(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy without the cells tagged ``solution`` or calling ``solution(...)``, and without outputs."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells
                if SOLUTION_TAG not in _tags(c) and not (c.cell_type == "code" and calls_solution(c.source))]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _nbgrader(grade_id: str, *, grade: bool, solution: bool, points: int = 0) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": grade, "schema_version": 3, "solution": solution,
            "task": False}
    if grade:
        meta["points"] = points
    return meta


def test_cell_source(exercise: Exercise) -> str:
    """The autograder's cell for one exercise: the notebook's own check call, passed when ``.ok``."""
    return (f"# Autograder: exercise {exercise.id!r}, {exercise.points} point(s). It re-runs the check above.\n"
            f"_feedback = {exercise.call}\n"
            "assert _feedback.ok, str(_feedback)")


def nbgrader_source(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[Exercise]]:
    """nbgrader's "source" version of a kdlab notebook, and its exercises.

    Solutions are removed (:func:`without_solutions`); after each exercise's cell comes a locked
    autograder cell (nbgrader ``grade``) that re-runs its check and passes when the feedback is
    ``ok``; cells with ``### BEGIN SOLUTION`` become nbgrader solution cells.
    """
    nb = without_solutions(nb)
    exercises = find_exercises(nb)
    by_cell: dict[int, list[Exercise]] = {}
    for exercise in exercises:
        by_cell.setdefault(exercise.cell, []).append(exercise)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and BEGIN_SOLUTION in cell.source:
            cell.metadata["nbgrader"] = _nbgrader(f"answer_{index}", grade=False, solution=True)
        cells.append(cell)
        for exercise in by_cell.get(index, []):
            test = nbformat.v4.new_code_cell(test_cell_source(exercise))
            test.metadata["nbgrader"] = _nbgrader(exercise.id, grade=True, solution=False, points=exercise.points)
            cells.append(test)
    nb.cells = cells
    return nb, exercises
