"""The instructor kit's student notebooks and autograder (``python -m classroom``, built on nbgrader).

The rules that find the exercises are tested on a small fixture notebook
(``tests/fixtures/classroom_fixture.ipynb``: a check inside the lesson, two exercises written with
nbgrader's solution markers, an "ungraded" predict-then-check cell, a ``solution(...)`` cell and a
cell tagged ``solution``) and on every real notebook (without running them). The autograder runs on
the fixture's solutions (full marks) and on a wrong answer (not full marks), and on one real
notebook as exported, whose placeholders are wrong answers.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from classroom import export, find_exercises, format_scores, grade, nbgrader_source, write_csv
from classroom.__main__ import main
from classroom.exercises import CHECKS, calls_solution
from notebook_tools import NOTEBOOKS

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "classroom_fixture.ipynb"
try:
    import nbgrader  # noqa: F401
except ImportError:  # pragma: no cover - nbgrader is in the [test] extra
    nbgrader = None
needs_nbgrader = pytest.mark.skipif(nbgrader is None,
                                    reason="nbgrader is in the [test] extra: pip install -e '.[test]'")

def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cell(source: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


# --------------------------------------------------------------------------------------------
# Finding the exercises (no execution)
# --------------------------------------------------------------------------------------------

def test_the_exercises_are_the_checks_called_below_the_heading():
    found = find_exercises(read(FIXTURE))
    # not the lesson's check above the heading, the "ungraded" cell, nor the solution cells
    assert [(e.id, e.check) for e in found] == [("softmax_with_temperature", "check_soft_targets"),
                                                ("answer", "check_regressor_parameters")]
    assert found[1].call == "check_regressor_parameters(answer, student_width=8, teacher_width=64)"


def test_attribute_calls_magics_repeats_and_broken_cells():
    nb = nbformat.v4.new_notebook(cells=[
        code_cell("check_kd_loss(kd_loss)"),  # above the heading: part of the lesson
        nbformat.v4.new_markdown_cell("Some text\n\n## 4. Exercises"),
        code_cell("%time x = 1\nexercises.check_gradient_shrink_factor(2.0, T_from=4.0, T_to=8.0)"),
        code_cell("check_kd_loss(kd_loss)\ncheck_kd_loss(kd_loss)"),
        code_cell("def broken(:\n    check_kd_loss(kd_loss)"),  # a half-written cell: no crash, nothing found
        code_cell("print(check_not_a_kdlab_check(1))"),
    ])
    assert [e.id for e in find_exercises(nb)] == ["gradient_shrink_factor", "kd_loss", "kd_loss_2"]


def test_a_notebook_without_an_exercises_heading_grades_every_check():
    nb = nbformat.v4.new_notebook(cells=[code_cell("check_entropy_trend(trend, limit)")])
    assert [e.id for e in find_exercises(nb)] == ["trend"]


def test_the_graded_checks_are_kdlabs():
    import kdlab.exercises

    assert "check_kd_loss" in CHECKS and "check_distillation_loss" in CHECKS
    assert all(callable(getattr(kdlab.exercises, name)) for name in CHECKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_gets_a_graded_student_version(path):
    """Each real notebook: exercises found, each followed by its autograder cell, no solution left."""
    source, exercises = nbgrader_source(read(path))
    assert exercises, f"{path.name}: no kdlab check below its Exercises heading"
    graded = [c for c in source.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert [c.metadata["nbgrader"]["grade_id"] for c in graded] == [e.id for e in exercises]
    for cell, exercise in zip(graded, exercises):
        assert exercise.call in cell.source and cell.metadata["nbgrader"]["locked"]
    for cell in source.cells:
        assert "solution" not in cell.metadata.get("tags", [])
        if cell.cell_type == "code":
            assert not calls_solution(cell.source), cell.source
            assert cell.outputs == []


# --------------------------------------------------------------------------------------------
# Export and autograding with nbgrader
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    out = tmp_path_factory.mktemp("class")
    found = export([FIXTURE], out)
    assert [e.id for e in found["classroom_fixture"]] == ["softmax_with_temperature", "answer"]
    return out


def solved(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A learner's notebook with the instructor's answers: the source without nbgrader's markers."""
    for cell in nb.cells:
        cell.source = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION\n", "", cell.source, flags=re.MULTILINE)
    return nb


