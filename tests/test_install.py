"""The install files agree with each other, CI runs what the README tells a learner to run, and
the README's launch command serves the repository's root; the licence and citation files agree with
pyproject.toml."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines) -> dict[str, str]:
    """{package: exact version} from requirement strings (a local label such as +cpu dropped)."""
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{line!r} is not pinned exactly"
        out[norm(req.name)] = specs[0].version.split("+")[0]
    return out


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def conda_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
        elif not dep.startswith(("python", "pip")):
            conda.append(dep.replace("=", "==", 1))
    return pins(conda) | pins(pip)


def test_pyproject_pins_torch_exactly_and_no_torchvision():
    deps = pins(pyproject()["project"]["dependencies"])
    assert deps["torch"] == "2.13.0"
    everything = (ROOT / "pyproject.toml").read_text() + (ROOT / "binder/requirements.txt").read_text()
    assert "torchvision" not in everything


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"] and env["channels"] == ["conda-forge"]
    assert conda_pins() == pins(pyproject()["project"]["dependencies"])
    pip_section = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "-e ." in pip_section, "environment.yml must install kdlab itself"
    # torch==2.13.0 with PyTorch's CPU index added: its 2.13.0+cpu ranks above PyPI's (CUDA) build,
    # and the same line works on macOS, whose wheels have no +cpu label
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip_section
    assert "torch==2.13.0" in pip_section


def test_every_extra_is_pinned_exactly():
    extras = pyproject()["project"]["optional-dependencies"]
    for requirements in extras.values():
        pins(requirements)  # asserts an exact pin for each
    test = pins(extras["test"])
    assert pins(extras["site"]).items() <= test.items(), "the test extra builds the site: same pins"
    assert pins(extras["demo"]).items() <= test.items()
    assert {"ruff", "sphinx", "myst-nb", "sphinx-book-theme", "jupyter-repo2docker"} <= set(test)


def test_binder_matches_pyproject_and_installs_kdlab():
    binder = (ROOT / "binder/requirements.txt").read_text().splitlines()
    project = pyproject()["project"]
    expected = pins(project["dependencies"]) | pins(project["optional-dependencies"]["demo"])
    assert pins(binder) == expected
    assert "torch==2.13.0+cpu" in binder, "Binder must take the CPU-only build of torch"
    assert any(line.startswith("--extra-index-url") and "/whl/cpu" in line for line in binder)
    assert (ROOT / "binder/runtime.txt").read_text().strip() == "python-3.11"
    post_build = ROOT / "binder/postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert re.search(r"pip install .*--no-deps.* \.$", post_build.read_text(), re.M)


def readme_block(heading: str) -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(rf"{heading}.*?```(?:bash)?\n(.*?)```", readme, re.S)
    assert match, f"README.md has no code block after {heading!r}"
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command():
    command = readme_block("Run every test")
    assert "pip install" in command and '".[test]"' in command and "pytest" in command
    assert "ruff check ." in command, "the test command lints with ruff"
    assert command in (ROOT / ".ci/run").read_text().splitlines()


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("### Install and open")
    section = text[start:text.index("\n### ", start + 1)]
    return [b.strip() for b in re.findall(r"```(?:bash|powershell)\n(.*?)```", section, re.S)]


def test_readme_install_commands_open_the_suite_from_the_root():
    linux, macos, windows = readme_blocks()
    assert linux == readme_block("Install and open"), "the Linux pip route comes first"
    # PyTorch's documented CPU route for pip on Linux: torch alone from its CPU wheel index
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu && pip install -e ." in linux
    for command in (linux, macos, windows):
        assert "pip install -e ." in command and "jupyter lab --notebook-dir=. notebooks" in command, command
        assert "00_quickstart.ipynb" in command
    assert "py -3.11 -m venv .venv" in windows and r".venv\Scripts\Activate.ps1" in windows
    assert "download.pytorch.org" not in macos + windows, "PyPI's macOS and Windows wheels are CPU-only"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_launch_serves_the_repository_root(tmp_path):
    """JupyterLab started as the README says serves the root: a notebook's ../docs and ../benchmarks
    links open (with only the notebook's path, notebooks/ would be the root and they would be 404s)."""
    launch = readme_block("Install and open").split("&&")[-1].strip()
    assert launch.startswith("jupyter lab ")
    port, token = _free_port(), "kdlab-test"
    args = [sys.executable, "-m", "jupyterlab", *shlex.split(launch)[2:], "--no-browser", f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # CI runs as root
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    server = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def status(path: str) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/contents/{path}?content=0",
                                         headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status("")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {server.communicate(timeout=10)[1][-2000:]}")
                time.sleep(0.5)
        for path in ("notebooks/00_quickstart.ipynb", "docs/claims.md", "docs/glossary.md", "benchmarks/RESULTS.md"):
            assert status(path) == 200, f"{path} is not served: the server's root is not the repository's"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_licence_and_citation_agree_with_pyproject():
    project = pyproject()["project"]
    licence = (ROOT / "LICENSE").read_text()
    assert project["license"] == {"text": "MIT"} and licence.startswith("MIT License")
    assert "Copyright (c) 2026 the kdlab authors" in licence
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert {"cff-version", "message", "title", "authors"} <= set(cff), "CFF 1.2.0's required keys"
    assert cff["version"] == project["version"] and cff["license"] == "MIT"
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    assert cff["repository-code"] == "https://github.com/kdlab/kdlab"
    assert "github.com/kdlab/kdlab" in (ROOT / "README.md").read_text()
