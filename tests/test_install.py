"""The install files agree with each other, and CI runs what the README tells a learner to run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
    assert command in (ROOT / ".ci/run").read_text().splitlines()


def test_readme_install_command_opens_the_suite():
    command = readme_block("Install and open")
    assert "pip install" in command and "jupyter lab" in command and "00_quickstart.ipynb" in command