@needs_nbgrader
def test_the_student_notebook_has_no_solution_and_no_output(course):
    student = read(course / "student" / FIXTURE.name)
    text = "\n".join(c.source for c in student.cells)
    assert "z.max(dim=-1" not in text and "answer = 8 * 64 + 64" not in text  # the solutions' code
    assert "instructor notes" not in text and 'solution("' not in text  # the solution cells
    assert text.count("raise NotImplementedError()") == 2
    assert all(c.outputs == [] for c in student.cells if c.cell_type == "code")
    assert "T is ignored" in text  # the ungraded cell stays, ungraded


@needs_nbgrader
def test_the_solutions_get_full_marks_and_a_wrong_answer_does_not(course, tmp_path):
    source = read(course / "course" / "source" / "classroom_fixture" / FIXTURE.name)
    (tmp_path / "solutions").mkdir()
    nbformat.write(solved(source), tmp_path / "solutions" / FIXTURE.name)
    wrong = solved(read(course / "course" / "source" / "classroom_fixture" / FIXTURE.name))
    for cell in wrong.cells:
        cell.source = cell.source.replace("answer = 8 * 64 + 64", "answer = 8 * 64  # forgot the bias")
    (tmp_path / "wrong").mkdir()
    nbformat.write(wrong, tmp_path / "wrong" / FIXTURE.name)

    scores = grade(course / "course", [("solutions", tmp_path / "solutions" / FIXTURE.name),
                                       ("wrong", tmp_path / "wrong" / FIXTURE.name)], fast=True)
    by = {(s.student, s.exercise): s for s in scores}
    assert [(s.exercise, s.points, s.max_points) for s in scores if s.student == "solutions"] == [
        ("softmax_with_temperature", 1, 1), ("answer", 1, 1)]
    assert by["wrong", "softmax_with_temperature"].points == 1
    assert by["wrong", "answer"].points == 0 and "Not yet" in by["wrong", "answer"].feedback
    table = format_scores(scores)
    assert re.search(r"solutions\s+classroom_fixture\s+TOTAL\s+2/2", table)
    assert re.search(r"wrong\s+classroom_fixture\s+TOTAL\s+1/2", table)
    write_csv(scores, tmp_path / "grades.csv")
    header = (tmp_path / "grades.csv").read_text().splitlines()[0]
    assert header == "student,notebook,exercise,points,max_points,feedback"


@needs_nbgrader
def test_the_command_line_exports_and_grades_a_real_notebook(tmp_path, capsys):
    """One real notebook, as a learner receives it: its placeholders are wrong answers."""
    path = next(p for p in NOTEBOOKS if p.name.startswith("05_"))
    assert main(["export", str(path), "--out", str(tmp_path / "class")]) == 0
    exercises = find_exercises(read(path))
    submission = tmp_path / "learner" / path.name
    submission.parent.mkdir()
    submission.write_bytes((tmp_path / "class" / "student" / path.name).read_bytes())
    capsys.readouterr()
    assert main(["grade", str(submission), "--course", str(tmp_path / "class" / "course"), "--fast"]) == 0
    out = capsys.readouterr().out
    for exercise in exercises:
        assert re.search(rf"learner\s+{path.stem}\s+{exercise.id}\s+[01]/1", out), out
    got, best = map(int, re.search(rf"learner\s+{path.stem}\s+TOTAL\s+(\d+)/(\d+)", out).groups())
    assert best == len(exercises) and got < best, out


@needs_nbgrader
def test_grading_a_notebook_that_was_not_exported_says_so(tmp_path):
    with pytest.raises(ValueError, match="not one of the exported notebooks"):
        grade(tmp_path, [("alice", FIXTURE)])
