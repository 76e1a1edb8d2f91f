"""Evaluating a rule group over the real SQLite store."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferwatch.promql import Engine
from inferwatch.rules.group import Group, generator_url
from inferwatch.rules.model import AlertingRule, RecordingRule, Rule, RuleGroup
from inferwatch.tsdb.labels import Matcher, is_stale, make_labels
from inferwatch.tsdb.store import Store

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "rules.db", fsync="never") as s:
        yield s


def up(store: Store, ts: float, **instances: float) -> None:
    store.append(
        int(ts * 1000),
        [
            (make_labels({"__name__": "up", "job": "api", "instance": k}), v)
            for k, v in instances.items()
        ],
    )


def make_group(store: Store, *rules: Rule, limit: int = 0, offset: float = 0.0) -> Group:
    spec = RuleGroup(name="g", file="f.yml", rules=rules, limit=limit)
    return Group(spec, storage=store, engine=Engine(store), interval_s=60, query_offset_s=offset)


def values(
    store: Store, name: str, t0: float, t1: float
) -> dict[tuple[tuple[str, str], ...], list[float]]:
    series = store.select([Matcher("__name__", "=", name)], int(t0 * 1000), int(t1 * 1000))
    return {s.labels: [float(v) for v in s.values] for s in series}


def test_recording_rule_writes_renamed_result_with_its_labels(store: Store) -> None:
    up(store, T0, a=1, b=0)
    group = make_group(
        store, RecordingRule("job:up:sum", "sum by (job) (up)", labels={"team": "ml"})
    )
    group.eval(T0)
    assert values(store, "job:up:sum", T0, T0) == {
        make_labels({"__name__": "job:up:sum", "job": "api", "team": "ml"}): [1.0]
    }
    assert group.statuses[0].health == "ok"
    assert group.last_evaluation == T0


def test_later_rules_see_earlier_rules_output_in_the_same_evaluation(store: Store) -> None:
    up(store, T0, a=1, b=1)
    group = make_group(
        store,
        RecordingRule("job:up:sum", "sum by (job) (up)"),
        RecordingRule("job:up:double", "job:up:sum * 2"),
    )
    group.eval(T0)
    assert list(values(store, "job:up:double", T0, T0).values()) == [[4.0]]


def test_a_scalar_result_is_recorded_without_labels(store: Store) -> None:
    group = make_group(store, RecordingRule("answer", "42"))
    group.eval(T0)
    assert values(store, "answer", T0, T0) == {make_labels({"__name__": "answer"}): [42.0]}


def test_series_no_longer_produced_get_a_staleness_marker(store: Store) -> None:
    up(store, T0, a=1, b=1)
    group = make_group(store, RecordingRule("inst:up", "up == 1"))
    group.eval(T0)
    up(store, T0 + 60, a=1, b=0)
    group.eval(T0 + 60)
    got = values(store, "inst:up", T0, T0 + 60)
    a = make_labels({"__name__": "inst:up", "job": "api", "instance": "a"})
    b = make_labels({"__name__": "inst:up", "job": "api", "instance": "b"})
    assert got[a] == [1.0, 1.0]
    assert got[b][0] == 1.0 and is_stale(got[b][1])


def test_a_failing_rule_is_marked_and_the_group_goes_on(store: Store) -> None:
    up(store, T0, a=1, b=1)
    group = make_group(
        store,
        RecordingRule("bad", 'label_replace(up, "instance", "x", "", "")'),
        RecordingRule("good", "count(up)"),
    )
    group.eval(T0)
    assert group.statuses[0].health == "err"
    assert "same labelset" in group.statuses[0].last_error
    assert group.statuses[1].health == "ok"
    assert list(values(store, "good", T0, T0).values()) == [[2.0]]


def test_recording_rule_duplicates_after_rule_labels_are_an_error(store: Store) -> None:
    up(store, T0, a=1, b=1)
    group = make_group(store, RecordingRule("x", "up", labels={"instance": "same"}))
    group.eval(T0)
    assert group.statuses[0].last_error == (
        "vector contains metrics with the same labelset after applying rule labels"
    )


def test_recording_rule_over_the_limit_writes_nothing(store: Store) -> None:
    up(store, T0, a=1, b=1, c=1)
    group = make_group(store, RecordingRule("x", "up"), limit=2)
    group.eval(T0)
    assert group.statuses[0].last_error == "exceeded limit of 2 with 3 series"
    assert values(store, "x", T0, T0) == {}


def test_alerting_rule_writes_alerts_series(store: Store) -> None:
    up(store, T0, a=0)
    group = make_group(store, AlertingRule("Down", "up == 0", for_s=60))
    group.eval(T0)
    got = values(store, "ALERTS", T0, T0)
    assert got == {
        make_labels(
            {
                "__name__": "ALERTS",
                "alertname": "Down",
                "alertstate": "pending",
                "instance": "a",
                "job": "api",
            }
        ): [1.0]
    }
    assert list(values(store, "ALERTS_FOR_STATE", T0, T0).values()) == [[T0]]


def test_query_offset_evaluates_and_writes_in_the_past(store: Store) -> None:
    up(store, T0, a=1)
    group = make_group(store, RecordingRule("x", "up"), offset=30)
    group.eval(T0 + 30)
    series = store.select([Matcher("__name__", "=", "x")], 0, int(2e12))
    assert [int(t) for t in series[0].timestamps] == [int(T0 * 1000)]


def test_generator_url_links_to_the_graph_table() -> None:
    assert generator_url("http://p:9090", 'up{job="a b"} == 0') == (
        "http://p:9090/graph?g0.expr=up%7Bjob%3D%22a+b%22%7D+%3D%3D+0&g0.tab=1"
    )


def test_mark_all_stale_ends_every_series_written(store: Store) -> None:
    up(store, T0, a=1)
    group = make_group(store, RecordingRule("x", "up"))
    group.eval(T0)
    group.mark_all_stale(T0 + 10)
    (vals,) = values(store, "x", T0, T0 + 10).values()
    assert vals[0] == 1.0 and math.isnan(vals[1]) and is_stale(vals[1])
