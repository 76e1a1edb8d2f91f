"""``inferwatch server`` as users run it: a subprocess scraping a real target over loopback.

Each test starts ``python -m inferwatch server`` with a Prometheus config (one scrape job,
one rule file) and an Alertmanager config whose webhook is a
:class:`~inferwatch.testing.WebhookReceiver`, against a target serving one gauge ``x``
from an inferwatch :class:`~inferwatch.server.metrics_server.MetricsServer`. The rule
``x > 0.5`` has no ``for``, and the route waits ``0s`` and groups every ``1s``, so each
step takes about a second.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferwatch.sdk.metrics import Gauge
from inferwatch.sdk.registry import Registry
from inferwatch.server.metrics_server import MetricsServer
from inferwatch.testing import WebhookReceiver
from tests.conftest import Spawned
from tests.support import free_port, stop_process

RULES = """\
groups:
- name: target
  rules:
  - alert: XHigh
    expr: x > 0.5
    labels:
      severity: page
    annotations:
      summary: "x is {{ $value }} on {{ $labels.instance }}"
"""

# Line 5 is the broken expression: the reload error must name it.
BROKEN_RULES = """\
groups:
- name: target
  rules:
  - alert: XHigh
    expr: x > > 0.5
"""

#: How long to watch for a notification that must not come: three group intervals.
QUIET_S = 3.0


@dataclass
class Setup:
    """The files and loopback peers of one server under test."""

    dir: Path
    gauge: Gauge
    target: MetricsServer
    webhook: WebhookReceiver

    @property
    def config(self) -> Path:
        return self.dir / "prometheus.yml"

    @property
    def am_config(self) -> Path:
        return self.dir / "alertmanager.yml"

    @property
    def rules(self) -> Path:
        return self.dir / "rules.yml"

    @property
    def instance(self) -> str:
        return f"127.0.0.1:{self.target.port}"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    gauge = registry.gauge("x", "The value the test rule watches.")
    gauge.set(1.0)
    target = MetricsServer(registry, port=0).start()
    with WebhookReceiver() as webhook:
        s = Setup(tmp_path, gauge, target, webhook)
        s.rules.write_text(RULES)
        s.config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "rule_files: [rules.yml]\n"
            "scrape_configs:\n"
            "- job_name: app\n"
            f"  static_configs: [{{targets: ['{s.instance}']}}]\n"
        )
        s.am_config.write_text(
            "route:\n"
            "  receiver: hook\n"
            "  group_by: [alertname]\n"
            "  group_wait: 0s\n"
            "  group_interval: 1s\n"
            "receivers:\n"
            "- name: hook\n"
            f"  webhook_configs: [{{url: '{webhook.url}/hook'}}]\n"
        )
        try:
            yield s
        finally:
            target.stop()


class ServerProcess:
    """One ``inferwatch server`` subprocess and its base URL."""

    def __init__(self, spawned: Spawned, url: str) -> None:
        self.spawned = spawned
        self.url = url

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def alerts_v1(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.get("/api/v1/alerts")["data"]["alerts"]
        return alerts

    def alerts_v2(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.get("/api/v2/alerts")
        return alerts

    def stop(self) -> int:
        """SIGTERM, wait, and return the exit status."""
        stop_process(self.spawned.process)
        return self.spawned.process.returncode


def server_command(setup: Setup, port: int, *extra: str) -> list[str]:
    """``python -m inferwatch server`` on ``setup``'s files, listening on ``port``."""
    return [
        sys.executable, "-m", "inferwatch", "server",
        "--config", str(setup.config),
        "--alertmanager-config", str(setup.am_config),
        "--db", str(setup.dir / "inferwatch.db"),
        "--port", str(port),
        *extra,
    ]  # fmt: skip


@pytest.fixture
def start_server(
    setup: Setup, spawn: Callable[[Sequence[str]], Spawned]
) -> Callable[..., ServerProcess]:
    """``start_server(port=None)``: run the server on ``setup``'s files; return once ready."""

    def start(port: int | None = None, extra: Sequence[str] = ()) -> ServerProcess:
        port = port or free_port()
        spawned = spawn(server_command(setup, port, *extra))
        server = ServerProcess(spawned, f"http://127.0.0.1:{port}")
        wait_until(lambda: _ready(server), f"{server.url}/-/ready answers 200", server)
        return server

    return start


