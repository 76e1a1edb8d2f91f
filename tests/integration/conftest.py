"""Helpers for integration tests that start real processes: Prometheus and uvicorn.

- :func:`free_port`: a free TCP port on loopback.
- :func:`start_prometheus` and the ``prometheus`` fixture: a real Prometheus server
  (the Debian package ``prometheus``) scraping given targets, with a temporary config
  and data directory, queried through its HTTP API (:class:`PrometheusProcess`).
- :func:`serve_asgi` and the ``asgi_server`` fixture: an ASGI app served by uvicorn in
  a background thread on a free loopback port.

The fixtures stop what they started at teardown and print Prometheus's log there,
which pytest shows only for a failed test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port, stop_process

PROMETHEUS_MISSING = (
    "the `prometheus` binary is not on PATH; integration tests need a real Prometheus. "
    "Run the README's test setup (on Debian/Ubuntu: `sudo apt-get install prometheus`, "
    "which provides /usr/bin/prometheus), or deselect these tests with `-m 'not integration'`."
)
_START_ATTEMPTS = 3
_LOG_TAIL_LINES = 60


class PrometheusProcess:
    """A Prometheus server started by :func:`start_prometheus`; call :meth:`stop` when done."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path
        self._client = httpx.Client(base_url=url, timeout=10.0)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query at the current time (``data.result``)."""
        response = self._client.get("/api/v1/query", params={"query": expr})
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"Prometheus query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The value of a query that returns at most one series (None when it returns none)."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise AssertionError(f"{expr!r} returned {len(result)} series, expected one: {result}")
        return float(result[0]["value"][1])

    def wait_for_value(self, expr: str, expected: float, timeout: float = 20.0) -> float:
        """Poll ``expr`` until it equals ``expected`` (after a scrape); fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        last = self.value(expr)
        while last != expected:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{expr!r} is {last} after {timeout:g}s, expected {expected:g}; "
                    f"scrape targets: {self.target_health()}"
                )
            time.sleep(0.2)
            last = self.value(expr)
        return last

    def wait_until_up(self, timeout: float = 20.0) -> None:
        """Wait until every target has been scraped successfully at least once.

        Prometheus 2.x applies new targets only every 5 s, so this takes up to ~6 s
        after start.
        """
        deadline = time.monotonic() + timeout
        while True:
            health = self.target_health()
            if health and all(t["health"] == "up" for t in health):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"targets not up after {timeout:g}s: {health}")
            time.sleep(0.1)

    def target_health(self) -> list[dict[str, Any]]:
        """``scrapeUrl``, ``health`` and ``lastError`` of every active target."""
        body = self._client.get("/api/v1/targets").json()
        return [
            {key: target.get(key) for key in ("scrapeUrl", "health", "lastError")}
            for target in body["data"]["activeTargets"]
        ]

    def log(self) -> str:
        """Everything Prometheus has written to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of :meth:`log`."""
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate Prometheus and wait for it to exit (idempotent)."""
        self._client.close()
        stop_process(self.process)

    def __repr__(self) -> str:
        return f"PrometheusProcess(url={self.url!r}, pid={self.process.pid})"


def prometheus_config(
    targets: list[str], scrape_interval: str, metrics_path: str = "/metrics"
) -> str:
    """A prometheus.yml scraping ``targets`` (``host:port``) as job ``inferwatch``.

    Written as JSON, which is valid YAML, so no YAML library is needed.
    """
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": "inferwatch",
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "metrics_path": metrics_path,
                "static_configs": [{"targets": targets}],
            }
        ],
    }
    return json.dumps(config, indent=2)


def start_prometheus(
    tmp_path: Path,
    targets: list[str],
    scrape_interval: str = "1s",
    *,
    metrics_path: str = "/metrics",
    ready_timeout: float = 30.0,
    config_text: str | None = None,
) -> PrometheusProcess:
    """Start Prometheus on a free loopback port, scraping ``targets``; return once ready.

    Config, TSDB data and log live in a new directory under ``tmp_path``. Fails the
    test (not skips it) when the ``prometheus`` binary is missing. ``config_text``: a
    whole prometheus.yml to use instead of :func:`prometheus_config`'s (``targets``,
    ``scrape_interval`` and ``metrics_path`` are then ignored).
    """
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(PROMETHEUS_MISSING, pytrace=False)
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=tmp_path))
    config_path = workdir / "prometheus.yml"
    if config_text is None:
        config_text = prometheus_config(targets, scrape_interval, metrics_path)
    config_path.write_text(config_text)
    log_path = workdir / "prometheus.log"
    failure = ""
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=info",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        prom = PrometheusProcess(process, f"http://127.0.0.1:{port}", log_path)
        failure = _wait_ready(prom, ready_timeout)
        if not failure:
            return prom
        prom.stop()
        # Another process may have taken the port between free_port() and the bind.
    pytest.fail(
        f"Prometheus did not become ready ({failure}); its log ({log_path}):\n"
        + "\n".join(log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]),
        pytrace=False,
    )


def _wait_ready(prom: PrometheusProcess, timeout: float) -> str:
    """Poll ``/-/ready``: an empty string once ready, else why it is not."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if prom.process.poll() is not None:
                return f"it exited with status {prom.process.returncode}"
            try:
                if client.get(f"{prom.url}/-/ready").status_code == 200:
                    return ""
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    return f"not ready after {timeout:g}s"


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., PrometheusProcess]]:
    """A factory ``prometheus(targets, scrape_interval="1s")`` starting Prometheus servers.

    Every server started is stopped at teardown, and its log printed (pytest shows it
    for failed tests only).
    """
    started: list[PrometheusProcess] = []

    def start(targets: list[str], scrape_interval: str = "1s") -> PrometheusProcess:
        prom = start_prometheus(tmp_path, targets, scrape_interval)
        started.append(prom)
        return prom

    yield start
    for prom in started:
        prom.stop()
        print(f"--- Prometheus log ({prom.log_path}), last lines ---\n{prom.log_tail()}")


def serve_asgi(app: Any, *, host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:
    """Serve ``app`` with uvicorn in a background thread: ``(base_url, stop)``.

    Binds a free port chosen by the OS. ``stop()`` asks the server to exit (it closes
    open connections) and joins the thread. uvicorn's logging setup is left off so
    the test process's logging stays as it was; its records go to pytest's capture.
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=0, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=5)
            raise RuntimeError("uvicorn did not start serving the test app")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            raise RuntimeError("uvicorn did not stop within 10 s")

    return f"http://{host}:{port}", stop


@pytest.fixture
def asgi_server() -> Iterator[Callable[[Any], str]]:
    """A function ``asgi_server(app) -> base_url`` serving apps until teardown."""
    stops: list[Callable[[], None]] = []

    def serve(app: Any) -> str:
        base_url, stop = serve_asgi(app)
        stops.append(stop)
        return base_url

    yield serve
    for stop in reversed(stops):
        stop()
