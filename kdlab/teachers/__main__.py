"""``python -m kdlab.teachers``: list the shipped teachers, or rebuild them from their recipes.

Example
-------
    python -m kdlab.teachers list
    python -m kdlab.teachers build              # every teacher, into the package
    python -m kdlab.teachers build digits --out /tmp/teachers
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from . import WEIGHTS_DIR, _describe, available, build, recipe


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kdlab.teachers", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("list", help="each teacher's recipe and recorded test accuracy")
    show.add_argument("--dir", type=Path, default=WEIGHTS_DIR, help="weights folder (default: the shipped one)")
    make = commands.add_parser("build", help="retrain teachers from their recipes (deterministic)")
    make.add_argument("names", nargs="*", metavar="NAME",
                      help=f"teachers to build (default: all of {', '.join(available())})")
    make.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="where to write (default: the package)")
    make.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    if args.command == "list":
        print(f"teachers in {args.dir}:")
        print("\n".join(_describe(args.dir)))
        return
    try:
        names = [recipe(n).name for n in args.names] or None
    except ValueError as error:
        parser.error(str(error))
    for name, entry in build(names, out_dir=args.out, progress=not args.quiet).items():
        print(f"{name}: test accuracy {entry['test_accuracy']:.4f}, {entry['parameters']:,} parameters, "
              f"built in {entry['build_seconds']:.1f} s -> {args.out / entry['file']}")


if __name__ == "__main__":
    main()
