"""Fixtures of the demo tests: the demo app on a registry of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from inferwatch import Monitor, Registry
from inferwatch.demo import DigitsData, create_app, load_digits_split


@pytest.fixture
def monitor() -> Monitor:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    return Monitor(model="digits", version="1", registry=registry)


@pytest.fixture
def client(monitor: Monitor, asgi_client: Callable[[Any], Any]) -> Any:
    """An :class:`ASGIClient` of the demo app (see tests/conftest.py)."""
    return asgi_client(create_app(monitor=monitor, seed=0))


@pytest.fixture(scope="session")
def digits() -> DigitsData:
    """The same split the app trains on with ``seed=0``."""
    return load_digits_split(seed=0)
