"""Binder readiness: what can be checked without building the image.

tests/test_install.py already checks that binder/requirements.txt, environment.yml and
pyproject.toml pin the same versions, that Binder takes the CPU build of torch and that
binder/postBuild installs kdlab. Here:

- repo2docker will read binder/ as intended, and postBuild really installs kdlab (run against a
  stub ``python``);
- the tested environment is the one Binder builds, and it carries the front-end code widgets need;
- the README's Binder badge opens the notebook that explains the path through the suite;
- every notebook runs with the network blocked, and its kernel stays within mybinder.org's 1 GB.

The last check runs each notebook once, offline, in FAST mode by default (``KDLAB_BINDER_MODE=default``
runs the default path a learner runs, ~45 s per notebook). Peak memory is the kernel's ``VmHWM``.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import papermill
import pytest
from packaging.requirements import Requirement

from binder_tools import run_offline, sitecustomize_blocks_network
from notebook_tools import NOTEBOOK_DIR, NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
MODE = os.environ.get("KDLAB_BINDER_MODE", "fast")
MEMORY_LIMIT = 1024**3  # mybinder.org guarantees 1 GB (1 GiB in Kubernetes units) per user
# Front-end code the notebooks' widgets need in JupyterLab: ipywidgets' manager, anywidget (plotly's
# FigureWidget is an anywidget), and plotly's renderer for static plotly figures.
WIDGET_LABEXTENSIONS = {"@jupyter-widgets/jupyterlab-manager", "anywidget", "jupyterlab-plotly"}


def binder_requirements() -> list[Requirement]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [Requirement(line.split("#")[0].strip()) for line in lines
            if line.split("#")[0].strip() and not line.strip().startswith("-")]


def test_repo2docker_reads_binder_folder_as_intended():
    files = {p.name for p in BINDER.iterdir()}
    assert {"requirements.txt", "runtime.txt", "postBuild"} <= files
    # repo2docker takes environment.yml (conda) or Pipfile/setup.py over requirements.txt when
    # they sit in binder/, and would then skip the CPU-only torch pin.
    competing = files & {"environment.yml", "Pipfile", "Pipfile.lock", "setup.py", "Project.toml",
                         "install.R", "default.nix", "Dockerfile"}
    assert not competing, f"binder/ holds {competing}: repo2docker would build from those instead"
    post_build = (BINDER / "postBuild").read_text()
    assert post_build.startswith("#!"), "postBuild needs a shebang line"
    assert (BINDER / "postBuild").stat().st_mode & stat.S_IXUSR, "postBuild must be executable"


def test_post_build_installs_kdlab_from_the_repository_root(tmp_path):
    """Run binder/postBuild as repo2docker does (from the root) with a stub python that records its call."""
    stub = tmp_path / "bin"
    stub.mkdir()
    calls = tmp_path / "calls.txt"
    for name in ("python", "python3", "pip"):
        (stub / name).write_text(f'#!/bin/sh\necho "{name} $* (cwd=$PWD)" >> "{calls}"\n')
        (stub / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{stub}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(["bash", str(BINDER / "postBuild")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    recorded = calls.read_text() if calls.exists() else ""
    assert re.search(rf"pip install .*\s\.\s\(cwd={re.escape(str(ROOT))}\)", recorded), (
        f"postBuild should pip-install the repository (kdlab) from its root; it ran:\n{recorded}"
    )
    assert "torch" not in recorded, "postBuild must not reinstall torch (requirements.txt pins the CPU build)"


def test_tested_environment_is_the_one_binder_builds():
    """The environment the tests run in has Binder's versions (voila only with the [demo] extra)."""
    wrong, missing = [], []
    for req in binder_requirements():
        (spec,) = req.specifier
        pinned = spec.version.split("+")[0]
        try:
            installed = md.version(req.name).split("+")[0]
        except md.PackageNotFoundError:
            missing.append(req.name)
            continue
        if installed != pinned:
            wrong.append(f"{req.name}: binder pins {pinned}, tests run {installed}")
    assert not wrong, "\n".join(wrong)
    assert set(missing) <= {"voila"}, f"not installed here: {missing}"


def _closure(names: list[str]) -> set[str]:
    """The installed distributions ``names`` pull in (their requirements, recursively, no extras)."""
    seen, todo = set(), list(names)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen.add(name)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_binder_packages_bring_the_widget_front_ends():
    """Working widgets on Binder: the pinned packages install JupyterLab's widget extensions."""
    dists = _closure([r.name for r in binder_requirements() if r.name != "voila"])
    found = set()
    for name in dists:
        for f in md.distribution(name).files or []:
            parts = Path(str(f)).parts
            if "labextensions" in parts and parts[-1] == "package.json":
                ext = parts[parts.index("labextensions") + 1:-1]
                found.add("/".join(ext))
    assert WIDGET_LABEXTENSIONS <= found, f"missing lab extensions: {WIDGET_LABEXTENSIONS - found}"


def test_readme_binder_badge_opens_the_path_through_the_suite():
    readme = (ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else ""
    links = re.findall(r"https://mybinder\.org/v2/gh/[^)\s\"']+", readme)
    assert links, "README.md should carry a Binder badge (https://mybinder.org/v2/gh/...)"
    match = re.search(r"urlpath=(?:%2F)?(?:lab(?:/|%2F)tree(?:/|%2F))([^&)\s]+\.ipynb)", links[0])
    assert match, f"the badge should open a notebook with ?urlpath=lab/tree/...: {links[0]}"
    target = ROOT / match.group(1).replace("%2F", "/")
    assert target.exists(), f"the Binder badge opens {target.relative_to(ROOT)}, which does not exist"
    assert target == NOTEBOOK_DIR / "00_quickstart.ipynb", "the badge should open the quickstart"


def test_network_guard_blocks_the_network_but_not_loopback(tmp_path):
    """The offline kernel below is only meaningful if its guard works."""
    output, attempts = sitecustomize_blocks_network(tmp_path)
    assert "REACHED" not in output and output.count("BLOCKED") == 2, output
    assert "LOOPBACK OK" in output, output
    assert len(attempts) == 2 and "pypi.org" in attempts[0] and "151.101.0.223" in attempts[1], attempts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline_within_binder_memory(path, tmp_path, record_property):
    nb = papermill.iorw.load_notebook_node(str(path))
    if MODE == "fast":
        nb = papermill.parameterize.parameterize_notebook(nb, {"FAST": True})
    elif MODE != "default":
        raise ValueError(f"KDLAB_BINDER_MODE must be 'fast' or 'default', got {MODE!r}")
    run = run_offline(nb, cwd=NOTEBOOK_DIR, tmp=tmp_path)
    peak = run.peak_rss_bytes
    record_property("peak_rss_mib", None if peak is None else round(peak / 2**20))
    print(f"{path.name} ({MODE} mode): {run.seconds:.1f} s, kernel peak RSS "
          f"{'n/a' if peak is None else f'{peak / 2**20:.0f} MiB'}", file=sys.stderr)
    assert not run.network_attempts, f"{path.name} tried to reach the network: {run.network_attempts}"
    if peak is None:
        pytest.skip("no /proc here: kernel peak memory not measured (the offline run passed)")
    assert peak < MEMORY_LIMIT, f"{path.name}: kernel peak RSS {peak / 2**20:.0f} MiB, over 1 GiB"
