"""AlertmanagerClient against a real Alertmanager on loopback."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferwatch.alerting.alert import Alert
from inferwatch.rules.sink import AlertmanagerClient, alert_json, rfc3339

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

CONFIG = """\
route:
  receiver: nobody
receivers:
- name: nobody
"""


def test_alert_json_is_the_v2_postable_alert() -> None:
    alert = Alert(
        labels={"b": "2", "alertname": "X"},
        annotations={"summary": "s"},
        starts_at=1_700_000_000.5,
        ends_at=1_700_000_240.0,
        generator_url="http://p/graph?g0.expr=up&g0.tab=1",
    )
    assert alert_json(alert) == {
        "labels": {"alertname": "X", "b": "2"},
        "annotations": {"summary": "s"},
        "startsAt": "2023-11-14T22:13:20.5Z",
        "endsAt": "2023-11-14T22:17:20Z",
        "generatorURL": "http://p/graph?g0.expr=up&g0.tab=1",
    }


def test_rfc3339_trims_trailing_zeros() -> None:
    assert rfc3339(0.0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1.25) == "1970-01-01T00:00:01.25Z"


def test_an_unreachable_alertmanager_never_raises(free_port: int) -> None:
    client = AlertmanagerClient(f"http://127.0.0.1:{free_port}", timeout=2)
    try:
        client.send_alerts([Alert(labels={"alertname": "X"}, starts_at=time.time())])
        assert client.flush(timeout=10)
        assert client.errors == 1 and client.sent == 0
    finally:
        client.close()


def test_a_full_queue_drops_the_oldest_alerts(free_port: int) -> None:
    client = AlertmanagerClient(f"http://127.0.0.1:{free_port}", timeout=2, queue_capacity=2)
    client.close()  # nothing is posted once closed: what is sent now counts as dropped
    client.send_alerts([Alert(labels={"alertname": str(i)}) for i in range(3)])
    assert client.dropped == 3


@pytest.mark.integration
@pytest.mark.skipif(ALERTMANAGER is None, reason="alertmanager is not installed")
def test_alerts_reach_a_real_alertmanager(
    tmp_path: Path, free_port: int, spawn: Callable[[Sequence[str]], Any]
) -> None:
    assert ALERTMANAGER is not None
    (tmp_path / "am.yml").write_text(CONFIG)
    cluster_port = free_port + 1 if free_port < 65000 else free_port - 1
    process = spawn(
        [
            ALERTMANAGER,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{free_port}",
            f"--cluster.listen-address=127.0.0.1:{cluster_port}",
            "--cluster.advertise-address=127.0.0.1:9094",
        ]
    )
    base = f"http://127.0.0.1:{free_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.process.poll() is not None:
            pytest.fail(f"alertmanager did not start:\n{process.output()}")
        time.sleep(0.1)

    now = time.time()
    client = AlertmanagerClient(base)
    try:
        client.send_alerts(
            [
                Alert(
                    labels={"alertname": "ModelDown", "job": "api"},
                    annotations={"summary": "api is down"},
                    starts_at=now - 60,
                    ends_at=now + 240,
                    generator_url="http://inferwatch/graph?g0.expr=up&g0.tab=1",
                )
            ]
        )
        assert client.flush(timeout=10)
        assert client.sent == 1 and client.errors == 0
    finally:
        client.close()
    (got,) = httpx.get(f"{base}/api/v2/alerts", timeout=5).json()
    assert got["labels"] == {"alertname": "ModelDown", "job": "api"}
    assert got["annotations"] == {"summary": "api is down"}
    assert got["status"]["state"] == "active"
    assert got["generatorURL"] == "http://inferwatch/graph?g0.expr=up&g0.tab=1"
