"""Child processes and ports for the benchmarks that start real servers.

Imported by the benchmark scripts (``bench/`` is on ``sys.path`` when one runs as
``python bench/NAME.py``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pin(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child to ``cpus`` (None: no pinning)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` and wait; kill it if it has not exited in 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Procs:
    """Child processes, each ended (terminate, then kill) however the run ends."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, cmd: list[str], *, log: Path | None = None, **kw: Any
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd``; with ``log``, its stdout and stderr go to that file."""
        if log is not None:
            kw.setdefault("stdout", log.open("wb"))
            kw.setdefault("stderr", subprocess.STDOUT)
        proc: subprocess.Popen[bytes] = subprocess.Popen(cmd, **kw)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc)

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 60
) -> None:
    """Wait until ``url`` answers 200, or raise with the tail of the process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log is not None else ""
            raise RuntimeError(f"{url}: the process exited ({proc.returncode}): {tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {timeout:g} s")
