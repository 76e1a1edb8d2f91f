from __future__ import annotations

from collections.abc import Callable

import pytest

from inferwatch import DuplicateMetricError, MetricError, Registry
from inferwatch.sdk.family import BucketCounts
from tests.sdk.support import Samples

Read = Callable[[str], Samples]


def test_counter_with_labels_counts_per_label_set(registry: Registry, read: Read) -> None:
    c = registry.counter("cache_hits_total", "Hits.", ["cache"])
    c.labels("a").inc()
    c.labels(cache="a").inc(2)
    c.labels("b").inc()
    assert read("cache_hits_total") == {(("cache", "a"),): 3, (("cache", "b"),): 1}


def test_counter_refuses_to_decrease(registry: Registry) -> None:
    c = registry.counter("x_total", "X.")
    with pytest.raises(MetricError, match="only increase"):
        c.inc(-1)


def test_counter_name_must_end_in_total(registry: Registry) -> None:
    with pytest.raises(MetricError, match="_total"):
        registry.counter("requests", "R.")


def test_gauge_set_inc_dec(registry: Registry, read: Read) -> None:
    g = registry.gauge("queue_depth", "Depth.")
    g.set(5)
    g.inc()
    g.dec(3)
    assert read("queue_depth") == {(): 3}


def test_histogram_without_buckets_is_a_sketch(registry: Registry, read: Read) -> None:
    h = registry.histogram("score", "Score.")
    for v in (0.1, 0.2, 0.3):
        h.observe(v)
    value = read("score")[()]
    assert value.count == 3
    assert value.quantile(0.5) == pytest.approx(0.2, rel=0.006)


def test_histogram_with_buckets_counts_per_bucket(registry: Registry, read: Read) -> None:
    h = registry.histogram("size_bytes", "Size.", buckets=[10, 100])
    for v in (5, 10, 50, 500):
        h.observe(v)
    value = read("size_bytes")[()]
    assert isinstance(value, BucketCounts)
    assert value.counts == [2, 1, 1]  # le=10 is inclusive, like Prometheus
    assert value.sum == 565


def test_same_declaration_returns_the_same_metric(registry: Registry) -> None:
    a = registry.counter("a_total", "A.", ["x"])
    assert registry.counter("a_total", "A.", ["x"]) is a


def test_conflicting_declaration_is_rejected(registry: Registry) -> None:
    registry.counter("a_total", "A.", ["x"])
    with pytest.raises(DuplicateMetricError, match="already registered"):
        registry.counter("a_total", "A.", ["y"])


@pytest.mark.parametrize("name", ["1abc", "a-b", ""])
def test_invalid_metric_names_are_rejected(registry: Registry, name: str) -> None:
    with pytest.raises(MetricError, match="invalid metric name"):
        registry.gauge(name, "bad")


@pytest.mark.parametrize("label", ["le", "__x", "a-b", "worker"])
def test_invalid_or_reserved_label_names_are_rejected(registry: Registry, label: str) -> None:
    with pytest.raises(MetricError):
        registry.gauge("g", "bad", [label])


def test_wrong_label_count_is_a_clear_error(registry: Registry) -> None:
    g = registry.gauge("g", "G.", ["a", "b"])
    with pytest.raises(MetricError, match="expected 2 label values"):
        g.labels("x")
    with pytest.raises(MetricError, match=r"call \.labels"):
        g.set(1)
