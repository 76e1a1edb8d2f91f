"""Alertmanager matcher syntax and semantics (cases from pkg/labels/parse_test.go)."""

from __future__ import annotations

import pytest

from inferwatch.alerting.matchers import Matcher, format_matchers, parse_matcher, parse_matchers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{foo="bar"}', [Matcher("foo", "=", "bar")]),
        ('{foo=~"bar.*"}', [Matcher("foo", "=~", "bar.*")]),
        ('{foo!="bar"}', [Matcher("foo", "!=", "bar")]),
        ('{foo!~"bar.*"}', [Matcher("foo", "!~", "bar.*")]),
        (
            '{foo = "bar", dings != "bums", }',
            [Matcher("foo", "=", "bar"), Matcher("dings", "!=", "bums")],
        ),
        ("foo=bar,dings!=bums", [Matcher("foo", "=", "bar"), Matcher("dings", "!=", "bums")]),
        (
            '{quote="She said: \\"Hi, ladies!\\""}',
            [Matcher("quote", "=", 'She said: "Hi, ladies!"')],
        ),
        ('statuscode=~"5.."', [Matcher("statuscode", "=~", "5..")]),
        ('tags=~"a,b"', [Matcher("tags", "=~", "a,b")]),
        ('{foo="bar\\nbaz"}', [Matcher("foo", "=", "bar\nbaz")]),
        ('{foo="C:\\Windows"}', [Matcher("foo", "=", "C:\\Windows")]),
        ("{foo=}", [Matcher("foo", "=", "")]),
    ],
)
def test_parse_matchers_accepts_alertmanager_syntax(text: str, expected: list[Matcher]) -> None:
    assert parse_matchers(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severity", "bad matcher format: severity"),
        ('foo="bar', 'matcher value contains unescaped double quote: "bar'),
        ('foo=ba"r', 'matcher value contains unescaped double quote: ba"r'),
        ("0foo=bar", "bad matcher format: 0foo=bar"),
        ("foo=~(", "error parsing regexp"),
    ],
)
def test_parse_matcher_rejects_bad_text_naming_it(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_matcher(text)


def test_regex_is_anchored_and_missing_label_is_empty() -> None:
    m = parse_matcher('job=~"api|web"')
    assert m.matches({"job": "api"})
    assert not m.matches({"job": "api2"})
    assert not m.matches({})
    assert parse_matcher('env!~".+"').matches({})
    assert parse_matcher('env=""').matches({"other": "x"})


def test_str_is_alertmanagers_form() -> None:
    assert str(parse_matcher('a=~"x\\"y"')) == 'a=~"x\\"y"'
    assert format_matchers([Matcher("b", "!=", "2"), Matcher("a", "=", "1")]) == ('{b!="2",a="1"}')


def test_matcher_rejects_unknown_operator() -> None:
    with pytest.raises(ValueError, match="unknown match operator"):
        Matcher("a", "==", "b")  # type: ignore[arg-type]
