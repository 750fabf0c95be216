"""Binder readiness: what can be checked without building the image.

tests/test_install.py already checks that binder/requirements.txt, environment.yml and
pyproject.toml pin the same versions, that Binder takes the CPU build of torch and that
binder/postBuild installs kdlab. Here:

- repo2docker will read binder/ as intended, and postBuild really installs kdlab (run against a
  stub ``python``);
- the build plan ``jupyter-repo2docker --no-build --debug`` writes (its Dockerfile; it needs no
  Docker): Python 3.11, binder/requirements.txt installed, then postBuild run, and no CUDA wheel;
- idle kernels are culled (binder/jupyter_server_config.py, read by jupyter_server itself) and
  closing a notebook tab shuts its kernel down (binder/overrides.json, a JupyterLab setting);
- the tested environment is the one Binder builds, and it carries the front-end code widgets need;
- the README's Binder badge opens the notebook that explains the path through the suite;
- every notebook runs with the network blocked, and its kernel stays within mybinder.org's 1 GB.

The last check runs each notebook once, offline, in FAST mode by default (``KDLAB_BINDER_MODE=default``
runs the default path a learner runs, ~45 s per notebook). Peak memory is the kernel's ``VmHWM``.
"""

from __future__ import annotations

import importlib.metadata as md
import json
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


