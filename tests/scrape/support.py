"""Test helpers for the scrape tests: a recording appender and loopback HTTP servers.

- :class:`RecordingAppender`: an honest in-memory ``Appender`` that keeps every sample
  and rejects out-of-order and duplicate samples per series, as the store does.
- :class:`ExpositionServer`: an HTTP server on 127.0.0.1 in a thread that answers every
  path with one :class:`Response` (which a test may change between scrapes) and records
  the requests it got; started by the ``serve`` fixture.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from inferwatch.tsdb.labels import METRIC_NAME, Labels, is_stale
from inferwatch.tsdb.series import AppendResult

DATA = Path(__file__).parent / "data"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class RecordingAppender:
    """Keeps every appended sample in memory, with the store's rules for rejections."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.points: dict[Labels, list[tuple[int, float]]] = {}
        self.calls: list[tuple[int, list[tuple[Labels, float]]]] = []
        self.rejected = 0

    def append(self, ts_ms: int, samples: Sequence[tuple[Labels, float]]) -> AppendResult:
        result = AppendResult()
        with self.lock:
            self.calls.append((ts_ms, list(samples)))
            for labels, value in samples:
                points = self.points.get(labels)
                if points and ts_ms < points[-1][0]:
                    result.out_of_order += 1
                    continue
                if points and ts_ms == points[-1][0]:
                    result.duplicate += 1
                    continue
                if points is None:
                    points = self.points[labels] = []
                    result.new_series += 1
                points.append((ts_ms, value))
                result.accepted += 1
            self.rejected += result.rejected
        return result

    def select(
        self, name: str | None = None, **labels: str
    ) -> dict[Labels, list[tuple[int, float]]]:
        """Series whose name is ``name`` (any when None) and whose labels include ``labels``."""
        with self.lock:
            out = {}
            for series, points in self.points.items():
                d = dict(series)
                if name is not None and d.get(METRIC_NAME) != name:
                    continue
                if all(d.get(k) == v for k, v in labels.items()):
                    out[series] = list(points)
            return out

    def value(self, name: str, **labels: str) -> float:
        """The latest value of the one series that matches."""
        found = self.select(name, **labels)
        assert len(found) == 1, f"{len(found)} series match {name} {labels}: {list(found)}"
        return next(iter(found.values()))[-1][1]

    def names(self, **labels: str) -> set[str]:
        return {dict(series)[METRIC_NAME] for series in self.select(None, **labels)}

    def stale_series(self, ts_ms: int, **labels: str) -> set[Labels]:
        """Series that got a staleness marker at ``ts_ms``."""
        return {
            series
            for series, points in self.select(None, **labels).items()
            if any(t == ts_ms and is_stale(v) for t, v in points)
        }


@dataclass
class RecordedRequest:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class Response:
    """What a test server answers; change the fields between scrapes to change it."""

    body: str | bytes = ""
    status: int = 200
    content_type: str = TEXT_CONTENT_TYPE
    delay: float = 0.0
    basic_auth: tuple[str, str] | None = None
    bearer_token: str | None = None


@dataclass
class ExpositionServer:
    """A loopback HTTP server started by ``serve``."""

    server: ThreadingHTTPServer
    response: Response
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[RecordedRequest] = field(default_factory=list)
    thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def stop(self) -> None:
        """Release any delayed answer, stop serving, close the socket, join the threads."""
        if self.thread is None:
            return
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        self.thread = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        state.requests.append(
            RecordedRequest(
                url.path, parse_qs(url.query), {k.lower(): v for k, v in self.headers.items()}
            )
        )
        response = state.response
        if response.delay:
            state.release.wait(response.delay)
        if not self._authorized(response):
            self._answer(401, b"unauthorized\n", "text/plain")
            return
        body = response.body.encode() if isinstance(response.body, str) else response.body
        self._answer(response.status, body, response.content_type)

    def _authorized(self, response: Response) -> bool:
        header = self.headers.get("Authorization", "")
        if response.basic_auth is not None:
            user, password = response.basic_auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            return header == f"Basic {token}"
        if response.bearer_token is not None:
            return header == f"Bearer {response.bearer_token}"
        return True

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the scraper gave up (timeout) and closed the connection
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    state: ExpositionServer
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def fixture_text(name: str) -> str:
    return (DATA / name).read_text()


def exposed_sample_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.startswith("#"))


def start_server(response: Response) -> ExpositionServer:
    """Start an :class:`ExpositionServer` on a free loopback port, in a new thread."""
    server = _Server(("127.0.0.1", 0), _Handler)
    state = ExpositionServer(server, response)
    server.state = state
    state.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    state.thread.start()
    return state
