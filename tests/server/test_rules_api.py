"""/api/v1/rules and /api/v1/alerts, in Prometheus's JSON, over a real store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from inferwatch.rules.manager import RuleManager
from inferwatch.server.rules_api import format_e, go_time, rules_routes
from inferwatch.testing import FakeClock
from inferwatch.tsdb.labels import make_labels
from inferwatch.tsdb.store import Store

RULES = """\
groups:
- name: serving
  limit: 10
  rules:
  - record: job:up:sum
    expr: sum by(job)(up)
    labels: {team: ml}
  - alert: ModelDown
    expr: up == 0
    for: 5m
    keep_firing_for: 1m
    labels: {severity: page}
    annotations: {summary: model down}
- name: other
  rules:
  - record: broken
    expr: label_replace(up, "instance", "x", "", "")
"""


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[RuleManager]:
    clock = FakeClock()
    with Store(tmp_path / "db", fsync="never") as store:
        rules = tmp_path / "rules.yml"
        rules.write_text(RULES)
        m = RuleManager(store, clock=clock, evaluation_interval_s=60)
        m.load([rules])
        for _ in range(3):
            store.append(
                int(clock() * 1000),
                [
                    (make_labels({"__name__": "up", "job": "api", "instance": i}), 0.0)
                    for i in ("a", "b")
                ],
            )
            clock.advance(60)
            m.tick()
        yield m


@pytest.fixture
def get(manager: RuleManager, asgi_client: Callable[[Any], Any]) -> Callable[..., Any]:
    client = asgi_client(Starlette(routes=[Mount("/api/v1", routes=rules_routes(manager))]))

    def fetch(path: str, status: int = 200, **params: Any) -> Any:
        response = client.get(path, params=params)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        return response.json()

    return fetch


def test_rules_lists_groups_and_rules_as_prometheus(
    get: Callable[..., Any], manager: RuleManager
) -> None:
    body = get("/api/v1/rules")
    assert body["status"] == "success"
    groups = body["data"]["groups"]
    assert [g["name"] for g in groups] == ["other", "serving"]
    serving = groups[1]
    assert set(serving) == {
        "name",
        "file",
        "rules",
        "interval",
        "limit",
        "evaluationTime",
        "lastEvaluation",
    }
    assert serving["interval"] == 60 and serving["limit"] == 10
    assert serving["file"].endswith("rules.yml")
    assert serving["lastEvaluation"] == go_time(manager.groups()[1].last_evaluation)
    record, alert = serving["rules"]
    assert record["name"] == "job:up:sum"
    assert record["query"] == "sum by (job) (up)"
    assert record["labels"] == {"team": "ml"}
    assert record["health"] == "ok" and "lastError" not in record
    assert record["type"] == "recording"
    assert alert["type"] == "alerting" and alert["state"] == "pending"
    assert alert["duration"] == 300 and alert["keepFiringFor"] == 60
    assert alert["labels"] == {"severity": "page"}
    assert alert["annotations"] == {"summary": "model down"}
    assert [a["labels"]["instance"] for a in alert["alerts"]] == ["a", "b"]
    first = alert["alerts"][0]
    assert first["state"] == "pending" and first["value"] == "0e+00"
    assert first["labels"] == {
        "alertname": "ModelDown",
        "instance": "a",
        "job": "api",
        "severity": "page",
    }
    broken = groups[0]["rules"][0]
    assert broken["health"] == "err"
    assert "same labelset" in broken["lastError"]


def test_rules_type_filter(get: Callable[..., Any]) -> None:
    alerting = get("/api/v1/rules", type="alert")["data"]["groups"]
    assert [(g["name"], [r["name"] for r in g["rules"]]) for g in alerting] == [
        ("serving", ["ModelDown"])
    ]
    recording = get("/api/v1/rules", type="record")["data"]["groups"]
    assert [g["name"] for g in recording] == ["other", "serving"]
    body = get("/api/v1/rules", status=400, type="bogus")
    assert body == {
        "status": "error",
        "errorType": "bad_data",
        "error": 'not supported value "bogus"',
    }


def test_rules_name_group_and_file_filters(get: Callable[..., Any], manager: RuleManager) -> None:
    by_name = get("/api/v1/rules", **{"rule_name[]": "broken"})["data"]["groups"]
    assert [g["name"] for g in by_name] == ["other"]
    by_group = get("/api/v1/rules", **{"rule_group[]": "serving"})["data"]["groups"]
    assert [g["name"] for g in by_group] == ["serving"]
    assert get("/api/v1/rules", **{"file[]": "nope.yml"})["data"]["groups"] == []
    file = manager.groups()[0].file
    assert len(get("/api/v1/rules", **{"file[]": file})["data"]["groups"]) == 2


def test_alerts_lists_active_alerts(get: Callable[..., Any]) -> None:
    body = get("/api/v1/alerts")
    alerts = body["data"]["alerts"]
    assert [a["labels"]["instance"] for a in alerts] == ["a", "b"]
    assert set(alerts[0]) == {"labels", "annotations", "state", "activeAt", "value"}
    assert alerts[0]["annotations"] == {"summary": "model down"}


def test_go_formats() -> None:
    assert [format_e(v) for v in (1.0, 0.25, 123.456, -2e-7, float("nan"))] == [
        "1e+00",
        "2.5e-01",
        "1.23456e+02",
        "-2e-07",
        "NaN",
    ]
    assert go_time(None) == "0001-01-01T00:00:00Z"
    assert go_time(1_700_000_000.5) == "2023-11-14T22:13:20.5Z"
