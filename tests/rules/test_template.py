"""Prometheus's template functions and rule template expansion.

The function cases are those of Prometheus's own ``template/template_test.go`` (run
here with the same input data and template name ``test``); the expansion cases check
the rule header (``$labels``, ``$value``, ...) and the error text rules store.
"""

from __future__ import annotations

from typing import Any

import pytest

from inferwatch._errors import TemplateError
from inferwatch.gotemplate import parse
from inferwatch.rules.template import (
    RULE_FUNCS,
    Sample,
    check,
    expand,
    expand_or_error,
    humanize_timestamp,
    to_time,
)

MAX_INT64 = 2**63 - 1
MAX_UINT64 = 2**64 - 1
INF, NAN = float("inf"), float("nan")


def prometheus_expand(text: str, data: Any = None, samples: list[Sample] | None = None) -> str:
    """Prometheus's ``Expander.Expand`` with ``name="test"`` and the test's external URL."""
    funcs = {
        **RULE_FUNCS,
        "query": lambda q: list(samples or []),
        "externalURL": lambda: "http://testhost:9090/path/prefix",
        "pathPrefix": lambda: "/path/prefix",
    }
    try:
        template = parse(text, name="test", funcs=funcs)
    except TemplateError as error:
        raise TemplateError(f"error parsing template test: {error}") from None
    try:
        return template.execute(data)
    except TemplateError as error:
        raise TemplateError(f"error executing template test: {error}") from None


def metric(value: float, **labels: str) -> Sample:
    return Sample({"__name__": "metric", **labels}, value)


