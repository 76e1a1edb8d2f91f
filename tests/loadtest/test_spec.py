"""LoadSpec: validation with errors naming the field, and the request bytes."""

from __future__ import annotations

import pytest

from inferwatch import ConfigError
from inferwatch.loadtest.spec import LoadSpec, parse_header, parse_url
from inferwatch.loadtest.tally import Tally, fold


def test_the_request_carries_host_headers_length_and_body() -> None:
    spec = LoadSpec(
        url="http://127.0.0.1:8080/predict?v=2",
        method="POST",
        headers=(("Authorization", "Bearer x"),),
        body=b'{"x": 1}',
        concurrency=1,
    )
    request = spec.request_bytes()
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /predict?v=2 HTTP/1.1"
    assert "Host: 127.0.0.1:8080" in lines
    assert "Authorization: Bearer x" in lines
    assert "Content-Length: 8" in lines
    assert "Content-Type: application/json" in lines
    assert body == b'{"x": 1}'


def test_a_given_content_type_and_the_default_port() -> None:
    spec = LoadSpec(url="https://example.com", body=b"a,b", content_type="text/csv", concurrency=1)
    assert spec.target.port == 443 and spec.target.tls
    lines = spec.request_bytes().decode().split("\r\n")
    assert lines[0] == "GET / HTTP/1.1"
    assert "Host: example.com" in lines
    assert "Content-Type: text/csv" in lines


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"url": "ftp://x/", "rate": 1}, "url", "ftp://x/"),
        ({"url": "http:///path", "rate": 1}, "url", "http:///path"),
        ({"url": "http://h:99999/", "rate": 1}, "url", "h:99999"),
        ({"url": "http://h/", "rate": 1, "concurrency": 2}, "rate", "not both"),
        ({"url": "http://h/", "rate": -1}, "rate", "-1"),
        ({"url": "http://h/", "concurrency": 0}, "concurrency", "0"),
        ({"url": "http://h/", "rate": 5, "duration": 0}, "duration", "0"),
        ({"url": "http://h/", "rate": 5, "warmup": -1}, "warmup", "-1"),
        ({"url": "http://h/", "concurrency": 2, "workers": 3}, "workers", "3"),
        ({"url": "http://h/", "rate": 5, "method": "GE T"}, "method", "GE T"),
    ],
)
def test_bad_settings_name_their_field(kwargs: dict[str, object], field: str, text: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        LoadSpec(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert text in str(info.value)


def test_headers_parse_and_bad_ones_are_named() -> None:
    assert parse_header("X-Model:  digits ") == ("X-Model", "digits")
    for bad in ("no colon", ": empty", "Bad Name: x"):
        with pytest.raises(ConfigError, match="bad header"):
            parse_header(bad)


def test_ipv6_hosts_keep_their_brackets() -> None:
    target = parse_url("http://[::1]:8000/p")
    assert target.host == "::1"
    assert target.host_header == "[::1]:8000"
    assert target.address == "[::1]:8000"


def test_tallies_merge_as_one() -> None:
    ms = 1_000_000
    a = Tally(windows=fold(2, [0, 1500 * ms], [5 * ms, 7 * ms], [5 * ms, 6 * ms], [200, 500], []))
    b = Tally(windows=fold(2, [10 * ms], [9 * ms], [8 * ms], [200], [1200 * ms]))
    a.statuses.update({200: 1, 500: 1})
    b.statuses.update({200: 1})
    b.failures["timeout"] += 1
    merged = Tally.from_dict(a.to_dict())
    merged.merge(Tally.from_dict(b.to_dict()))

    assert merged.statuses == {200: 2, 500: 1}
    assert merged.failures == {"timeout": 1}
    first, second = merged.windows
    assert (first.responses, first.failures, first.http_errors) == (2, 0, 0)
    assert (second.responses, second.failures, second.http_errors) == (1, 1, 1)
    assert first.latency.count == 2 and first.latency.max == pytest.approx(9e-3)
