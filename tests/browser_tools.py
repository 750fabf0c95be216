"""Drive JupyterLab (and Voila) in headless Chromium for the browser tests.

A learner meets the suite in a browser, not through papermill. These helpers start a Jupyter
server on 127.0.0.1 (random free port, a token, settings and workspaces in a temporary folder, no
news or update checks), open a page in Debian's Chromium through Playwright, and read what the page
shows: cell errors, widgets that did not render, the SVG of a plot.

Nothing here downloads anything: Playwright drives ``/usr/bin/chromium`` (``playwright install``
is never needed), and the server is told not to fetch news or check for updates.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]
INSTALL_HINT = (
    "Chromium not found: the browser tests drive Debian's Chromium through Playwright. "
    "Install it with `sudo apt-get install -y chromium` (or set KDLAB_CHROMIUM=/path/to/chromium); "
    "`.ci/run` installs it when CI=true."
)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Texts JupyterLab / ipywidgets show instead of a widget when its model or front-end code is missing.
WIDGET_FAILURE_TEXTS = ("Loading widget...", "model not found", "Error displaying widget",
                        "Could not render", "Failed to load model class", "No renderer could be found")


def chromium_path() -> str | None:
    """Path of a Chromium executable, or None. ``KDLAB_CHROMIUM`` overrides the search."""
    env = os.environ.get("KDLAB_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# A Jupyter server (JupyterLab or Voila) we start, and stop whatever happens
# --------------------------------------------------------------------------------------------

def _isolated_env(tmp: Path) -> dict[str, str]:
    """Environment with Jupyter's per-user folders in ``tmp``: no state leaks in or out."""
    env = dict(os.environ)
    for name in ("config", "data", "runtime", "settings", "workspaces"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),  # kernelspecs and lab extensions still come from sys.prefix
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("JUPYTER_TOKEN", None)
    return env


def _write_lab_settings(settings: Path) -> None:
    """User settings for the test: no news/update pop-ups, no autosave into the copied notebooks."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": False},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    }
    for rel, value in files.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


class JupyterServer:
    """A JupyterLab or Voila server on 127.0.0.1 with a token, started by :meth:`start`.

    ``stop`` shuts down every kernel through the REST API (JupyterLab), asks the server to exit,
    then terminates the one process it started (by PID) if it is still there.
    """

    def __init__(self, root_dir: Path, tmp: Path, *, app: str = "lab", notebook: str | None = None,
                 launcher=None):
        """``launcher`` (Voila only): a module with ``command(*voila_args)`` and ``environment(env)``,
        such as ``demo/serve.py``, that says how to start Voila; the server adds its port and token."""
        self.root_dir, self.tmp, self.app, self.notebook = Path(root_dir), Path(tmp), app, notebook
        self.launcher = launcher
        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.proc: subprocess.Popen | None = None
        self.log_path = self.tmp / f"{app}-server.log"
        self.env = _isolated_env(self.tmp / "jupyter")
        if launcher is not None:
            self.env = launcher.environment(self.env)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def _root_flag() -> list[str]:
        # CI containers often run as root; Jupyter refuses to start as root without this flag.
        return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []

    def command(self) -> list[str]:
        if self.app == "lab":
            return [
                sys.executable, "-m", "jupyter", "lab", "--no-browser",
                "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root_dir}",
                "--ServerApp.open_browser=False",
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                f"--LabApp.user_settings_dir={self.tmp / 'jupyter' / 'settings'}",
                f"--LabApp.workspaces_dir={self.tmp / 'jupyter' / 'workspaces'}",
                "--LabApp.expose_app_in_browser=True",
                "--ServerApp.disable_check_xsrf=False",
                "--LabApp.extension_manager=readonly",  # the "pypi" manager would query PyPI
                "--MappingKernelManager.cull_idle_timeout=0",
            ] + self._root_flag()
        if self.app == "voila":
            args = ["--no-browser", f"--port={self.port}", f"--Voila.root_dir={self.root_dir}", f"--token={self.token}"]
            if self.launcher is not None:  # it binds to 127.0.0.1 itself (the server is probed there)
                return self.launcher.command(*args)
            return [sys.executable, "-m", "voila", str(self.notebook), "--Voila.ip=127.0.0.1", *args]
        raise ValueError(f"app must be 'lab' or 'voila', got {self.app!r}")

    def start(self, timeout: float = 90) -> JupyterServer:
        _write_lab_settings(self.tmp / "jupyter" / "settings")
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            self.command(), cwd=self.root_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        probe = "/api/status"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.app} exited with code {self.proc.returncode}:\n{self.log()}")
            if self.app == "voila":
                # GET / would make Voila execute the notebook: wait for its log line instead
                if "is running at" in self.log():
                    return self
                time.sleep(0.3)
                continue
            try:
                self.request("GET", probe, timeout=2)
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.3)
        raise TimeoutError(f"{self.app} did not answer within {timeout} s:\n{self.log()}")

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def request(self, method: str, path: str, *, timeout: float = 10):
        req = urllib.request.Request(
            self.base_url + path, method=method, headers={"Authorization": f"token {self.token}"},
            data=b"" if method in ("POST", "DELETE") else None,
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body and resp.headers.get_content_type() == "application/json" else body

    def url(self, path: str = "") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}token={self.token}"

    def kernels(self) -> list[dict]:
        return self.request("GET", "/api/kernels") if self.app == "lab" else []

    def shutdown_kernels(self) -> None:
        """Shut down every running kernel through the REST API (JupyterLab only)."""
        if self.app != "lab" or self.proc is None or self.proc.poll() is not None:
            return
        try:
            for kernel in self.kernels():
                self.request("DELETE", f"/api/kernels/{kernel['id']}", timeout=20)
        except (urllib.error.URLError, OSError):
            pass

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.shutdown_kernels()
            if self.app == "lab" and self.proc.poll() is None:
                try:
                    self.request("POST", "/api/shutdown", timeout=10)
                    self.proc.wait(timeout=15)
                except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
                    pass
        finally:
            if self.proc.poll() is None:
                # Only the process we started (it leads its own session: its kernels go with it).
                try:
                    os.killpg(self.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)


@contextmanager
def jupyter_server(root_dir: Path, tmp: Path, **kwargs):
    server = JupyterServer(root_dir, tmp, **kwargs)
    try:
        yield server.start()
    finally:
        server.stop()


@contextmanager
def chromium_browser(executable: str):
    """A headless Chromium from Playwright's sync API, closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# --------------------------------------------------------------------------------------------
