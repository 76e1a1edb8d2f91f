"""Executing templates: actions, control structures, variables, fields, errors.

Expected outputs for number printing and the fmt verbs were taken from Go itself
(Prometheus 2.42's ``promtool test rules`` expanding the same templates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from inferwatch._errors import TemplateError
from inferwatch.gotemplate import parse
from inferwatch.gotemplate.execute import MAX_TEMPLATE_DEPTH


def run(text: str, data: Any = None, **funcs: Any) -> str:
    return parse(text, name="t", funcs=funcs).execute(data)


@dataclass(frozen=True)
class User:
    Name: str
    Tags: tuple[str, ...] = ()

    def Greet(self, other: str) -> str:
        return f"hi {other}, I am {self.Name}"

    def Upper(self) -> str:
        return self.Name.upper()


class KV(dict[str, str]):
    """Like Alertmanager's KV: a map with methods."""

    def Remove(self, keys: list[str]) -> KV:
        return KV({k: v for k, v in self.items() if k not in keys})

    def Names(self) -> list[str]:
        return sorted(self)


CASES: list[tuple[str, Any, str]] = [
    ("plain text", None, "plain text"),
    ("{{ 1 }}", None, "1"),
    ("{{ .A.B }}", {"A": {"B": "x"}}, "x"),
    ("{{ .Missing }}", {}, ""),
    ("{{ .Foo }}", None, "<no value>"),
    ("{{ . }}", None, "<no value>"),
    ("{{ .Foo.Bar }}", None, "<no value>"),
    ("{{ .X }}", {"X": 0.5}, "0.5"),
    ("{{ .X }}", {"X": 1e6}, "1e+06"),
    ("{{ .X }}", {"X": 123456.0}, "123456"),
    ("{{ .X }}", {"X": 100.0}, "100"),
    ("{{ .X }}", {"X": float("nan")}, "NaN"),
    ("{{ .X }}", {"X": float("inf")}, "+Inf"),
    ("{{ .X }}", {"X": float("-inf")}, "-Inf"),
    ("{{ .X }}", {"X": 1e-5}, "1e-05"),
    ("{{ .X }} {{ .Y }}", {"X": True, "Y": False}, "true false"),
    ("{{ .X }}", {"X": ["a", 1, 2.5, None]}, "[a 1 2.5 <nil>]"),
    ("{{ .X }}", {"X": {"b": 2, "a": 1}}, "map[a:1 b:2]"),
    (
        "{{ 1e3 }} {{ 1.0 }} {{ 0x1F }} {{ 'a' }} {{ -0.0 }} {{ 1.5e300 }}",
        None,
        "1000 1 31 97 -0 1.5e+300",
    ),
    ('{{ "a\\tb" }}|{{ `raw\\n` }}', None, "a\tb|raw\\n"),
    # Trim markers and comments.
    ("a  {{- 1 -}}  b", None, "a1b"),
    ("a \n {{- /* c */ -}} \n b", None, "ab"),
    ("a {{/* c */}} b", None, "a  b"),
    ("{{ -3 }}", None, "-3"),
    # if / else if / else
    ("{{ if .A }}yes{{ else }}no{{ end }}", {"A": 1}, "yes"),
    ("{{ if .A }}yes{{ else }}no{{ end }}", {"A": 0}, "no"),
    ("{{ if .A }}yes{{ else }}no{{ end }}", {"A": ""}, "no"),
    ("{{ if .A }}yes{{ else }}no{{ end }}", {"A": []}, "no"),
    ("{{ if .A }}yes{{ else }}no{{ end }}", {"A": {}}, "no"),
    ("{{ if .A }}yes{{ else }}no{{ end }}", {"A": 0.0}, "no"),
    ("{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}", {"A": 0, "B": 1}, "b"),
    ("{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}", {"A": 0, "B": 0}, "c"),
    # with
    ("{{ with .A }}{{ . }}{{ else }}none{{ end }}", {"A": "x"}, "x"),
    ("{{ with .A }}{{ . }}{{ else }}none{{ end }}", {"A": ""}, "none"),
    ("{{ with $x := .A }}{{ $x }}{{ . }}{{ end }}", {"A": "v"}, "vv"),
    # range
    ("{{ range . }}[{{ . }}]{{ end }}", ["a", "b"], "[a][b]"),
    ("{{ range $i, $e := . }}{{ $i }}={{ $e }} {{ end }}", ["a", "b"], "0=a 1=b "),
    ("{{ range $e := . }}{{ $e }}{{ end }}", ["a", "b"], "ab"),
    (
        "{{ range $k, $v := . }}{{ $k }}:{{ $v }};{{ end }}",
        {"b": 2, "a": 1, "c": 3},
        "a:1;b:2;c:3;",
    ),
    ("{{ range . }}x{{ else }}empty{{ end }}", [], "empty"),
    ("{{ range . }}x{{ else }}empty{{ end }}", None, "empty"),
    ("{{ range . }}{{ if eq . 3 }}{{ break }}{{ end }}{{ . }}{{ end }}", [1, 2, 3, 4], "12"),
    ("{{ range . }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ . }}{{ end }}", [1, 2, 3], "13"),
    ("{{ range $i, $_ := . }}{{ range . }}{{ $i }}{{ end }}{{ end }}", [[1, 1], [2]], "001"),
    # Variables and scope.
    ("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}", None, "21"),
    ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", None, "2"),
    ("{{ $x := 0 }}{{ range . }}{{ $x = . }}{{ end }}{{ $x }}", [1, 2, 3], "3"),
    ("{{ range .L }}{{ $.N }}{{ end }}", {"N": "n", "L": [1, 2]}, "nn"),
    ("{{ $m := .M }}{{ $m.k }}", {"M": {"k": "v"}}, "v"),
    # Pipelines and parenthesised commands.
    ('{{ "x" | printf "%s-%s" "a" }}', None, "a-x"),
    ("{{ .A | len }}", {"A": [1, 2, 3]}, "3"),
    ('{{ (printf "%d" 5) | len }}', None, "1"),
    ('{{ printf "%s" (index .M "k") }}', {"M": {"k": "v"}}, "v"),
    ("{{ (index . 0).Name }}", [User("ann")], "ann"),
    # Objects: attributes, methods with and without arguments.
    ("{{ .Name }} {{ .Upper }}", User("ann"), "ann ANN"),
    ('{{ .Greet "bob" }}', User("ann"), "hi bob, I am ann"),
    ('{{ "bob" | .Greet }}', User("ann"), "hi bob, I am ann"),
    ("{{ .U.Tags }}", {"U": User("ann", ("a", "b"))}, "[a b]"),
    (
        "{{ .Common.Remove .Group.Names }}",
        {"Common": KV(a="1", b="2", c="3"), "Group": KV(b="x")},
        "map[a:1 c:3]",
    ),
    ("{{ .Common.a }}", {"Common": KV(a="1")}, "1"),
    # Builtins.
    (
        '{{ and 1 0 2 }}|{{ or 0 "" "x" }}|{{ not 0 }}|{{ and 1 2 }}|{{ or 0 "" }}',
        None,
        "0|x|true|2|",
    ),
    (
        '{{ eq 1 1 2 }} {{ eq 3 1 2 }} {{ ne 1 2 }} {{ lt "a" "b" }} {{ ge 2 2 }}',
        None,
        "true false true true true",
    ),
    ("{{ eq .X 0.5 }} {{ gt .X 0.1 }} {{ le .X 0.5 }}", {"X": 0.5}, "true true true"),
    ('{{ eq .Missing "x" }}', {}, "false"),
    ('{{ index . "a" }}|{{ index . "zz" }}', {"a": "1"}, "1|"),
    ("{{ index . 1 0 }}", [[1], [2, 3]], "2"),
    ('{{ len "héllo" }}', None, "6"),
    ('{{ slice "abcdef" 1 3 }}|{{ slice . 1 }}', ["a", "b", "c"], "bc|[b c]"),
    ("{{ html \"<a href='x'>&\" }}", None, "&lt;a href=&#39;x&#39;&gt;&amp;"),
    ('{{ js "a\'b<\\"c" }}', None, "a\\'b\\u003C\\\"c"),
    ('{{ urlquery "a b&c/d" }}', None, "a+b%26c%2Fd"),
    ('{{ print 1 2 "a" 3 }}|{{ println 1 "a" }}', None, "1 2a3|1 a\n"),
    ("{{ call .F 2 3 }}", {"F": lambda a, b: a * b}, "6"),
    ('{{ printf "%d %.2f %s" 1 .X "s" }}', {"X": 3.14159}, "1 3.14 s"),
    # Templates.
    (
        '{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" 5 }}{{ template "x" }}',
        None,
        "[5][<no value>]",
    ),
    (
        '{{ define "x" }}{{ $x := 1 }}{{ $x }}{{ end }}{{ $x := 2 }}{{ template "x" }}{{ $x }}',
        None,
        "12",
    ),
    ('{{ block "b" .A }}<{{ . }}>{{ end }}', {"A": "in"}, "<in>"),
    (
        '{{ define "r" }}{{ if . }}{{ index . 0 }}{{ template "r" (slice . 1) }}{{ end }}'
        '{{ end }}{{ template "r" . }}',
        [1, 2, 3],
        "123",
    ),
]


