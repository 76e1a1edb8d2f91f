"""The dashboard in a real headless Chromium, driven by Playwright, against a real server.

One :class:`~inferwatch.server.app.Server` per module, with a rule file, an embedded
Alertmanager and two scrape targets (one up, one refusing connections), served by
uvicorn on loopback. Its store holds half an hour of samples of two models, one of them
named with HTML (``MODEL_XSS``); an alert's annotation holds a script tag. Every view
is loaded; no console error or page error may occur, and each view is saved as a
screenshot in ``artifacts/dashboard-<view>.png``.

Chromium is the Debian package (``/usr/bin/chromium``, installed by ``scripts/setup``);
without it these tests fail.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from inferwatch.sdk.registry import Registry
from inferwatch.server.app import Server
from inferwatch.server.auth import OPEN_PATHS, AuthMiddleware
from inferwatch.server.dashboard import (
    CONTENT_SECURITY_POLICY,
    dashboard_routes,
    public_paths,
    serves,
)
from inferwatch.server.metrics_server import MetricsServer
from inferwatch.server.rules_api import go_time
from inferwatch.tsdb.labels import make_labels
from tests.support import free_port, serve_asgi

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
MODEL = "digits"
#: What a stat card shows without a value.
NO_VALUE = "\N{EN DASH}"
MODEL_XSS = '<img src=x onerror="window.__xss=1">&<b>bold</b>'
SCRIPT_ANNOTATION = "<script>window.__xss=2</script>"
TOKEN = "s3cret-token"
HISTORY_S = 1800
STEP_S = 15
#: uPlot's default stroke for the first series of a chart (app.js PALETTE[0]).
FIRST_SERIES_RGB = (59, 130, 246)

RULES = f"""\
groups:
- name: serving
  interval: 1s
  rules:
  - alert: HighLatency
    expr: >-
      histogram_quantile(0.99, sum by (model, le)
      (rate(inferwatch_inference_duration_seconds_bucket[5m]))) > 0.2
    labels:
      severity: page
    annotations:
      summary: "p99 latency of {{{{ $labels.model }}}} is {{{{ $value }}}}s"
      runbook: {json.dumps(SCRIPT_ANNOTATION)}
  - alert: TrafficSeen
    expr: sum by (model) (rate(inferwatch_inferences_total[5m])) > 0
    for: 1h
    annotations:
      summary: traffic on {{{{ $labels.model }}}}
  - record: model:inferwatch_inferences:rate1m
    expr: sum by (model) (rate(inferwatch_inferences_total[1m]))
- name: broken
  interval: 1s
  rules:
  - record: broken:vector
    expr: inferwatch_inferences_in_flight + on() inferwatch_inferences_in_flight
