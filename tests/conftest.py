"""Fixtures shared by the whole suite.

- ``free_port``: a TCP port on loopback that nothing listens on right now.
- ``metric_value`` / ``metric_label_values``: read samples out of ``/metrics`` text.
- ``spawn``: start a process whose output goes to a log file; at teardown it is
  stopped (SIGTERM, then SIGKILL) if still running, so no test leaves one behind.
- ``wait_for_metrics``: poll a ``/metrics`` URL until its text satisfies a condition.
- ``asgi_client``: ``asgi_client(app)`` gives synchronous ``get``/``post`` calls into an
  ASGI app through ``httpx.ASGITransport``, on an event loop in a background thread
  (starlette's ``TestClient`` warns about httpx, and warnings are errors here).
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from prometheus_client.parser import text_string_to_metric_families

from tests.support import free_port, stop_process


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    """A free loopback TCP port."""
    return free_port()


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _metric_value(text: str, name: str, /, **labels: str) -> float | None:
    """The value of the one sample ``name`` whose labels include ``labels`` (None: none)."""
    found = [
        value
        for sample_labels, value in _samples(text, name)
        if all(sample_labels.get(k) == v for k, v in labels.items())
    ]
    if len(found) > 1:
        raise AssertionError(f"{len(found)} samples of {name} match {labels}; give more labels")
    return found[0] if found else None


def _metric_label_values(text: str, name: str, label: str) -> set[str]:
    """Every value that ``label`` takes in the samples of ``name``."""
    return {labels[label] for labels, _ in _samples(text, name) if label in labels}


@pytest.fixture
def metric_value() -> Callable[..., float | None]:
    """``metric_value(text, name, **labels)``: one sample's value, or None if absent."""
    return _metric_value


@pytest.fixture
def metric_label_values() -> Callable[[str, str, str], set[str]]:
    """``metric_label_values(text, name, label)``: the values of one label of a metric."""
    return _metric_label_values


@dataclass
class Spawned:
    """A process started by the ``spawn`` fixture, with its combined output in ``log``."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[Sequence[str]], Spawned]]:
    started: list[Spawned] = []

    def start(args: Sequence[str]) -> Spawned:
        log = tmp_path / f"process-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                list(args), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        spawned = Spawned(process, log)
        started.append(spawned)
        return spawned

    yield start
    for spawned in started:
        if spawned.process.poll() is None:
            stop_process(spawned.process)


@pytest.fixture
def wait_for_metrics() -> Callable[..., str]:
    """``wait_for_metrics(url, until=lambda text: ..., process=None, timeout=30)``.

    Polls ``url`` until it answers 200 and ``until(text)`` holds, and returns that text.
    Fails at once if ``process`` (a :class:`Spawned`) has exited, showing its output.
    """

    def wait(
        url: str,
        *,
        until: Callable[[str], bool] = lambda text: True,
        process: Spawned | None = None,
        timeout: float = 30.0,
    ) -> str:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if process is not None and process.process.poll() is not None:
                raise AssertionError(
                    f"process exited with {process.process.returncode} while waiting for "
                    f"{url}; its output:\n{process.output()}"
                )
            try:
                response = httpx.get(url, timeout=5)
            except httpx.HTTPError as exc:
                last = repr(exc)
            else:
                if response.status_code == 200 and until(response.text):
                    return response.text
                last = f"{response.status_code}:\n{response.text}"
            time.sleep(0.1)
        output = f"\nprocess output:\n{process.output()}" if process is not None else ""
        raise AssertionError(f"{url} not ready after {timeout:g}s; last: {last}{output}")

    return wait


class ASGIClient:
    """Synchronous requests into an ASGI app; made by the ``asgi_client`` fixture."""

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient) -> None:
        self._portal = portal
        self._client = client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(functools.partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def asgi_client() -> Iterator[Callable[[Any], ASGIClient]]:
    with contextlib.ExitStack() as stack:

        def connect(app: Any) -> ASGIClient:
            portal = stack.enter_context(start_blocking_portal())
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            )
            stack.callback(portal.call, client.aclose)
            return ASGIClient(portal, client)

        yield connect
