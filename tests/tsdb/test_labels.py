from __future__ import annotations

import math

import pytest

from inferwatch.tsdb.index import Postings
from inferwatch.tsdb.labels import STALE_NAN, Matcher, is_stale, make_labels


def test_stale_marker_is_a_specific_nan() -> None:
    assert math.isnan(STALE_NAN)
    assert is_stale(STALE_NAN)
    assert not is_stale(float("nan"))
    assert not is_stale(1.0)


def test_labels_are_sorted_and_drop_empty_values() -> None:
    assert make_labels({"b": "2", "a": "1", "c": ""}) == (("a", "1"), ("b", "2"))


@pytest.mark.parametrize(
    ("op", "value", "subject", "expected"),
    [
        ("=", "a", "a", True),
        ("!=", "a", "a", False),
        ("=~", "a|b", "b", True),
        ("=~", "a", "ab", False),  # anchored at both ends
        ("=~", ".*", "", True),
        ("!~", "a.*", "abc", False),
        ("=~", "a.c", "a\nc", True),  # . matches newline, as in Prometheus (RE2 s flag)
    ],
)
def test_matcher_semantics(op: str, value: str, subject: str, expected: bool) -> None:
    assert Matcher("x", op, value).matches(subject) is expected  # type: ignore[arg-type]


def test_bad_regex_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        Matcher("x", "=~", "(")


def index() -> Postings:
    p = Postings()
    p.add(1, make_labels({"__name__": "up", "job": "a"}))
    p.add(2, make_labels({"__name__": "up", "job": "b"}))
    p.add(3, make_labels({"__name__": "up"}))
    p.add(4, make_labels({"__name__": "req_total", "job": "a"}))
    return p


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ([Matcher("__name__", "=", "up")], [1, 2, 3]),
        ([Matcher("__name__", "=", "up"), Matcher("job", "!=", "a")], [2, 3]),
        ([Matcher("__name__", "=", "up"), Matcher("job", "=", "")], [3]),
        ([Matcher("job", "=~", "a|b")], [1, 2, 4]),
        ([Matcher("__name__", "=~", "u.*"), Matcher("job", "!~", "b")], [1, 3]),
        ([Matcher("__name__", "=", "nope")], []),
    ],
)
def test_postings_select(matchers: list[Matcher], expected: list[int]) -> None:
    assert index().select(matchers) == expected


def test_postings_remove_forgets_values() -> None:
    p = index()
    p.remove(4)
    assert p.label_values("__name__") == ["up"]
