"""Web apps shed load with 503 and Retry-After when a guard says so."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from inferwatch import Monitor, Registry
from inferwatch.health.guard import CircuitBreaker, Shed
from inferwatch.sdk.asgi import instrument_asgi
from inferwatch.sdk.wsgi import instrument_flask
from inferwatch.testing import FakeClock, FakeGPU, FakeNVML

GiB = 2**30


def totals(registry: Registry, name: str) -> dict[tuple[str, ...], object]:
    return next((dict(f.samples) for f in registry.snapshot() if f.name == name), {})


def fastapi_app(monitor: Monitor) -> FastAPI:
    app = FastAPI()

    @monitor.track
    def predict(x: int) -> int:
        return x * 2

    @app.get("/predict/{x}")
    async def route(x: int) -> dict[str, int]:
        return {"y": predict(x)}

    @app.get("/guarded")
    async def guarded() -> dict[str, int]:
        @monitor.track
        def inner() -> int:
            monitor.admit()
            return 1

        return {"y": inner()}

    instrument_asgi(
        app,
        monitor.registry,
        metrics_path="/metrics",
        healthz_path="/healthz",
        admission=monitor.guards,
    )
    return app


async def get(app: FastAPI, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [await client.get(path) for path in paths]


@pytest.mark.asyncio
async def test_asgi_app_answers_503_with_retry_after_while_shedding(
    monitor: Monitor, clock: FakeClock, registry: Registry
) -> None:
    gpu = FakeGPU(memory_total=80 * GiB, memory_used=10 * GiB)
    monitor.guard(
        "gpu-memory",
        Shed("gpu_memory_used_ratio > 0.8", fraction=1.0, retry_after_s=2.5),
        nvml=FakeNVML(gpus=[gpu]),
        clock=clock,
    )
    app = fastapi_app(monitor)
    responses = await get(app, "/predict/1", "/predict/2")
    assert [r.status_code for r in responses] == [200, 200]
    gpu.memory_used = 75 * GiB
    clock.advance(1)
    shed, metrics, health = await get(app, "/predict/3", "/metrics", "/healthz")
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "3"
    assert shed.json() == {"error": "overloaded: retry later", "retry_after": 3}
    assert metrics.status_code == 200 and health.status_code == 200  # never shed
    state = 'inferwatch_guard_state{guard="gpu-memory",model="digits",version="1"} 1.0'
    assert state in metrics.text
    gpu.memory_used = 10 * GiB
    clock.advance(1)
    (again,) = await get(app, "/predict/4")
    assert again.status_code == 200
    outcomes = totals(registry, "inferwatch_inferences_total")
    assert outcomes[("digits", "1", "success", "")] == 3
    assert outcomes[("digits", "1", "rejected", "")] == 1
    http = totals(registry, "inferwatch_http_requests_total")
    assert http[("GET", "<shed>", "503")] == 1


@pytest.mark.asyncio
async def test_rejected_raised_in_the_app_becomes_503(
    monitor: Monitor, clock: FakeClock, registry: Registry
) -> None:
    monitor.guard("errors", CircuitBreaker(for_s=0, open_s=30), clock=clock)

    @monitor.track
    def failing() -> None:
        raise RuntimeError("model crashed")

    for _ in range(10):
        with pytest.raises(RuntimeError):
            failing()
    clock.advance(1)
    app = fastapi_app(monitor)
    (response,) = await get(app, "/guarded")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    outcomes = totals(registry, "inferwatch_inferences_total")
    assert outcomes[("digits", "1", "rejected", "")] == 1


@pytest.mark.asyncio
async def test_without_guards_nothing_changes(monitor: Monitor) -> None:
    app = fastapi_app(monitor)
    responses = await get(app, "/predict/1", "/guarded")
    assert [r.status_code for r in responses] == [200, 200]


def test_flask_app_answers_503_with_retry_after_while_shedding(
    monitor: Monitor, clock: FakeClock, registry: Registry
) -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("guarded")

    @app.get("/predict")
    def predict() -> dict[str, int]:
        return {"y": 1}

    @app.get("/guarded")
    def guarded() -> dict[str, int]:
        monitor.admit()
        return {"y": 1}

    depth = [0.0]
    monitor.guard(
        "queue",
        Shed("queue_depth > 10", retry_after_s=4),
        signals={"queue_depth": lambda: depth[0]},
        clock=clock,
    )
    instrument_flask(app, registry, metrics_path="/metrics", admission=monitor.guards)
    client = app.test_client()
    assert client.get("/predict").status_code == 200
    depth[0] = 50
    clock.advance(1)
    response = client.get("/predict")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "4"
    assert client.get("/metrics").status_code == 200
    depth[0] = 0
    clock.advance(1)
    assert client.get("/predict").status_code == 200
    assert totals(registry, "inferwatch_http_requests_total")[("GET", "<shed>", "503")] == 1
