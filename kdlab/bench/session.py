"""The memory of a Binder session in which a learner walks the suite in order.

    python -m kdlab.bench.session                      # every notebook, default mode, tabs left open
    python -m kdlab.bench.session --close-tabs         # the learner closes each tab when moving on
    python -m kdlab.bench.session --fast --speed 60 --json session.json   # a quick look

A Jupyter server (JupyterLab, as on Binder) starts from the repository's root with
binder/jupyter_server_config.py in its config path, as binder/postBuild installs it, so it culls
idle kernels as the Binder image does. Then a learner, for each notebook in order: opens it (a
session, as JupyterLab creates for a new tab, with the tab's websocket held open), runs its code
cells top to bottom, then reads it for the reading time its opening cell states ("about N minutes
to read"), running a cell every few minutes as a reader does, and moves on. With ``--close-tabs`` the learner closes the tab when
moving on, which shuts the kernel down on Binder (binder/overrides.json).

Learner time is compressed ``--speed`` times (reading times, and the culling timeout and interval
with them), but running a notebook takes its real time; the report warns when a notebook ran for
longer than the compressed timeout (a lower ``--speed`` then gives a faithful picture). Every 0.25 s
the memory of the server and all its kernels is summed: PSS (shared pages counted once, close to
what a container's memory limit charges) and RSS (shared libraries counted in every process: an
upper bound). Reports the peaks, the kernels alive at the peak, the kernels culled, and each
notebook's run time. mybinder.org's limit is 2 GB per session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import _Poller

ROOT = Path(__file__).resolve().parents[2]
BINDER_CONFIG = ROOT / "binder" / "jupyter_server_config.py"
LIMIT_MB = 2048.0
DEFAULT_READING_MINUTES = 20.0
ACTIVITY_MINUTES = 5.0  # while reading, the learner runs a cell this often (their kernel stays in use)


@dataclass
class NotebookVisit:
    name: str
    reading_minutes: float
    run_seconds: float = 0.0
    error: str | None = None


@dataclass
class SessionReport:
    speed: float
    close_tabs: bool
    culling: bool
    cull_idle_timeout_s: int
    peak_pss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    kernels_at_peak: int = 0
    most_kernels_alive: int = 0
    kernels_culled: int = 0
    seconds: float = 0.0
    visits: list[NotebookVisit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"peak {self.peak_pss_mb:.0f} MB PSS ({self.peak_rss_mb:.0f} MB RSS) with {self.kernels_at_peak} "
                 f"kernel(s) alive; at most {self.most_kernels_alive} alive at once; {self.kernels_culled} culled; "
                 f"{'under' if self.peak_pss_mb < LIMIT_MB else 'OVER'} Binder's {LIMIT_MB:.0f} MB"]
        lines += [f"  {v.name}: ran in {v.run_seconds:.1f} s, read {v.reading_minutes:g} min"
                  + (f", ERROR {v.error}" if v.error else "") for v in self.visits]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def reading_minutes(nb: dict) -> float:
    """The reading time the notebook's opening cell states ("about 25 minutes to read")."""
    opening = "".join(nb["cells"][0]["source"]) if nb.get("cells") else ""
    match = re.search(r"(\d+(?:\.\d+)?)\s*min(?:utes)?\s+to\s+read", opening)
    return float(match.group(1)) if match else DEFAULT_READING_MINUTES


