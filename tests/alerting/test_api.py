"""Alertmanager's /api/v2 over the embedded Alertmanager, through httpx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from inferwatch.alerting.alertmanager import Alertmanager
from inferwatch.alerting.api import format_time
from inferwatch.alerting.config import parse_config
from inferwatch.testing import FakeClock

CONFIG = """
global:
  slack_api_url: https://hooks.slack.com/services/T000/B000/XXXX
route:
  receiver: team
  group_by: [alertname]
  routes:
    - receiver: pager
      matchers: ['severity="page"']
receivers:
  - name: team
    webhook_configs:
      - url: http://127.0.0.1:9/hook
  - name: pager
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def am(clock: FakeClock) -> Iterator[Alertmanager]:
    manager = Alertmanager(parse_config(CONFIG), db_path=None, clock=clock)
    yield manager
    manager.stop()


@pytest.fixture
def client(am: Alertmanager, asgi_client: Callable[[Any], Any]) -> Any:
    return asgi_client(am.api_app())


def prometheus_alert(clock: FakeClock, **labels: str) -> dict[str, Any]:
    """An alert as Prometheus 2.42 posts it (endsAt a few intervals ahead)."""
    return {
        "labels": {"alertname": "HighLatency", **labels},
        "annotations": {"summary": "p99 above 1s"},
        "startsAt": "2023-11-14T22:13:20.123456789Z",
        "endsAt": format_time(clock() + 240),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    }


def test_post_alerts_as_prometheus_sends_them(client: Any, clock: FakeClock) -> None:
    response = client.post(
        "/api/v2/alerts",
        json=[prometheus_alert(clock, instance="a"), prometheus_alert(clock, severity="page")],
    )
    assert response.status_code == 200
    alerts = client.get("/api/v2/alerts").json()
    assert len(alerts) == 2
    by_receiver = {a["receivers"][0]["name"]: a for a in alerts}
    team = by_receiver["team"]
    assert team["labels"] == {"alertname": "HighLatency", "instance": "a"}
    assert team["startsAt"] == "2023-11-14T22:13:20.123Z"
    assert team["endsAt"] == format_time(clock() + 240)
    assert team["status"] == {"inhibitedBy": [], "silencedBy": [], "state": "active"}
    assert team["generatorURL"] == "http://prometheus:9090/graph?g0.expr=up"
    assert [a["fingerprint"] for a in alerts] == sorted(a["fingerprint"] for a in alerts)


def test_alert_without_end_gets_resolve_timeout(client: Any, clock: FakeClock) -> None:
    client.post("/api/v2/alerts", json=[{"labels": {"alertname": "x"}}])
    (alert,) = client.get("/api/v2/alerts").json()
    assert alert["startsAt"] == format_time(clock())
    assert alert["endsAt"] == format_time(clock() + 300)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            [
                {
                    "labels": {"a": "b"},
                    "startsAt": "2023-01-02T00:00:00Z",
                    "endsAt": "2023-01-01T00:00:00Z",
                }
            ],
            "start time must be before end time",
        ),
        ([{"labels": {"bad-name": "x"}}], 'invalid label set: invalid name "bad-name"'),
        ([{"labels": {"a": ""}}], "at least one label pair required"),
        (
            [{"labels": {"a": "b"}, "annotations": {"0x": "y"}}],
            'invalid annotations: invalid name "0x"',
        ),
    ],
)
def test_invalid_alerts_are_rejected_with_alertmanagers_message(
    client: Any, body: list[dict[str, Any]], message: str
) -> None:
    response = client.post("/api/v2/alerts", json=body)
    assert response.status_code == 400
    assert response.json() == message


def test_valid_alerts_of_a_partly_invalid_batch_are_kept(client: Any) -> None:
    response = client.post(
        "/api/v2/alerts", json=[{"labels": {"alertname": "ok"}}, {"labels": {"1x": "y"}}]
    )
    assert response.status_code == 400
    assert [a["labels"]["alertname"] for a in client.get("/api/v2/alerts").json()] == ["ok"]


