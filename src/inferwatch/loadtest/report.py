"""The final report of a load test: counts, rates, errors and latency percentiles.

:func:`build_report` turns a :class:`~inferwatch.loadtest.tally.Tally` into a
:class:`LoadReport`; :meth:`LoadReport.to_dict` is the ``--json`` form and
:func:`render` prints it for people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from inferwatch.loadtest.spec import LoadSpec
from inferwatch.loadtest.tally import Tally
from inferwatch.sdk.sketch import QuantileSketch

#: The quantiles a summary gives, with their names.
QUANTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99.9", 0.999),
)
#: Below this share of the requested rate an open-loop run is said to have fallen behind.
BEHIND_RATIO = 0.99


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency percentiles in seconds (within 0.5%: read from a log-bucket sketch),
    with the exact mean and maximum; NaN when nothing was measured."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    @classmethod
    def of(cls, sketch: QuantileSketch) -> LatencySummary:
        n = int(sketch.count)
        nan = math.nan
        return cls(
            count=n,
            mean=sketch.sum / n if n else nan,
            p50=sketch.quantile(0.5),
            p90=sketch.quantile(0.9),
            p99=sketch.quantile(0.99),
            p999=sketch.quantile(0.999),
            max=sketch.max if n else nan,
        )

    def to_dict(self) -> dict[str, float | int | None]:
        """Milliseconds, rounded to microseconds; None for NaN (JSON has no NaN)."""
        out: dict[str, float | int | None] = {"count": self.count}
        for name, value in (
            ("mean", self.mean),
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p99.9", self.p999),
            ("max", self.max),
        ):
            out[f"{name}_ms"] = None if math.isnan(value) else round(value * 1000, 3)
        return out


@dataclass(frozen=True, slots=True)
class LoadReport:
    """Everything a load test measured.

    ``requests`` counts every request of the measured period that finished: with a
    response (any status) or with a failure. ``errors`` maps each kind of error to its
    count: ``HTTP 503`` for a response with status 400 or above, ``timeout``,
    ``connection refused``, ``connection reset``, ``connection closed``, ``bad
    response``. ``latency`` is measured from each request's intended start (open loop:
    corrected for coordinated omission), ``service`` from the moment a connection took
    it (the uncorrected figure); both include error responses.
    """

    url: str
    mode: str
    duration: float
    warmup: float
    connections: int
    workers: int
    requested_rate: float | None
    requests: int
    responses: int
    errors: dict[str, int]
    unsent: int
    late: int
    max_lag: float
    latency: LatencySummary
    service: LatencySummary
    timeline: tuple[dict[str, Any], ...]
    latency_sketch: QuantileSketch = field(repr=False, compare=False)
    service_sketch: QuantileSketch = field(repr=False, compare=False)

    @property
    def throughput(self) -> float:
        """Finished requests per second of the measured period."""
        return self.requests / self.duration

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def fell_behind(self) -> bool:
        """True when an open-loop run did not send at the requested rate: too few
        requests finished, some were never sent, or the generator sent more than 1%
        of them over 10 ms late."""
        if self.requested_rate is None:
            return False
        return (
            self.throughput < BEHIND_RATIO * self.requested_rate
            or self.unsent > 0
            or self.late > 0.01 * max(self.requests, 1)
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (times in milliseconds)."""
        return {
            "url": self.url,
            "mode": self.mode,
            "duration_s": self.duration,
            "warmup_s": self.warmup,
            "connections": self.connections,
            "workers": self.workers,
            "requested_rate": self.requested_rate,
            "requests": self.requests,
            "responses": self.responses,
            "throughput": round(self.throughput, 3),
            "errors": dict(sorted(self.errors.items())),
            "error_count": self.error_count,
            "unsent": self.unsent,
            "late_sends": self.late,
            "max_send_lag_ms": round(self.max_lag * 1000, 3),
            "fell_behind": self.fell_behind,
            "latency": self.latency.to_dict(),
            "service_time": self.service.to_dict(),
            "timeline": list(self.timeline),
        }


