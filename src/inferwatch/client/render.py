"""Tables for the answers of the query, alert and silence APIs, as the commands print them.

Every cell built from the server's data is a :class:`rich.text.Text`, so label values
with ``[brackets]`` or markup-looking text are shown as they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from inferwatch.alerting.matchers import format_matchers

#: Eight levels, lowest first: the sparkline of a range query's series.
SPARK_LEVELS = "▁▂▃▄▅▆▇█"

#: How many characters a sparkline has at most.
SPARK_WIDTH = 32

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def _table(*headers: str) -> Table:
    """A table whose long cells wrap instead of being cut: a label value is never lost."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def series_name(metric: Mapping[str, str]) -> str:
    """``name{a="1", b="2"}`` as Prometheus shows a series (``{}`` for no labels)."""
    name = metric.get("__name__", "")
    labels = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(metric.items()) if k != "__name__")
    if name and not labels:
        return name
    return f"{name}{{{labels}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def parse_value(text: object) -> float:
    """A sample value of the API (``"1.5"``, ``"NaN"``, ``"+Inf"``) as a float."""
    try:
        return float(str(text))
    except ValueError:
        return math.nan


def format_number(value: float) -> str:
    """A value for a table: up to 6 significant digits, Prometheus's ``+Inf``/``NaN``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.6g}"


def parse_api_time(text: object) -> float | None:
    """An RFC 3339 time of the APIs (nanoseconds allowed) as Unix seconds; None if not one
    or Go's zero time."""
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return None if when.year <= 1 else when.timestamp()


def span(seconds: float) -> str:
    """A coarse duration: ``45s``, ``3m 5s``, ``2h 1m``, ``3d 4h``."""
    s = int(abs(seconds))
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if s >= size:
            rest = (s % size) // sub_size
            return f"{s // size}{unit}" + (f" {rest}{sub}" if rest else "")
    if s >= 60:
        return f"{s // 60}m" + (f" {s % 60}s" if s % 60 else "")
    return f"{s}s"


def when(t: float | None, now: float) -> str:
    """``2026-11-21 13:40:00Z (3m 5s ago)`` or ``... (in 2h)``; ``-`` for None."""
    if t is None:
        return "-"
    stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    delta = now - t
    return f"{stamp} ({span(delta)} ago)" if delta >= 0 else f"{stamp} (in {span(delta)})"


def sparkline(
    points: Sequence[tuple[float, float]], start: float, end: float, width: int = SPARK_WIDTH
) -> str:
    """A line of block characters for ``(time, value)`` points between ``start`` and
    ``end``: one character per time bucket (its last point), a space where a bucket has
    none, ``·`` for NaN or infinite values. Scaled from the lowest to the highest value."""
    if not points:
        return ""
    width = max(1, width)
    length = end - start
    buckets: list[float | None] = [None] * width
    for t, v in points:
        i = round((t - start) / length * (width - 1)) if length > 0 else 0
        buckets[min(max(i, 0), width - 1)] = v
    finite = [v for v in buckets if v is not None and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    top = len(SPARK_LEVELS) - 1
    chars = []
    for level in buckets:
        if level is None:
            chars.append(" ")
        elif not math.isfinite(level):
            chars.append("·")
        elif hi == lo:
            chars.append(SPARK_LEVELS[top // 2])
        else:
            chars.append(SPARK_LEVELS[round((level - lo) / (hi - lo) * top)])
    return "".join(chars)


def vector_table(result: Iterable[Mapping[str, Any]]) -> Table:
    """An instant vector: one row per series, its labels and value."""
    table = _table("series", "value")
    table.columns[1].justify = "right"
    for sample in result:
        _, value = sample["value"]
        table.add_row(Text(series_name(sample["metric"])), Text(str(value)))
    return table


def matrix_table(
    result: Sequence[Mapping[str, Any]], start: float, end: float, width: int = SPARK_WIDTH
) -> Table:
    """A range vector: one row per series with its points' count, first, last, min and
    max values and a sparkline over ``start``..``end``."""
    table = _table("series", "points", "first", "last", "min", "max", "")
    for column in table.columns[1:6]:
        column.justify = "right"
    # One character per step at most, so that a short range has no gaps between points.
    most = max((len(series.get("values", ())) for series in result), default=1)
    width = max(1, min(width, most))
    for series in result:
        points = [(float(t), parse_value(v)) for t, v in series.get("values", ())]
        if not points:
            continue
        values = [v for _, v in points]
        finite = [v for v in values if not math.isnan(v)]
        low = format_number(min(finite)) if finite else "NaN"
        high = format_number(max(finite)) if finite else "NaN"
        table.add_row(
            Text(series_name(series["metric"])),
            str(len(points)),
            format_number(values[0]),
            format_number(values[-1]),
            low,
            high,
            Text(sparkline(points, start, end, width), style="cyan"),
        )
    return table


def alerts_table(alerts: Iterable[Mapping[str, Any]], now: float) -> Table:
    """Alerts of ``/api/v1/alerts``: name, state, other labels, active since, summary."""
    table = _table("alertname", "state", "labels", "active since", "summary")
    for alert in alerts:
        labels = dict(alert.get("labels") or {})
        name = labels.pop("alertname", "")
        state = str(alert.get("state", ""))
        others = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        summary = (alert.get("annotations") or {}).get("summary", "")
        table.add_row(
            Text(name),
            Text(state, style="red" if state == "firing" else "yellow"),
            Text(others),
            when(parse_api_time(alert.get("activeAt")), now),
            Text(summary),
        )
    return table


def silences_table(silences: Iterable[Mapping[str, Any]], now: float) -> Table:
    """Silences of Alertmanager's ``/api/v2/silences``."""
    from inferwatch.client.api import matcher_from_json

    table = _table("id", "state", "matchers", "ends", "created by", "comment")
    table.columns[0].no_wrap = True
    for silence in silences:
        matchers = format_matchers(matcher_from_json(m) for m in silence.get("matchers", ()))
        state = str((silence.get("status") or {}).get("state", ""))
        ends = when(parse_api_time(silence.get("endsAt")), now)
        if state == "pending":
            ends = f"starts {when(parse_api_time(silence.get('startsAt')), now)}, ends {ends}"
        table.add_row(
            Text(str(silence.get("id", ""))),
            Text(state),
            Text(matchers),
            ends,
            Text(str(silence.get("createdBy", ""))),
            Text(str(silence.get("comment", ""))),
        )
    return table


__all__ = [
    "SPARK_LEVELS",
    "alerts_table",
    "format_number",
    "matrix_table",
    "parse_api_time",
    "parse_value",
    "series_name",
    "silences_table",
    "span",
    "sparkline",
    "vector_table",
    "when",
]
