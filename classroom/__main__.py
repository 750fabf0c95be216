"""``python -m classroom export|grade``: student notebooks, and their autograding with nbgrader."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .grading import DEFAULT_TIMEOUT, export, format_scores, grade, write_csv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classroom", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ex = commands.add_parser("export", help="write student notebooks and the nbgrader course that grades them")
    ex.add_argument("notebooks", nargs="+", type=Path, help="kdlab notebooks, e.g. notebooks/*.ipynb")
    ex.add_argument("--out", type=Path, default=Path("class"), help="output folder (default: class)")
    gr = commands.add_parser("grade", help="autograde learners' notebooks: points per exercise")
    gr.add_argument("submissions", nargs="+", type=Path,
                    help="learners' notebooks, as <student>/<notebook>.ipynb (the folder names the learner)")
    gr.add_argument("--course", type=Path, default=Path("class/course"), help="the course folder made by export")
    gr.add_argument("--student", help="the learner's id, if it is not the folder's name (one learner)")
    gr.add_argument("--fast", action="store_true", help="run the notebooks with FAST = True (quicker)")
    gr.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds a cell may run")
    gr.add_argument("--csv", type=Path, help="also write the points to this CSV file")
    args = parser.parse_args(argv)

    if args.command == "export":
        found = export(args.notebooks, args.out)
        for name, exercises in found.items():
            listed = ", ".join(e.id for e in exercises) or "no graded exercise"
            print(f"{name}: {len(exercises)} exercise(s): {listed}")
        print(f"student notebooks: {args.out / 'student'}; nbgrader course: {args.out / 'course'}")
        return 0
    submissions = [(args.student or path.resolve().parent.name, path) for path in args.submissions]
    scores = grade(args.course, submissions, fast=args.fast, timeout=args.timeout)
    print(format_scores(scores))
    if args.csv:
        write_csv(scores, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
