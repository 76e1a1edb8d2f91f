"""The exported stack, run for real: Prometheus and Alertmanager monitor ``inferwatch demo``.

``inferwatch demo`` runs in a subprocess; ``inferwatch export`` writes the stack from a
config that points at it; the real ``/usr/bin/prometheus`` and
``/usr/bin/prometheus-alertmanager`` start on loopback with the exported files, unchanged.
Errors injected into the demo (``POST /faults {"errors": true}``) must raise the demo
rules' ``HighErrorRatio``, which reaches a webhook receiver through the real
Alertmanager; the baseline the demo learns (``latency_p99:upper``) must reach
Prometheus through the federate job. Takes about a minute.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferwatch.demo.stack import RULES_FILE
from inferwatch.testing import WebhookReceiver
from tests.conftest import Spawned
from tests.integration.conftest import PrometheusProcess
from tests.support import free_port

pytestmark = pytest.mark.integration

INFERWATCH = str(Path(sys.executable).with_name("inferwatch"))
#: Target discovery (up to 5 s), then rate[20s] > 10 % for 10 s, then group_wait.
FIRING_TIMEOUT_S = 60.0
#: The demo's baseline needs 30 evaluations at 2 s before it has bounds.
BASELINE_TIMEOUT_S = 75.0


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not on PATH; run scripts/setup (Debian packages prometheus and "
            "prometheus-alertmanager)",
            pytrace=False,
        )
    return path


def _wait_http(url: str, process: Spawned, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise AssertionError(f"{url}: the process exited; its output:\n{process.output()}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout:g}s ({last}):\n{process.output()}")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


def _config(demo: str, hook: str) -> str:
    return f"""\
listen: {demo}
prometheus:
  global: {{scrape_interval: 1s, evaluation_interval: 1s}}
  rule_files: ["{RULES_FILE}"]
  scrape_configs:
    - job_name: demo
      static_configs: [{{targets: ["{demo}"]}}]
alertmanager:
  route:
    receiver: hook
    group_by: [alertname]
    group_wait: 1s
    group_interval: 5s
  receivers:
    - name: hook
      webhook_configs: [{{url: "{hook}/hook", send_resolved: true}}]
    - name: chat
      dingtalk_configs: [{{webhook_url: "http://127.0.0.1:9/unused"}}]
deployment: {{name: digits, model: digits, port: {demo.rsplit(":", 1)[1]}}}
"""


def _firing(bodies: Sequence[Any], alertname: str) -> list[dict[str, Any]]:
    return [
        alert
        for body in bodies
        for alert in body.get("alerts", [])
        if alert["labels"].get("alertname") == alertname and alert["status"] == "firing"
    ]


def test_exported_stack_alerts_through_real_alertmanager(
    tmp_path: Path, spawn: Callable[[Sequence[str]], Spawned], receiver: WebhookReceiver
) -> None:
    prometheus_bin = _binary("prometheus")
    alertmanager_bin = _binary("prometheus-alertmanager")
    demo = f"127.0.0.1:{free_port()}"
    demo_process = spawn(
        [INFERWATCH, "demo", "--port", demo.rsplit(":", 1)[1], "--db", str(tmp_path / "demo.db")]
    )

    config = tmp_path / "inferwatch.yaml"
    config.write_text(_config(demo, receiver.url))
    out = tmp_path / "stack"
    am_address = f"127.0.0.1:{free_port()}"
    prom_address = f"127.0.0.1:{free_port()}"
    exported = subprocess.run(
        [
            *(INFERWATCH, "export", "--config", str(config), "--out", str(out)),
            *("--alertmanager", am_address, "--prometheus", prom_address),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr

    alertmanager = spawn(
        [
            alertmanager_bin,
            f"--config.file={out / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address={am_address}",
            "--cluster.listen-address=",
        ]
    )
    prometheus = spawn(
        [
            prometheus_bin,
            f"--config.file={out / 'prometheus' / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address={prom_address}",
        ]
    )
    _wait_http(f"http://{am_address}/-/ready", alertmanager)
    _wait_http(f"http://{prom_address}/-/ready", prometheus)
    _wait_http(f"http://{demo}/metrics", demo_process, timeout=60)
    prom = PrometheusProcess(prometheus.process, f"http://{prom_address}", prometheus.log)
    try:
        prom.wait_until_up(timeout=30)
        jobs = {t["scrapeUrl"].split("?")[0] for t in prom.target_health()}
        assert jobs == {f"http://{demo}/metrics", f"http://{demo}/federate"}

        response = httpx.post(f"http://{demo}/faults", json={"errors": True}, timeout=5)
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + FIRING_TIMEOUT_S
        while not _firing(receiver.bodies, "HighErrorRatio"):
            assert time.monotonic() < deadline, (
                f"no HighErrorRatio at the webhook after {FIRING_TIMEOUT_S:g}s; got "
                f"{receiver.bodies}; Prometheus alerts: {prom.query('ALERTS')}"
            )
            time.sleep(0.5)
        body = next(b for b in receiver.bodies if _firing([b], "HighErrorRatio"))
        # Sent by the real Alertmanager (its external URL, its receiver name).
        assert body["receiver"] == "hook"
        assert body["externalURL"].endswith(f":{am_address.rsplit(':', 1)[1]}")
        alert = _firing([body], "HighErrorRatio")[0]
        assert alert["labels"]["model"] == "digits"
        assert alert["labels"]["severity"] == "critical"

        # The baseline is learned by the demo's embedded server and federated.
        deadline = time.monotonic() + BASELINE_TIMEOUT_S
        while not prom.query('latency_p99:upper{model="digits"}'):
            assert time.monotonic() < deadline, (
                f"latency_p99:upper not in Prometheus after {BASELINE_TIMEOUT_S:g}s; "
                f"targets: {prom.target_health()}"
            )
            time.sleep(1)
    finally:
        prom.stop()
