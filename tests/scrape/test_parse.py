from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client import validation as prometheus_validation
from prometheus_client.parser import text_string_to_metric_families

from inferwatch.scrape import ScrapeError, parse_exposition
from inferwatch.scrape.parse import ParsedSample, SeriesCache, is_openmetrics, samples_from_families
from inferwatch.tsdb.labels import Labels, make_labels
from tests.scrape.support import DATA, exposed_sample_count, fixture_text

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


# -- the text parser against prometheus_client's, the parser it replaced ---------------


def reference(text: str) -> list[ParsedSample]:
    """What ``parse_exposition`` gave for the text format with prometheus_client's parser."""
    without_total: set[str] = set()
    for line in text.splitlines():
        parts = line.strip().split(None, 3)
        if len(parts) == 4 and parts[0] == "#" and parts[1] == "TYPE" and parts[3] == "counter":
            name = parts[2].strip('"')
            if not name.endswith("_total"):
                without_total.add(name)
    out: list[ParsedSample] = []
    for family in text_string_to_metric_families(text):
        created = family.name + "_created" if family.type in ("counter", "histogram") else None
        restore = family.type == "counter" and family.name in without_total
        for sample in family.samples:
            if sample.name == created:
                continue
            name = sample.name
            if restore and name == family.name + "_total":
                name = family.name
            pairs = [*sample.labels.items(), ("__name__", name)]
            ts = None if sample.timestamp is None else round(float(sample.timestamp) * 1000)
            out.append((make_labels(pairs), float(sample.value), ts))
    return out


Outcome = tuple[str, list[tuple[Labels, bytes, int | None]]]


def exact(samples: list[ParsedSample]) -> list[tuple[Labels, bytes, int | None]]:
    """Samples with values as their bits (NaN equals NaN, -0.0 differs from 0.0)."""
    return [(labels, struct.pack("<d", value), ts) for labels, value, ts in samples]


def expected(text: str) -> Outcome:
    try:
        return "ok", exact(reference(text))
    except Exception:  # whatever prometheus_client raised, parse_exposition reported it
        return "error", []


def parsed(text: str, cache: SeriesCache | None = None) -> Outcome:
    try:
        return "ok", exact(parse_exposition(text, cache=cache))
    except ScrapeError:
        return "error", []


def registry_exposition() -> str:
    """prometheus_client's own exposition of every metric type, with awkward labels."""
    registry = CollectorRegistry()
    awkward = ["plain", 'a "quoted" word', "back\\slash", "new\nline", "}{,= #", "é ü 中", ""]
    counter = Counter("requests", "Requests.", ["path"], registry=registry)
    gauge = Gauge("temperature_celsius", "Temperature.", ["path"], registry=registry)
    for i, value in enumerate(awkward):
        counter.labels(value).inc(i)
        gauge.labels(value).set(-i / 3)
    histogram = Histogram("latency_seconds", "Latency.", ["model"], registry=registry)
    histogram.labels("resnet").observe(0.25)
    Summary("payload_bytes", "Payload size.", registry=registry).observe(512)
    Info("build", "Build information.", registry=registry).info({"version": "1.2", "commit": "x"})
    Enum("state", "State.", states=["up", "down"], registry=registry).state("down")
    Gauge("vllm:num_requests_running", "Running.", registry=registry).set(7)
    return generate_latest(registry).decode()


def triton_like(models: int) -> str:
    """Triton's shape: counters typed without _total, long help texts, GPU labels."""
    lines = []
    for family, help_text in (
        ("nv_inference_request_success", "Number of successful inference requests"),
        ("nv_inference_count", "Number of inferences performed (does not include cached)"),
    ):
        lines += [f"# HELP {family} {help_text}", f"# TYPE {family} counter"]
        lines += [f'{family}{{model="m{i}",version="{i % 3}"}} {i * 17}' for i in range(models)]
    lines += ["# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)"]
    lines += ["# TYPE nv_gpu_utilization gauge"]
    lines += ['nv_gpu_utilization{gpu_uuid="GPU-9f4b7c2e-1d3a"} 0.87', ""]
    return "\n".join(lines)


