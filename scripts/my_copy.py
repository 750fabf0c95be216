"""Copy the notebooks to my-notebooks/ and work there, so that `git pull` never meets your edits.

    python scripts/my_copy.py            # copies notebooks/NN_*.ipynb to my-notebooks/
    jupyter lab --notebook-dir=. my-notebooks/00_quickstart.ipynb

JupyterLab autosaves the notebook you work in. If that is a tracked notebook, the next `git pull`
stops on a conflict. my-notebooks/ is ignored by git and sits beside notebooks/, so the links to
../docs and ../benchmarks still work from a copy.

A copy that exists is never overwritten: run the command again after `git pull` and it adds only
the notebooks that are new. To start a notebook afresh, delete your copy and run it again.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks"
DESTINATION = ROOT / "my-notebooks"


def copy_notebooks(source: Path = SOURCE, destination: Path = DESTINATION) -> tuple[list[Path], list[Path]]:
    """Copy every ``NN_*.ipynb`` of ``source`` that ``destination`` lacks; return (copied, kept)."""
    notebooks = sorted(source.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks (NN_name.ipynb) in {source}")
    destination.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for path in notebooks:
        target = destination / path.name
        if target.exists():
            kept.append(target)
        else:
            shutil.copy2(path, target)
            copied.append(target)
    return copied, kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--into", type=Path, default=DESTINATION,
                        help="where the copies go (default: my-notebooks/ beside notebooks/, ignored by git)")
    args = parser.parse_args(argv)
    copied, kept = copy_notebooks(destination=args.into)
    for path in copied:
        print(f"copied  {path}")
    for path in kept:
        print(f"kept    {path} (yours: not overwritten)")
    first = (copied + kept)[0]
    where = first.relative_to(ROOT) if first.is_relative_to(ROOT) else first
    print(f"\nwork there: jupyter lab --notebook-dir=. {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
