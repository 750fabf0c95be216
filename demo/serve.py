"""Serve the playground's demo page for a projector, offline: ``python demo/serve.py``.

Runs ``voila demo/playground.ipynb`` on 127.0.0.1 with the ``kdlab-offline`` template (in
``demo/jupyter/``), which is Voila's ``lab`` template without its Font Awesome stylesheet from a
CDN: the page then loads nothing from outside, so it opens as fast without a network as with one.
Extra arguments go to Voila (``--port=8866``, ``--no-browser``, ``--theme=dark``, ...).
A plain ``voila demo/playground.ipynb`` works too, but asks the CDN for that stylesheet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
NOTEBOOK = DEMO_DIR / "playground.ipynb"
TEMPLATE = "kdlab-offline"
#: A Jupyter data folder holding ``voila/templates/kdlab-offline``; Voila finds templates on JUPYTER_PATH.
JUPYTER_DATA = DEMO_DIR / "jupyter"


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the template's folder first on JUPYTER_PATH."""
    env = dict(os.environ if base is None else base)
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(JUPYTER_DATA), env.get("JUPYTER_PATH")) if p)
    return env


def command(*voila_args: str) -> list[str]:
    """The Voila command line: the demo notebook, the offline template, only on this machine."""
    return [sys.executable, "-m", "voila", str(NOTEBOOK), f"--template={TEMPLATE}", "--Voila.ip=127.0.0.1",
            *voila_args]


def main(argv: list[str] | None = None) -> int:
    return subprocess.call(command(*(sys.argv[1:] if argv is None else argv)), env=environment())


if __name__ == "__main__":
    sys.exit(main())
