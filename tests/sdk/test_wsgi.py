from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from inferwatch import Monitor
from tests.sdk.support import Samples

Read = Callable[[str], Samples]


def make_app(monitor: Monitor) -> Flask:
    app = Flask(__name__)

    @monitor.track
    def model(x: int) -> int:
        return x * 2

    @app.get("/double/<int:x>")
    def double(x: int) -> dict[str, int]:
        return {"y": model(x)}

    @app.get("/crash")
    def crash() -> str:
        raise RuntimeError("boom")

    monitor.instrument(app)
    return app


def test_flask_routes_are_labelled_by_rule(monitor: Monitor, read: Read) -> None:
    client = make_app(monitor).test_client()
    # A WSGI server always reads the body; werkzeug's test client only when asked.
    assert client.get("/double/2").json == {"y": 4}
    assert client.get("/double/3").data
    assert client.get("/missing").data
    totals = read("inferwatch_http_requests_total")
    assert totals[(("method", "GET"), ("route", "/double/<int:x>"), ("status", "200"))] == 2
    assert totals[(("method", "GET"), ("route", "<unmatched>"), ("status", "404"))] == 1
    assert (
        read("inferwatch_inferences_total")[
            (("error_type", ""), ("model", "m"), ("outcome", "success"), ("version", "1"))
        ]
        == 2
    )


def test_flask_error_is_a_500(monitor: Monitor, read: Read) -> None:
    app = make_app(monitor)
    app.testing = False
    client = app.test_client()
    response = client.get("/crash")
    assert response.data
    assert response.status_code == 500
    totals = read("inferwatch_http_requests_total")
    assert totals[(("method", "GET"), ("route", "/crash"), ("status", "500"))] == 1


def test_flask_serves_metrics(monitor: Monitor) -> None:
    client = make_app(monitor).test_client()
    assert client.get("/double/1").data
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b'route="/double/<int:x>"' in response.data