def _ready(server: ServerProcess) -> bool:
    try:
        return httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(
    condition: Callable[[], object],
    what: str,
    server: ServerProcess | None = None,
    timeout: float = 20.0,
) -> None:
    """Poll ``condition`` until it is true; fail with the server's output after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if server is not None and server.spawned.process.poll() is not None:
            raise AssertionError(
                f"server exited with {server.spawned.process.returncode} while waiting until "
                f"{what}; its output:\n{server.spawned.output()}"
            )
        if time.monotonic() > deadline:
            output = f"\nserver output:\n{server.spawned.output()}" if server else ""
            raise AssertionError(f"not true after {timeout:g}s: {what}{output}")
        time.sleep(0.05)


def firing(server: ServerProcess) -> bool:
    return any(a["state"] == "firing" for a in server.alerts_v1())


def test_alert_fires_to_the_webhook_and_shows_in_both_apis(
    setup: Setup, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server()

    [body] = setup.webhook.wait_for(1, timeout=20)

    labels = {
        "alertname": "XHigh",
        "instance": setup.instance,
        "job": "app",
        "severity": "page",
    }
    summary = f"x is 1 on {setup.instance}"
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "hook"
    assert body["groupLabels"] == {"alertname": "XHigh"}
    assert body["externalURL"] == server.url
    [alert] = body["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == labels
    assert alert["annotations"] == {"summary": summary}
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"].startswith(f"{server.url}/graph?g0.expr=x+%3E+0.5")
    assert setup.webhook.requests[0][0] == "/hook"

    [v1] = server.alerts_v1()
    assert v1["state"] == "firing"
    assert v1["labels"] == labels
    assert v1["annotations"] == {"summary": summary}
    assert v1["value"] == "1e+00"
    # The same instant, though two formatters may round its last microsecond apart.
    assert abs(_unix(v1["activeAt"]) - _unix(alert["startsAt"])) < 0.001

    [group] = server.get("/api/v1/rules")["data"]["groups"]
    [rule] = group["rules"]
    assert (rule["name"], rule["type"], rule["state"], rule["health"]) == (
        "XHigh",
        "alerting",
        "firing",
        "ok",
    )
    assert rule["query"] == "x > 0.5"
    assert [a["labels"] for a in rule["alerts"]] == [labels]

    [v2] = server.alerts_v2()
    assert v2["labels"] == labels
    assert v2["fingerprint"] == alert["fingerprint"]
    assert v2["status"]["state"] == "active"
    assert v2["receivers"] == [{"name": "hook"}]


def test_resolved_notification_when_the_metric_drops(
    setup: Setup, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server()
    [fired] = setup.webhook.wait_for(1, timeout=20)

    setup.gauge.set(0.0)
    bodies = setup.webhook.wait_for(2, timeout=20)

    resolved = bodies[1]
    assert resolved["version"] == "4"
    assert resolved["status"] == "resolved"
    [alert] = resolved["alerts"]
    assert alert["status"] == "resolved"
    assert alert["fingerprint"] == fired["alerts"][0]["fingerprint"]
    assert alert["labels"] == fired["alerts"][0]["labels"]
    assert alert["startsAt"] == fired["alerts"][0]["startsAt"]
    assert alert["endsAt"] > alert["startsAt"]
    wait_until(lambda: server.alerts_v1() == [], "/api/v1/alerts is empty", server)
    wait_until(
        lambda: [a["status"]["state"] for a in server.alerts_v2()] in ([], ["unprocessed"]),
        "/api/v2/alerts no longer lists the alert as active",
        server,
    )


def test_restart_over_the_same_db_does_not_notify_again(
    setup: Setup, start_server: Callable[..., ServerProcess]
) -> None:
    port = free_port()
    first = start_server(port)
    setup.webhook.wait_for(1, timeout=20)
    first.stop()
    restarted_at = time.time()

    second = start_server(port)
    wait_until(lambda: firing(second), "the restarted server's alert fires", second)
    # The restarted rule manager has sent the alert to the Alertmanager once it updates.
    wait_until(
        lambda: any(_unix(a["updatedAt"]) > restarted_at for a in second.alerts_v2()),
        "the restarted server re-sent the alert to its Alertmanager",
        second,
    )
    time.sleep(QUIET_S)

    assert len(setup.webhook.requests) == 1, setup.webhook.bodies
    assert firing(second)


def test_reload_with_a_broken_rule_file_fails_and_keeps_the_old_rules(
    setup: Setup, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server()
    setup.webhook.wait_for(1, timeout=20)
    setup.rules.write_text(BROKEN_RULES)

    response = httpx.post(f"{server.url}/-/reload", timeout=10)

    assert response.status_code == 500
    assert response.text.startswith("failed to reload config: "), response.text
    assert f"{setup.rules}:5:" in response.text, response.text
    assert '"XHigh": could not parse expression' in response.text, response.text
    [group] = server.get("/api/v1/rules")["data"]["groups"]
    evaluated = group["lastEvaluation"]
    wait_until(
        lambda: server.get("/api/v1/rules")["data"]["groups"][0]["lastEvaluation"] != evaluated,
        "the old rule is evaluated again after the failed reload",
        server,
    )
    [rule] = server.get("/api/v1/rules")["data"]["groups"][0]["rules"]
    assert (rule["query"], rule["state"]) == ("x > 0.5", "firing")
    assert firing(server)
    assert len(setup.webhook.requests) == 1, setup.webhook.bodies


def test_sigterm_stops_the_server_cleanly(
    setup: Setup, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server()
    setup.webhook.wait_for(1, timeout=20)

    assert server.stop() == 0, server.spawned.output()


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        ("prometheus.yml", "global: {scrape_interval: 1x}\n", ["scrape_interval", "1x"]),
        ("alertmanager.yml", "route: {receiver: nope}\nreceivers: [{name: hook}]\n", ["nope"]),
        ("rules.yml", BROKEN_RULES, ["rules.yml:5", "XHigh"]),
    ],
)
def test_broken_config_at_start_exits_non_zero_naming_the_problem(
    setup: Setup,
    spawn: Callable[[Sequence[str]], Spawned],
    file: str,
    text: str,
    expected: list[str],
) -> None:
    (setup.dir / file).write_text(text)
    port = free_port()

    spawned = spawn(server_command(setup, port))

    assert spawned.process.wait(timeout=30) != 0
    output = spawned.output()
    assert "error:" in output
    assert file in output
    for part in expected:
        assert part in output, output
    assert "Traceback" not in output, output
    assert "inferwatch server on" not in output, output


def test_probes_from_a_file_land_in_the_store_as_probe_series(
    setup: Setup, start_server: Callable[..., ServerProcess]
) -> None:
    probes = setup.dir / "probes.yml"
    probes.write_text(
        "probes:\n"
        "- name: up\n"
        f"  url: http://{setup.instance}/metrics\n"
        "  interval: 1s\n"
        "  timeout: 1s\n"
        "- name: down\n"
        f"  url: http://127.0.0.1:{free_port()}/predict\n"
        "  interval: 1s\n"
        "  timeout: 1s\n"
    )
    server = start_server(extra=["--probes", str(probes)])

    def success() -> dict[str, str]:
        result = server.get("/api/v1/query?query=probe_success")["data"]["result"]
        return {r["metric"]["probe"]: r["value"][1] for r in result}

    wait_until(lambda: len(success()) == 2, "both probes have results in the store", server)
    assert success() == {"up": "1", "down": "0"}
    codes = server.get("/api/v1/query?query=probe_http_status_code")["data"]["result"]
    assert {r["metric"]["probe"]: r["value"][1] for r in codes} == {"up": "200", "down": "0"}
    assert server.stop() == 0


def test_a_broken_probe_file_stops_the_start_naming_file_and_line(
    setup: Setup, spawn: Callable[[Sequence[str]], Spawned]
) -> None:
    probes = setup.dir / "probes.yml"
    probes.write_text("probes:\n- name: p\n  url: http://127.0.0.1:1/\n  method: FETCH\n")
    spawned = spawn(server_command(setup, free_port(), "--probes", str(probes)))
    assert spawned.process.wait(timeout=30) == 1
    output = spawned.output()
    assert "probes.yml:4" in output and "FETCH" in output, output


def _unix(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
