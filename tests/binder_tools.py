"""Run a notebook the way Binder would, offline, and measure its kernel's peak memory.

``run_offline`` executes a notebook in a fresh kernel whose Python cannot reach the network: a
``sitecustomize.py`` (put first on the kernel's ``PYTHONPATH``) makes ``socket.connect``,
``connect_ex``, ``sendto`` and ``getaddrinfo`` refuse every address that is not loopback, and
records each attempt in a log file, so that a notebook that catches the error and carries on is
still caught. The kernel's ZeroMQ channels use 127.0.0.1 and are not affected.

While the notebook runs, the kernel's peak resident memory is read from ``/proc/<pid>/status``
(``VmHWM``, the high-water mark since the process started).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

SITECUSTOMIZE = '''
"""Installed by kdlab's tests/binder_tools.py: no network except loopback."""
import errno as _errno
import ipaddress as _ipaddress
import os as _os
import socket as _socket

_LOG = _os.environ.get("KDLAB_NETWORK_LOG")
_LOCAL_NAMES = {None, "", "localhost", "localhost.localdomain", "ip6-localhost"}


def _record(what):
    if _LOG:
        with open(_LOG, "a") as f:
            f.write(what + "\\n")


def _local_host(host):
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in _LOCAL_NAMES:
        return True
    try:
        ip = _ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _local_address(sock, address):
    if sock.family not in (_socket.AF_INET, _socket.AF_INET6):
        return True  # AF_UNIX and friends stay on this machine
    return _local_host(address[0])


def _refuse(what):
    _record(what)
    raise OSError(_errno.ENETUNREACH, "kdlab test: network access is blocked (" + what + ")")


_connect, _connect_ex, _sendto = _socket.socket.connect, _socket.socket.connect_ex, _socket.socket.sendto
_getaddrinfo = _socket.getaddrinfo


def connect(self, address):
    if not _local_address(self, address):
        _refuse("connect " + repr(address))
    return _connect(self, address)


def connect_ex(self, address):
    if not _local_address(self, address):
        _refuse("connect_ex " + repr(address))
    return _connect_ex(self, address)


def sendto(self, data, *args):
    address = args[-1]
    if not _local_address(self, address):
        _refuse("sendto " + repr(address))
    return _sendto(self, data, *args)


def getaddrinfo(host, *args, **kwargs):
    if not _local_host(host):
        _refuse("getaddrinfo " + repr(host))
    return _getaddrinfo(host, *args, **kwargs)


_socket.socket.connect, _socket.socket.connect_ex, _socket.socket.sendto = connect, connect_ex, sendto
_socket.getaddrinfo = getaddrinfo
'''


@dataclass
class OfflineRun:
    """What happened when a notebook ran offline."""

    seconds: float
    peak_rss_bytes: int | None  # VmHWM of the kernel process; None where /proc is missing
    network_attempts: list[str] = field(default_factory=list)
    notebook: nbformat.NotebookNode | None = None


def offline_env(folder: Path, log: Path) -> dict[str, str]:
    """An environment whose Python processes cannot reach the network (see module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    env["KDLAB_NETWORK_LOG"] = str(log)
    return env


def peak_rss(pid: int) -> int | None:
    """Peak resident set size (``VmHWM``) of a running process in bytes, or None without /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run_offline(nb: nbformat.NotebookNode, cwd: Path, tmp: Path, timeout: int = 600) -> OfflineRun:
    """Execute ``nb`` in a fresh, offline kernel (cwd ``cwd``); return timing, peak memory, attempts."""
    log = tmp / "network-attempts.log"
    log.write_text("")
    env = offline_env(tmp / "offline-site", log)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    peaks: list[int] = []

    def record_peak(**_):
        pid = client.km.provisioner.process.pid if client.km and client.km.provisioner else None
        value = peak_rss(pid) if pid else None
        if value is not None:
            peaks.append(value)

    client.on_cell_executed = record_peak
    start = time.perf_counter()
    client.execute(env=env, cwd=str(cwd))
    seconds = time.perf_counter() - start
    attempts = [line for line in log.read_text().splitlines() if line.strip()]
    return OfflineRun(seconds, max(peaks) if peaks else None, attempts, nb)


def sitecustomize_blocks_network(tmp: Path) -> tuple[str, list[str]]:
    """Self-check of the guard: a child Python tries to reach PyPI; return its output and the log."""
    import subprocess

    log = tmp / "self-check.log"
    log.write_text("")
    env = offline_env(tmp / "offline-site", log)
    code = (
        "import socket, urllib.request\n"
        "try:\n"
        "    urllib.request.urlopen('https://pypi.org/simple/', timeout=5)\n"
        "    print('REACHED')\n"
        "except OSError as e:\n"
        "    print('BLOCKED', e)\n"
        "try:\n"
        "    socket.socket().connect(('151.101.0.223', 443)); print('REACHED IP')\n"
        "except OSError as e:\n"
        "    print('BLOCKED', e)\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
        "c = socket.create_connection(s.getsockname(), timeout=5); print('LOOPBACK OK')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr, [line for line in log.read_text().splitlines() if line.strip()]
