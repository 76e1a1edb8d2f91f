from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import serve_asgi


class Endpoint:
    """A tiny ASGI model endpoint whose behaviour each test sets.

    ``delay``: seconds before each answer (an asyncio sleep: requests overlap);
    ``stall_at``: the request number (from 1) that blocks the whole server for
    ``stall`` seconds; ``fail_every``: every n-th request gets a 500. ``/chunked``
    answers with a chunked body, ``/slow`` after ``slow`` seconds.
    """

    def __init__(self) -> None:
        self.delay = 0.0
        self.stall_at: int | None = None
        self.stall = 1.0
        self.fail_every: int | None = None
        self.slow = 2.0
        self.count = 0
        self.last: tuple[str, str, dict[bytes, bytes], bytes] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.count += 1
        n = self.count
        self.last = (scope["method"], scope["path"], dict(scope["headers"]), body)
        if self.stall_at == n:
            time.sleep(self.stall)  # blocks the server's event loop: every request waits
        if self.delay:
            await asyncio.sleep(self.delay)
        if scope["path"] == "/slow":
            await asyncio.sleep(self.slow)
        status = 500 if self.fail_every and n % self.fail_every == 0 else 200
        answer = b'{"score": 0.5}'
        if scope["path"] == "/chunked":
            await send({"type": "http.response.start", "status": status, "headers": []})
            for part in (b'{"score": ', b"0.5", b"}"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", b"14")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint()


@pytest.fixture
def url(endpoint: Endpoint) -> Iterator[str]:
    """The base URL of ``endpoint`` served by a real uvicorn on loopback."""
    with serve_asgi(endpoint) as base:
        yield base
