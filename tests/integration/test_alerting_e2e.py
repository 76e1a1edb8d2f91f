"""A real Prometheus evaluates the example rules and alerts through ``inferwatch server``.

Prometheus 2.42 scrapes an instrumented app whose model is not loaded
(``inferwatch_model_loaded 0``, from an inferwatch :class:`~inferwatch.Monitor`),
evaluates ``examples/rules/model-serving.yml`` unchanged, and sends its alerts to an
``inferwatch server`` that runs only the embedded Alertmanager (``alerting.alertmanagers``
points at it). That server's webhook receiver must get ``ModelNotLoaded`` exactly once,
with what Prometheus put in it. ``ModelNotLoaded`` has ``for: 1m``, so this takes
about 70 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from inferwatch import Monitor, Registry
from inferwatch.server.metrics_server import MetricsServer
from inferwatch.testing import WebhookReceiver
from tests.conftest import Spawned
from tests.integration.conftest import PrometheusProcess, start_prometheus
from tests.support import free_port

pytestmark = pytest.mark.integration

EXAMPLE_RULES = Path(__file__).parents[2] / "examples" / "rules" / "model-serving.yml"
#: ``for: 1m``, Prometheus's target discovery (up to 5 s), scrapes and evaluation every 1 s.
FIRING_TIMEOUT_S = 120.0
#: How long to watch for a second notification after the first.
QUIET_S = 5.0


@pytest.fixture
def rule_file(tmp_path: Path) -> Path:
    """A byte-for-byte copy of the example rules in the test's directory."""
    copy = tmp_path / "rules" / "model-serving.yml"
    copy.parent.mkdir()
    shutil.copyfile(EXAMPLE_RULES, copy)
    assert copy.read_bytes() == EXAMPLE_RULES.read_bytes()
    return copy


@pytest.fixture
def app() -> Iterator[MetricsServer]:
    """An instrumented app: one model version loaded, one not (as Monitor reports it)."""
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    Monitor("digits", "2", registry=registry).set_model_loaded(False)
    Monitor("digits", "1", registry=registry).set_model_loaded(True)
    server = MetricsServer(registry, port=0).start()
    try:
        yield server
    finally:
        server.stop()


def _wait_ready(spawned: Spawned, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if spawned.process.poll() is not None:
            raise AssertionError(
                f"inferwatch server exited with {spawned.process.returncode}:\n{spawned.output()}"
            )
        try:
            if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"inferwatch server not ready after {timeout:g}s")
        time.sleep(0.05)


@pytest.fixture
def alertmanager(
    tmp_path: Path, spawn: Callable[[Sequence[str]], Spawned]
) -> Iterator[tuple[str, WebhookReceiver, Spawned]]:
    """``(url, webhook, process)``: ``inferwatch server`` with only an Alertmanager config."""
    with WebhookReceiver() as webhook:
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            "route:\n"
            "  receiver: team\n"
            "  group_by: [alertname]\n"
            "  group_wait: 1s\n"
            "  group_interval: 1s\n"
            "receivers:\n"
            "- name: team\n"
            f"  webhook_configs: [{{url: '{webhook.url}/alerts'}}]\n"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        spawned = spawn(
            [
                sys.executable,
                "-m",
                "inferwatch",
                "server",
                "--alertmanager-config",
                str(config),
                "--db",
                str(tmp_path / "inferwatch.db"),
                "--port",
                str(port),
            ]
        )
        _wait_ready(spawned, url)
        yield url, webhook, spawned


@pytest.fixture
def prometheus_server(
    tmp_path: Path,
    rule_file: Path,
    app: MetricsServer,
    alertmanager: tuple[str, WebhookReceiver, Spawned],
) -> Iterator[PrometheusProcess]:
    am_host = urlsplit(alertmanager[0]).netloc
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rule_file)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_host]}]}]},
        "scrape_configs": [
            {
                "job_name": "model-server",
                "static_configs": [{"targets": [f"127.0.0.1:{app.port}"]}],
            }
        ],
    }
    prom = start_prometheus(tmp_path, [], config_text=json.dumps(config, indent=2))
    try:
        yield prom
    finally:
        prom.stop()
        print(f"--- Prometheus log ({prom.log_path}), last lines ---\n{prom.log_tail()}")


def test_prometheus_alerts_through_inferwatch_to_the_webhook_once(
    app: MetricsServer,
    alertmanager: tuple[str, WebhookReceiver, Spawned],
    prometheus_server: PrometheusProcess,
) -> None:
    am_url, webhook, am_process = alertmanager
    instance = f"127.0.0.1:{app.port}"

    try:
        [body] = webhook.wait_for(1, timeout=FIRING_TIMEOUT_S)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; Prometheus alerts: {prometheus_server.query('ALERTS')}; "
            f"targets: {prometheus_server.target_health()}; "
            f"inferwatch server output:\n{am_process.output()}"
        ) from None
    time.sleep(QUIET_S)

    assert len(webhook.requests) == 1, webhook.bodies
    assert webhook.requests[0][0] == "/alerts"
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "team"
    assert body["groupLabels"] == {"alertname": "ModelNotLoaded"}
    [alert] = body["alerts"]
    labels = {
        "alertname": "ModelNotLoaded",
        "severity": "critical",
        "instance": instance,
        "job": "model-server",
        "model": "digits",
        "version": "2",
    }
    assert alert["status"] == "firing"
    assert alert["labels"] == labels
    assert alert["annotations"] == {
        "summary": f"digits 2 is not loaded on {instance}",
        "description": f"Model digits version 2 has not been loaded on {instance} "
        "for 1 minute; requests to it fail.",
    }
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    generator = urlsplit(alert["generatorURL"])
    assert generator.port == urlsplit(prometheus_server.url).port
    assert generator.path == "/graph"
    assert parse_qs(generator.query)["g0.expr"] == ["inferwatch_model_loaded == 0"]

    listed: list[dict[str, Any]] = httpx.get(f"{am_url}/api/v2/alerts", timeout=5).json()
    [v2] = [a for a in listed if a["labels"].get("alertname") == "ModelNotLoaded"]
    assert v2["labels"] == labels
    assert v2["fingerprint"] == alert["fingerprint"]
    assert v2["generatorURL"] == alert["generatorURL"]
    assert v2["status"]["state"] == "active"
    assert v2["receivers"] == [{"name": "team"}]
    # Prometheus itself agrees the alert is firing.
    assert [
        a["metric"]["alertname"] for a in prometheus_server.query('ALERTS{alertstate="firing"}')
    ] == ["ModelNotLoaded"]


def test_the_example_rules_pass_both_checkers(rule_file: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not on PATH (Debian package prometheus)"
    real = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, check=False
    )
    ours = subprocess.run(
        [sys.executable, "-m", "inferwatch", "rules", "check", str(rule_file)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert real.returncode == 0, real.stdout + real.stderr
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert "SUCCESS: 9 rules found" in real.stdout
    assert "SUCCESS: 9 rules found" in ours.stdout
