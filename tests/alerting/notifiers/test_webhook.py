"""Tests for the webhook notifier against a loopback HTTP server."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inferwatch._errors import AlertingConfigError, NotifyError
from inferwatch.alerting.alert import fingerprint
from inferwatch.alerting.notifiers import NOTIFIER_KINDS, build_notifier
from inferwatch.alerting.notifiers.http import USER_AGENT
from tests.alerting.notifiers.test_http import Receiver, sample_notification, start_receivers


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    yield from start_receivers()


FIELD = "receivers[0].webhook_configs[0]"


def webhook(config: dict[str, object]) -> object:
    return build_notifier("webhook", config, global_config={}, field=FIELD)


def test_kinds() -> None:
    assert frozenset({"webhook", "slack", "email", "dingtalk", "wecom", "feishu"}) == NOTIFIER_KINDS


def test_payload_is_alertmanagers_version_4(receiver: Callable[..., Receiver]) -> None:
    r = receiver()
    n = webhook({"url": r.url + "/alerts"})
    assert n.send_resolved is True  # type: ignore[attr-defined]
    n.notify(sample_notification(resolved=True))  # type: ignore[attr-defined]
    (req,) = r.requests
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"] == USER_AGENT
    assert req.body.endswith(b"}\n")
    a1 = {"alertname": "HighLatency", "severity": "page", "model": "resnet"}
    a2 = {"alertname": "HighLatency", "severity": "page", "model": "bert"}
    assert req.json() == {
        "receiver": "team-x",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": a1,
                "annotations": {"summary": "p99 latency above 1s"},
                "startsAt": "2024-01-02T02:54:05.123Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom/graph?g0.expr=x",
                "fingerprint": fingerprint(a1),
            },
            {
                "status": "resolved",
                "labels": a2,
                "annotations": {"summary": "p99 latency above 1s"},
                "startsAt": "2024-01-02T02:44:04.623Z",
                "endsAt": "2024-01-02T03:03:05.123Z",
                "generatorURL": "",
                "fingerprint": fingerprint(a2),
            },
        ],
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency", "severity": "page"},
        "commonAnnotations": {"summary": "p99 latency above 1s"},
        "externalURL": "http://am.example:9093",
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
    }


def test_max_alerts_truncates(receiver: Callable[..., Receiver]) -> None:
    r = receiver()
    webhook({"url": r.url, "max_alerts": 1}).notify(sample_notification())  # type: ignore[attr-defined]
    body = r.requests[0].json()
    assert len(body["alerts"]) == 1
    assert body["truncatedAlerts"] == 1


def test_url_file_is_read_at_send_time(receiver: Callable[..., Receiver], tmp_path: Path) -> None:
    r = receiver()
    path = tmp_path / "url"
    n = webhook({"url_file": str(path), "send_resolved": False})
    assert n.send_resolved is False  # type: ignore[attr-defined]
    path.write_text(r.url + "/one\n")
    n.notify(sample_notification())  # type: ignore[attr-defined]
    path.write_text(r.url + "/two\n")
    n.notify(sample_notification())  # type: ignore[attr-defined]
    assert [q.path for q in r.requests] == ["/one", "/two"]


def test_server_error_is_retryable_client_error_is_not(receiver: Callable[..., Receiver]) -> None:
    status = [500]
    r = receiver(lambda req: (status[0], {}, b"broken"))
    n = webhook({"url": r.url})
    with pytest.raises(NotifyError) as info:
        n.notify(sample_notification())  # type: ignore[attr-defined]
    assert info.value.retryable
    status[0] = 400
    with pytest.raises(NotifyError) as info:
        n.notify(sample_notification())  # type: ignore[attr-defined]
    assert not info.value.retryable


def test_secret_url_never_shown(
    receiver: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    r = receiver(lambda req: (502, {}, b"upstream saw /hook/s3cr3t-t0ken-value"))
    n = webhook({"url": r.url + "/hook/s3cr3t-t0ken-value"})
    assert "s3cr3t" not in repr(n)
    with caplog.at_level(logging.DEBUG), pytest.raises(NotifyError) as info:
        n.notify(sample_notification())  # type: ignore[attr-defined]
    assert "s3cr3t" not in str(info.value)
    assert "s3cr3t" not in caplog.text


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"url": "http://x", "urll": "y"}, f"{FIELD}.urll"),
        ({}, f"{FIELD}.url"),
        ({"url": "http://x", "url_file": "/f"}, f"{FIELD}.url"),
        ({"url": "ftp://x"}, f"{FIELD}.url"),
        ({"url": "http://x", "max_alerts": -1}, f"{FIELD}.max_alerts"),
        ({"url": "http://x", "send_resolved": "yes"}, f"{FIELD}.send_resolved"),
        (
            {"url": "http://x", "http_config": {"tls_config": {"ca": "x"}}},
            f"{FIELD}.http_config.tls_config.ca",
        ),
    ],
)
def test_bad_config_names_the_field(config: dict[str, object], field: str) -> None:
    with pytest.raises(AlertingConfigError) as info:
        webhook(config)
    assert info.value.field == field
    assert field in str(info.value)


def test_unknown_kind() -> None:
    with pytest.raises(AlertingConfigError, match="unknown notifier kind 'pagerduty'"):
        build_notifier("pagerduty", {}, global_config={})
