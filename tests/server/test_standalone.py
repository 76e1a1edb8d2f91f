"""The server built from an ``inferwatch.yaml``: auth, ``/api/v1/targets``, ``/federate``
and the analyzers (baselines, scaling advice, cost), over real loopback HTTP.

One live target (an inferwatch :class:`MetricsServer`) and one port where nothing
listens are scraped every 200 ms; the analyzers run every evaluation (200 ms).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferwatch.config import parse_config
from inferwatch.sdk.registry import Registry
from inferwatch.server.app import Server
from inferwatch.server.metrics_server import MetricsServer
from tests.support import free_port, serve_asgi

BASELINES = """\
baselines:
  - name: up
    expr: up
    detector: {min_history: 3}
"""

PRICES = """\
currency: EUR
gpu_hour: {a10g: 1.0}
instance_types:
  small: {hourly: 0.5, cpus: 2, memory_gib: 4}
  gpu: {hourly: 0.25, cpus: 4, memory_gib: 16, gpus: 2, gpu_type: a10g}
models:
  digits: {instance_type: gpu, replicas: 3}
"""

PROBES = """\
probes:
  - name: dead
    url: http://127.0.0.1:{port}/predict
    interval: 200ms
    timeout: 100ms
"""


def wait_for(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g}s")
        time.sleep(0.05)


@pytest.fixture
def target() -> Iterator[MetricsServer]:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    registry.gauge("x", "A value to scrape.").set(2.0)
    server = MetricsServer(registry, port=0).start()
    try:
        yield server
    finally:
        server.stop()


def config_text(tmp_path: Path, live: str, dead: str, auth: str = "") -> str:
    (tmp_path / "baselines.yml").write_text(BASELINES)
    (tmp_path / "prices.yml").write_text(PRICES)
    (tmp_path / "probes.yml").write_text(PROBES.replace("{port}", dead.rsplit(":", 1)[1]))
    return (
        "listen: 127.0.0.1:9090\n"
        "storage: {path: store.db, retention: 1d}\n"
        f"{auth}"
        "prometheus:\n"
        "  global: {scrape_interval: 200ms, evaluation_interval: 200ms}\n"
        "  scrape_configs:\n"
        "    - job_name: live\n"
        f"      static_configs: [{{targets: ['{live}']}}]\n"
        "    - job_name: dead\n"
        f"      static_configs: [{{targets: ['{dead}']}}]\n"
        "probes: [probes.yml]\n"
        "baselines: [baselines.yml]\n"
        "prices: prices.yml\n"
        "scaling:\n"
        "  interval: 200ms\n"
        "  models:\n"
        "    digits: {capacity_rps: 10, min_replicas: 2}\n"
    )


@pytest.fixture
def running(tmp_path: Path, target: MetricsServer) -> Iterator[tuple[Server, str]]:
    live, dead = f"127.0.0.1:{target.port}", f"127.0.0.1:{free_port()}"
    cfg = parse_config(config_text(tmp_path, live, dead), source="c.yaml", base=tmp_path)
    server = Server.from_config(cfg)
    server.start()
    try:
        with serve_asgi(server.app()) as url:
            yield server, url
    finally:
        server.stop()


def query(url: str, expr: str, **kwargs: Any) -> list[dict[str, Any]]:
    """The vector an instant query returns (``kwargs``: credentials for httpx)."""
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5, **kwargs)
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_targets_lists_scrape_targets_and_probes_as_prometheus_does(
    running: tuple[Server, str], target: MetricsServer
) -> None:
    _, url = running

    def scraped() -> list[dict[str, Any]] | None:
        body = httpx.get(f"{url}/api/v1/targets", timeout=5).json()
        active: list[dict[str, Any]] = body["data"]["activeTargets"]
        return active if all(t["health"] != "unknown" for t in active) else None

    active = wait_for(scraped, "scrape of every target and probe")
    by_pool = {t["scrapePool"]: t for t in active}
    # "inferwatch": the server's own registry, which collects the probes' series.
    assert set(by_pool) == {"inferwatch", "live", "dead", "probes"}
    live = by_pool["live"]
    assert live["health"] == "up" and live["lastError"] == ""
    assert live["labels"] == {"job": "live", "instance": f"127.0.0.1:{target.port}"}
    assert live["scrapeUrl"] == f"http://127.0.0.1:{target.port}/metrics"
    assert live["discoveredLabels"]["__address__"] == f"127.0.0.1:{target.port}"
    assert live["discoveredLabels"]["__scrape_interval__"] == "200ms"
    assert (live["scrapeInterval"], live["scrapeTimeout"]) == ("200ms", "200ms")
    assert live["lastScrape"].endswith("Z") and live["lastScrape"][:2] == "20"
    assert isinstance(live["lastScrapeDuration"], float)
    dead = by_pool["dead"]
    assert dead["health"] == "down" and dead["lastError"]
    probe = by_pool["probes"]
    assert probe["health"] == "down"
    assert probe["labels"]["probe"] == "dead"
    assert probe["lastError"]  # why the probe failed, in words
    body = httpx.get(f"{url}/api/v1/targets", params={"scrapePool": "live"}, timeout=5).json()
    assert [t["scrapePool"] for t in body["data"]["activeTargets"]] == ["live"]
    assert body["data"]["droppedTargets"] == []


def test_federate_serves_the_latest_samples_in_the_text_format(
    running: tuple[Server, str],
) -> None:
    _, url = running
    wait_for(lambda: query(url, "x"), "scraped series x")
    wait_for(lambda: query(url, "inferwatch_model_cost_per_hour"), "the cost series")
    response = httpx.get(
        f"{url}/federate", params={"match[]": ['{job="live"}', "inferwatch_model_cost_per_hour"]}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        sample.name: sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    assert samples["x"].value == 2.0 and samples["x"].labels["job"] == "live"
    assert samples["x"].timestamp is not None
    assert samples["up"].value == 1.0
    cost = samples["inferwatch_model_cost_per_hour"]
    assert cost.labels == {"model": "digits", "instance_type": "gpu", "currency": "EUR"}
    assert cost.value == pytest.approx((0.25 + 2 * 1.0) * 3)
    assert httpx.get(f"{url}/federate").status_code == 400
    assert httpx.get(f"{url}/federate", params={"match[]": "x{"}).status_code == 400


def test_baselines_scaling_advice_and_cost_land_in_the_store(running: tuple[Server, str]) -> None:
    _, url = running
    upper = wait_for(lambda: query(url, 'up:upper{job="live"}'), "baseline up:upper")
    assert float(upper[0]["value"][1]) >= 1.0
    assert query(url, 'up:anomaly_score{job="live"}')
    advice = wait_for(lambda: query(url, "inferwatch_recommended_replicas"), "scaling advice")
    assert advice[0]["metric"]["model"] == "digits"
    assert float(advice[0]["value"][1]) >= 2
    assert query(url, "inferwatch_recommended_replicas_reason")
    assert query(url, "inferwatch_model_cost_per_hour")
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    assert 'inferwatch_recommended_replicas{model="digits"}' in metrics


@pytest.fixture
def guarded(tmp_path: Path, target: MetricsServer) -> Iterator[str]:
    auth = "auth:\n  bearer_token: t0k\n  basic_auth: {username: admin, password: pw}\n"
    text = config_text(tmp_path, f"127.0.0.1:{target.port}", f"127.0.0.1:{free_port()}", auth)
    server = Server.from_config(parse_config(text, source="c.yaml", base=tmp_path))
    server.start()
    try:
        with serve_asgi(server.app()) as url:
            yield url
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/", "/api/v1/query?query=1", "/federate?match[]=up", "/metrics"])
def test_without_credentials_everything_but_health_is_refused(guarded: str, path: str) -> None:
    response = httpx.get(f"{guarded}{path}", timeout=5)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="inferwatch"'
    wrong = httpx.get(f"{guarded}{path}", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401
    post = httpx.post(f"{guarded}/-/reload", timeout=5)
    assert post.status_code == 401


def test_health_endpoints_stay_open(guarded: str) -> None:
    assert httpx.get(f"{guarded}/-/healthy", timeout=5).status_code == 200
    assert httpx.get(f"{guarded}/-/ready", timeout=5).status_code == 200


def test_the_bearer_token_or_basic_auth_lets_requests_through(guarded: str) -> None:
    assert query(guarded, "vector(1)", headers={"Authorization": "Bearer t0k"})
    assert query(guarded, "vector(1)", auth=("admin", "pw"))
    bad = base64.b64encode(b"admin:wrong").decode()
    response = httpx.get(
        f"{guarded}/api/v1/query", params={"query": "1"}, headers={"Authorization": f"Basic {bad}"}
    )
    assert response.status_code == 401


def test_bearer_only_auth_challenges_with_bearer(tmp_path: Path) -> None:
    cfg = parse_config(
        "storage: {path: s.db}\nauth: {bearer_token: abc}\n", source="c.yaml", base=tmp_path
    )
    server = Server.from_config(cfg)
    try:
        with serve_asgi(server.app()) as url:
            response = httpx.get(f"{url}/api/v1/labels", timeout=5)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Bearer realm="inferwatch"'
            ok = httpx.get(f"{url}/api/v1/labels", headers={"Authorization": "Bearer abc"})
            assert ok.status_code == 200
            # The page and its assets hold no data: a browser gets them without the token
            # (it cannot send one by itself), and the page asks for the token.
            assert httpx.get(f"{url}/", timeout=5).status_code == 200
            assert httpx.get(f"{url}/static/app.js", timeout=5).status_code == 200
            assert httpx.get(f"{url}/federate?match[]=up", timeout=5).status_code == 401
    finally:
        server.stop()


@pytest.mark.integration
def test_a_real_prometheus_federates_baseline_advice_and_cost_series(
    tmp_path: Path, running: tuple[Server, str]
) -> None:
    from tests.integration.conftest import start_prometheus

    _, url = running
    wait_for(lambda: query(url, "up:upper"), "baseline up:upper")
    host = url.removeprefix("http://")
    config = (
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: federate\n"
        "    honor_labels: true\n"
        "    metrics_path: /federate\n"
        "    params:\n"
        "      'match[]':\n"
        "        - '{__name__=~\".+:upper|.+:lower|.+:anomaly_score\"}'\n"
        "        - inferwatch_recommended_replicas\n"
        "        - inferwatch_model_cost_per_hour\n"
        f"    static_configs: [{{targets: ['{host}']}}]\n"
    )
    prom = start_prometheus(tmp_path, [], config_text=config)
    try:
        prom.wait_until_up()
        upper = wait_for(lambda: prom.query('up:upper{job="live"}'), "federated up:upper")
        assert upper[0]["metric"]["instance"].startswith("127.0.0.1:")  # honor_labels kept it
        assert prom.value('inferwatch_recommended_replicas{model="digits"}') is not None
        assert prom.value("inferwatch_model_cost_per_hour") == pytest.approx(6.75)
    finally:
        prom.stop()