CORPUS = {
    "triton fixture": fixture_text("triton.txt"),
    "vllm fixture": fixture_text("vllm.txt"),
    "prometheus_client exposition": registry_exposition(),
    "triton-like": triton_like(50),
    "timestamps and special values": (
        'a 1 1700000000123\nb{x="1"} -0 5\nc -0\nd NaN\ne +Inf -1\nf -Inf\ng 1e-05\n'
    ),
    "windows line ends and blank lines": '# TYPE x gauge\r\nx 1\r\n\r\n   \r\ny{a="b"} 2\r\n',
    "summary and histogram families": (
        "# TYPE s summary\n"
        's{quantile="0.5"} 1\ns_sum 3\ns_count 2\n'
        "# TYPE h histogram\n"
        'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\nh_created 17\n'
    ),
    "counter quirks": (
        "# TYPE c counter\nc 1\n# TYPE d_total counter\nd_total 2\n# TYPE d counter\n"
        '# HELP e help\ne 3\n# TYPE e counter\n# TYPE "f" counter\nf 4\n'
    ),
    "escapes and odd label syntax": (
        'a{x="a\\\\b\\"c\\nd\\t"} 1\nb{ x = "1" , y="2", } 2\nc{x="}"} 3\n'
        'd{"q q"="1"} 4\n{__name__="e",x="1"} 5\nf{x="1",} 6\n{"g"} 7\nh{x:y="1"} 8\n'
    ),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_text_parser_gives_what_prometheus_clients_gave(name: str) -> None:
    text = CORPUS[name]
    want = expected(text)
    assert want[0] == "ok", "the corpus is valid expositions"
    assert parsed(text) == want
    cache = SeriesCache()
    assert parsed(text, cache) == want
    assert parsed(text, cache) == want  # now from the cache


def test_every_fixture_file_is_in_the_corpus() -> None:
    fixtures = {path.read_text() for path in DATA.glob("*.txt")}
    assert fixtures <= set(CORPUS.values())


# Expositions built from the pieces the parser treats differently, most of them valid.
_names = st.sampled_from(["x", "x_total", "x_count", "x_sum", "x_bucket", "x_created", "y", "a:b"])
_odd_names = st.sampled_from(["_total", "x\\n", "1x", "", '"x"', "é"])
_types = st.sampled_from(
    ["counter", "gauge", "histogram", "summary", "untyped", "unknown", "info", "foo", "counter x"]
)
_space = st.sampled_from([" "] * 6 + ["  ", "\t", " \t"])
_good_values = st.sampled_from(["1", "0", "1.5", "-2.5e3", "NaN", "+Inf", "-Inf", "1e-05", "7"])
_odd_values = st.sampled_from(
    ["-0", "-00", "+0", "1e400", "1_0", "9" * 400, "0x10", "abc", "", "\u0661", "1.0\x0b", "inf"]
)
_values = st.one_of(_good_values, _good_values, _good_values, _odd_values)
_stamps = st.sampled_from(["1700000000123", "-5", "1.5", "NaN", "Inf", "x", "9" * 400, "1 2"])
_value_text = st.lists(
    st.sampled_from([*'ab }{,=#"\t é\x1c', "\\\\", '\\"', "\\n", "\\t", "\u2028"]), max_size=6
).map("".join)
_label_names = st.one_of(
    st.sampled_from(["a", "b", "le", "quantile", "code"]),
    st.sampled_from(["__name__", "__x", '"q q"', '"a"', "1a", "a:b", ""]),
)


@st.composite
def _label(draw: st.DrawFn) -> str:
    quote = draw(st.sampled_from(['"'] * 12 + ["", "'"]))
    equals = draw(st.sampled_from(["="] * 12 + [" = ", ""]))
    return f"{draw(_label_names)}{equals}{quote}{draw(_value_text)}{quote}"


@st.composite
def _sample_line(draw: st.DrawFn) -> str:
    line = draw(st.one_of(_names, _names, _names, _odd_names))
    if draw(st.booleans()):
        comma = draw(st.sampled_from([","] * 8 + [", ", ",,"]))
        labels = comma.join(draw(st.lists(_label(), max_size=3)))
        line += "{" + labels + draw(st.sampled_from(["", "", ","])) + "}"
    line += draw(_space) + draw(_values)
    if draw(st.integers(0, 4)) == 0:
        line += draw(_space) + draw(_stamps)
    return line


@st.composite
def _comment_line(draw: st.DrawFn) -> str:
    keyword = draw(st.sampled_from(["TYPE", "HELP", "TYPE", "HELP", "foo", ""]))
    line = "#" + draw(_space) + keyword + draw(_space) + draw(st.one_of(_names, _odd_names))
    if keyword == "TYPE" and draw(st.integers(0, 9)):
        line += draw(_space) + draw(_types)
    elif keyword != "TYPE" and draw(st.booleans()):
        line += draw(_space) + draw(st.text(alphabet='ab \\n"', max_size=8))
    return line


@st.composite
def expositions(draw: st.DrawFn) -> str:
    lines = st.one_of(
        _sample_line(), _sample_line(), _comment_line(), st.sampled_from(["", " ", "\r", "#"])
    )
    text = "\n".join(draw(st.lists(lines, max_size=12)))
    if text and draw(st.integers(0, 9)) == 0:  # a line break of another kind, or worse
        at = draw(st.integers(0, len(text)))
        odd = draw(st.sampled_from(["\r", "\x0b", "\x1c", "\u2028", '"', "{", "}", "\\", "\n"]))
        text = text[:at] + odd + text[at:]
    return text


@settings(max_examples=400)
@given(expositions())
def test_any_exposition_parses_as_prometheus_client_did(text: str) -> None:
    assert parsed(text) == expected(text)


@settings(max_examples=200)
@given(expositions(), expositions())
def test_a_cache_from_another_exposition_changes_nothing(first: str, second: str) -> None:
    cache = SeriesCache()
    parsed(first, cache)
    assert parsed(second, cache) == expected(second)
    assert parsed(first + "\n" + second, cache) == expected(first + "\n" + second)


@settings(max_examples=200)
@given(expositions(), st.data())
def test_new_values_in_the_same_lines_parse_as_prometheus_client_did(
    text: str, data: st.DataObject
) -> None:
    cache = SeriesCache()
    parsed(text, cache)
    lines = []
    for line in text.split("\n"):
        head, space, _ = line.rpartition(" ")
        if space and not line.lstrip().startswith("#"):
            line = head + space + data.draw(_values)
        lines.append(line)
    changed = "\n".join(lines)
    assert parsed(changed, cache) == expected(changed)
    assert parsed(changed, cache) == expected(changed)


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "le"]), st.text(max_size=8)), max_size=4).map(
        dict
    ),
    st.floats(),
)
def test_label_values_with_any_text_parse_as_prometheus_client_did(
    labels: dict[str, str], value: float
) -> None:
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    pairs = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
    text = f"# TYPE m_total counter\nm_total{{{pairs}}} {value!r}\n"
    assert parsed(text) == expected(text)