def build_report(spec: LoadSpec, tally: Tally) -> LoadReport:
    """The report of ``spec`` run with the outcome ``tally``."""
    latency = QuantileSketch()
    service = QuantileSketch()
    timeline = []
    for second, window in enumerate(tally.windows):
        latency.merge(window.latency)
        service.merge(window.service)
        lat = window.latency
        timeline.append(
            {
                "second": second,
                "requests": window.responses + window.failures,
                "errors": window.http_errors + window.failures,
                "p50_ms": _ms(lat.quantile(0.5)),
                "p99_ms": _ms(lat.quantile(0.99)),
                "max_ms": _ms(lat.max) if lat.count else None,
                "service_p99_ms": _ms(window.service.quantile(0.99)),
            }
        )
    errors: dict[str, int] = {f"HTTP {s}": n for s, n in sorted(tally.statuses.items()) if s >= 400}
    errors.update(tally.failures)
    responses = sum(tally.statuses.values())
    return LoadReport(
        url=spec.url,
        mode="open" if spec.open_loop else "closed",
        duration=spec.duration,
        warmup=spec.warmup,
        connections=spec.parallelism,
        workers=spec.workers,
        requested_rate=spec.rate,
        requests=responses + sum(tally.failures.values()),
        responses=responses,
        errors=errors,
        unsent=tally.unsent,
        late=tally.late,
        max_lag=tally.max_lag_ns / 1e9,
        latency=LatencySummary.of(latency),
        service=LatencySummary.of(service),
        timeline=tuple(timeline),
        latency_sketch=latency,
        service_sketch=service,
    )


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 3)


def _fmt_ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    ms = seconds * 1000
    return f"{ms:.3f}" if ms < 10 else f"{ms:.2f}" if ms < 1000 else f"{ms:.0f}"


def render(report: LoadReport, console: Any) -> None:
    """Print ``report`` as a few lines and a table on a rich ``console``."""
    from rich.markup import escape
    from rich.table import Table

    if report.mode == "open":
        how = f"open loop at {report.requested_rate:g} req/s over {report.connections} connections"
    else:
        how = f"closed loop with {report.connections} connections"
    workers = f", {report.workers} workers" if report.workers > 1 else ""
    console.print(
        f"[bold]{escape(report.url)}[/bold]: {how}{workers}, {report.duration:g} s measured"
        f" after {report.warmup:g} s warm-up",
        soft_wrap=True,
    )
    console.print(
        f"requests {report.requests}, throughput {report.throughput:.1f} req/s, "
        f"errors {report.error_count} ({100 * report.error_count / max(report.requests, 1):.2f}%)"
    )
    for kind, n in sorted(report.errors.items(), key=lambda kv: -kv[1]):
        console.print(f"  {escape(kind)}: {n}")
    if report.fell_behind:
        console.print(
            f"[yellow]the load fell behind the schedule:[/yellow] achieved "
            f"{report.throughput:.1f} of {report.requested_rate:g} req/s requested; "
            f"{report.unsent} never sent, {report.late} sent over 10 ms late by the "
            f"generator (up to {report.max_lag * 1000:.1f} ms). Raise --connections or "
            "--workers, or lower --rate.",
            soft_wrap=True,
        )
    table = Table(title="latency (ms)", title_justify="left")
    table.add_column("")
    for name in ("mean", "p50", "p90", "p99", "p99.9", "max"):
        table.add_column(name, justify="right")
    rows = [("latency", report.latency)]
    if report.mode == "open":
        rows = [
            ("corrected (from intended start)", report.latency),
            ("service time (uncorrected)", report.service),
        ]
    for label, s in rows:
        table.add_row(label, *(_fmt_ms(v) for v in (s.mean, s.p50, s.p90, s.p99, s.p999, s.max)))
    console.print(table)
