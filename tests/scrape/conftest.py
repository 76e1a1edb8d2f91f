"""Fixtures for the scrape tests (the helpers they use live in ``support.py``).

- ``appender``: a fresh :class:`RecordingAppender`.
- ``serve``: ``serve(body=..., status=..., delay=..., ...)`` starts a loopback HTTP
  server answering every path with that response; all are stopped at teardown, a
  delayed answer released first.
- ``http_client``: an ``httpx.Client`` closed at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.scrape.support import ExpositionServer, RecordingAppender, Response, start_server


@pytest.fixture
def appender() -> RecordingAppender:
    return RecordingAppender()


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as client:
        yield client


@pytest.fixture
def serve() -> Iterator[Callable[..., ExpositionServer]]:
    started: list[ExpositionServer] = []

    def start(**response: Any) -> ExpositionServer:
        started.append(start_server(Response(**response)))
        return started[-1]

    yield start
    for server in started:
        server.stop()