@pytest.mark.parametrize(("text", "data", "expected"), CASES)
def test_execute(text: str, data: Any, expected: str) -> None:
    assert run(text, data) == expected


EXEC_ERRORS: list[tuple[str, Any, str]] = [
    (
        "{{ .X.Y }}",
        {"X": "a"},
        'template: t:1:5: executing "t" at <.X.Y>: can\'t evaluate field Y in type string',
    ),
    (
        "{{ eq 1 1.0 }}",
        None,
        'template: t:1:3: executing "t" at <eq 1 1.0>: error calling eq: incompatible types '
        "for comparison",
    ),
    (
        "{{ lt true false }}",
        None,
        'template: t:1:3: executing "t" at <lt true false>: error calling lt: invalid type for '
        "comparison",
    ),
    (
        "{{ index . 5 }}",
        [1],
        'template: t:1:3: executing "t" at <index . 5>: error calling index: index out of range: 5',
    ),
    (
        "{{ len 3 }}",
        None,
        'template: t:1:3: executing "t" at <len 3>: error calling len: len of type int',
    ),
    (
        "{{ not 1 2 }}",
        None,
        'template: t:1:3: executing "t" at <not>: wrong number of args for not: want 1 got 2',
    ),
    (
        "{{ range 5 }}{{ end }}",
        None,
        'template: t:1:9: executing "t" at <5>: range can\'t iterate over 5',
    ),
    (
        '{{ template "nope" }}',
        None,
        'template: t:1:12: executing "t" at <{{template "nope"}}>: template "nope" not defined',
    ),
    ("{{ nil }}", None, 'template: t:1:3: executing "t" at <nil>: nil is not a command'),
    (
        "{{ 1 2 }}",
        None,
        'template: t:1:3: executing "t" at <1>: can\'t give argument to non-function 1',
    ),
    (
        "{{ .A 1 }}",
        {"A": "x"},
        'template: t:1:3: executing "t" at <.A>: A is not a method but has arguments',
    ),
    (
        "\n{{ .Name.X }}",
        User("a"),
        'template: t:2:8: executing "t" at <.Name.X>: can\'t evaluate field X in type string',
    ),
    (
        '{{ define "d" }}{{ len 1 }}{{ end }}{{ template "d" }}',
        None,
        'template: t:1:19: executing "d" at <len 1>: error calling len: len of type int',
    ),
    (
        "{{ .Nope }}",
        User("a"),
        'template: t:1:3: executing "t" at <.Nope>: can\'t evaluate field Nope in type User',
    ),
    (
        "{{ ._x }}",
        User("a"),
        'template: t:1:3: executing "t" at <._x>: can\'t evaluate field _x in type User',
    ),
]


