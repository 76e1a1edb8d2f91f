"""Loopback servers for the client commands.

- ``server``: a real inferwatch :class:`~inferwatch.server.app.Server` (store, rules,
  embedded Alertmanager) served by uvicorn, with samples in its store and the rule
  ``vector(1)`` firing as ``AlwaysFiring`` (and ``AlwaysPending``, held by a ``for``).
- ``alertmanager``: a real ``prometheus-alertmanager`` process.
- ``invoke``: run ``inferwatch ARGS...`` through typer's CliRunner, wide enough that
  tables do not fold.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from inferwatch.cli import app
from inferwatch.server.app import Server
from inferwatch.tsdb.labels import make_labels
from tests.support import free_port, serve_asgi, stop_process

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

#: Samples every 15 s, this many of them, ending at ``Served.end``.
POINTS = 40
STEP_S = 15

RULES = """\
groups:
- name: client
  interval: 1s
  rules:
  - alert: AlwaysFiring
    expr: vector(1)
    labels:
      severity: page
    annotations:
      summary: "always [bold]on[/bold] <b>"
  - alert: AlwaysPending
    expr: vector(1)
    for: 1h
"""

AM_CONFIG = """\
route:
  receiver: nobody
receivers:
- name: nobody
"""

#: A label value that rich would take for markup: it must be printed as it is.
MARKUP = "[red]gpu[/red]"


def temperature(i: int) -> float:
    return 50.0 + 10.0 * (i % 4)


@dataclass
class Served:
    url: str
    end: int
    server: Server


def _fill(server: Server, end: int) -> None:
    requests = make_labels({"__name__": "requests_total", "model": "digits", "version": "1"})
    temp = make_labels({"__name__": "gpu_temperature_celsius", "gpu": "0", "card": MARKUP})
    for i in range(POINTS):
        t = end - (POINTS - 1 - i) * STEP_S
        server.store.append(t * 1000, [(requests, 10.0 * i), (temp, temperature(i))])


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not true after {timeout:g}s: {what}"
        time.sleep(0.05)


def _firing(url: str) -> bool:
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return any(a["state"] == "firing" for a in alerts)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("server")
    (directory / "rules.yml").write_text(RULES)
    (directory / "prometheus.yml").write_text(
        "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n"
    )
    (directory / "alertmanager.yml").write_text(AM_CONFIG)
    instance = Server(
        str(directory / "prometheus.yml"),
        alertmanager_config_path=str(directory / "alertmanager.yml"),
        db=str(directory / "inferwatch.db"),
    )
    end = int(time.time())
    _fill(instance, end)
    instance.start()
    try:
        with serve_asgi(instance.app()) as url:
            _wait(lambda: _firing(url), "AlwaysFiring fires")
            yield Served(url, end, instance)
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real Alertmanager on loopback."""
    if ALERTMANAGER is None:
        pytest.skip("prometheus-alertmanager is not installed")
    directory = tmp_path_factory.mktemp("alertmanager")
    (directory / "am.yml").write_text(AM_CONFIG)
    port, cluster_port = free_port(), free_port()
    log = (directory / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={directory / 'am.yml'}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--cluster.listen-address=127.0.0.1:{cluster_port}",
            "--cluster.advertise-address=127.0.0.1:9094",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (directory / "alertmanager.log").read_text()
        try:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait(ready, "alertmanager answers /-/ready", timeout=30)
        yield url
    finally:
        stop_process(process)
        log.close()


@pytest.fixture
def invoke() -> Callable[..., Result]:
    """``invoke(*args, env=None)``: ``inferwatch ARGS`` in-process; the click Result."""

    def run(*args: str, env: dict[str, Any] | None = None) -> Result:
        base = {
            "COLUMNS": "300",
            "INFERWATCH_URL": None,
            "INFERWATCH_TOKEN": None,
            "INFERWATCH_USER": None,
            "INFERWATCH_PASSWORD": None,
        }
        return CliRunner().invoke(app, list(args), env={**base, **(env or {})})

    return run
