from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram

from inferwatch.scrape import ScrapeError, parse_exposition
from inferwatch.scrape.parse import is_openmetrics, samples_from_families
from inferwatch.tsdb.labels import Labels, make_labels
from tests.scrape.support import exposed_sample_count, fixture_text

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def by_labels(samples: list[tuple[Labels, float, int | None]]) -> dict[Labels, float]:
    return {labels: value for labels, value, _ in samples}


def series(name: str, **labels: str) -> Labels:
    return make_labels({"__name__": name, **labels})


def test_a_triton_exposition_keeps_every_sample_under_its_exposed_name() -> None:
    text = fixture_text("triton.txt")
    samples = parse_exposition(text.encode(), "text/plain; version=0.0.4")
    assert len(samples) == exposed_sample_count(text)
    values = by_labels(samples)
    # Triton's counters have no _total suffix; they are stored as exposed.
    assert values[series("nv_inference_request_success", model="resnet50", version="1")] == 1234
    assert (
        values[
            series("nv_inference_request_failure", model="resnet50", reason="BACKEND", version="1")
        ]
        == 3
    )
    gpu = "GPU-9f4b7c2e-1d3a-5b6c-8e7f-0a1b2c3d4e5f"
    assert values[series("nv_gpu_utilization", gpu_uuid=gpu)] == 0.87
    assert values[series("nv_cpu_memory_total_bytes")] == 270215413760
    assert all(ts is None for _, _, ts in samples)


def test_a_vllm_exposition_keeps_colons_buckets_and_created_gauges() -> None:
    text = fixture_text("vllm.txt")
    samples = parse_exposition(text, "text/plain; version=0.0.4; charset=utf-8")
    assert len(samples) == exposed_sample_count(text)
    model = "meta-llama/Llama-3.1-8B-Instruct"
    values = by_labels(samples)
    assert values[series("vllm:num_requests_running", model_name=model)] == 7
    assert values[series("vllm:prompt_tokens_total", model_name=model)] == 1402568
    bucket = "vllm:e2e_request_latency_seconds_bucket"
    assert values[series(bucket, le="0.3", model_name=model)] == 12
    assert values[series(bucket, le="+Inf", model_name=model)] == 1527
    assert values[series("vllm:e2e_request_latency_seconds_count", model_name=model)] == 1527
    # In the text format a _created line is its own gauge family, and Prometheus keeps it.
    assert series("vllm:prompt_tokens_created", model_name=model) in values


def test_openmetrics_drops_created_samples_and_reads_timestamps() -> None:
    text = (
        "# TYPE requests counter\n"
        'requests_total{code="200"} 10 1700000000.5\n'
        'requests_created{code="200"} 1690000000 1700000000.5\n'
        "# TYPE latency_seconds histogram\n"
        'latency_seconds_bucket{le="0.1"} 3\n'
        'latency_seconds_bucket{le="+Inf"} 4\n'
        "latency_seconds_count 4\n"
        "latency_seconds_sum 0.7\n"
        "latency_seconds_created 1690000000\n"
        "# EOF\n"
    )
    samples = parse_exposition(text, OPENMETRICS)
    names = [dict(labels)["__name__"] for labels, _, _ in samples]
    assert names == [
        "requests_total",
        *["latency_seconds_bucket"] * 2,
        "latency_seconds_count",
        "latency_seconds_sum",
    ]
    assert samples[0] == (series("requests_total", code="200"), 10.0, 1700000000500)


def test_text_timestamps_are_milliseconds() -> None:
    [(_, value, ts)] = parse_exposition('foo{a="b"} 1.5 1700000000123\n')
    assert (value, ts) == (1.5, 1700000000123)


def test_special_values_parse() -> None:
    values = [v for _, v, _ in parse_exposition("a NaN\nb +Inf\nc -Inf\nd 1e-3\n")]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 0.001]


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (OPENMETRICS, True),
        ("Application/OpenMetrics-Text", True),
        ("text/plain; version=0.0.4", False),
        ("text/html", False),
        ("", False),
        (None, False),
    ],
)
def test_the_content_type_picks_the_parser(content_type: str | None, expected: bool) -> None:
    assert is_openmetrics(content_type) is expected


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("this is not metrics\n", None),
        ('nv_inference_count{model="resnet50",version="1\n', None),
        ("nv_gpu_utilization abc\n", None),
        ("<html><body>Internal Server Error</body></html>\n", "text/html"),
        ('foo{a="1",a="2"} 1\n', None),
        ('foo{1a="x"} 1\n', None),
        ("good 1\nbad\n", None),
        ("# TYPE x counter\nx_total 1\n", OPENMETRICS),  # no "# EOF"
        ("# TYPE x counter\nx 1\n# EOF\n", OPENMETRICS),  # counter without _total
        (b"foo 1\n\xff\xfe\n", None),
    ],
)
def test_a_malformed_exposition_raises_scrape_error(
    body: str | bytes, content_type: str | None
) -> None:
    with pytest.raises(ScrapeError, match="exposition"):
        parse_exposition(body, content_type)


def test_an_empty_body_has_no_samples() -> None:
    assert parse_exposition(b"") == []


def test_collected_families_drop_created_and_keep_exposed_names() -> None:
    registry = CollectorRegistry()
    counter = Counter("requests", "Requests.", ["code"], registry=registry)
    counter.labels("200").inc(3)
    Histogram("latency_seconds", "Latency.", buckets=[0.1], registry=registry).observe(0.05)
    samples = by_labels(samples_from_families(registry.collect()))
    assert samples == {
        series("requests_total", code="200"): 3.0,
        series("latency_seconds_bucket", le="0.1"): 1.0,
        series("latency_seconds_bucket", le="+Inf"): 1.0,
        series("latency_seconds_count"): 1.0,
        series("latency_seconds_sum"): 0.05,
    }


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_scrape_error(text: str) -> None:
    for content_type in (None, OPENMETRICS):
        try:
            samples = parse_exposition(text, content_type)
        except ScrapeError:
            continue
        assert all(isinstance(value, float) for _, value, _ in samples)


def exposition_line(name: str, labels: tuple[tuple[str, str], ...], value: float) -> str:
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    pairs = ",".join(k + '="' + escape(v) + '"' for k, v in labels)
    return f"{name}{{{pairs}}} {value!r}"


names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", fullmatch=True)
label_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10
)


@given(
    st.dictionaries(
        st.tuples(
            names,
            st.dictionaries(
                st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True), label_values, max_size=3
            ).map(lambda d: tuple(sorted(d.items()))),
        ),
        st.floats(allow_nan=False),
        max_size=5,
    )
)
def test_written_samples_parse_back(
    written: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> None:
    lines = [exposition_line(name, labels, value) for (name, labels), value in written.items()]
    samples = parse_exposition("\n".join(lines) + "\n")
    expected = {
        make_labels([*labels, ("__name__", name)]): value
        for (name, labels), value in written.items()
    }
    assert by_labels(samples) == expected