def code_cells(nb: dict, fast: bool) -> list[str]:
    """The notebook's code, in order; with ``fast``, ``FAST = True`` right after the parameters cell."""
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        cells.append("".join(cell["source"]))
        if fast and "parameters" in cell.get("metadata", {}).get("tags", []):
            cells.append("FAST = True")
    return cells


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Memory(_Poller):
    """The peaks of the summed PSS and RSS of a process and its descendants, and their kernels."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(interval)
        self._root = self._psutil.Process(pid)
        self.peak_pss = self.peak_rss = 0
        self.kernels_at_peak = self.most_kernels = 0

    def poll(self) -> None:
        pss = rss = kernels = 0
        for proc in [self._root, *self._root.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
                kernels += "ipykernel" in " ".join(proc.cmdline())
            except (self._psutil.NoSuchProcess, self._psutil.AccessDenied, self._psutil.ZombieProcess):
                continue
            pss += getattr(info, "pss", info.rss)
            rss += info.rss
        self.most_kernels = max(self.most_kernels, kernels)
        if pss > self.peak_pss:
            self.peak_pss, self.kernels_at_peak = pss, kernels
        self.peak_rss = max(self.peak_rss, rss)


class _Tabs:
    """Open browser tabs: one websocket per notebook, held open (and drained) in a background loop."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base.replace("http", "ws", 1), token
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.open_tabs: dict[str, object] = {}

    async def _connect(self, kernel_id: str) -> object:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = f"{self.base}/api/kernels/{kernel_id}/channels?session_id={secrets.token_hex(8)}"
        conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {self.token}"}))

        async def drain() -> None:
            while await conn.read_message() is not None:
                pass

        self.loop.create_task(drain())
        return conn

    def open(self, kernel_id: str) -> None:
        self.open_tabs[kernel_id] = asyncio.run_coroutine_threadsafe(self._connect(kernel_id), self.loop).result(60)

    def close(self, kernel_id: str) -> None:
        conn = self.open_tabs.pop(kernel_id, None)
        if conn is not None:
            self.loop.call_soon_threadsafe(conn.close)

    def close_all(self) -> None:
        for kernel_id in list(self.open_tabs):
            self.close(kernel_id)
        self.loop.call_soon_threadsafe(self.loop.stop)


