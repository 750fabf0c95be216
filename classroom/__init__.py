"""Autograded exercises for a class: student notebooks and an nbgrader autograder from kdlab's checks.

``python -m classroom export notebooks/*.ipynb --out class`` writes the student notebooks
(``class/student/``: solutions and outputs removed) and an nbgrader course (``class/course/``).
``python -m classroom grade class/submissions/*/*.ipynb --course class/course`` runs each learner's
notebook and reports the points per exercise: an exercise is a ``kdlab.exercises`` check called
below the notebook's "Exercises" heading, worth its points when the check's feedback is ``ok``.
See :mod:`classroom.exercises` for the rules and :mod:`classroom.grading` for the nbgrader steps.
"""

from .exercises import Exercise, find_exercises, nbgrader_source, without_solutions
from .grading import Score, export, format_scores, grade, write_csv

__all__ = ["Exercise", "Score", "find_exercises", "nbgrader_source", "without_solutions", "export", "grade",
           "format_scores", "write_csv"]
