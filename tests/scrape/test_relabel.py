"""Relabeling, checked on the examples of Prometheus's own relabel tests."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferwatch.scrape import RelabelConfig, relabel
from inferwatch.scrape.relabel import compile_template

ABC = {"a": "foo", "b": "bar", "c": "baz"}


def replace(sources: list[str], regex: str, target: str, replacement: str) -> RelabelConfig:
    return RelabelConfig(
        source_labels=tuple(sources), regex=regex, target_label=target, replacement=replacement
    )


def test_replace_writes_the_expanded_replacement_into_the_target_label() -> None:
    rule = replace(["a"], "f(.*)", "d", "ch${1}-ch${1}")
    assert relabel(ABC, [rule]) == {**ABC, "d": "choo-choo"}


def test_replace_joins_source_labels_with_the_separator_and_chains() -> None:
    rules = [
        replace(["a", "b"], "f(.*);(.*)r", "a", "b${1}${2}m"),
        replace(["c", "a"], "(b).*b(.*)ba(.*)", "d", "$1$2$2$3"),
    ]
    assert relabel(ABC, rules) == {"a": "boobam", "b": "bar", "c": "baz", "d": "boooom"}


def test_replace_with_a_custom_separator() -> None:
    rule = RelabelConfig(source_labels=("a", "b"), separator="/", regex="(.*)", target_label="path")
    assert relabel(ABC, [rule]) == {**ABC, "path": "foo/bar"}


def test_replace_captures_a_group_in_the_middle() -> None:
    assert relabel({"a": "abc"}, [replace(["a"], ".*(b).*", "d", "$1")]) == {"a": "abc", "d": "b"}


def test_replace_does_nothing_when_the_regex_does_not_match() -> None:
    assert relabel({"a": "boo"}, [replace(["a"], "f", "b", "bar")]) == {"a": "boo"}


def test_replace_can_template_the_target_label() -> None:
    rule = replace(["a"], "some-([^-]+)-([^,]+)", "${1}", "${2}")
    assert relabel({"a": "some-name-value"}, [rule]) == {"a": "some-name-value", "name": "value"}


def test_an_empty_replacement_deletes_the_target_label() -> None:
    rule = replace(["a"], "some-([^-]+)-([^,]+)", "${1}", "${3}")
    assert relabel({"a": "some-name-value", "name": "x"}, [rule]) == {"a": "some-name-value"}


def test_an_invalid_expanded_target_label_leaves_the_labels_alone() -> None:
    rules = [
        replace(["a"], "some-([^-]+)-([^,]+)", "${3}", "${1}"),
        replace(["a"], "some-([^-]+)(-[^,]+)", "${3}", "${1}"),
    ]
    assert relabel({"a": "some-name-0"}, rules) == {"a": "some-name-0"}


def test_replace_extracts_several_labels_from_one_value() -> None:
    tags = "path:/secret,job:some-job,label:foo=bar"
    rules = [
        replace(["__meta_sd_tags"], "(?:.+,|^)path:(/[^,]+).*", "__metrics_path__", "${1}"),
        replace(["__meta_sd_tags"], "(?:.+,|^)job:([^,]+).*", "job", "${1}"),
        replace(["__meta_sd_tags"], "(?:.+,|^)label:([^=]+)=([^,]+).*", "${1}", "${2}"),
    ]
    assert relabel({"__meta_sd_tags": tags}, rules) == {
        "__meta_sd_tags": tags,
        "__metrics_path__": "/secret",
        "job": "some-job",
        "foo": "bar",
    }


def test_a_missing_source_label_counts_as_empty() -> None:
    rule = replace(["a", "missing"], "(.*);", "d", "$1")
    assert relabel({"a": "x"}, [rule]) == {"a": "x", "d": "x"}


def test_templates_follow_go_expand() -> None:
    rule = replace(["a"], "(?P<word>f)(o+)", "d", "$$1=$1 ${word}|$word|$2x|${2}x|$|$-")
    # "$2x" names a group "2x", which does not exist, so it expands to nothing.
    assert relabel({"a": "foo"}, [rule]) == {"a": "foo", "d": "$1=f f|f||oox|$|$-"}


def test_drop_drops_the_series_when_the_regex_matches() -> None:
    assert (
        relabel(
            {"a": "foo", "b": "bar"},
            [RelabelConfig(source_labels=("a",), regex=".*o.*", action="drop")],
        )
        is None
    )


def test_a_drop_stops_the_rules_that_follow() -> None:
    rules = [
        RelabelConfig(source_labels=("a",), regex=".*o.*", action="drop"),
        replace(["a"], "f(.*)", "d", "ch$1-ch$1"),
    ]
    assert relabel({"a": "foo"}, rules) is None


def test_drop_keeps_the_series_when_the_regex_does_not_match() -> None:
    assert relabel(
        {"a": "foo"}, [RelabelConfig(source_labels=("a",), regex="no-match", action="drop")]
    ) == {"a": "foo"}


def test_regexes_are_fully_anchored() -> None:
    rule = RelabelConfig(source_labels=("a",), regex="f|o", action="drop")
    assert relabel({"a": "foo"}, [rule]) == {"a": "foo"}


def test_keep_keeps_only_matching_series() -> None:
    keep = RelabelConfig(source_labels=("a",), regex="f.*", action="keep")
    assert relabel({"a": "foo"}, [keep]) == {"a": "foo"}
    assert relabel({"a": "boo"}, [keep]) is None
    assert (
        relabel(
            {"a": "foo"}, [RelabelConfig(source_labels=("a",), regex="no-match", action="keep")]
        )
        is None
    )


def test_labelkeep_keeps_only_labels_whose_names_match() -> None:
    labels = {"a": "foo", "b1": "bar", "b2": "baz"}
    assert relabel(labels, [RelabelConfig(regex="(b.*)", action="labelkeep")]) == {
        "b1": "bar",
        "b2": "baz",
    }


def test_labeldrop_drops_labels_whose_names_match() -> None:
    labels = {"a": "foo", "b1": "bar", "b2": "baz"}
    assert relabel(labels, [RelabelConfig(regex="(b.*)", action="labeldrop")]) == {"a": "foo"}


def test_labeldrop_then_replace_then_keep() -> None:
    port = "__meta_kubernetes_pod_container_port_name"
    annotation = "__meta_kubernetes_pod_annotation_XXX_metrics_port"
    rules = [
        RelabelConfig(regex=f"^{port}$", action="labeldrop"),
        replace([annotation], "(.+)", port, "metrics"),
        RelabelConfig(source_labels=(port,), regex="^metrics$", action="keep"),
    ]
    assert relabel({port: "foo", annotation: "9091"}, rules) == {
        annotation: "9091",
        port: "metrics",
    }


def test_relabel_leaves_its_input_alone_and_drops_empty_values() -> None:
    labels = {"__name__": "up", "job": "x", "empty": ""}
    assert relabel(labels, [RelabelConfig(regex="job", action="labeldrop")]) == {"__name__": "up"}
    assert labels == {"__name__": "up", "job": "x", "empty": ""}


def test_character_classes_are_ascii_like_go() -> None:
    rule = RelabelConfig(source_labels=("a",), regex=r"\w+", action="keep")
    assert relabel({"a": "abc_1"}, [rule]) is not None
    assert relabel({"a": "größe"}, [rule]) is None


def test_dot_does_not_match_a_newline() -> None:
    rule = RelabelConfig(source_labels=("a",), regex="a.*", action="keep")
    assert relabel({"a": "a\nb"}, [rule]) is None


@pytest.mark.parametrize("action", ["keep", "drop"])
@given(pattern=st.text(max_size=8), value=st.text(max_size=8))
def test_a_literal_regex_matches_exactly_the_whole_value(
    action: str, pattern: str, value: str
) -> None:
    rule = RelabelConfig(source_labels=("a",), regex=re.escape(pattern), action=action)  # type: ignore[arg-type]
    kept = relabel({"a": value}, [rule]) is not None
    assert kept == ((pattern == value) == (action == "keep"))


@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=20))
def test_a_template_without_dollars_is_literal(text: str) -> None:
    assert "".join(p for p in compile_template(text) if isinstance(p, str)) == text