OUTPUTS: list[tuple[str, Any, list[Sample] | None, str]] = [
    ("plain text", None, None, "plain text"),
    ("{{ 1 }}", None, None, "1"),
    ('{{ "<b>" }}', None, None, "<b>"),
    ('{{define "x"}}{{.arg0}} {{.arg1}}{{end}}{{template "x" (args 1 "2")}}', None, None, "1 2"),
    ('{{ query "1.5" | first | value }}', None, [Sample({}, 1.5)], "1.5"),
    (
        "{{ query \"metric{instance='a'}\" | first | value }}",
        None,
        [metric(11, instance="a")],
        "11",
    ),
    (
        '{{ query "metric{instance=\'a\'}" | first | label "instance" }}',
        None,
        [metric(11, instance="a")],
        "a",
    ),
    (
        "{{ query \"metric{__value__='a'}\" | first | strvalue }}",
        None,
        [metric(11, __value__="a")],
        "a",
    ),
    (
        '{{ query "metric{instance=\'a\'}" | first | label "foo" }}',
        None,
        [metric(11, instance="a")],
        "",
    ),
    ('{{ $x := query "metric" | first }}{{ $x.Labels.foo }}', None, [metric(11, instance="a")], ""),
    (
        '{{ range query "metric" | sortByLabel "instance" }}'
        "{{.Labels.instance}}:{{.Value}}: {{end}}",
        None,
        [metric(21, instance="b"), metric(11, instance="a")],
        "a:11: b:21: ",
    ),
    ('{{ "foo.example.com" | stripPort }}', None, None, "foo.example.com"),
    ('{{ "foo.example.com:12345" | stripPort }}', None, None, "foo.example.com"),
    ('{{ "192.0.2.1" | stripPort }}', None, None, "192.0.2.1"),
    ('{{ "192.0.2.1:12345" | stripPort }}', None, None, "192.0.2.1"),
    ('{{ "2001:0DB8::1" | stripPort }}', None, None, "2001:0DB8::1"),
    ('{{ "[2001:0DB8::1]:12345" | stripPort }}', None, None, "2001:0DB8::1"),
    ('{{ "[2001:0DB8::1]::12345" | stripPort }}', None, None, "[2001:0DB8::1]::12345"),
    ("{{ .Foo }}", None, None, "<no value>"),
    ('{{ reReplaceAll "(a)b" "x$1" "ab" }}', None, None, "xa"),
    (
        "{{ range . }}{{ humanize . }}:{{ end }}",
        [0.0, 1.0, 1234567.0, 0.12],
        None,
        "0:1:1.235M:120m:",
    ),
    (
        "{{ range . }}{{ humanize . }}:{{ end }}",
        ["0.0", "1.0", "1234567.0", ".12"],
        None,
        "0:1:1.235M:120m:",
    ),
    (
        "{{ range . }}{{ humanize . }}:{{ end }}",
        [0, -1, 1, 1234567, MAX_INT64],
        None,
        "0:-1:1:1.235M:9.223E:",
    ),
    (
        "{{ range . }}{{ humanize . }}:{{ end }}",
        [0, 1, 1234567, MAX_UINT64],
        None,
        "0:1:1.235M:18.45E:",
    ),
    (
        "{{ range . }}{{ humanize1024 . }}:{{ end }}",
        [0.0, 1.0, 1048576.0, 0.12],
        None,
        "0:1:1Mi:0.12:",
    ),
    (
        "{{ range . }}{{ humanize1024 . }}:{{ end }}",
        ["0.0", "1.0", "1048576.0", ".12"],
        None,
        "0:1:1Mi:0.12:",
    ),
    (
        "{{ range . }}{{ humanize1024 . }}:{{ end }}",
        [0, -1, 1, 1234567, MAX_INT64],
        None,
        "0:-1:1:1.177Mi:8Ei:",
    ),
    (
        "{{ range . }}{{ humanize1024 . }}:{{ end }}",
        [0, 1, 1234567, MAX_UINT64],
        None,
        "0:1:1.177Mi:16Ei:",
    ),
    (
        "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
        [0, 1, 60, 3600, 86400, 86400 + 3600, -(86400 * 2 + 3600 * 3 + 60 * 4 + 5), 899.99],
        None,
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:",
    ),
    (
        "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
        ["0", "1", "60", "3600", "86400"],
        None,
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:",
    ),
    (
        "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
        [0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345],
        None,
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
    ),
    (
        "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
        [".1", ".0001", ".12345", "60.1", "60.5", "1.2345", "12.345"],
        None,
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
    ),
    (
        "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
        [0, -1, 1, 1234567],
        None,
        "0s:-1s:1s:14d 6h 56m 7s:",
    ),
    (
        "{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:"
        "{{humanizeTimestamp .}}:{{ end }}",
        [INF, -INF, NAN],
        None,
        "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:",
    ),
    (
        "{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:"
        "{{humanizeTimestamp .}}:{{ end }}",
        ["+Inf", "-Inf", "NaN"],
        None,
        "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:",
    ),
    (
        "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:"
        "{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}",
        None,
        None,
        "-22.22%:0%:12.35%:123.5%",
    ),
    (
        "{{ range . }}{{ humanizePercentage . }}:{{ end }}",
        [0, -1, 1, 1234567, MAX_INT64],
        None,
        "0%:-100%:100%:1.235e+08%:9.223e+20%:",
    ),
    (
        "{{ range . }}{{ humanizePercentage . }}:{{ end }}",
        [0, 1, 1234567, MAX_UINT64],
        None,
        "0%:100%:1.235e+08%:1.845e+21%:",
    ),
    (
        '{{ "-0.22222" | humanizePercentage }}:{{ "0.0" | humanizePercentage }}:'
        '{{ "0.1234567" | humanizePercentage }}:{{ "1.23456" | humanizePercentage }}',
        None,
        None,
        "-22.22%:0%:12.35%:123.5%",
    ),
    (
        "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}",
        [0, -1, 1, 1234567, 9223372036],
        None,
        "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:"
        "1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:",
    ),
    ("{{ 1435065584.128 | humanizeTimestamp }}", None, None, "2015-06-23 13:19:44.128 +0000 UTC"),
    ('{{ "1435065584.128" | humanizeTimestamp }}', None, None, "2015-06-23 13:19:44.128 +0000 UTC"),
    ('{{ (1435065584.128 | toTime).Format "2006" }}', None, None, "2015"),
    ('{{ ("1435065584.128" | toTime).Format "2006" }}', None, None, "2015"),
    ('{{ "aa bb CC" | title }}', None, None, "Aa Bb CC"),
    ('{{ "hello wORLD foo-bar it\'s" | title }}', None, None, "Hello WORLD Foo-Bar It'S"),
    ('{{ "aa bb CC" | toUpper }}', None, None, "AA BB CC"),
    ('{{ "aA bB CC" | toLower }}', None, None, "aa bb cc"),
    ('{{ match "a+" "aa" }} {{ match "a+" "b" }}', None, None, "true false"),
    ('{{ graphLink "up" }}', None, None, "/graph?g0.expr=up&g0.tab=0"),
    ('{{ tableLink "up" }}', None, None, "/graph?g0.expr=up&g0.tab=1"),
    ("{{ pathPrefix }}", None, None, "/path/prefix"),
    ("{{ externalURL }}", None, None, "http://testhost:9090/path/prefix"),
    ('{{ printf "%0.2f" (parseDuration "1h2m10ms") }}', None, None, "3720.01"),
    ('{{ "foo.example.com" | stripDomain }}', None, None, "foo"),
    ('{{ "foo.example.com:12345" | stripDomain }}', None, None, "foo:12345"),
    ('{{ "192.0.2.1" | stripDomain }}', None, None, "192.0.2.1"),
    ('{{ "192.0.2.1:12345" | stripDomain }}', None, None, "192.0.2.1:12345"),
    ('{{ "2001:0DB8::1" | stripDomain }}', None, None, "2001:0DB8::1"),
    ('{{ "[2001:0DB8::1]:12345" | stripDomain }}', None, None, "[2001:0DB8::1]:12345"),
    ('{{ "[2001:0DB8::1]::12345" | stripDomain }}', None, None, "[2001:0DB8::1]::12345"),
    ('{{ "<b>" | safeHtml }}', None, None, "<b>"),
    (
        '{{ reReplaceAll "(?P<w>[a-z]+)-(\\\\d+)" "${2}_$w$$" "ab-12 cd-3" }}',
        None,
        None,
        "12_ab$ 3_cd$",
    ),
]


