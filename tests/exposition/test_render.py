from __future__ import annotations

import math
import random

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from inferwatch import Monitor, Registry
from inferwatch.exposition import CONTENT_TYPE_OPENMETRICS, render


@pytest.fixture
def populated() -> Registry:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    monitor = Monitor("digits", "1", registry=registry)
    rng = random.Random(3)

    @monitor.track
    def predict() -> None:
        pass

    for _ in range(10):
        predict()
    registry.histogram("score", "Score.").observe(rng.random())
    registry.histogram("size_bytes", "Size.", buckets=[1, 10]).observe(5)
    return registry


def test_text_format_is_the_default_and_parses(populated: Registry) -> None:
    body, content_type = render(populated, None)
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in parse_text(body.decode())}
    total = families["inferwatch_inferences"]
    [sample] = [s for s in total.samples if s.name.endswith("_total")]
    assert sample.labels["outcome"] == "success"
    assert sample.value == 10


def test_openmetrics_is_chosen_by_accept_header(populated: Registry) -> None:
    accept = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
    body, content_type = render(populated, accept)
    assert content_type.startswith("application/openmetrics-text")
    assert CONTENT_TYPE_OPENMETRICS.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    families = {f.name: f for f in parse_om(body.decode())}
    hist = families["inferwatch_inference_duration_seconds"]
    counts = [s.value for s in hist.samples if s.name.endswith("_count")]
    assert counts == [10]


def test_histogram_buckets_are_cumulative_and_end_in_inf(populated: Registry) -> None:
    body, _ = render(populated)
    families = {f.name: f for f in parse_text(body.decode())}
    buckets = [
        (float(s.labels["le"]), s.value)
        for s in families["size_bytes"].samples
        if s.name.endswith("_bucket")
    ]
    assert buckets == [(1.0, 0.0), (10.0, 1.0), (math.inf, 1.0)]
    score = [s.value for s in families["score"].samples if s.name.endswith("_bucket")]
    assert score == sorted(score)
    assert score[-1] == 1
