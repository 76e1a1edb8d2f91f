"""The built-in dashboard: one HTML page and its static assets, served at ``/``.

::

    from inferwatch.server.dashboard import dashboard_routes

    app = Starlette(routes=[*api_routes, *dashboard_routes()])

The page is plain JavaScript (no build step) with uPlot for the charts, shipped inside
the package (``inferwatch/server/static``), so it works on closed networks. Every number
on it comes from the server's own HTTP API through PromQL (``/api/v1/query``,
``/api/v1/query_range``, ...), plus ``/api/v1/alerts``, ``/api/v1/rules``,
``/api/v1/targets`` and Alertmanager's ``/api/v2/silences``.

The page learns which optional endpoints this app serves from the app's routes (so it
never probes one that would answer 404): ``/api/v2/status`` (the embedded Alertmanager:
the silence UI), ``/api/v1/targets`` and ``/faults`` (the demo's fault switches). These
must be routes of the app the dashboard is in, or of an app that mounts it.

The page and the assets are answered with ``Cache-Control: no-cache`` (browsers keep
them and revalidate with the ETag), and the page with a Content-Security-Policy that
allows scripts from this server only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from inferwatch._version import __version__

#: The folder of the page and its assets (``index.html``, ``app.js``, ``app.css``, ``vendor/``).
STATIC_DIR = Path(__file__).with_name("static")

#: Scripts and styles from this server only; uPlot sets inline styles on its elements.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'self'"
)

_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class DashboardAssets(StaticFiles):
    """The dashboard's static files, each with ``Cache-Control: no-cache`` and
    ``X-Content-Type-Options: nosniff``."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if str(full_path).endswith(".js"):
            response.headers["Content-Type"] = "text/javascript; charset=utf-8"
        return response


#: Optional endpoints the page uses when the app serves them: feature name -> path.
FEATURE_PATHS = {
    "silences": "/api/v2/status",
    "targets": "/api/v1/targets",
    "faults": "/faults",
}


def _inner_routes(app: Any) -> Sequence[BaseRoute] | None:
    """The routes of a mounted app (a Starlette, a Router, or an app wrapping one in
    ``.app``), or None when they cannot be seen."""
    for candidate in (app, getattr(app, "app", None)):
        routes = getattr(candidate, "routes", None)
        if isinstance(routes, list) and routes:
            return routes
    return None


def serves(routes: Sequence[BaseRoute], path: str, method: str = "GET") -> bool:
    """Whether one of ``routes`` (looking into mounts) answers ``method path``; an app
    mounted without visible routes counts as answering everything under its prefix."""
    scope: dict[str, Any] = {"type": "http", "path": path, "method": method, "root_path": ""}
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = _inner_routes(route.app)
            if inner is None:
                return True
            rest = "/" + path[len(route.path) :].lstrip("/")
            if serves(inner, rest, method):
                return True
            continue
        if match is Match.FULL:
            return True
    return False


def index_html(features: Sequence[str] = ()) -> str:
    """The dashboard page, its asset URLs tagged with the package version and the
    optional ``features`` (names of :data:`FEATURE_PATHS`) it may use."""
    text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return text.replace("{{version}}", __version__).replace("{{features}}", " ".join(features))


async def _index(request: Request) -> Response:
    # The outermost router sees routes of an app that mounts this one (the demo's /faults).
    tables = [getattr(request.scope.get("router"), "routes", None)]
    tables.append(getattr(request.scope.get("app"), "routes", None))
    features = [
        name
        for name, path in FEATURE_PATHS.items()
        if any(isinstance(routes, list) and serves(routes, path) for routes in tables)
    ]
    headers = {"Cache-Control": "no-cache", **_SECURITY_HEADERS}
    return HTMLResponse(index_html(features), headers=headers)


def public_paths() -> frozenset[str]:
    """The paths of the page and its assets. They hold no data (every number comes from
    the API), so a server that asks for a bearer token can serve them without one: the
    page then asks the user for the token (a browser cannot send one by itself)."""
    assets = {
        f"/static/{path.relative_to(STATIC_DIR).as_posix()}"
        for path in STATIC_DIR.rglob("*")
        if path.is_file()
    }
    return frozenset({"/", *assets})


def dashboard_routes() -> list[BaseRoute]:
    """The routes of the dashboard: the page at ``/`` and its assets under ``/static``."""
    return [
        Route("/", _index, methods=["GET", "HEAD"]),
        Mount("/static", app=DashboardAssets(directory=STATIC_DIR), name="static"),
    ]


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "FEATURE_PATHS",
    "STATIC_DIR",
    "DashboardAssets",
    "dashboard_routes",
    "index_html",
    "public_paths",
    "serves",
]