"""

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, math.inf)


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def _add(out: list[tuple[Any, float]], metric: str, value: float, /, **labels: str) -> None:
    out.append((make_labels({"__name__": metric, **labels}), value))


def _history(now_s: float) -> Iterator[tuple[int, list[tuple[Any, float]]]]:
    """Half an hour of samples, every 15 s, for both models and the host."""
    steps = HISTORY_S // STEP_S
    served = [0.0, 0.0]
    for i in range(steps + 1):
        t = now_s - HISTORY_S + i * STEP_S
        elapsed = i * STEP_S
        wave = 1 + 0.3 * math.sin(i / 12)
        out: list[tuple[Any, float]] = []
        add = functools.partial(_add, out)

        for k, model in enumerate((MODEL, MODEL_XSS)):
            base = {"model": model, "version": "1"}
            served[k] += (10.0 + 5 * k) * wave * STEP_S
            count = served[k]
            errors = 0.2 * elapsed * (1 + k)
            add("inferwatch_inferences_total", count, outcome="success", error_type="", **base)
            add(
                "inferwatch_inferences_total",
                errors,
                outcome="error",
                error_type="ValueError",
                **base,
            )
            total = count + errors
            # Latency centred at 20 ms for digits, 80 ms for the other (its p99 alerts).
            centre = 0.02 * (1 + 3 * k)
            for bound in BUCKETS:
                share = 1.0 if math.isinf(bound) else 1 - math.exp(-bound / centre)
                add(
                    "inferwatch_inference_duration_seconds_bucket",
                    round(total * share),
                    le=_le(bound),
                    **base,
                )
            add("inferwatch_inference_duration_seconds_count", total, **base)
            add("inferwatch_inference_duration_seconds_sum", total * centre, **base)
            add("inferwatch_inferences_in_flight", float(2 + (i % 4)), **base)
            add("inferwatch_inference_batch_size_count", total, **base)
            add("inferwatch_inference_batch_size_sum", total * 8, **base)
            add("inferwatch_labels_total", 0.9 * elapsed, correct="true", **base)
            add("inferwatch_labels_total", 0.1 * elapsed, correct="false", **base)
            for feature, psi in (("pixel_0", 0.05), ("pixel_1", 0.3 * (i / steps))):
                add("inferwatch_drift_psi", psi, feature=feature, **base)
                add("inferwatch_drift_detected", float(psi > 0.2), feature=feature, **base)
            add("latency_p99:upper", 0.09 * (1 + 3 * k), **base)
            add("latency_p99:lower", 0.01 * (1 + 3 * k), **base)
            add("inferwatch_recommended_replicas", 2.0 + k, model=model)
            add("inferwatch_recommended_replicas_reason", 1.0, model=model, reason="latency")
            add(
                "inferwatch_model_cost_per_hour",
                1.2 * (2 + k),
                model=model,
                instance_type="g5.xlarge",
                currency="USD",
            )
        host = {"job": "inferwatch", "instance": "local"}
        add("process_cpu_seconds_total", 0.4 * elapsed, **host)
        add("process_resident_memory_bytes", 512e6 + 1e5 * i, **host)
        add("system_memory_used_ratio", 0.42 + 0.01 * math.sin(i / 9))
        add("gpu_available", 1.0)
        gpu = {"gpu": "0", "uuid": "GPU-fake-0", "name": "Fake GPU"}
        add("gpu_utilization_ratio", 0.5 + 0.3 * math.sin(i / 7), **gpu)
        add("gpu_memory_used_ratio", 0.6, **gpu)
        add("gpu_temperature_celsius", 61.0 + (i % 5), **gpu)
        yield int(t * 1000), out


class Faults:
    """The demo's ``/faults`` endpoint: GET the switches, POST them all back."""

    def __init__(self) -> None:
        self.state = {"latency_spike": False, "errors": False, "drift": False}
        self.posted: list[dict[str, Any]] = []

    async def endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            assert request.headers["content-type"].startswith("application/json")
            body = json.loads(await request.body())
            self.posted.append(body)
            self.state = {k: bool(v) for k, v in body.items()}
        return JSONResponse(self.state)


def _targets_route(server: Server) -> Route:
    """``/api/v1/targets`` in Prometheus's shape from the scrape manager, for servers
    whose app does not serve it yet."""

    async def targets(request: Request) -> Response:
        active = [
            {
                "discoveredLabels": {},
                "labels": dict(t.labels),
                "scrapePool": t.job,
                "scrapeUrl": t.url,
                "globalUrl": t.url,
                "lastError": t.last_error,
                "lastScrape": go_time(t.last_scrape_ms / 1000 if t.last_scrape_ms else None),
                "lastScrapeDuration": t.last_duration_s or 0,
                "health": t.health,
                "scrapeInterval": f"{t.scrape_interval_s:g}s",
                "scrapeTimeout": f"{t.scrape_timeout_s:g}s",
            }
            for t in server.scrape.targets()
        ]
        return JSONResponse(
            {"status": "success", "data": {"activeTargets": active, "droppedTargets": []}}
        )

    return Route("/api/v1/targets", targets)


