"""Conversion of :class:`FamilySnapshot` values into prometheus_client metric families."""

from __future__ import annotations

import math

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from inferwatch.sdk.family import BucketCounts, FamilySnapshot
from inferwatch.sdk.sketch import QuantileSketch


def float_to_go_string(value: float) -> str:
    """A float as Prometheus writes it in ``le`` labels (``+Inf``, ``0.25``, ``1e+06``)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def histogram_buckets(value: QuantileSketch | BucketCounts) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs for a histogram value, ending with ``+Inf``."""
    if isinstance(value, QuantileSketch):
        return [(float_to_go_string(le), c) for le, c in value.cumulative_buckets()]
    out: list[tuple[str, float]] = []
    cum = 0.0
    for bound, count in zip(value.bounds, value.counts, strict=False):
        cum += count
        out.append((float_to_go_string(bound), cum))
    out.append(("+Inf", cum + value.counts[-1]))
    return out


def to_metric(fam: FamilySnapshot) -> Metric:
    """The prometheus_client metric family for one snapshot."""
    labels = list(fam.labelnames)
    if fam.type in ("counter", "gauge"):
        family_class = CounterMetricFamily if fam.type == "counter" else GaugeMetricFamily
        scalar = family_class(fam.name, fam.documentation, labels=labels)
        for key, value in fam.samples.items():
            assert isinstance(value, float | int)
            scalar.add_metric(list(key), float(value))
        return scalar
    histogram = HistogramMetricFamily(fam.name, fam.documentation, labels=labels)
    for key, value in fam.samples.items():
        assert isinstance(value, QuantileSketch | BucketCounts)
        total = value.sum if not math.isnan(value.sum) else 0.0
        histogram.add_metric(list(key), histogram_buckets(value), total)
    return histogram
