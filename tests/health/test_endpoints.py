"""``/healthz`` and ``/readyz`` mounted by ``monitor.instrument(app)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from inferwatch import Monitor
from inferwatch.testing import FakeClock
from tests.support import serve_asgi

Client = Any  # tests/conftest.py's ASGIClient


class Digits:
    """The model behind the app: answers 3 until told to break."""

    def __init__(self) -> None:
        self.answer = 3
        self.calls = 0

    def predict(self, row: list[float]) -> int:
        self.calls += 1
        return self.answer


def is_three(output: int) -> bool:
    if output != 3:
        raise ValueError(f"canary row should be a 3, model says {output}")
    return True


def fastapi_app(monitor: Monitor, digits: Digits) -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    def predict(row: list[float]) -> dict[str, int]:
        return {"digit": digits.predict(row)}

    monitor.instrument(app)
    return app


@pytest.fixture
def digits() -> Digits:
    return Digits()


@pytest.fixture
def served(monitor: Monitor, digits: Digits) -> Iterator[str]:
    """The instrumented FastAPI app under a real uvicorn on a free loopback port."""
    app = fastapi_app(monitor, digits)
    with serve_asgi(app) as url:
        yield url


def test_readiness_fails_and_recovers_over_real_http(
    served: str, monitor: Monitor, digits: Digits, clock: FakeClock
) -> None:
    monitor.readiness(canary=digits.predict, samples=[[0.0] * 64], validator=is_three, clock=clock)
    with httpx.Client(base_url=served, timeout=10) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").status_code == 200
        digits.answer = 8
        clock.advance(10)
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["status"] == "fail"
        assert body["cached_at"] == clock()
        [canary] = [c for c in body["checks"] if c["name"] == "canary"]
        assert canary["status"] == "fail"
        assert (
            canary["reason"]
            == "sample 0: validator rejected the output: canary row should be a 3, model says 8"
        )
        digits.answer = 3
        clock.advance(10)
        assert client.get("/readyz").json()["status"] == "ok"
        metrics = client.get("/metrics").text
    assert 'inferwatch_ready{model="digits",version="1"} 1.0' in metrics
    assert 'inferwatch_canary_success{model="digits",version="1"} 1.0' in metrics


def test_readyz_is_cached_between_probes(
    monitor: Monitor, digits: Digits, clock: FakeClock, asgi_client: Callable[[Any], Client]
) -> None:
    client = asgi_client(fastapi_app(monitor, digits))
    monitor.readiness(canary=digits.predict, samples=[[0.0]], cache_s=30, clock=clock)
    for _ in range(5):
        assert client.get("/readyz").status_code == 200
    assert digits.calls == 1


def test_set_model_loaded_false_fails_readyz_at_once(
    monitor: Monitor, digits: Digits, asgi_client: Callable[[Any], Client]
) -> None:
    client = asgi_client(fastapi_app(monitor, digits))
    monitor.readiness(canary=digits.predict, samples=[[0.0]], validator=is_three)
    assert client.get("/readyz").status_code == 200
    monitor.set_model_loaded(False)
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = {c["name"]: c for c in response.json()["checks"]}
    assert checks["model_loaded"]["reason"] == "model is not loaded"
    assert checks["canary"]["status"] == "skip"
    assert 'inferwatch_model_loaded{model="digits",version="1"} 0.0' in client.get("/metrics").text


def test_health_paths_are_not_counted_as_traffic(
    monitor: Monitor, digits: Digits, asgi_client: Callable[[Any], Client]
) -> None:
    client = asgi_client(fastapi_app(monitor, digits))
    client.get("/healthz")
    client.get("/readyz")
    client.post("/predict", json=[1.0])
    text = client.get("/metrics").text
    assert 'route="/predict"' in text
    assert "/healthz" not in text and "/readyz" not in text


def test_head_requests_get_no_body(
    monitor: Monitor, digits: Digits, asgi_client: Callable[[Any], Client]
) -> None:
    client = asgi_client(fastapi_app(monitor, digits))
    response = client.request("HEAD", "/readyz")
    assert response.status_code == 200 and response.content == b""


def test_paths_are_configurable_and_can_be_disabled(
    monitor: Monitor, asgi_client: Callable[[Any], Client]
) -> None:
    app = FastAPI()

    @app.get("/healthz")
    def own_healthz() -> dict[str, str]:
        return {"status": "the app's own"}

    monitor.instrument(app, healthz_path=None, readyz_path="/-/ready")
    client = asgi_client(app)
    assert client.get("/healthz").json() == {"status": "the app's own"}
    assert client.get("/-/ready").json()["status"] == "ok"
    assert client.get("/readyz").status_code == 404


def test_plain_asgi_app_is_wrapped(monitor: Monitor, asgi_client: Callable[[Any], Client]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})

    monitor.set_model_loaded(False)
    client = asgi_client(monitor.instrument(app))
    assert client.get("/").text == "hello"
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 503


def test_starlette_app_with_async_canary(
    monitor: Monitor, asgi_client: Callable[[Any], Client]
) -> None:
    async def homepage(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hi")

    app = Starlette(routes=[Route("/", homepage)])
    monitor.instrument(app)

    async def predict(row: list[float]) -> int:
        return 8

    monitor.readiness(canary=predict, samples=[[0.0]], validator=is_three)
    response = asgi_client(app).get("/readyz")
    assert response.status_code == 503
    assert "model says 8" in response.json()["checks"][1]["reason"]


def flask_app(monitor: Monitor, digits: Digits) -> Flask:
    app = Flask(__name__)

    @app.post("/predict")
    def predict() -> dict[str, int]:
        return {"digit": digits.predict([])}

    monitor.instrument(app)
    return app


def test_flask_serves_healthz_and_readyz(
    monitor: Monitor, digits: Digits, clock: FakeClock
) -> None:
    client = flask_app(monitor, digits).test_client()
    monitor.readiness(canary=digits.predict, samples=[[0.0]], validator=is_three, clock=clock)
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    digits.answer = 5
    clock.advance(10)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json is not None and response.json["status"] == "fail"
    assert b"/readyz" not in client.get("/metrics").data
