"""`inferwatch demo` as the whole product: one process with the dashboard, the API, the
packaged rules, the embedded Alertmanager and a webhook; faults from `inferwatch fault`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import free_port, serve_asgi, stop_process


@dataclass
class Demo:
    """A running `inferwatch demo` subprocess and the webhook receiver it notifies."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    hooks: list[dict[str, Any]] = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def fault(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "inferwatch", "fault", *args, "--url", self.url]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def notified(self, alertname: str, status: str) -> bool:
        return any(
            alert["labels"].get("alertname") == alertname and alert["status"] == status
            for hook in self.hooks
            for alert in hook["alerts"]
        )


def wait_until(condition: Callable[[], bool], demo: Demo, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if demo.process.poll() is not None:
            raise AssertionError(f"the demo exited while waiting for {what}:\n{demo.output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g}s; demo output:\n{demo.output()}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    hooks: list[dict[str, Any]] = []

    async def receive(request: Request) -> Response:
        hooks.append(await request.json())
        return Response(status_code=200)

    receiver = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with serve_asgi(receiver) as hook_url:
        port = free_port()
        command = [sys.executable, "-m", "inferwatch", "demo", "--port", str(port), "--no-store"]
        command += ["--webhook", f"{hook_url}/hook", "--fake-gpu"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        running = Demo(process, f"http://127.0.0.1:{port}", log, hooks)
        try:

            def answers() -> bool:
                try:
                    return httpx.get(f"{running.url}/-/ready", timeout=5).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(answers, running, "answer on /-/ready", 60)
            yield running
        finally:
            stop_process(process)


def test_the_dashboard_is_at_the_root_and_the_demo_index_at_demo(demo: Demo) -> None:
    page = httpx.get(f"{demo.url}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert httpx.get(f"{demo.url}/demo", timeout=10).json()["model"] == "digits"


def test_the_urls_are_printed_dashboard_first(demo: Demo) -> None:
    lines = [line.split() for line in demo.output().splitlines() if demo.url in line]
    assert lines[0][:2] == ["dashboard", f"{demo.url}/"]
    printed = " ".join(word for line in lines for word in line)
    for path in ("/predict", "/api/v1/alerts", "/metrics", "/docs"):
        assert f"{demo.url}{path}" in printed
    assert f"inferwatch fault errors --url {demo.url}" in demo.output()


def test_the_packaged_rules_are_loaded(demo: Demo) -> None:
    groups = httpx.get(f"{demo.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"HighErrorRatio", "LatencyAboveBaseline", "GPUHot", "LowAccuracy"} <= names


def test_the_cost_and_scaling_advice_of_the_model_are_series(demo: Demo) -> None:
    def series() -> bool:
        return bool(demo.query("inferwatch_recommended_replicas")) and bool(
            demo.query("inferwatch_model_cost_per_hour")
        )

    wait_until(series, demo, "cost and scaling series", 30)
    (cost,) = demo.query("inferwatch_model_cost_per_hour")
    assert (cost["metric"]["model"], cost["metric"]["instance_type"]) == ("digits", "g6.xlarge")


def test_the_fake_gpu_shows_in_the_store_and_the_gpu_fault_raises_it(demo: Demo) -> None:
    def used() -> list[float]:
        return [float(r["value"][1]) for r in demo.query("gpu_memory_used_ratio")]

    wait_until(lambda: bool(used()), demo, "gpu_memory_used_ratio", 30)
    assert all(ratio < 0.5 for ratio in used())
    name = demo.query("gpu_temperature_celsius")[0]["metric"]["name"]
    assert "Fake" in name

    on = demo.fault("gpu")
    assert on.returncode == 0, on.stderr
    assert "faults on: gpu" in on.stdout
    wait_until(lambda: min(used()) > 0.95, demo, "GPU memory above 95%", 30)
    hot = [float(r["value"][1]) for r in demo.query("gpu_temperature_celsius")]
    assert hot == [90.0]
    assert demo.fault("gpu", "--off").returncode == 0
    wait_until(lambda: max(used()) < 0.5, demo, "GPU memory back to normal", 30)


def test_the_errors_fault_fires_and_resolves_on_the_webhook_and_the_console(demo: Demo) -> None:
    on = demo.fault("errors")
    assert on.returncode == 0, on.stderr
    wait_until(lambda: demo.notified("HighErrorRatio", "firing"), demo, "FIRING HighErrorRatio", 60)
    assert "ALERT FIRING HighErrorRatio model=digits version=1: " in demo.output()
    firing = next(
        alert
        for hook in demo.hooks
        for alert in hook["alerts"]
        if alert["labels"]["alertname"] == "HighErrorRatio"
    )
    assert (firing["labels"]["model"], firing["labels"]["severity"]) == ("digits", "critical")
    assert "fail" in firing["annotations"]["summary"]

    off = demo.fault("errors", "--off")
    assert off.returncode == 0, off.stderr
    wait_until(
        lambda: demo.notified("HighErrorRatio", "resolved"), demo, "RESOLVED HighErrorRatio", 90
    )
    assert "ALERT RESOLVED HighErrorRatio model=digits version=1: " in demo.output()


def test_the_dashboard_shows_the_live_demo_and_switches_a_fault(demo: Demo) -> None:
    """The README's promise, in a real headless Chromium: the demo's dashboard fills with
    live data, and a fault switched on from the page reaches the service."""
    from playwright.sync_api import sync_playwright

    chromium = "/usr/bin/chromium"
    assert Path(chromium).exists(), f"{chromium} is missing: install it with scripts/setup"
    problems: list[str] = []
    artifacts = Path(__file__).resolve().parents[2] / "artifacts"
    artifacts.mkdir(exist_ok=True)
    wait_until(lambda: bool(demo.query("inferwatch_inferences_total")), demo, "inferences", 60)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--headless=new"]
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{demo.url}/#/overview?range=5m&refresh=5s")
            rps = page.locator("#stat-rps .value")
            # A live request rate (the traffic generator sends about 4 per second).
            page.wait_for_function(
                "() => /\\d/.test(document.querySelector('#stat-rps .value')?.textContent || '')",
                timeout=60_000,
            )
            assert any(ch.isdigit() for ch in rps.inner_text())
            assert page.locator("canvas").count() > 0
            page.screenshot(path=str(artifacts / "demo-dashboard.png"), full_page=True)

            page.goto(f"{demo.url}/#/faults?range=5m&refresh=5s")
            switch = page.locator('input[data-fault="latency"]')
            switch.wait_for(timeout=30_000)
            switch.check()
            wait_until(
                lambda: httpx.get(f"{demo.url}/faults", timeout=10).json()["latency"] is True,
                demo,
                "the latency fault switched on from the page",
                30,
            )
            page.screenshot(path=str(artifacts / "demo-faults.png"), full_page=True)
            switch.uncheck()
            wait_until(
                lambda: httpx.get(f"{demo.url}/faults", timeout=10).json()["latency"] is False,
                demo,
                "the latency fault switched off from the page",
                30,
            )
        finally:
            browser.close()
    assert problems == []