class Stack:
    """The server under test, its URL and its fault switches."""

    def __init__(self, server: Server, url: str, faults: Faults, app: Starlette) -> None:
        self.server = server
        self.url = url
        self.faults = faults
        self.app = app

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboard")
    (tmp / "rules.yml").write_text(RULES)
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    registry.gauge("target_ready", "A gauge the scraped target serves.").set(1)
    target = MetricsServer(registry, port=0).start()
    (tmp / "prometheus.yml").write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs:\n"
        "- job_name: model\n"
        f"  static_configs: [{{targets: ['127.0.0.1:{target.port}']}}]\n"
        "- job_name: refused\n"
        f"  static_configs: [{{targets: ['127.0.0.1:{free_port()}']}}]\n"
    )
    (tmp / "alertmanager.yml").write_text(
        "route:\n  receiver: 'null'\nreceivers:\n- name: 'null'\n"
    )
    server = Server(
        str(tmp / "prometheus.yml"),
        alertmanager_config_path=str(tmp / "alertmanager.yml"),
        db=str(tmp / "db"),
    )
    for ts_ms, samples in _history(time.time()):
        server.store.append(ts_ms, samples)
    faults = Faults()
    base = server.app()
    extra: list[BaseRoute] = [Route("/faults", faults.endpoint, methods=["GET", "POST"])]
    if not serves(base.routes, "/api/v1/targets"):
        extra.append(_targets_route(server))
    has_page = any(isinstance(r, Route) and r.path == "/" for r in base.routes)
    app = Starlette(routes=[*extra, *([] if has_page else dashboard_routes()), *base.routes])
    server.start()
    try:
        with serve_asgi(app) as url:
            yield Stack(server, url, faults, app)
    finally:
        server.stop()
        target.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install it with scripts/setup"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Console:
    """Console errors and page errors of one page; some expected ones may be allowed."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} at {message.location}")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"page error: {error}")

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    p = context.new_page()
    p.on("console", console.on_console)
    p.on("pageerror", console.on_page_error)
    try:
        yield p
    finally:
        context.close()
    assert console.unexpected() == []


def _open(page: Page, url: str, view: str) -> None:
    page.goto(url)
    page.wait_for_function(
        "v => document.body.dataset.view === v && document.body.dataset.busy === 'false'",
        arg=view,
        timeout=20_000,
    )


def _screenshot(page: Page, view: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{view}.png"), full_page=True)


def _coloured_pixels(page: Page, chart: str, rgb: tuple[int, int, int]) -> int:
    """Pixels of a chart's canvas within a small distance of ``rgb``."""
    count: int = page.evaluate(
        """([id, rgb]) => {
            const canvas = inferwatch.charts.get(id).ctx.canvas;
            const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 0; i < px.length; i += 4) {
                if (px[i + 3] > 200 && Math.abs(px[i] - rgb[0]) < 24
                    && Math.abs(px[i + 1] - rgb[1]) < 24 && Math.abs(px[i + 2] - rgb[2]) < 24) n++;
            }
            return n;
        }""",
        [chart, list(rgb)],
    )
    return count


# -- HTTP ---------------------------------------------------------------------------------