def test_schema_errors(client: Any) -> None:
    response = client.post("/api/v2/alerts", json=[{"annotations": {}}])
    assert response.status_code == 400
    assert response.json() == {"code": 602, "message": "0.labels in body is required"}
    response = client.post("/api/v2/alerts", json={"labels": {}})
    assert response.status_code == 400


def test_alert_filters(client: Any, clock: FakeClock) -> None:
    client.post(
        "/api/v2/alerts",
        json=[prometheus_alert(clock, instance="a"), prometheus_alert(clock, instance="b")],
    )
    got = client.get("/api/v2/alerts", params={"filter": 'instance="b"'}).json()
    assert [a["labels"]["instance"] for a in got] == ["b"]
    assert client.get("/api/v2/alerts", params={"receiver": "pager"}).json() == []
    assert client.get("/api/v2/alerts", params={"active": "false"}).json() == []
    assert client.get("/api/v2/alerts", params={"filter": "instance=~("}).status_code == 400


def test_silences_crud_and_alert_status(client: Any, clock: FakeClock) -> None:
    client.post("/api/v2/alerts", json=[prometheus_alert(clock, instance="a")])
    silence = {
        "matchers": [{"name": "instance", "value": "a", "isRegex": False, "isEqual": True}],
        "startsAt": format_time(clock()),
        "endsAt": format_time(clock() + 3600),
        "createdBy": "me",
        "comment": "maintenance",
    }
    response = client.post("/api/v2/silences", json=silence)
    assert response.status_code == 200
    sid = response.json()["silenceID"]
    got = client.get(f"/api/v2/silence/{sid}").json()
    assert got["status"] == {"state": "active"}
    assert got["matchers"] == silence["matchers"]
    assert [s["id"] for s in client.get("/api/v2/silences").json()] == [sid]

    (alert,) = client.get("/api/v2/alerts").json()
    assert alert["status"] == {"inhibitedBy": [], "silencedBy": [sid], "state": "suppressed"}
    assert client.get("/api/v2/alerts", params={"silenced": "false"}).json() == []

    assert client.request("DELETE", f"/api/v2/silence/{sid}").status_code == 200
    assert client.get(f"/api/v2/silence/{sid}").json()["status"] == {"state": "expired"}
    assert client.request("DELETE", "/api/v2/silence/nope").status_code == 404
    assert client.get("/api/v2/silence/nope").status_code == 404


def test_silence_validation(client: Any, clock: FakeClock) -> None:
    silence = {
        "matchers": [{"name": "a", "value": "b", "isRegex": False}],
        "startsAt": format_time(clock()),
        "endsAt": format_time(clock() - 10),
        "createdBy": "me",
        "comment": "c",
    }
    response = client.post("/api/v2/silences", json=silence)
    assert response.json() == "Failed to create silence: start time must be before end time"
    del silence["comment"]
    response = client.post("/api/v2/silences", json=silence)
    assert response.status_code == 400
    assert response.json() == {"code": 602, "message": "comment in body is required"}


def test_groups(client: Any, am: Alertmanager, clock: FakeClock) -> None:
    client.post(
        "/api/v2/alerts",
        json=[prometheus_alert(clock, instance="a"), prometheus_alert(clock, severity="page")],
    )
    groups = client.get("/api/v2/alerts/groups").json()
    assert sorted((g["receiver"]["name"], len(g["alerts"])) for g in groups) == [
        ("pager", 1),
        ("team", 1),
    ]
    assert groups[0]["labels"] == {"alertname": "HighLatency"}


def test_status_masks_secrets_and_receivers_are_listed(client: Any) -> None:
    status = client.get("/api/v2/status").json()
    assert "XXXX" not in status["config"]["original"]
    assert "<secret>" in status["config"]["original"]
    assert status["cluster"]["status"] == "disabled"
    assert client.get("/api/v2/receivers").json() == [{"name": "team"}, {"name": "pager"}]
    assert client.get("/-/healthy").text == "OK"
    assert client.get("/-/ready").status_code == 200
