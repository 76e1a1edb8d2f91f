"""WSGI middleware for Flask: per-route HTTP metrics and a ``/metrics`` endpoint.

The route template comes from Flask's ``request.url_rule`` (stored in the WSGI
environ by a ``before_request`` hook); the latency runs until the response body has
been sent (the iterable's ``close()``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter_ns
from typing import Any

from inferwatch.exposition import render
from inferwatch.sdk.registry import Registry

ROUTE_KEY = "inferwatch.route"
UNMATCHED = "<unmatched>"
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def is_flask(app: Any) -> bool:
    return hasattr(app, "wsgi_app") and hasattr(app, "url_map") and hasattr(app, "before_request")


class _TimedBody:
    """Wraps a response iterable to record the request once, when it has been sent.

    That is when iteration ends or when the server calls ``close()``, whichever is first.
    """

    def __init__(self, body: Iterable[bytes], on_done: Callable[[], None]) -> None:
        self._body = body
        self._on_done: Callable[[], None] | None = on_done

    def _done(self) -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            on_done()

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body
        self._done()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


class WSGIMetricsMiddleware:
    """Records every request of a WSGI app and answers ``metrics_path``."""

    def __init__(self, app: WSGIApp, registry: Registry, metrics_path: str | None) -> None:
        self.app = app
        self.registry = registry
        self.metrics_path = metrics_path

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if environ.get("PATH_INFO") == self.metrics_path and method in ("GET", "HEAD"):
            body, content_type = render(self.registry, environ.get("HTTP_ACCEPT"))
            start_response(
                "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
            )
            return [b"" if method == "HEAD" else body]
        t0 = perf_counter_ns()
        status = [500]

        def start(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            with contextlib.suppress(ValueError):
                status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, exc_info)

        def record() -> None:
            try:
                rec = self.registry.http_recorder(method, environ.get(ROUTE_KEY, UNMATCHED))
                rec.record(perf_counter_ns() - t0, status[0])
            except Exception as exc:
                self.registry.internal_error("wsgi", exc)

        try:
            response = self.app(environ, start)
        except BaseException:
            record()
            raise
        return _TimedBody(response, record)


def instrument_flask(app: Any, registry: Registry, *, metrics_path: str | None) -> Any:
    """Install the middleware and the route-template hook on a Flask app."""
    from flask import request

    def remember_route() -> None:
        rule = request.url_rule
        if rule is not None:
            request.environ[ROUTE_KEY] = rule.rule

    app.before_request(remember_route)
    app.wsgi_app = WSGIMetricsMiddleware(app.wsgi_app, registry, metrics_path)
    return app
