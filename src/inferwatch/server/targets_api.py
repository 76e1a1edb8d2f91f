"""``GET /api/v1/targets``: scrape targets and synthetic probes, in Prometheus's JSON.

Each scrape target is an ``activeTargets`` entry as Prometheus writes it
(``discoveredLabels``, ``labels``, ``scrapePool``, ``scrapeUrl``, ``globalUrl``,
``lastError``, ``lastScrape`` in RFC 3339, ``lastScrapeDuration`` in seconds, ``health``
``up``/``down``/``unknown``, ``scrapeInterval``, ``scrapeTimeout``), so Grafana and
Prometheus clients read it unchanged. Probes are listed too, in the scrape pool
``probes`` with labels ``{probe, instance: url}`` and ``lastError`` saying why the last
probe failed. ``state=active|dropped|any`` and ``scrapePool=`` filter as in Prometheus;
there are never dropped targets (no relabelling drops any).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferwatch._duration import DURATION_UNITS
from inferwatch.server.rules_api import go_time

if TYPE_CHECKING:
    from inferwatch.health import ProbeRunner
    from inferwatch.health.probe import ProbeResult
    from inferwatch.scrape import ScrapeManager
    from inferwatch.scrape.target import TargetStatus

#: The scrape pool that probes are listed in.
PROBE_POOL = "probes"


def prom_duration(seconds: float) -> str:
    """Seconds as Prometheus writes a duration: ``15s``, ``1m``, ``1m30s``, ``500ms``, ``0s``."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    out = ""
    for unit, size in DURATION_UNITS:
        if ms >= size:
            # Prometheus writes weeks and years only when they divide evenly.
            if unit in ("y", "w") and ms % size:
                continue
            out += f"{ms // size}{unit}"
            ms %= size
    return out


def target_json(status: TargetStatus) -> dict[str, Any]:
    """One scrape target as an ``activeTargets`` entry."""
    parts = urlsplit(status.url)
    discovered = {
        "__address__": parts.netloc or status.url,
        "__metrics_path__": parts.path,
        "__scheme__": parts.scheme,
        "__scrape_interval__": prom_duration(status.scrape_interval_s),
        "__scrape_timeout__": prom_duration(status.scrape_timeout_s),
        "job": status.job,
    }
    return {
        "discoveredLabels": discovered,
        "labels": dict(status.labels),
        "scrapePool": status.job,
        "scrapeUrl": status.url,
        "globalUrl": status.url,
        "lastError": status.last_error,
        "lastScrape": go_time(
            status.last_scrape_ms / 1000 if status.last_scrape_ms is not None else None
        ),
        "lastScrapeDuration": status.last_duration_s or 0.0,
        "health": status.health,
        "scrapeInterval": prom_duration(status.scrape_interval_s),
        "scrapeTimeout": prom_duration(status.scrape_timeout_s),
    }


class _ProbeTimes:
    """When each probe's current result was first seen (results carry no time)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.seen: dict[str, tuple[ProbeResult, float]] = {}

    def at(self, name: str, result: ProbeResult) -> float:
        previous = self.seen.get(name)
        if previous is not None and previous[0] is result:
            return previous[1]
        now = self.clock()
        self.seen[name] = (result, now)
        return now


def probe_json(runner: ProbeRunner, times: _ProbeTimes) -> list[dict[str, Any]]:
    """Every probe of ``runner`` as an ``activeTargets`` entry of the pool ``probes``."""
    results = runner.results()
    out = []
    for probe in runner.probes:
        result = results.get(probe.name)
        health = "unknown" if result is None else ("up" if result.success else "down")
        parts = urlsplit(probe.url)
        out.append(
            {
                "discoveredLabels": {
                    "__address__": parts.netloc,
                    "__metrics_path__": parts.path,
                    "__scheme__": parts.scheme,
                    "job": PROBE_POOL,
                },
                "labels": {**probe.labels, "probe": probe.name, "instance": probe.url},
                "scrapePool": PROBE_POOL,
                "scrapeUrl": probe.url,
                "globalUrl": probe.url,
                "lastError": "" if result is None or result.success else result.reason,
                "lastScrape": go_time(None if result is None else times.at(probe.name, result)),
                "lastScrapeDuration": 0.0 if result is None else result.duration_seconds,
                "health": health,
                "scrapeInterval": prom_duration(probe.interval_s),
                "scrapeTimeout": prom_duration(probe.timeout_s),
            }
        )
    return out


def targets_route(
    scrape: Callable[[], ScrapeManager],
    probes: Callable[[], ProbeRunner | None],
    *,
    clock: Callable[[], float] = time.time,
) -> Route:
    """The ``/targets`` route (mount under ``/api/v1``); the callables give the current
    scrape manager and probe runner, which a reload may replace."""
    times = _ProbeTimes(clock)

    async def targets(request: Request) -> Response:
        state = request.query_params.get("state", "any").lower()
        pools = set(request.query_params.getlist("scrapePool"))
        active = [target_json(t) for t in scrape().targets()]
        runner = probes()
        if runner is not None:
            active += probe_json(runner, times)
        if pools:
            active = [t for t in active if t["scrapePool"] in pools]
        data: dict[str, Any] = {"activeTargets": [], "droppedTargets": []}
        if state in ("any", "active", ""):
            data["activeTargets"] = active
        if state in ("any", "dropped", ""):
            data["droppedTargetCounts"] = {t["scrapePool"]: 0 for t in active}
        body = json.dumps({"status": "success", "data": data}, separators=(",", ":"))
        return Response(body, media_type="application/json")

    return Route("/targets", targets, methods=["GET"])


__all__ = ["PROBE_POOL", "probe_json", "prom_duration", "target_json", "targets_route"]
