"""Probe files: parsed into probes, or refused with file, line, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferwatch import ConfigError
from inferwatch.health import (
    PathExists,
    ValueInRange,
    ValueMatches,
    load_probe_file,
    parse_probe_file,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "probes.yml"


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_probe_file(text, file="probes.yml")
    return info.value


def test_the_example_file_loads() -> None:
    probes = load_probe_file(EXAMPLE)
    assert [p.name for p in probes] == ["demo-predict", "demo-ready", "llm-chat"]
    predict = probes[0]
    assert (predict.method, predict.interval_s, predict.timeout_s) == ("POST", 15.0, 2.0)
    assert predict.headers == {"Content-Type": "application/json"}
    assert predict.labels == {"model": "digits", "version": "1"}
    assert isinstance(predict.body, bytes) and predict.body.startswith(b'{"instances": [[0, 0, 5')
    assert predict.checks == (
        PathExists("$.predictions[0]"),
        ValueInRange("$.predictions[0]", 0, 9),
        ValueMatches("$.model", "^digits$"),
    )
    assert probes[2].interval_s == 60.0


def test_defaults() -> None:
    [probe] = parse_probe_file("probes:\n  - {name: a, url: 'http://h/'}\n")
    assert (probe.method, probe.interval_s, probe.timeout_s) == ("GET", 15.0, 5.0)
    assert (probe.expected_status, probe.checks, probe.body) == ((200,), (), None)


def test_text_body_and_single_status() -> None:
    text = (
        "probes:\n  - name: a\n    url: http://h/\n    body: 'raw text'\n    expected_status: 204\n"
    )
    [probe] = parse_probe_file(text)
    assert (probe.body, probe.expected_status) == (b"raw text", (204,))


@pytest.mark.parametrize(
    ("text", "line", "field", "value", "words"),
    [
        (
            "probes:\n  - name: a\n    url: localhost:8000/predict\n",
            3,
            "probes[0].url",
            "localhost:8000/predict",
            "must start with http:// or https://",
        ),
        (
            "probes:\n  - name: a\n    url: http://h/\n    method: FETCH\n",
            4,
            "probes[0].method",
            "FETCH",
            "unknown HTTP method 'FETCH'",
        ),
        (
            "probes:\n  - name: a\n    url: http://h/\n    interval: 5s\n    timeout: 10s\n",
            5,
            "probes[0].timeout",
            "10s",
            "timeout 10s is longer than the interval 5s",
        ),
        (
            "probes:\n  - name: a\n    url: http://h/\n    checks:\n"
            "      - {type: equals, path: $.x}\n",
            5,
            "probes[0].checks[0].type",
            "equals",
            "unknown check type 'equals'; use one of exists, range, regex",
        ),
        (
            "probes:\n  - name: a\n    url: http://h/\n    checks:\n"
            "      - type: regex\n        path: $.x\n        regex: '([a-z'\n",
            7,
            "probes[0].checks[0].regex",
            "([a-z",
            "invalid regex '([a-z'",
        ),
        (
            "probes:\n  - name: a\n    url: http://h/\n    interval: 15\n",
            4,
            "probes[0].interval",
            "15",
            "invalid duration '15'",
        ),
        (
            "probes:\n  - name: a\n    url: http://h/\n    checks:\n"
            "      - {type: range, path: $.x, min: low}\n",
            5,
            "probes[0].checks[0].min",
            "low",
            "must be a number",
        ),
        (
            "probes:\n  - name: a\n    url: http://h/\n    checks:\n"
            "      - {type: exists, path: 'predictions.0'}\n",
            5,
            "probes[0].checks[0].path",
            "predictions.0",
            "JSON path must start with '$'",
        ),
        (
            "probes:\n  - name: a\n    url: http://h/\n    expected_status: [200, 999]\n",
            4,
            "probes[0].expected_status",
            999,
            "999 is not an HTTP status code",
        ),
        (
            "probes:\n  - name: a\n    url: http://h/\n  - name: a\n    url: http://i/\n",
            4,
            "probes[1].name",
            "a",
            "duplicate probe name 'a' (first at line 2)",
        ),
        (
            "probes:\n  - name: a\n",
            2,
            "probes[0].url",
            None,
            "a probe needs a url",
        ),
    ],
)
def test_errors_name_file_line_field_and_value(
    text: str, line: int, field: str, value: object, words: str
) -> None:
    error = error_of(text)
    assert str(error).startswith(f"probes.yml:{line}: {field}: "), str(error)
    assert words in str(error)
    assert (error.field, error.value) == (field, value)


def test_unknown_field_is_reported_with_its_line() -> None:
    error = error_of("probes:\n  - name: a\n    url: http://h/\n    intervall: 5s\n")
    assert str(error) == "probes.yml:4: field intervall not found in type probe"


def test_every_problem_is_listed_in_line_order() -> None:
    text = (
        "probes:\n  - name: a\n    url: nope\n  - name: b\n    url: http://h/\n    method: BREW\n"
    )
    lines = str(error_of(text)).splitlines()
    assert [line.split(": ")[0] for line in lines] == ["probes.yml:3", "probes.yml:6"]


def test_yaml_syntax_error_has_a_line() -> None:
    error = error_of("probes:\n  - name: a\n    url: [http://h/\n")
    assert str(error).startswith("probes.yml:3: yaml:")


def test_a_file_without_probes_is_refused() -> None:
    assert "needs a 'probes:' list" in str(error_of("targets: []\n"))


def test_an_empty_file_has_no_probes() -> None:
    assert parse_probe_file("# nothing yet\n") == []


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yml"
    with pytest.raises(ConfigError, match=r"missing\.yml: cannot read probe file"):
        load_probe_file(missing)
