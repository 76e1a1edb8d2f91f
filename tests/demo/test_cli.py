from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from inferwatch import __version__
from inferwatch.cli import app
from inferwatch.tsdb.labels import Matcher
from inferwatch.tsdb.store import Store

MetricValue = Callable[..., float | None]
Spawn = Callable[[Sequence[str]], Any]  # tests/conftest.py's spawn; returns a Spawned
WaitForMetrics = Callable[..., str]


def demo_command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "inferwatch", "demo", "--port", str(port), "--no-store", *extra]


def successes(text: str, metric_value: MetricValue) -> float:
    value = metric_value(text, "inferwatch_inferences_total", model="digits", outcome="success")
    return value or 0.0


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output
    assert "version" in result.output


def test_demo_help_lists_its_options() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--no-traffic"):
        assert option in result.output


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert (result.exit_code, result.output.strip()) == (0, __version__)


def test_python_dash_m_inferwatch_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "inferwatch", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout


def test_demo_on_a_busy_port_fails_with_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["demo", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_demo_serves_predictions_and_counts_them(
    free_port: int,
    spawn: Spawn,
    wait_for_metrics: WaitForMetrics,
    metric_value: MetricValue,
) -> None:
    demo = spawn(demo_command(free_port, "--no-traffic"))
    base = f"http://127.0.0.1:{free_port}"
    wait_for_metrics(f"{base}/metrics", process=demo)
    sample = httpx.get(f"{base}/sample", params={"n": 3}).json()
    answer = httpx.post(f"{base}/predict", json=sample).json()
    assert len(answer["predictions"]) == 3
    text = httpx.get(f"{base}/metrics").text
    assert successes(text, metric_value) == 1
    assert metric_value(text, "inferwatch_inference_items_total", model="digits") == 3


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_stops_cleanly_on_a_signal(
    free_port: int, spawn: Spawn, wait_for_metrics: WaitForMetrics, signum: int
) -> None:
    demo = spawn(demo_command(free_port))
    wait_for_metrics(f"http://127.0.0.1:{free_port}/metrics", process=demo)
    demo.process.send_signal(signum)
    assert demo.process.wait(timeout=20) == 0
    assert demo.output().rstrip().endswith("stopped")


def test_demo_prints_its_urls(
    free_port: int, spawn: Spawn, wait_for_metrics: WaitForMetrics
) -> None:
    demo = spawn(demo_command(free_port, "--no-traffic"))
    wait_for_metrics(f"http://127.0.0.1:{free_port}/metrics", process=demo)
    for path in ("/predict", "/metrics", "/docs"):
        assert f"http://127.0.0.1:{free_port}{path}" in demo.output()


def test_demo_traffic_moves_the_metrics_on_its_own(
    free_port: int,
    spawn: Spawn,
    wait_for_metrics: WaitForMetrics,
    metric_value: MetricValue,
) -> None:
    demo = spawn(demo_command(free_port))
    text = wait_for_metrics(
        f"http://127.0.0.1:{free_port}/metrics",
        until=lambda text: successes(text, metric_value) >= 2,
        process=demo,
    )
    assert successes(text, metric_value) >= 2


def test_demo_keeps_its_metrics_in_the_store_through_kill_9(
    free_port: int, spawn: Spawn, wait_for_metrics: WaitForMetrics, tmp_path: Path
) -> None:
    db = tmp_path / "demo.db"
    command = [sys.executable, "-m", "inferwatch", "demo", "--port", str(free_port)]
    demo = spawn([*command, "--db", str(db)])
    wait_for_metrics(f"http://127.0.0.1:{free_port}/metrics", process=demo)
    counter = [Matcher("__name__", "=", "inferwatch_inferences_total")]
    deadline = time.monotonic() + 30
    seen: list[float] = []
    while time.monotonic() < deadline:
        time.sleep(0.5)
        with Store(db, fsync="never") as store:  # a second reader of the same file
            series = store.select(counter, 0, 2**62)
        if series and series[0].values.size >= 2:
            seen = series[0].values.tolist()
            break
    assert len(seen) >= 2, "the demo did not collect its metrics into the store"
    demo.process.send_signal(signal.SIGKILL)
    demo.process.wait(timeout=10)
    with Store(db) as store:
        after = store.select(counter, 0, 2**62)[0].values.tolist()
    assert after[: len(seen)] == seen  # every sample read before the kill is still there


def test_demo_help_lists_the_alerting_and_fault_options() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    for option in ("--webhook", "--fault", "--fake-gpu"):
        assert option in result.output


def test_fault_with_an_unknown_name_fails_naming_the_choices() -> None:
    result = CliRunner().invoke(app, ["fault", "slowness"])
    assert result.exit_code == 1
    assert "unknown fault 'slowness'" in result.output
    assert "latency, errors, input-drift, model, leak, gpu" in result.output


def test_fault_without_a_running_demo_says_where_it_looked(free_port: int) -> None:
    url = f"http://127.0.0.1:{free_port}"
    result = CliRunner().invoke(app, ["fault", "errors", "--url", url])
    assert result.exit_code == 1
    assert f"cannot reach the demo at {url}/faults" in result.output


def test_demo_with_an_unknown_fault_fails_before_listening(free_port: int) -> None:
    result = CliRunner().invoke(app, ["demo", "--port", str(free_port), "--fault", "slow"])
    assert result.exit_code == 1
    assert "unknown fault 'slow'" in result.output


def test_demo_with_a_bad_webhook_fails_naming_the_option(free_port: int) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--port", str(free_port), "--no-store", "--webhook", "localhost:5001"]
    )
    assert result.exit_code == 1
    assert "--webhook: not an http(s) URL" in result.output