# What the page shows
# --------------------------------------------------------------------------------------------

def open_notebook(page, server: JupyterServer, name: str, timeout_ms: int = 60_000) -> None:
    """Open ``name`` (relative to the server's root) in JupyterLab and wait for its kernel."""
    # ?reset: start from an empty workspace, so no tab (and kernel) of an earlier test comes back
    page.goto(server.url(f"/lab/tree/{name}?reset"), wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const app = window.jupyterapp; const w = app && app.shell.currentWidget;
            const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
            return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
        }""",
        timeout=timeout_ms,
    )


def run_all_cells(page) -> None:
    """Run > Run All Cells, through the menu bar as a learner would."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


def wait_until_idle(page, timeout_ms: int = 180_000) -> None:
    """Wait until Run All has finished: the kernel is idle, no cell is queued or running ([*]), and
    every code cell has run, or one shows an error (Run All stops there)."""
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp.shell.currentWidget;
            const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
            if (!kernel || kernel.status !== 'idle') return false;
            const cells = w.content.widgets.filter(c => c.model.type === 'code');
            if (cells.some(c => c.promptNode.textContent.includes('*'))) return false;
            const failed = cells.some(c => {
                const outs = c.model.outputs;
                for (let j = 0; j < outs.length; j++) if (outs.get(j).type === 'error') return true;
                return false;
            });
            return failed || cells.every(c => c.model.executionCount !== null);
        }""",
        timeout=timeout_ms,
        polling=250,
    )


def cell_errors(page) -> list[str]:
    """Errors the notebook shows: error outputs and stderr tracebacks in cells, tracebacks in widgets.

    Cell outputs are read from the cell models; an exception raised inside a widget's ``Output``
    area is found in the page (``widget_outputs`` tags widget views first).
    """
    widget_outputs(page)
    return page.evaluate(
        """() => {
            const w = window.jupyterapp.shell.currentWidget;
            const errs = [];
            w.content.widgets.forEach((cell, i) => {
                if (cell.model.type !== 'code') return;
                const outs = cell.model.outputs;
                for (let j = 0; j < outs.length; j++) {
                    const o = outs.get(j).toJSON();
                    if (o.output_type === 'error') errs.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
                    const text = [].concat(o.text || []).join('');
                    if (o.output_type === 'stream' && o.name === 'stderr' && /Traceback|Error:/.test(text))
                        errs.push(`cell ${i} stderr: ${text.slice(0, 300)}`);
                }
            });
            document.querySelectorAll('[data-kdlab-widget] [data-mime-type="application/vnd.jupyter.stderr"]').forEach(n => {
                if (/Traceback|Error/.test(n.textContent)) errs.push('in a widget: ' + n.textContent.slice(0, 300));
            });
            return errs;
        }"""
    )


def widget_outputs(page):
    """Locator of every output area whose output is a widget view (found through the cell models).

    JupyterLab does not mark widget outputs in the DOM, so each one is tagged
    ``data-kdlab-widget="<cell>-<output>"`` first.
    """
    page.evaluate(
        """(mime) => {
            const w = window.jupyterapp.shell.currentWidget;
            w.content.widgets.forEach((cell, i) => {
                if (cell.model.type !== 'code') return;
                const outs = cell.model.outputs;
                for (let j = 0; j < outs.length; j++) {
                    const data = outs.get(j).toJSON().data || {};
                    const child = cell.outputArea.widgets[j];
                    if (mime in data && child) {
                        const node = child.node.querySelector('.jp-OutputArea-output') || child.node;
                        node.setAttribute('data-kdlab-widget', `${i}-${j}`);
                    }
                }
            });
        }""",
        WIDGET_MIME,
    )
    return page.locator("[data-kdlab-widget]")


def widget_problems(page) -> tuple[int, list[str]]:
    """Scroll every widget output into view; return (number of widget views shown, problems found).

    A widget closed by its own code (a finished ``tqdm`` bar with ``leave=False``) leaves an empty,
    hidden output area: it is not counted and not a problem.
    """
    outputs = widget_outputs(page)
    problems = []
    n = 0
    for i in range(outputs.count()):
        out = outputs.nth(i)
        if out.evaluate("n => n.classList.contains('lm-mod-hidden') && !n.textContent.trim()"):
            continue
        n += 1
        out.scroll_into_view_if_needed()
        text = out.inner_text()
        reasons = [f"shows {bad!r}" for bad in WIDGET_FAILURE_TEXTS if bad.lower() in text.lower()]
        if out.locator(".jupyter-widgets, .widget-container, .js-plotly-plot").count() == 0:
            reasons.append("no widget view rendered")
        if reasons:
            problems.append(f"widget output {i}: {'; '.join(reasons)}: {text[:200]!r}")
    return n, problems


def plot_signature(page, scope=None) -> str:
    """The SVG of every plotly figure in ``scope`` (or the page): path geometry, point positions,
    raster images (heatmaps) and texts (titles, annotations, tick labels).

    Two signatures differ exactly when what the learner sees in those plots differs.
    """
    root = scope if scope is not None else page
    return root.locator(".js-plotly-plot").evaluate_all(
        """plots => plots.map(p => Array.from(p.querySelectorAll('path, .point, image, text'))
             .map(n => n.getAttribute('d') || n.getAttribute('href') || n.getAttribute('transform') || n.textContent)
             .join('|')).join('#')"""
    )


def heatmap_axes(scope) -> list[str]:
    """For every plotly heatmap in ``scope``, what the browser holds as its x and y coordinates.

    ``"x: none"`` means the trace has no coordinates in the browser and is drawn against cell
    indices, which is what a lost ``x``/``y`` looks like to the learner.
    """
    return scope.locator(".js-plotly-plot").evaluate_all(
        """plots => plots.flatMap(p => (p.data || []).filter(t => t.type === 'heatmap').map(t => {
            const d = a => (a && a.length) ? `${a.length} from ${(+a[0]).toFixed(2)} to ${(+a[a.length - 1]).toFixed(2)}` : 'none';
            return `x: ${d(t.x)}, y: ${d(t.y)}`;
        }))"""
    )


def slider(scope, label: str):
    """The ipywidgets slider (float, log or selection) in ``scope`` whose description is ``label``."""
    return scope.locator(".widget-slider").filter(
        has=scope.page.locator(".widget-label", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))


def slider_readout(scope, label: str) -> str:
    return slider(scope, label).locator(".widget-readout").first.inner_text().strip()


def press_on_slider(scope, label: str, key: str, times: int = 1) -> None:
    """Move a slider as a learner can: focus its handle and press ``key`` (ArrowRight, End, ...)."""
    handle = slider(scope, label).locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(times):
        scope.page.keyboard.press(key)


def wait_for_change(page, read, before, timeout_s: float = 30.0, settle_s: float = 0.0):
    """Poll ``read()`` until it differs from ``before``; return the new value (or ``before``)."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while value == before and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        value = read()
    if settle_s:
        page.wait_for_timeout(int(settle_s * 1000))
        value = read()
    return value


def mpl_signature(page, scope=None) -> str:
    """The image data of every matplotlib output (widget-backed ``Output`` areas) in ``scope``."""
    root = scope if scope is not None else page
    return root.locator('.jp-OutputArea-output img').evaluate_all("imgs => imgs.map(i => i.src.length + ':' + i.src.slice(-200)).join('#')")


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    path = screenshot_path(name)
    page.screenshot(path=str(path), full_page=full_page)
    return path