def walk(notebooks: list[Path] | None = None, *, root: Path = ROOT, speed: float = 10.0, fast: bool = False,
         close_tabs: bool = False, culling: bool = True, config: Path = BINDER_CONFIG,
         log=lambda msg: print(msg, file=sys.stderr, flush=True)) -> SessionReport:
    """Walk ``notebooks`` (default: every ``root/notebooks/NN_*.ipynb``) as a learner; see the module doc.

    Parameters
    ----------
    notebooks : list of Path, optional
        The notebooks, in the order the learner opens them; they must lie under ``root``.
    root : Path
        The server's root (the repository).
    speed : float
        How many times faster than a learner's time the reading times and the culling settings run.
    fast : bool
        Run each notebook with ``FAST = True`` (a smoke test of the walk, not a measurement).
    close_tabs : bool
        Close each notebook's tab, which shuts its kernel down, when moving on.
    culling : bool
        Use the culling settings of ``config``; False turns culling off (the image before issue 13).
    config : Path
        The Jupyter server config to use (the Binder image's by default).

    Returns
    -------
    SessionReport
        Peaks, kernels alive and culled, each notebook's run time and errors, warnings.

    Example
    -------
    >>> report = walk(speed=10)              # doctest: +SKIP
    >>> print(report.summary())              # doctest: +SKIP
    """
    import psutil  # noqa: F401 - the test extra installs it; fail early
    from jupyter_client import BlockingKernelClient

    notebooks = notebooks if notebooks is not None else sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed!r}")
    from traitlets.config.loader import PyFileConfigLoader

    settings = PyFileConfigLoader(config.name, path=str(config.parent)).load_config().MappingKernelManager
    timeout = max(1, round(settings.cull_idle_timeout / speed)) if culling else 0
    interval = max(1, round(settings.cull_interval / speed))
    report = SessionReport(speed=speed, close_tabs=close_tabs, culling=culling, cull_idle_timeout_s=timeout)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "etc").mkdir()
        shutil.copy(config, tmp / "etc" / "jupyter_server_config.py")  # where postBuild puts it
        env = dict(os.environ, JUPYTER_CONFIG_PATH=str(tmp / "etc"), JUPYTER_CONFIG_DIR=str(tmp / "user"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
        port, token = _free_port(), secrets.token_hex(16)
        args = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                f"--MappingKernelManager.cull_idle_timeout={timeout}",
                f"--MappingKernelManager.cull_interval={interval}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")
        server_log = (tmp / "server.log").open("w")
        server = subprocess.Popen(args, cwd=root, env=env, stdout=server_log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"

        def api(method: str, path: str, body: dict | None = None) -> dict:
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                             headers={"Authorization": f"token {token}",
                                                      "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                text = response.read()
            return json.loads(text) if text else {}

        tabs = None
        start = time.perf_counter()
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    api("GET", "/api/status")
                    break
                except OSError as err:
                    if server.poll() is not None or time.monotonic() > deadline:
                        log_text = (tmp / "server.log").read_text()[-3000:]
                        raise RuntimeError(f"the Jupyter server did not start:\n{log_text}") from err
                    time.sleep(0.5)
            log(f"server up; culling after {timeout} s idle (every {interval} s); learner time {speed:g}x faster")
            tabs = _Tabs(base, token)
            with _Memory(server.pid) as memory:
                previous = None
                for path in notebooks:
                    nb = json.loads(path.read_text())
                    visit = NotebookVisit(path.stem, reading_minutes(nb))
                    report.visits.append(visit)
                    if close_tabs and previous:
                        tabs.close(previous["kernel"]["id"])
                        api("DELETE", f"/api/sessions/{previous['id']}")
                    relative = path.resolve().relative_to(root.resolve()).as_posix()
                    session = api("POST", "/api/sessions", {"path": relative, "name": path.name, "type": "notebook",
                                                            "kernel": {"name": "python3"}})
                    kernel_id = session["kernel"]["id"]
                    tabs.open(kernel_id)
                    client = BlockingKernelClient(connection_file=str(tmp / "runtime" / f"kernel-{kernel_id}.json"))
                    client.load_connection_file()
                    client.start_channels()
                    try:
                        client.wait_for_ready(timeout=180)
                        log(f"{path.name}: running")
                        began = time.perf_counter()
                        for code in code_cells(nb, fast):
                            reply = client.execute_interactive(code, timeout=900, output_hook=lambda msg: None)
                            if reply["content"]["status"] == "error":
                                visit.error = f"{reply['content']['ename']}: {reply['content']['evalue']}"[:200]
                                break
                        visit.run_seconds = round(time.perf_counter() - began, 1)
                        if culling and visit.run_seconds > timeout:
                            report.warnings.append(
                                f"{path.name} ran for {visit.run_seconds:.0f} s, longer than the compressed culling "
                                f"timeout ({timeout} s): the previous kernel may have been culled too early; use a "
                                f"lower --speed")
                        reading = visit.reading_minutes * 60 / speed
                        log(f"{path.name}: ran in {visit.run_seconds:.1f} s; reading for {reading:.0f} s")
                        until, step = time.monotonic() + reading, ACTIVITY_MINUTES * 60 / speed
                        while (left := until - time.monotonic()) > 0:
                            time.sleep(min(step, left))
                            try:  # the reader runs a cell now and then, the last one as they leave
                                client.execute_interactive("pass", timeout=60, output_hook=lambda msg: None)
                            except (TimeoutError, RuntimeError):
                                report.warnings.append(f"the kernel of {path.name} was gone while it was being read")
                                break
                    finally:
                        client.stop_channels()
                    previous = session
            report.peak_pss_mb = round(memory.peak_pss / 2**20, 1)
            report.peak_rss_mb = round(memory.peak_rss / 2**20, 1)
            report.kernels_at_peak, report.most_kernels_alive = memory.kernels_at_peak, memory.most_kernels
        finally:
            if tabs is not None:
                tabs.close_all()
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
            server_log.close()
            # jupyter_server logs "Culling '<state>' kernel '<name>' (<id>) ..." for each kernel it culls
            report.kernels_culled = len(re.findall(r"Culling '\w+' kernel", (tmp / "server.log").read_text()))
            report.seconds = round(time.perf_counter() - start, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlab.bench.session", description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", metavar="PREFIX", help="only notebooks whose names start so")
    parser.add_argument("--speed", type=float, default=10.0,
                        help="learner time runs this many times faster (default 10: a 25-min read lasts 150 s)")
    parser.add_argument("--fast", action="store_true", help="run the notebooks with FAST = True (a smoke test)")
    parser.add_argument("--close-tabs", action="store_true", help="close each tab (shutting its kernel) on leaving")
    parser.add_argument("--no-culling", action="store_true", help="turn culling off (the image before issue 13)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    args = parser.parse_args(argv)
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if any(p.stem.startswith(o) for o in args.notebooks)]
    report = walk(paths, speed=args.speed, fast=args.fast, close_tabs=args.close_tabs, culling=not args.no_culling)
    print(report.summary())
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 0 if report.peak_pss_mb < LIMIT_MB and not any(v.error for v in report.visits) else 1


if __name__ == "__main__":
    raise SystemExit(main())
