from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client.parser import text_string_to_metric_families

from inferwatch import Monitor, Registry
from tests.sdk.support import Samples

Read = Callable[[str], Samples]


def make_app(monitor: Monitor) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/fail")
    async def fail() -> JSONResponse:
        return JSONResponse({"error": "nope"}, status_code=503)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    monitor.instrument(app)
    return app


async def call(app: FastAPI, *requests: tuple[str, str]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [await client.request(method, path) for method, path in requests]


@pytest.mark.asyncio
async def test_requests_are_labelled_by_route_template(monitor: Monitor, read: Read) -> None:
    app = make_app(monitor)
    await call(app, ("GET", "/items/1"), ("GET", "/items/2"), ("POST", "/fail"))
    totals = read("inferwatch_http_requests_total")
    assert totals[(("method", "GET"), ("route", "/items/{item_id}"), ("status", "200"))] == 2
    assert totals[(("method", "POST"), ("route", "/fail"), ("status", "503"))] == 1
    latency = read("inferwatch_http_request_duration_seconds")
    assert latency[(("method", "GET"), ("route", "/items/{item_id}"))].count == 2


@pytest.mark.asyncio
async def test_unmatched_paths_share_one_label(monitor: Monitor, read: Read) -> None:
    app = make_app(monitor)
    await call(app, ("GET", "/nope/1"), ("GET", "/nope/2"))
    totals = read("inferwatch_http_requests_total")
    assert totals == {(("method", "GET"), ("route", "<unmatched>"), ("status", "404")): 2}


@pytest.mark.asyncio
async def test_unhandled_exception_is_recorded_as_500(monitor: Monitor, read: Read) -> None:
    app = make_app(monitor)
    [response] = await call(app, ("GET", "/crash"))
    assert response.status_code == 500
    totals = read("inferwatch_http_requests_total")
    assert totals[(("method", "GET"), ("route", "/crash"), ("status", "500"))] == 1


@pytest.mark.asyncio
async def test_metrics_endpoint_is_mounted_and_negotiates(monitor: Monitor) -> None:
    app = make_app(monitor)
    await call(app, ("GET", "/items/1"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        text = await client.get("/metrics")
        om = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert text.headers["content-type"].startswith("text/plain")
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    names = {f.name for f in text_string_to_metric_families(text.text)}
    assert "inferwatch_http_requests" in names


@pytest.mark.asyncio
async def test_plain_asgi_callable_is_wrapped(registry: Registry, read: Read) -> None:
    async def app(scope: dict, receive: object, send: Callable) -> None:  # type: ignore[type-arg]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = Monitor("m", "1", registry=registry).instrument(app)
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/anything")).status_code == 204
        assert (await client.get("/metrics")).status_code == 200
    totals = read("inferwatch_http_requests_total")
    assert totals == {(("method", "GET"), ("route", "<unmatched>"), ("status", "204")): 1}
