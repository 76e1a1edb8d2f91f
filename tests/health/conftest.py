"""Fixtures of the health tests: a fake clock, a monitor on its own registry, and a
real loopback HTTP server whose answers each test sets per path."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from inferwatch import Monitor, Registry
from inferwatch.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> Registry:
    return Registry(collectors=[], include_default_registry=False, multiprocess=False)


@pytest.fixture
def monitor(registry: Registry) -> Monitor:
    return Monitor("digits", "1", registry=registry)


@dataclass
class Answer:
    """What the server answers on one path; ``hang`` waits until the test ends."""

    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    hang: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ModelServer:
    """A threaded ``http.server`` on 127.0.0.1 that plays a remote model endpoint."""

    answers: dict[str, Answer] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer_json(self, path: str, payload: Any, status: int = 200) -> str:
        self.answers[path] = Answer(status, json.dumps(payload).encode())
        return self.url(path)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        answer = state.answers.get(self.path, Answer(404, b'{"error": "no such path"}'))
        if answer.hang:
            state.release.wait(30)
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ModelServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a probe that gave up closes its end; that is expected here


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    state = ModelServer()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = state
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
