"""Multi-worker servers: /metrics from any worker reports the exact sum of all workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import free_port, stop_process

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
APP = "tests.integration.workers_app:app"
WORKERS = 4


def scrape(base: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10).text
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def successes(metrics: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> float:
    return sum(
        v
        for k, v in metrics.get("inferwatch_inferences_total", {}).items()
        if ("outcome", "success") in k
    )


def workers_seen(base: str) -> set[str]:
    rss = scrape(base).get("process_resident_memory_bytes", {})
    return {dict(k)["worker"] for k in rss}


def send(base: str, n: int) -> set[int]:
    """n requests on fresh connections (so the kernel spreads them over workers)."""
    pids = set()
    for i in range(n):
        r = httpx.get(f"{base}/predict/{i}", headers={"Connection": "close"}, timeout=10)
        assert r.status_code == 200
        pids.add(r.json()["pid"])
    return pids


@pytest.fixture(params=["uvicorn", "gunicorn"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = free_port()
    if request.param == "uvicorn":
        cmd = [str(BIN / "uvicorn"), APP, "--workers", str(WORKERS), "--port", str(port)]
        cmd.append("--no-access-log")
    else:
        cmd = [str(BIN / "gunicorn"), APP, "-w", str(WORKERS), "-b", f"127.0.0.1:{port}"]
        cmd += ["-k", "uvicorn.workers.UvicornWorker"]
    log = (tmp_path / "server.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if len(workers_seen(base)) == WORKERS:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError((tmp_path / "server.log").read_text())
            time.sleep(0.2)
        yield base, request.param
    finally:
        stop_process(proc, timeout=20)
        log.close()


def test_every_worker_reports_the_exact_total(server: tuple[str, str]) -> None:
    base, _ = server
    pids = send(base, 300)
    assert len(pids) >= 2, "the kernel sent every connection to one worker"
    for _ in range(12):  # scrapes land on different workers
        metrics = scrape(base)
        assert successes(metrics) == 300
        latency = metrics["inferwatch_inference_duration_seconds_count"]
        assert sum(latency.values()) == 300
    assert len(workers_seen(base)) == WORKERS


def worker_pids(base: str) -> list[int]:
    return sorted(int(w) for w in workers_seen(base))


def wait_for_replacement(base: str, gone: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen = worker_pids(base)
        if gone not in seen and len(seen) == WORKERS:
            return
        time.sleep(0.2)
    raise AssertionError(f"worker {gone} was not replaced: {worker_pids(base)}")


def test_counts_of_a_killed_worker_are_kept(server: tuple[str, str]) -> None:
    base, _ = server
    send(base, 200)
    assert successes(scrape(base)) == 200
    victim = worker_pids(base)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for_replacement(base, victim)
    send(base, 100)
    for _ in range(6):
        assert successes(scrape(base)) == 300


# gunicorn replaces a worker stopped with SIGTERM; uvicorn's supervisor does not.
@pytest.mark.parametrize("server", ["gunicorn"], indirect=True)
def test_counts_of_a_gracefully_stopped_worker_are_kept_without_a_scrape(
    server: tuple[str, str],
) -> None:
    base, _ = server
    victim = worker_pids(base)[0]
    send(base, 200)  # not scraped before the worker goes
    os.kill(victim, signal.SIGTERM)
    wait_for_replacement(base, victim)
    for _ in range(6):
        assert successes(scrape(base)) == 200
