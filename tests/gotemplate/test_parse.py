"""Parse errors, checked against the messages of Go's text/template (taken from
``promtool check rules`` 2.42 on the same templates)."""

from __future__ import annotations

import pytest

from inferwatch._errors import TemplateError
from inferwatch.gotemplate import parse

PARSE_ERRORS = [
    ("{{ foo }}", 'template: t:1: function "foo" not defined'),
    ("{{ .X }", 'template: t:1: unexpected "}" in operand'),
    ("{{", "template: t:1: unclosed action"),
    ("{{ if .X }}a", "template: t:1: unexpected EOF"),
    ("{{ end }}", "template: t:1: unexpected {{end}}"),
    ("{{ else }}", "template: t:1: unexpected {{else}}"),
    ("{{ $x }}", 'template: t:1: undefined variable "$x"'),
    ("{{ .X | 1 }}", "template: t:1: non executable command in pipeline stage 2"),
    ("{{ 1x }}", 'template: t:1: bad number syntax: "1x"'),
    ('{{ "abc }}', "template: t:1: unterminated quoted string"),
    ("{{ (1 }}", "template: t:1: unclosed left paren"),
    ("{{ 1) }}", 'template: t:1: unexpected ")" in command'),
    ("{{ range $i, $v, $w := . }}{{end}}", "template: t:1: too many declarations in range"),
    ("{{ break }}", "template: t:1: {{break}} outside {{range}}"),
    ("{{/* x */ }}", "template: t:1: comment ends before closing delimiter"),
    ("{{/* x", "template: t:1: unclosed comment"),
    (
        '{{ define "a" }}x{{ end }}{{ define "a" }}y{{ end }}',
        'template: t:1: template: multiple definition of template "a"',
    ),
    ("{{ template .X }}", 'template: t:1: unexpected ".X" in template clause'),
    ('{{ "x".Foo }}', 'template: t:1: unexpected . after term "\\"x\\""'),
    ("{{ if }}{{ end }}", "template: t:1: missing value for if"),
    ("a\nb\n{{ .X\n\n", "template: t:5: unclosed action started at t:3"),
    ("{{ @ }}", 'template: t:1: unexpected "@" in command'),
    ("{{ . X }}", 'template: t:1: function "X" not defined'),
    ("{{ .X #}}", 'template: t:1: unexpected "#" in operand'),
    ("{{ 'ab' }}", "template: t:1: malformed character constant: 'ab'"),
    ('{{ "\\q" }}', "template: t:1: invalid syntax"),
    ("{{ | }}", 'template: t:1: unexpected "|" in command'),
    (
        "{{ range .X }}{{ else }}{{ else }}{{ end }}",
        "template: t:1: expected end; found {{else}}",
    ),
    ("{{ with $x := 1 }}{{ end }}{{ $x }}", 'template: t:1: undefined variable "$x"'),
    ("{{ 99999999999999999999 }}", 'template: t:1: integer overflow: "99999999999999999999"'),
    ("{{ .X := 1 }}", 'template: t:1: unexpected ":=" in operand'),
    ("{{ $x : 1 }}", 'template: t:1: undefined variable "$x"'),
    ("{{ \u00a0}}", "template: t:1: unrecognized character in action: U+00A0"),
    ("\n\n{{ nope }}", 'template: t:3: function "nope" not defined'),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS)
def test_parse_error_reads_as_go(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse(text, name="t")
    assert str(caught.value) == message
    assert caught.value.name == "t"
    assert caught.value.line == int(message.split(":")[2])


def test_parse_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not defined"):
        parse("{{ nope }}")


def test_functions_given_at_parse_are_known() -> None:
    template = parse("{{ double 2 }}", funcs={"double": lambda x: x * 2})
    assert template.execute(None) == "4"


@pytest.mark.parametrize(
    "text",
    [
        "{{ nil }}",  # an exec error in Go, not a parse error
        "{{/* a comment */}}",
        "{{- /* trimmed comment */ -}}",
        "{{ $x := 1 }}{{ $x = 2 }}",
        '{{ define "a" }}{{ end }}{{ define "a" }}y{{ end }}',
        "{{ range $i, $v := . }}{{ break }}{{ continue }}{{ end }}",
        "{{ if 1 }}{{ else if 2 }}{{ else }}{{ end }}{{ with 1 }}{{ else with 2 }}{{ end }}",
        "{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 1e3 }} {{ 'a' }} {{ '\\n' }} {{ -3 }}",
        '{{ `raw "string"` }} {{ "esc\\t\\u00e9\\x41" }}',
        '{{ block "b" . }}inner{{ end }}',
        "{{ (len .).Foo }}",
        "{{ .A\n  .B }}",
    ],
)
def test_valid_templates_parse(text: str) -> None:
    parse(text, name="ok")
