"""What a load run counted: per-second windows of latency sketches and outcomes.

A :class:`Tally` is what one worker process hands back; tallies of several workers
:meth:`~Tally.merge` exactly (sketch buckets and counts add up), so the report of a
multi-process run is the same as if one process had seen every request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inferwatch.sdk.sketch import QuantileSketch

_NS = 1_000_000_000


@dataclass(slots=True)
class Window:
    """One second of the measured run, by the intended start of each request.

    ``latency`` is measured from the intended start (corrected for coordinated
    omission in open loop); ``service`` from the moment the request was handed to a
    connection. Both hold every response, whatever its status; ``failures`` counts
    requests that got none (timeout, connection error).
    """

    responses: int = 0
    failures: int = 0
    http_errors: int = 0
    latency: QuantileSketch = field(default_factory=QuantileSketch)
    service: QuantileSketch = field(default_factory=QuantileSketch)

    def merge(self, other: Window) -> None:
        self.responses += other.responses
        self.failures += other.failures
        self.http_errors += other.http_errors
        self.latency.merge(other.latency)
        self.service.merge(other.service)

    def to_dict(self) -> dict[str, Any]:
        return {
            "responses": self.responses,
            "failures": self.failures,
            "http_errors": self.http_errors,
            "latency": self.latency.to_dict(),
            "service": self.service.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        return cls(
            data["responses"],
            data["failures"],
            data["http_errors"],
            QuantileSketch.from_dict(data["latency"]),
            QuantileSketch.from_dict(data["service"]),
        )


@dataclass(slots=True)
class Tally:
    """The outcome of a run (or of one worker's share of it).

    ``statuses`` counts responses by HTTP status; ``failures`` counts requests without
    a response by kind (``timeout``, ``connection refused``, ...). ``unsent`` is the
    number of scheduled requests never sent because the run ended while they waited
    for a free connection; ``late`` the number sent more than 10 ms after their
    intended start because the generator itself was busy, and ``max_lag_ns`` the
    largest such delay.
    """

    windows: list[Window] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    unsent: int = 0
    late: int = 0
    max_lag_ns: int = 0

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts into this tally."""
        while len(self.windows) < len(other.windows):
            self.windows.append(Window())
        for mine, theirs in zip(self.windows, other.windows, strict=False):
            mine.merge(theirs)
        self.statuses.update(other.statuses)
        self.failures.update(other.failures)
        self.unsent += other.unsent
        self.late += other.late
        self.max_lag_ns = max(self.max_lag_ns, other.max_lag_ns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for shipping from a worker process."""
        return {
            "windows": [w.to_dict() for w in self.windows],
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "failures": dict(self.failures),
            "unsent": self.unsent,
            "late": self.late,
            "max_lag_ns": self.max_lag_ns,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        return cls(
            [Window.from_dict(w) for w in data["windows"]],
            Counter({int(k): v for k, v in data["statuses"].items()}),
            Counter(data["failures"]),
            data["unsent"],
            data["late"],
            data["max_lag_ns"],
        )


def fold(
    seconds: int,
    at_ns: Sequence[int],
    latency_ns: Sequence[int],
    service_ns: Sequence[int],
    statuses: Sequence[int],
    failed_at_ns: Sequence[int],
) -> list[Window]:
    """Per-second windows from raw per-request arrays (offsets from the measured start).

    Requests are put in the second of their (intended) start; a response with status
    400 or above also counts as an HTTP error of its window.
    """
    windows = [Window() for _ in range(seconds)]
    last = seconds - 1
    lat: list[list[int]] = [[] for _ in range(seconds)]
    svc: list[list[int]] = [[] for _ in range(seconds)]
    for at, lt, sv, status in zip(at_ns, latency_ns, service_ns, statuses, strict=True):
        i = min(at // _NS, last)
        lat[i].append(lt)
        svc[i].append(sv)
        if status >= 400:
            windows[i].http_errors += 1
    for i, window in enumerate(windows):
        window.responses = len(lat[i])
        window.latency.add_ns(lat[i])
        window.service.add_ns(svc[i])
    for at in failed_at_ns:
        windows[min(at // _NS, last)].failures += 1
    return windows
