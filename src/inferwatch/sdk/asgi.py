"""ASGI middleware: per-route HTTP metrics, ``/metrics``, ``/healthz`` and ``/readyz``.

A plain ASGI class (no ``BaseHTTPMiddleware``), so it adds one closure and one list
append per request. The route label is the route *template* (``/items/{id}``) that
the router matched, read from ``scope["route"]`` after the app ran, never the raw path,
so that label values stay bounded. Requests to the metrics and health paths are answered
by the middleware itself and are not counted in the HTTP metrics.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Protocol

from inferwatch._errors import Rejected
from inferwatch.exposition import render
from inferwatch.sdk.logs import REQUEST
from inferwatch.sdk.registry import Registry

if TYPE_CHECKING:
    from inferwatch.health.checks import Readiness

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNMATCHED = "<unmatched>"
#: The route label of requests shed by the middleware before the router ran.
SHED_ROUTE = "<shed>"


class Admission(Protocol):
    """What sheds requests before they reach the app (a monitor's
    :class:`~inferwatch.health.guard.GuardSet`): ``check()`` returns None to admit, or
    the :class:`~inferwatch.Rejected` to answer with 503 and ``Retry-After``."""

    def check(self) -> Rejected | None: ...


def retry_after_header(rejection: Rejected) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    seconds = rejection.retry_after
    if seconds is None or not math.isfinite(seconds):
        return "1"
    return str(max(1, math.ceil(seconds)))


def shed_body(rejection: Rejected) -> bytes:
    """The JSON body of a 503 answer to a shed request."""
    return json.dumps(
        {"error": "overloaded: retry later", "retry_after": int(retry_after_header(rejection))}
    ).encode()


def route_template(scope: Scope) -> str:
    """The template of the route the router matched, or ``<unmatched>``."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED


class MetricsMiddleware:
    """Records every HTTP request and answers ``metrics_path`` with the registry's metrics.

    With ``healthz_path``, answers liveness (``200 {"status": "ok"}``, from the event
    loop itself); with ``readyz_path`` and a ``readiness``, answers readiness (200 or 503
    with the JSON report of :class:`~inferwatch.health.Readiness`). ``None`` disables a path.

    With an ``admission`` (a monitor's guards), a request it turns away is answered
    503 with ``Retry-After`` before reaching the app (counted in the HTTP metrics under
    route ``<shed>``), and a :class:`~inferwatch.Rejected` raised by the app before its
    response started is answered the same way instead of becoming a 500.
    """

    def __init__(
        self,
        app: ASGIApp,
        registry: Registry,
        metrics_path: str | None = "/metrics",
        *,
        healthz_path: str | None = None,
        readyz_path: str | None = None,
        readiness: Readiness | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.app = app
        self.registry = registry
        self.metrics_path = metrics_path
        self.healthz_path = healthz_path
        self.readyz_path = readyz_path if readiness is not None else None
        self.readiness = readiness
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if scope["method"] in ("GET", "HEAD") and path in (
            self.metrics_path,
            self.healthz_path,
            self.readyz_path,
        ):
            if path == self.metrics_path:
                await self._serve_metrics(scope, send)
            elif path == self.healthz_path:
                await _send_json(scope, send, 200, {"status": "ok"})
            else:
                await self._serve_readiness(scope, send)
            return
        t0 = perf_counter_ns()
        status = 500
        if self.admission is not None:
            rejection = self._admit()
            if rejection is not None:
                await _send_shed(scope, send, rejection)
                self._record_shed(scope, t0)
                return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        request_token = REQUEST.set(scope)  # for the trace id of inference logs
        try:
            await self.app(scope, receive, send_wrapper)
        except Rejected as exc:
            # Shed inside the app (monitor.admit()): answer 503 if nothing was sent yet.
            if self.admission is None or started:
                raise
            status = 503
            await _send_shed(scope, send, exc)
        finally:
            REQUEST.reset(request_token)
            try:
                rec = self.registry.http_recorder(scope["method"], route_template(scope))
                rec.record(perf_counter_ns() - t0, status)
            except Exception as exc:
                self.registry.internal_error("asgi", exc)

    def _admit(self) -> Rejected | None:
        assert self.admission is not None
        try:
            return self.admission.check()
        except Exception as exc:
            self.registry.internal_error("asgi", exc)
            return None

    def _record_shed(self, scope: Scope, t0: int) -> None:
        try:
            self.registry.http_recorder(scope["method"], SHED_ROUTE).record(
                perf_counter_ns() - t0, 503
            )
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

    async def _serve_readiness(self, scope: Scope, send: Send) -> None:
        assert self.readiness is not None
        try:
            report = await self.readiness.check_async()
        except Exception as exc:
            # A bug in inferwatch must read as not-ready, never as a crashed endpoint.
            self.registry.internal_error("readiness", exc)
            body = {"status": "fail", "checks": [], "error": f"{type(exc).__name__}: {exc}"}
            await _send_json(scope, send, 503, body)
            return
        await _send_json(scope, send, report.http_status, report.to_json())


async def _send_json(scope: Scope, send: Send, status: int, payload: object) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("latin-1")),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def _send_shed(scope: Scope, send: Send, rejection: Rejected) -> None:
    body = shed_body(rejection)
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("latin-1")),
                (b"retry-after", retry_after_header(rejection).encode("latin-1")),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def instrument_asgi(
    app: Any,
    registry: Registry,
    *,
    metrics_path: str | None,
    healthz_path: str | None = None,
    readyz_path: str | None = None,
    readiness: Readiness | None = None,
    admission: Admission | None = None,
) -> Any:
    """Add :class:`MetricsMiddleware` to a Starlette/FastAPI app, or wrap any ASGI app."""
    options: dict[str, Any] = {
        "healthz_path": healthz_path,
        "readyz_path": readyz_path,
        "readiness": readiness,
        "admission": admission,
    }
    if hasattr(app, "add_middleware"):
        app.add_middleware(
            MetricsMiddleware, registry=registry, metrics_path=metrics_path, **options
        )
        return app
    return MetricsMiddleware(app, registry, metrics_path, **options)
