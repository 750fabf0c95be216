"""scripts/my_copy.py: personal copies of the notebooks that `git pull` never touches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts/my_copy.py"


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_copies_every_notebook_and_never_overwrites_one(tmp_path):
    into = tmp_path / "mine"
    out = run("--into", str(into))
    tracked = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name for p in into.iterdir()) == [p.name for p in tracked]
    assert all((into / p.name).read_bytes() == p.read_bytes() for p in tracked)
    assert out.count("copied") == len(tracked)

    edited = into / tracked[0].name
    edited.write_text("my edits")
    (into / tracked[-1].name).unlink()  # as if it were new after a git pull
    out = run("--into", str(into))
    assert edited.read_text() == "my edits", "a learner's copy was overwritten"
    assert (into / tracked[-1].name).read_bytes() == tracked[-1].read_bytes()
    assert out.count("copied") == 1 and out.count("kept") == len(tracked) - 1


def test_default_copies_sit_beside_notebooks_and_git_ignores_them():
    import importlib.util

    spec = importlib.util.spec_from_file_location("my_copy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.DESTINATION.parent == ROOT, "copies must sit beside notebooks/ so ../docs links work"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert f"{module.DESTINATION.name}/" in ignored, "git must ignore the personal copies"