def run_post_build(tmp_path: Path) -> tuple[str, Path]:
    """Run binder/postBuild as repo2docker does (from the root, NB_PYTHON_PREFIX set) with stub
    python/pip that record their calls; return the calls and the prefix it installed into."""
    stub = tmp_path / "bin"
    stub.mkdir()
    calls = tmp_path / "calls.txt"
    for name in ("python", "python3", "pip"):
        (stub / name).write_text(f'#!/bin/sh\necho "{name} $* (cwd=$PWD)" >> "{calls}"\n')
        (stub / name).chmod(0o755)
    prefix = tmp_path / "prefix"
    env = dict(os.environ, PATH=f"{stub}{os.pathsep}{os.environ['PATH']}", NB_PYTHON_PREFIX=str(prefix))
    result = subprocess.run(["bash", str(BINDER / "postBuild")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return (calls.read_text() if calls.exists() else ""), prefix


def test_post_build_installs_kdlab_from_the_repository_root(tmp_path):
    recorded, _ = run_post_build(tmp_path)
    assert re.search(rf"pip install .*\s\.\s\(cwd={re.escape(str(ROOT))}\)", recorded), (
        f"postBuild should pip-install the repository (kdlab) from its root; it ran:\n{recorded}"
    )
    assert "torch" not in recorded, "postBuild must not reinstall torch (requirements.txt pins the CPU build)"


# ---------------------------------------------------------------- the build plan repo2docker writes


@pytest.fixture(scope="module")
def build_plan() -> tuple[str, str]:
    """(Dockerfile, log) of ``jupyter-repo2docker --no-build --debug`` on the repository, as mybinder.org's user."""
    result = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--no-build", "--debug", "--user-id", "1000", "--user-name", "jovyan",
         str(ROOT)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FROM " in result.stdout, f"no Dockerfile in repo2docker's output:\n{result.stdout[:2000]}"
    return result.stdout, result.stderr


def _build_script_files(dockerfile: str) -> list[Path]:
    """The files of repo2docker's own package that the Dockerfile copies in (their names are escaped paths)."""
    from escapism import unescape  # repo2docker's own dependency

    paths = []
    for name in re.findall(r"^COPY .*?build_script_files/(\S+)", dockerfile, re.M):
        name = re.sub(r"-[0-9a-f]{6}$", "", name)  # repo2docker appends a short hash
        paths.append(Path(unescape(name, escape_char="-")))
    return paths


def test_repo2docker_builds_python_3_11(build_plan):
    dockerfile, log = build_plan
    assert "python=3.11" in log, f"repo2docker did not take binder/runtime.txt:\n{log}"
    locks = [p for p in _build_script_files(dockerfile) if p.name.startswith("environment")]
    assert [p.name for p in locks] == ["environment.py-3.11-linux-64.lock"], locks
    assert re.search(r"/python-3\.11\.\d+-", locks[0].read_text()), f"{locks[0]} does not pin Python 3.11"


def test_repo2docker_installs_binder_requirements_then_runs_post_build(build_plan):
    dockerfile, _ = build_plan
    lines = [line.strip() for line in dockerfile.splitlines()]
    pip_lines = [i for i, line in enumerate(lines) if "pip install" in line]
    requirements = [i for i in pip_lines if re.search(r'-r "?binder/requirements\.txt"?', lines[i])]
    assert len(pip_lines) == 1 and requirements, f"expected one pip install, of binder/requirements.txt: {pip_lines}"
    copy_repo = next(i for i, line in enumerate(lines) if re.match(r"COPY .*\bsrc/ \$\{REPO_DIR\}/", line))
    post_build = [i for i, line in enumerate(lines) if line.startswith("RUN") and "binder/postBuild" in line
                  and "chmod" not in line]
    assert post_build, "the Dockerfile never runs binder/postBuild"
    assert requirements[0] < copy_repo < post_build[0], "postBuild must run after the requirements and the repo copy"
    user = next(line for line in reversed(lines[:post_build[0]]) if line.startswith("USER"))
    assert user == "USER ${NB_USER}", f"postBuild should run as the notebook user, runs after {user!r}"


def test_repo2docker_build_installs_no_cuda(build_plan):
    """No NVIDIA wheel: the base environment has none, torch comes from the CPU index, and nothing
    the pinned packages pull in (installed here with Binder's pins) asks for one."""
    dockerfile, _ = build_plan
    assert not re.search(r"nvidia|cuda", dockerfile, re.I)
    for lock in _build_script_files(dockerfile):
        if lock.name.startswith("environment"):
            assert not re.search(r"/(pytorch|cuda|nvidia)[-\w]*-\d", lock.read_text(), re.I), lock
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    torch_pin = next(r for r in binder_requirements() if r.name == "torch")
    assert str(torch_pin.specifier).endswith("+cpu"), f"torch is pinned as {torch_pin}, not the CPU build"
    cpu_index = "https://download.pytorch.org/whl/cpu"
    assert any(line.split() == ["--extra-index-url", cpu_index] for line in lines), "no PyTorch CPU index"
    assert not [r for r in binder_requirements() if re.match(r"nvidia|triton", r.name, re.I)]
    cuda = []
    for name in _closure([r.name for r in binder_requirements() if r.name != "voila"]):
        for line in md.distribution(name).requires or []:
            req = Requirement(line)
            if re.match(r"nvidia|triton|cuda", req.name, re.I) and (req.marker is None or req.marker.evaluate(
                    {"extra": "", "platform_system": "Linux", "platform_machine": "x86_64", "sys_platform": "linux"})):
                cuda.append(f"{name} requires {line}")
    assert not cuda, "on Linux these pull CUDA wheels:\n" + "\n".join(cuda)


# ---------------------------------------------------------------- a session within 2 GB


def test_post_build_installs_kernel_culling_and_shutdown_on_close(tmp_path):
    _, prefix = run_post_build(tmp_path)
    config = prefix / "etc/jupyter/jupyter_server_config.py"
    overrides = prefix / "share/jupyter/lab/settings/overrides.json"
    assert config.read_text() == (BINDER / "jupyter_server_config.py").read_text()
    assert overrides.read_text() == (BINDER / "overrides.json").read_text()


def test_jupyter_server_reads_the_culling_config(tmp_path, monkeypatch):
    """The config, where postBuild puts it, is read by jupyter_server and names real settings."""
    from jupyter_server.serverapp import ServerApp
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    _, prefix = run_post_build(tmp_path)
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(prefix / "etc/jupyter"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "empty-user-config"))
    app = ServerApp()
    app.load_config_file()
    section = app.config.MappingKernelManager
    unknown = set(section) - set(AsyncMappingKernelManager.class_trait_names(config=True))
    assert not unknown, f"not settings of jupyter_server's kernel manager: {unknown}"
    manager = AsyncMappingKernelManager(config=app.config)
    assert 5 * 60 <= manager.cull_idle_timeout <= 30 * 60, "cull kernels idle for 5-30 min"
    assert manager.cull_connected, "JupyterLab keeps a connection per open tab: cull connected kernels too"
    assert not manager.cull_busy, "never cull a kernel that is running a cell"
    assert 0 < manager.cull_interval <= 120


def test_closing_a_notebook_shuts_its_kernel_down():
    """binder/overrides.json sets a JupyterLab setting that exists, with the right type."""
    overrides = json.loads((BINDER / "overrides.json").read_text())
    assert overrides == {"@jupyterlab/notebook-extension:tracker": {"kernelShutdown": True}}
    schema = Path(sys.prefix) / "share/jupyter/lab/schemas/@jupyterlab/notebook-extension/tracker.json"
    if not schema.exists():
        pytest.skip(f"JupyterLab's settings schema is not installed at {schema}")
    prop = json.loads(schema.read_text())["properties"]["kernelShutdown"]
    assert prop["type"] == "boolean"


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


def test_a_walk_through_the_suite_keeps_at_most_two_kernels(tmp_path):
    """kdlab.bench.session on three stand-in notebooks (150 MB each), learner time 300x faster:
    with the Binder image's culling, the kernel of the notebook before last is gone by the time the
    next one opens. The real measurement: python -m kdlab.bench.session (README, Binder)."""
    import nbformat

    from kdlab.bench.session import walk

    (tmp_path / "notebooks").mkdir()
    for i in range(3):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {i}\n\n**Time**: about 20 minutes to read."),
                    nbformat.v4.new_code_cell("import numpy as np\nx = np.ones(150 * 2**20 // 8)")]
        nbformat.write(nb, tmp_path / f"notebooks/0{i}_stand_in.ipynb")
    report = walk(root=tmp_path, speed=300, log=lambda msg: None)
    assert not [v.error for v in report.visits if v.error] and not report.warnings, report.summary()
    assert report.cull_idle_timeout_s == 3
    assert report.most_kernels_alive == 2, report.summary()
    assert report.kernels_culled == 2, report.summary()
    assert 300 < report.peak_pss_mb < 2048, report.summary()
