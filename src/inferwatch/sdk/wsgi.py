"""WSGI middleware for Flask: per-route HTTP metrics, ``/metrics``, ``/healthz``, ``/readyz``.

The route template comes from Flask's ``request.url_rule`` (stored in the WSGI
environ by a ``before_request`` hook); the latency runs until the response body has
been sent (the iterable's ``close()``). Requests to the metrics and health paths are
answered by the middleware and are not counted in the HTTP metrics.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from inferwatch.exposition import render
from inferwatch.sdk.logs import REQUEST
from inferwatch.sdk.registry import Registry

if TYPE_CHECKING:
    from inferwatch._errors import Rejected
    from inferwatch.health.checks import Readiness
    from inferwatch.sdk.asgi import Admission

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
    """Records every request of a WSGI app and answers ``metrics_path``, ``healthz_path``
    and (with a ``readiness``) ``readyz_path``; ``None`` disables a path.

    With an ``admission`` (a monitor's guards), a request it turns away is answered 503
    with ``Retry-After`` before reaching the app (HTTP metrics route ``<shed>``).
    """

    def __init__(
        self,
        app: WSGIApp,
        registry: Registry,
        metrics_path: str | None,
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

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO")
        if method in ("GET", "HEAD") and path in (
            self.metrics_path,
            self.healthz_path,
            self.readyz_path,
        ):
            if path == self.metrics_path:
                body, content_type = render(self.registry, environ.get("HTTP_ACCEPT"))
                start_response(
                    "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
                )
                return [b"" if method == "HEAD" else body]
            if path == self.healthz_path:
                return _json_response(start_response, method, 200, {"status": "ok"})
            return self._readiness(start_response, method)
        t0 = perf_counter_ns()
        status = [500]
        if self.admission is not None:
            rejection = self._admit()
            if rejection is not None:
                return self._shed(start_response, method, rejection, t0)

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

        request_token = REQUEST.set(environ)  # for the trace id of inference logs
        try:
            response = self.app(environ, start)
        except BaseException:
            record()
            raise
        finally:
            REQUEST.reset(request_token)
        return _TimedBody(response, record)

    def _admit(self) -> Rejected | None:
        assert self.admission is not None
        try:
            return self.admission.check()
        except Exception as exc:
            self.registry.internal_error("wsgi", exc)
            return None

    def _shed(
        self, start_response: StartResponse, method: str, rejection: Rejected, t0: int
    ) -> Iterable[bytes]:
        from inferwatch.sdk.asgi import SHED_ROUTE, retry_after_header, shed_body

        body = shed_body(rejection)
        start_response(
            "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Retry-After", retry_after_header(rejection)),
                ("Cache-Control", "no-store"),
            ],
        )
        try:
            self.registry.http_recorder(method, SHED_ROUTE).record(perf_counter_ns() - t0, 503)
        except Exception as exc:
            self.registry.internal_error("wsgi", exc)
        return [b"" if method == "HEAD" else body]

    def _readiness(self, start_response: StartResponse, method: str) -> Iterable[bytes]:
        assert self.readiness is not None
        try:
            report = self.readiness.check()
        except Exception as exc:
            self.registry.internal_error("readiness", exc)
            body = {"status": "fail", "checks": [], "error": f"{type(exc).__name__}: {exc}"}
            return _json_response(start_response, method, 503, body)
        return _json_response(start_response, method, report.http_status, report.to_json())


_REASONS = {200: "200 OK", 503: "503 Service Unavailable"}


def _json_response(
    start_response: StartResponse, method: str, status: int, payload: object
) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        _REASONS.get(status, str(status)),
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [b"" if method == "HEAD" else body]


def instrument_flask(
    app: Any,
    registry: Registry,
    *,
    metrics_path: str | None,
    healthz_path: str | None = None,
    readyz_path: str | None = None,
    readiness: Readiness | None = None,
    admission: Admission | None = None,
) -> Any:
    """Install the middleware and the route-template hook on a Flask app.

    With an ``admission``, a :class:`~inferwatch.Rejected` raised by a view (for
    example by ``monitor.admit()``) is answered 503 with ``Retry-After``.
    """
    from flask import request

    def remember_route() -> None:
        rule = request.url_rule
        if rule is not None:
            request.environ[ROUTE_KEY] = rule.rule

    app.before_request(remember_route)
    if admission is not None:
        from inferwatch._errors import Rejected
        from inferwatch.sdk.asgi import retry_after_header, shed_body

        def answer_rejected(exc: Rejected) -> Any:
            headers = {"Retry-After": retry_after_header(exc), "Cache-Control": "no-store"}
            return app.response_class(shed_body(exc), 503, headers, mimetype="application/json")

        app.register_error_handler(Rejected, answer_rejected)
    app.wsgi_app = WSGIMetricsMiddleware(
        app.wsgi_app,
        registry,
        metrics_path,
        healthz_path=healthz_path,
        readyz_path=readyz_path,
        readiness=readiness,
        admission=admission,
    )
    return app
