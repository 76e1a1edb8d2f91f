"""``GET /federate?match[]=...``: the latest sample of each matching series, for Prometheus.

A real Prometheus scrapes it to pull series out of the inferwatch server, as it
federates from another Prometheus (with ``honor_labels: true``, so the stored ``job``
and ``instance`` labels are kept)::

    scrape_configs:
      - job_name: inferwatch-federate
        honor_labels: true
        metrics_path: /federate
        params:
          'match[]': ['{__name__=~".+:upper|.+:lower|.+:anomaly_score"}',
                      '{__name__=~"inferwatch_recommended_replicas.*|inferwatch_model_cost_per_hour"}']
        static_configs: [{targets: ["inferwatch:9090"]}]

As in Prometheus, each series' last sample within the lookback (5 minutes) is written
in the text format with its timestamp in milliseconds, grouped by metric name with an
``untyped`` ``# TYPE`` line; series whose last sample is a staleness marker are left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from inferwatch._errors import QueryError
from inferwatch.exposition.convert import float_to_go_string
from inferwatch.tsdb.labels import METRIC_NAME, Labels, Matcher, is_stale
from inferwatch.tsdb.store import Store

#: How far back a series' last sample may lie (Prometheus's default lookback delta).
LOOKBACK_S = 300.0

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def latest_samples(
    store: Store, sets: Sequence[Sequence[Matcher]], now_ms: int, lookback_s: float = LOOKBACK_S
) -> list[tuple[Labels, float, int]]:
    """``(labels, value, timestamp ms)`` of the last sample of every series matching
    any matcher set, within ``lookback_s`` before ``now_ms``; stale series left out."""
    found: dict[Labels, tuple[float, int]] = {}
    mint = now_ms - int(lookback_s * 1000)
    for matchers in sets:
        for series in store.select(list(matchers), mint, now_ms):
            if len(series.timestamps) == 0 or series.labels in found:
                continue
            value = float(series.values[-1])
            if is_stale(value):
                continue
            found[series.labels] = (value, int(series.timestamps[-1]))
    return sorted(
        ((labels, v, t) for labels, (v, t) in found.items()), key=lambda s: _name_first(s[0])
    )


def _name_first(labels: Labels) -> tuple[str, Labels]:
    return (dict(labels).get(METRIC_NAME, ""), labels)


def render_text(samples: Sequence[tuple[Labels, float, int]]) -> str:
    """Samples in the Prometheus text format, with timestamps, one family per name."""
    lines: list[str] = []
    previous = None
    for labels, value, ts_ms in samples:
        name = ""
        pairs = []
        for key, label_value in labels:
            if key == METRIC_NAME:
                name = label_value
            else:
                pairs.append(f'{key}="{_escape(label_value)}"')
        if name != previous:
            lines.append(f"# TYPE {name} untyped")
            previous = name
        body = "{" + ",".join(pairs) + "}" if pairs else ""
        lines.append(f"{name}{body} {_value(value)} {ts_ms}")
    return "".join(line + "\n" for line in lines)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return float_to_go_string(value)


def federate_route(store: Store, *, clock: Callable[[], float] = time.time) -> Route:
    """The ``/federate`` route over ``store``."""
    from inferwatch.server.api import _matcher_sets

    async def federate(request: Request) -> Response:
        import anyio.to_thread

        texts = request.query_params.getlist("match[]")
        if not texts:
            return PlainTextResponse("no match[] parameter provided\n", status_code=400)
        try:
            sets = _matcher_sets(texts)
        except QueryError as exc:
            return PlainTextResponse(f"bad match[]: {exc}\n", status_code=400)
        now_ms = int(clock() * 1000)
        samples = await anyio.to_thread.run_sync(latest_samples, store, sets, now_ms)
        return Response(render_text(samples), media_type=CONTENT_TYPE)

    return Route("/federate", federate, methods=["GET"])


__all__ = ["LOOKBACK_S", "federate_route", "latest_samples", "render_text"]