def test_legacy_name_validation_is_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    text = 'ok{a:b="1"} 1\n'
    assert parsed(text)[0] == "ok"
    monkeypatch.setattr(prometheus_validation, "_legacy_validation", True)
    assert parsed(text) == expected(text) == ("error", [])


# -- the series cache ---------------------------------------------------------------------


def test_a_cached_parse_reuses_the_label_sets_of_the_last_one() -> None:
    cache = SeriesCache()
    first = parse_exposition(fixture_text("vllm.txt"), cache=cache)
    again = parse_exposition(fixture_text("vllm.txt").replace(" 7.0\n", " 8.0\n"), cache=cache)
    assert [labels for labels, _, _ in again] == [labels for labels, _, _ in first]
    assert all(a[0] is b[0] for a, b in zip(first, again, strict=True))
    assert len(cache) == len(first)


def test_the_cache_forgets_series_gone_from_the_target() -> None:
    cache = SeriesCache()
    parse_exposition("".join(f'a{{i="{i}"}} 1\n' for i in range(1000)), cache=cache)
    parse_exposition("".join(f'b{{i="{i}"}} 1\n' for i in range(300)), cache=cache)
    assert len(cache) == 300
    cache.clear()
    assert len(cache) == 0


def test_a_failed_parse_leaves_the_cache_usable() -> None:
    cache = SeriesCache()
    first = parse_exposition('a{x="1"} 1\nb 2\n', cache=cache)
    with pytest.raises(ScrapeError):
        parse_exposition('a{x="1"} 1\nbad\n', cache=cache)
    again = parse_exposition('a{x="1"} 3\nb 4\n', cache=cache)
    assert [labels for labels, _, _ in again] == [labels for labels, _, _ in first]
    assert [value for _, value, _ in again] == [3.0, 4.0]


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("good 1\nbad\n", 2, "needs a metric name and a value"),
        ('a 1\nb{x="1"} one\n', 2, "invalid number 'one'"),
        ('a{x="1",x="2"} 1\n', 1, "label 'x' given twice"),
        ('a{__x="1"} 1\n', 1, "reserved"),
        ("# TYPE x\n", 1, "# TYPE"),
        ("a 1\n# TYPE x flux\nx 1\n", 2, "unknown metric type 'flux'"),
        ("a " + "9" * 400 + "\n", 1, "too large"),
        ('a{x="1"} 1 NaN\n', 1, "timestamp"),
        ("a 1\n\nthis is not metrics\n", 3, "invalid number 'is'"),
    ],
)
def test_a_malformed_line_is_named_with_its_number_and_text(
    body: str, line: int, reason: str
) -> None:
    with pytest.raises(ScrapeError) as caught:
        parse_exposition(body)
    message = str(caught.value)
    assert message.startswith(f"invalid Prometheus text format exposition: line {line}: ")
    assert reason in message
    assert body.split("\n")[line - 1][:100] in message  # long lines are cut short
