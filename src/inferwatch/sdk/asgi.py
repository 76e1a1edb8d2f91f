"""ASGI middleware: per-route HTTP metrics and a ``/metrics`` endpoint.

A plain ASGI class (no ``BaseHTTPMiddleware``), so it adds one closure and one list
append per request. The route label is the route *template* (``/items/{id}``) that
the router matched, read from ``scope["route"]`` after the app ran, never the raw path,
so that label values stay bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter_ns
from typing import Any

from inferwatch.exposition import render
from inferwatch.sdk.registry import Registry

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The template of the route the router matched, or ``<unmatched>``."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED


class MetricsMiddleware:
    """Records every HTTP request and answers ``metrics_path`` with the registry's metrics."""

    def __init__(
        self, app: ASGIApp, registry: Registry, metrics_path: str | None = "/metrics"
    ) -> None:
        self.app = app
        self.registry = registry
        self.metrics_path = metrics_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.metrics_path and scope["method"] in ("GET", "HEAD"):
            await self._serve_metrics(scope, send)
            return
        t0 = perf_counter_ns()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            try:
                rec = self.registry.http_recorder(scope["method"], route_template(scope))
                rec.record(perf_counter_ns() - t0, status)
            except Exception as exc:
                self.registry.internal_error("asgi", exc)

    async def _serve_metrics(self, scope: Scope, send: Send) -> None:
        accept = ""
        for name, value in scope.get("headers", ()):
            if name == b"accept":
                accept = value.decode("latin-1")
        loop = asyncio.get_running_loop()
        # Collection may wait on sibling workers: keep it off the event loop.
        body, content_type = await loop.run_in_executor(None, render, self.registry, accept)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type.encode("latin-1")),
                    (b"content-length", str(len(body)).encode("latin-1")),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


def instrument_asgi(app: Any, registry: Registry, *, metrics_path: str | None) -> Any:
    """Add :class:`MetricsMiddleware` to a Starlette/FastAPI app, or wrap any ASGI app."""
    if hasattr(app, "add_middleware"):
        app.add_middleware(MetricsMiddleware, registry=registry, metrics_path=metrics_path)
        return app
    return MetricsMiddleware(app, registry, metrics_path)
