"""The value form of a metric family that every source in the SDK produces.

A :class:`FamilySnapshot` is what the registry, the user metrics and the collectors
hand to exposition and to multi-worker aggregation. It is plain data: counters and
gauges as floats, histograms as :class:`~inferwatch.sdk.sketch.QuantileSketch` (log
buckets, mergeable) or :class:`BucketCounts` (fixed, user-chosen ``le`` buckets).

``merge`` says how snapshots of the same family from several worker processes combine:

- ``sum``: add values (counters, in-flight gauges, histograms);
- ``all``: keep each worker's value, with a ``worker`` label (per-process metrics);
- ``max`` / ``min``: one value, the largest or smallest across live workers;
- ``local``: host-wide readings (system, GPU) taken only from the serving worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from inferwatch.sdk.sketch import QuantileSketch

MetricType = Literal["counter", "gauge", "histogram"]
MergeMode = Literal["sum", "all", "max", "min", "local"]
LabelValues: TypeAlias = tuple[str, ...]


@dataclass(slots=True)
class BucketCounts:
    """A classic histogram with fixed upper bounds: per-bucket (non-cumulative) counts."""

    bounds: tuple[float, ...]
    counts: list[float]
    sum: float = 0.0

    @property
    def count(self) -> float:
        return float(sum(self.counts))

    def merge(self, other: BucketCounts) -> None:
        if other.bounds != self.bounds:
            raise ValueError("cannot merge histograms with different buckets")
        for i, c in enumerate(other.counts):
            self.counts[i] += c
        self.sum += other.sum

    def copy(self) -> BucketCounts:
        return BucketCounts(self.bounds, list(self.counts), self.sum)


SampleValue: TypeAlias = float | QuantileSketch | BucketCounts


@dataclass(slots=True)
class FamilySnapshot:
    """One metric family at one moment: name, type, help, and a value per label set.

    ``name`` is the full Prometheus name (counters end in ``_total``). ``samples`` maps
    a tuple of label values, in the order of ``labelnames``, to the value.
    """

    name: str
    documentation: str
    type: MetricType
    labelnames: tuple[str, ...] = ()
    samples: dict[LabelValues, SampleValue] = field(default_factory=dict)
    unit: str = ""
    merge: MergeMode = "sum"