@pytest.mark.parametrize(("text", "data", "samples", "expected"), OUTPUTS)
def test_function_output_matches_prometheus(
    text: str, data: Any, samples: list[Sample] | None, expected: str
) -> None:
    assert prometheus_expand(text, data, samples) == expected


ERRORS: list[tuple[str, Any, str]] = [
    (
        "{{ }}",
        None,
        "error parsing template test: template: test:1: unrecognized character in action: U+00A0",
    ),
    ("{{", None, "error parsing template test: template: test:1: unclosed action"),
    (
        '{{ query "missing" | first }}',
        None,
        'error executing template test: template: test:1:21: executing "test" at <first>: '
        "error calling first: first() called on vector with no elements",
    ),
    (
        '{{ humanize "one" }}',
        None,
        'error executing template test: template: test:1:3: executing "test" at <humanize "one">: '
        'error calling humanize: strconv.ParseFloat: parsing "one": invalid syntax',
    ),
    (
        '{{ humanize1024 "one" }}',
        None,
        'error executing template test: template: test:1:3: executing "test" at '
        '<humanize1024 "one">: error calling humanize1024: strconv.ParseFloat: parsing "one": '
        "invalid syntax",
    ),
    (
        '{{ humanizeDuration "one" }}',
        None,
        'error executing template test: template: test:1:3: executing "test" at '
        '<humanizeDuration "one">: error calling humanizeDuration: strconv.ParseFloat: parsing '
        '"one": invalid syntax',
    ),
    (
        '{{ "one" | humanizePercentage }}',
        None,
        'error executing template test: template: test:1:11: executing "test" at '
        "<humanizePercentage>: error calling humanizePercentage: strconv.ParseFloat: parsing "
        '"one": invalid syntax',
    ),
    (
        "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}",
        [-(2**63), MAX_INT64],
        'error executing template test: template: test:1:16: executing "test" at '
        "<humanizeTimestamp .>: error calling humanizeTimestamp: -9.223372036854776e+18 cannot be "
        "represented as a nanoseconds timestamp since it overflows int64",
    ),
    (
        "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}",
        [MAX_UINT64],
        'error executing template test: template: test:1:16: executing "test" at '
        "<humanizeTimestamp .>: error calling humanizeTimestamp: 1.8446744073709552e+19 cannot be "
        "represented as a nanoseconds timestamp since it overflows int64",
    ),
    (
        '{{ parseDuration "soon" }}',
        None,
        'error executing template test: template: test:1:3: executing "test" at '
        '<parseDuration "soon">: error calling parseDuration: not a valid duration string: "soon"',
    ),
    (
        "{{ humanize . }}",
        [1],
        'error executing template test: template: test:1:3: executing "test" at <humanize .>: '
        "error calling humanize: can't convert []interface {} to float",
    ),
]


@pytest.mark.parametrize(("text", "data", "message"), ERRORS)
def test_function_errors_match_prometheus(text: str, data: Any, message: str) -> None:
    text = text.replace("{{ }}", "{{ \u00a0}}")
    with pytest.raises(TemplateError) as caught:
        prometheus_expand(text, data, [])
    assert str(caught.value) == message