@pytest.mark.parametrize(("text", "data", "message"), EXEC_ERRORS)
def test_execution_error_reads_as_go(text: str, data: Any, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        run(text, data)
    assert str(caught.value) == message


def test_error_from_a_function_is_wrapped() -> None:
    def boom(x: int) -> int:
        raise ValueError(f"bad {x}")

    with pytest.raises(TemplateError) as caught:
        run("{{ boom 1 }}", boom=boom)
    assert str(caught.value) == (
        'template: t:1:3: executing "t" at <boom 1>: error calling boom: bad 1'
    )
    assert (caught.value.line, caught.value.column) == (1, 4)


def test_long_node_is_shown_whole_in_the_message() -> None:
    # Go 1.19+ (promtool 2.42) no longer cuts the context to 20 characters.
    with pytest.raises(TemplateError, match=r'at <index "a{24}" 99>: error calling index'):
        run('{{ index "aaaaaaaaaaaaaaaaaaaaaaaa" 99 }}')


def test_recursion_is_stopped() -> None:
    with pytest.raises(TemplateError, match=r"exceeded maximum template depth \(1000\)"):
        run('{{ define "loop" }}{{ template "loop" . }}{{ end }}{{ template "loop" . }}')
    assert MAX_TEMPLATE_DEPTH == 1000


def test_funcs_at_execute_replace_those_at_parse() -> None:
    template = parse("{{ who }}", funcs={"who": lambda: "parse"})
    assert template.execute(None) == "parse"
    assert template.execute(None, funcs={"who": lambda: "exec"}) == "exec"
    assert template.execute(None) == "parse"


def test_and_or_short_circuit() -> None:
    calls: list[int] = []

    def mark(n: int) -> int:
        calls.append(n)
        return n

    assert run("{{ and (mark 0) (mark 1) }}{{ or (mark 2) (mark 3) }}", mark=mark) == "02"
    assert calls == [0, 2]


def test_define_adds_templates_to_the_set() -> None:
    template = parse('{{ template "greet" . }}!', name="main")
    template.define('{{ define "greet" }}hello {{ .Name }}{{ end }}', name="file.tmpl")
    assert template.execute({"Name": "ann"}) == "hello ann!"
    assert template.execute_template("greet", {"Name": "bob"}) == "hello bob"
    template.define('{{ define "greet" }}bye {{ .Name }}{{ end }}')
    assert template.execute_template("greet", {"Name": "bob"}) == "bye bob"
    # As Go's ParseFiles, the file's own (here empty) body is a template too.
    assert template.names() == ["file.tmpl", "greet", "main"]


def test_define_with_a_name_adds_the_body_as_a_template() -> None:
    template = parse("")
    template.define("body {{ . }}", name="b")
    assert template.execute_template("b", 1) == "body 1"


def test_execute_template_of_unknown_name() -> None:
    with pytest.raises(TemplateError) as caught:
        parse("x", name="main").execute_template("nope", None)
    assert str(caught.value) == 'template: no template "nope" associated with template "main"'


def test_mapping_that_is_not_a_dict() -> None:
    class Labels(Mapping[str, str]):
        def __getitem__(self, key: str) -> str:
            return {"job": "api"}[key]

        def __iter__(self) -> Any:
            return iter(["job"])

        def __len__(self) -> int:
            return 1

    assert run("{{ .job }}|{{ .other }}|{{ range $k, $v := . }}{{ $k }}{{ end }}", Labels()) == (
        "api||job"
    )


def test_parse_once_execute_many_is_thread_safe_and_repeatable() -> None:
    template = parse("{{ range . }}{{ $x := . }}{{ $x }}{{ end }}")
    assert [template.execute([i, i + 1]) for i in range(3)] == ["01", "12", "23"]