def test_page_and_assets_are_served_with_types_and_headers(stack: Stack) -> None:
    page = httpx.get(f"{stack.url}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert 'content="silences targets faults"' in page.text
    assert "{{" not in page.text
    for path, kind in [
        ("static/app.js", "text/javascript"),
        ("static/app.css", "text/css"),
        ("static/vendor/uPlot.iife.min.js", "text/javascript"),
        ("static/vendor/uPlot.min.css", "text/css"),
        ("static/favicon.svg", "image/svg+xml"),
    ]:
        assert f'"{path}?v=' in page.text or path.startswith("static/vendor/uPlot.min")
        asset = httpx.get(f"{stack.url}/{path}", timeout=10)
        assert asset.status_code == 200, path
        assert asset.headers["content-type"].startswith(kind), path
        assert asset.headers["cache-control"] == "no-cache"
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{stack.url}/static/missing.js", timeout=10).status_code == 404


def test_page_names_only_the_endpoints_the_app_serves(tmp_path: Path) -> None:
    server = Server(db=str(tmp_path / "db"))
    try:
        app = Starlette(routes=[*dashboard_routes(), *server.app().routes])
        assert not serves(app.routes, "/api/v2/status")
        assert not serves(app.routes, "/faults")
        assert serves(app.routes, "/api/v1/query")
        assert serves(app.routes, "/api/v1/targets")
        with serve_asgi(app) as url:
            text = httpx.get(f"{url}/", timeout=10).text
        assert '<meta name="inferwatch-features" content="targets">' in text
        # The demo mounts the server's app under its own, beside its /faults.
        outer = Starlette(
            routes=[Route("/faults", Faults().endpoint), Mount("/", app=app)],
        )
        with serve_asgi(outer) as url:
            text = httpx.get(f"{url}/", timeout=10).text
        assert '<meta name="inferwatch-features" content="targets faults">' in text
    finally:
        server.stop()


# -- the browser --------------------------------------------------------------------------


def test_overview_draws_the_api_series(stack: Stack, page: Page) -> None:
    _open(page, f"{stack.url}/#/overview?model={MODEL}&range=1h&refresh=off", "overview")
    assert page.locator("#model").input_value() == MODEL
    for stat in ("rps", "errors", "p95", "inflight", "accuracy", "drift", "replicas", "cost"):
        assert page.locator(f"#stat-{stat} .value").inner_text() != NO_VALUE, stat
    assert page.locator("#stat-cost .sub").inner_text() == "USD"
    assert page.locator("#stat-replicas .sub").inner_text() == "reason: latency"
    assert page.locator("#stat-drift .sub").inner_text() == "pixel_1"
    charts = page.evaluate("[...inferwatch.charts.keys()].sort()")
    assert charts == sorted(
        [
            "throughput", "errors", "latency", "inflight", "batch", "cpu", "memory", "sysmem",
            "gpuutil", "gpumem", "gputemp", "accuracy", "drift", "replicas", "costhour", "costk",
        ]
    )  # fmt: skip
    # The latency chart holds exactly what the API answers for the same range, with the
    # baseline as a band.
    data = page.evaluate(
        "(() => { const u = inferwatch.charts.get('latency');"
        " return {data: u.data, labels: u.series.map(s => s.label), bands: u.bands}; })()"
    )
    xs = data["data"][0]
    assert data["labels"][1:] == ["p50", "p95", "p99", "latency_p99 upper", "latency_p99 lower"]
    assert data["bands"][0]["series"] == [4, 5]
    expr = (
        "histogram_quantile(0.5, sum by (le) "
        f'(rate(inferwatch_inference_duration_seconds_bucket{{model="{MODEL}"}}[60s])))'
    )
    answer = stack.api(
        "/api/v1/query_range", query=expr, start=xs[0], end=xs[-1], step=xs[1] - xs[0]
    )
    (series,) = answer["data"]["result"]
    expected = {float(t): float(v) for t, v in series["values"]}
    drawn = {float(t): v for t, v in zip(xs, data["data"][1], strict=True) if v is not None}
    assert len(drawn) > 100
    assert drawn == pytest.approx(expected)
    assert _coloured_pixels(page, "latency", FIRST_SERIES_RGB) > 100
    _screenshot(page, "overview")


def test_time_range_and_refresh_live_in_the_url(stack: Stack, page: Page) -> None:
    _open(page, f"{stack.url}/#/overview?model={MODEL}&range=1h&refresh=off", "overview")
    page.select_option("#range", "6h")
    page.wait_for_function("() => location.hash.includes('range=6h')")
    page.select_option("#refresh", "30s")
    page.wait_for_function("() => location.hash.includes('refresh=30s')")
    page.locator("#theme").click()
    page.wait_for_function(
        "() => document.documentElement.dataset.theme === 'dark'"
        " && document.body.dataset.busy === 'false' && inferwatch.charts.has('latency')"
    )
    _screenshot(page, "overview-dark")
    link = page.evaluate("location.href")
    other = page.context.new_page()
    _open(other, link, "overview")
    assert other.locator("#range").input_value() == "6h"
    assert other.locator("#refresh").input_value() == "30s"
    assert other.locator("#model").input_value() == MODEL
    other.close()


def test_html_in_label_values_is_shown_as_text(stack: Stack, page: Page) -> None:
    _open(page, f"{stack.url}/#/overview?range=1h&refresh=off", "overview")
    options = page.locator("#model option").all_inner_texts()
    assert sorted(options) == sorted([MODEL, MODEL_XSS])
    page.select_option("#model", MODEL_XSS)
    page.wait_for_function(
        "m => new URLSearchParams(location.hash.split('?')[1]).get('model') === m"
        " && document.body.dataset.busy === 'false'",
        arg=MODEL_XSS,
    )
    page.wait_for_function("() => inferwatch.charts.has('latency')")
    assert page.locator("#stat-rps .value").inner_text() != NO_VALUE
    _open(page, f"{stack.url}/#/alerts?refresh=off", "alerts")
    alert = page.locator("article[data-alertname='HighLatency']")
    alert.wait_for()
    assert MODEL_XSS in alert.inner_text()
    assert SCRIPT_ANNOTATION in alert.locator(".annotation").all_inner_texts()[1]
    found = page.evaluate(
        """() => ({
            xss: typeof window.__xss,
            imgs: document.querySelectorAll("#view img").length,
            bold: [...document.querySelectorAll("b")].filter(b => b.textContent === "bold").length,
            scripts: document.querySelectorAll("#view script").length,
        })"""
    )
    assert found == {"xss": "undefined", "imgs": 0, "bold": 0, "scripts": 0}


def test_alerts_view_silences_an_alert_and_expires_the_silence(stack: Stack, page: Page) -> None:
    _open(page, f"{stack.url}/#/alerts?refresh=off", "alerts")
    firing = page.locator("article.alert.firing[data-alertname='HighLatency']")
    firing.wait_for()
    assert "active since" in firing.inner_text()
    assert page.locator("article.alert.pending[data-alertname='TrafficSeen']").count() == 2
    broken = page.locator(".rule-group", has_text="broken")
    assert "err" in broken.locator(".badge").first.inner_text()
    assert broken.locator("td.err").inner_text() != ""
    _screenshot(page, "alerts")

    firing.locator("button.silence-alert").click()
    form = page.locator("#silence-form")
    names = form.locator(".matcher-name").evaluate_all("els => els.map(e => e.value)")
    values = form.locator(".matcher-value").evaluate_all("els => els.map(e => e.value)")
    assert dict(zip(names, values, strict=True)) == {
        "alertname": "HighLatency",
        "model": MODEL_XSS,
        "severity": "page",
    }
    form.locator("#silence-duration").fill("90m")
    form.locator("#silence-author").fill("dashboard test")
    form.locator("#silence-comment").fill("looking into it")
    _screenshot(page, "silence-form")
    form.locator("button[type=submit]").click()
    row = page.locator("#silences tr[data-state='active']")
    row.wait_for()

    (silence,) = [s for s in stack.api("/api/v2/silences") if s["comment"] == "looking into it"]
    assert silence["createdBy"] == "dashboard test"
    assert silence["status"]["state"] == "active"
    assert {m["name"]: m["value"] for m in silence["matchers"]}["model"] == MODEL_XSS
    assert row.get_attribute("data-silence") == silence["id"]

    row.locator("button.expire").click()
    page.locator(f"#silences tr[data-silence='{silence['id']}'][data-state='expired']").wait_for()
    after = next(s for s in stack.api("/api/v2/silences") if s["id"] == silence["id"])
    assert after["status"]["state"] == "expired"


def test_targets_view_shows_health_and_last_error(stack: Stack, page: Page) -> None:
    deadline = time.monotonic() + 10
    while {t["health"] for t in stack.api("/api/v1/targets")["data"]["activeTargets"]} != {
        "up",
        "down",
    }:
        assert time.monotonic() < deadline, "targets were not scraped"
        time.sleep(0.2)
    _open(page, f"{stack.url}/#/targets?refresh=off", "targets")
    up = page.locator("tr[data-health='up']", has_text="model")
    down = page.locator("tr[data-health='down']", has_text="refused")
    assert up.count() == 1
    assert down.count() == 1
    assert down.locator("td.err").inner_text() != ""
    _screenshot(page, "targets")


def test_explorer_shows_a_table_a_graph_and_api_errors(
    stack: Stack, page: Page, console: Console
) -> None:
    # The bad query's answer: Chromium logs every 4xx response on the console.
    console.allowed.append(re.compile(r"status of 400 \(Bad Request\).*/api/v1/query_range"))
    _open(page, f"{stack.url}/#/explore?refresh=off", "explore")
    page.fill("#expr", "sum by (model) (rate(inferwatch_inferences_total[5m]))")
    page.locator("#tab-table").click()
    page.wait_for_function("() => location.hash.includes('tab=table')")
    page.locator("#expr").press("Enter")
    page.locator("#explore-table tbody tr").first.wait_for()
    cells = page.locator("#explore-table tbody td.mono").all_inner_texts()
    assert sorted(cells) == sorted(f"{{model={json.dumps(m)}}}" for m in (MODEL, MODEL_XSS))
    _screenshot(page, "explore-table")

    page.locator("#tab-graph").click()
    page.wait_for_function("() => inferwatch.charts.has('explore')")
    assert page.evaluate("inferwatch.charts.get('explore').data.length") == 3
    assert page.locator("#explore-error").is_hidden()
    _screenshot(page, "explore")

    page.fill("#expr", "sum(rate(inferwatch_inferences_total[5m])")
    page.locator("#expr").press("Enter")
    error = page.locator("#explore-error")
    error.wait_for()
    assert error.inner_text().startswith("bad_data: ")
    assert not page.evaluate("inferwatch.charts.has('explore')")


def test_fault_switches_post_the_whole_object(stack: Stack, page: Page) -> None:
    _open(page, f"{stack.url}/#/overview?model={MODEL}&refresh=off", "overview")
    page.locator("#nav-faults").click()
    page.locator("input[data-fault='errors']").wait_for()
    assert page.locator(".toggle").count() == 3
    page.locator("input[data-fault='errors']").check(force=True)
    page.wait_for_function(
        "() => document.querySelector(\"input[data-fault='errors']\").checked"
        " && !document.querySelector(\"input[data-fault='errors']\").disabled"
    )
    assert stack.faults.posted[-1] == {"latency_spike": False, "errors": True, "drift": False}
    _screenshot(page, "faults")
    page.locator("input[data-fault='errors']").uncheck(force=True)
    page.wait_for_function("() => !document.querySelector(\"input[data-fault='errors']\").checked")
    deadline = time.monotonic() + 5
    while stack.faults.state["errors"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_bearer_token_is_asked_for_and_sent(
    stack: Stack, browser: Browser, console: Console
) -> None:
    console.allowed.append(re.compile(r"status of 401"))
    gated = AuthMiddleware(stack.app, bearer_token=TOKEN, open_paths=OPEN_PATHS | public_paths())
    with serve_asgi(gated) as url:
        context = browser.new_context()
        page = context.new_page()
        page.on("console", console.on_console)
        page.on("pageerror", console.on_page_error)
        try:
            page.goto(f"{url}/#/overview?model={MODEL}&refresh=off")
            page.locator("#auth-token").wait_for()
            _screenshot(page, "sign-in")
            page.fill("#auth-token", "wrong")
            page.locator("#auth-form button[type=submit]").click()
            page.locator("#auth-error").wait_for()
            assert "did not accept" in page.locator("#auth-error").inner_text()
            page.fill("#auth-token", TOKEN)
            page.locator("#auth-form button[type=submit]").click()
            page.wait_for_function("() => inferwatch.charts.has('latency')", timeout=20_000)
            assert page.evaluate("sessionStorage.getItem('inferwatch.token')") == TOKEN
            assert page.locator("#auth").is_hidden()
        finally:
            context.close()
    assert console.unexpected() == []


def test_basic_auth_is_left_to_the_browser(
    stack: Stack, browser: Browser, console: Console
) -> None:
    gated = AuthMiddleware(stack.app, basic_auth=("admin", "pw"))
    with serve_asgi(gated) as url:
        context = browser.new_context(http_credentials={"username": "admin", "password": "pw"})
        page = context.new_page()
        page.on("console", console.on_console)
        page.on("pageerror", console.on_page_error)
        try:
            _open(page, f"{url}/#/overview?model={MODEL}&refresh=off", "overview")
            assert page.evaluate("inferwatch.charts.has('latency')")
            assert page.locator("#auth").is_hidden()
        finally:
            context.close()
    assert console.unexpected() == []