def test_to_time_and_humanize_timestamp() -> None:
    assert str(to_time(1657155181)) == "2022-07-07 00:53:01 +0000 UTC"
    assert to_time(1435065584.128).UnixMilli() == 1435065584128
    assert to_time("1435065584.128").Format("2006-01-02T15:04:05.000Z07:00 Mon Jan") == (
        "2015-06-23T13:19:44.128Z Tue Jun"
    )
    assert humanize_timestamp(-0.5) == "1969-12-31 23:59:59.5 +0000 UTC"
    with pytest.raises(ValueError, match="overflows int64"):
        to_time(1.79769313486231570814527423731704356798070e300)


LABELS = {"alertname": "HighLatency", "instance": "host:9090", "job": "api"}


def test_expand_with_labels_and_value() -> None:
    text = "{{ $labels.instance }} of {{ $labels.job }} is at {{ $value | humanizePercentage }}"
    assert expand(text, labels=LABELS, value=0.25, name="__alert_HighLatency") == (
        "host:9090 of api is at 25%"
    )


def test_expand_prints_value_as_go() -> None:
    assert expand("{{ $value }}", labels={}, value=1234567.0) == "1.234567e+06"
    assert expand("{{ $value }}|{{ .Value }}", labels={}, value=0.5) == "0.5|0.5"


def test_expand_external_labels_and_url() -> None:
    text = "{{ $externalLabels.cluster }} {{ $externalURL }} {{ externalURL }} {{ pathPrefix }}"
    assert (
        expand(
            text,
            labels={},
            value=1,
            external_labels={"cluster": "eu1"},
            external_url="https://prom.example.com/prom",
        )
        == "eu1 https://prom.example.com/prom https://prom.example.com/prom /prom"
    )


def test_expand_range_over_labels_in_key_order() -> None:
    text = "{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}"
    assert expand(text, labels=LABELS, value=1) == (
        "alertname=HighLatency instance=host:9090 job=api "
    )


def test_expand_if_else_and_printf() -> None:
    text = '{{ if gt $value 0.5 }}high {{ printf "%.2f" $value }}{{ else }}low{{ end }}'
    assert expand(text, labels={}, value=0.75) == "high 0.75"
    assert expand(text, labels={}, value=0.25) == "low"


def test_expand_missing_label_is_empty() -> None:
    assert expand("[{{ $labels.nope }}]", labels=LABELS, value=1) == "[]"


def test_expand_runs_query_at_the_timestamp() -> None:
    asked: list[tuple[str, float]] = []

    def query(expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        asked.append((expr, at))
        return [({"instance": "b"}, 2.0), ({"instance": "a"}, 1.0)]

    text = (
        '{{ range query "up" | sortByLabel "instance" }}'
        "{{ .Labels.instance }}={{ .Value }} {{ end }}"
    )
    assert expand(text, labels={}, value=1, query=query, timestamp_s=1700000000.0) == "a=1 b=2 "
    assert asked == [("up", 1700000000.0)]


def test_expand_query_without_query_function_is_an_error() -> None:
    with pytest.raises(TemplateError, match="error calling query: no query function"):
        expand('{{ query "up" }}', labels={}, value=1)


def test_expand_error_names_the_template_and_counts_the_header() -> None:
    with pytest.raises(TemplateError) as caught:
        expand("{{ humanize $labels.job }}", labels=LABELS, value=1, name="__alert_X")
    assert str(caught.value) == (
        "error executing template __alert_X: template: __alert_X:1:115: executing "
        '"__alert_X" at <humanize $labels.job>: error calling humanize: strconv.ParseFloat: '
        'parsing "api": invalid syntax'
    )


def test_expand_or_error_gives_the_text_prometheus_stores() -> None:
    assert expand_or_error("{{ nope }}", labels={}, value=1, name="__alert_X") == (
        "<error expanding template: error parsing template __alert_X: template: __alert_X:1: "
        'function "nope" not defined>'
    )
    assert expand_or_error("ok {{ $value }}", labels={}, value=2.0) == "ok 2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ nope }}", 'template: __alert_A:1: function "nope" not defined'),
        ("{{ $labels.job", "template: __alert_A:1: unclosed action"),
        ("{{ $x }}", 'template: __alert_A:1: undefined variable "$x"'),
    ],
)
def test_check_raises_go_parse_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        check(text, name="__alert_A")
    assert str(caught.value) == message


def test_check_accepts_every_prometheus_function() -> None:
    names = [*sorted(RULE_FUNCS), "query"]
    for name in names:
        check(f"{{{{ if false }}}}{{{{ {name} }}}}{{{{ end }}}}", name="__alert_A")
    check("{{ $labels.a }}{{ $value }}{{ $externalLabels.b }}{{ $externalURL }}")
