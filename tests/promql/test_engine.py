"""The engine's own contract beyond the conformance files: limits, errors, the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferwatch._errors import QueryError, QueryLimitError, QuerySyntaxError, QueryTimeout
from inferwatch.promql import Engine, RangeSeries, Sample
from inferwatch.promql.memstore import MemoryStorage
from inferwatch.tsdb.labels import make_labels
from inferwatch.tsdb.store import Store

MINUTE = 60_000


def counter_storage(series: int = 3, points: int = 61) -> MemoryStorage:
    storage = MemoryStorage()
    ts = np.arange(points, dtype=np.int64) * 15_000
    for i in range(series):
        labels = make_labels({"__name__": "requests_total", "model": f"m{i}"})
        storage.add(labels, ts, np.arange(points, dtype=np.float64) * (i + 1))
    return storage


def test_rate_over_a_steady_counter() -> None:
    engine = Engine(counter_storage())
    result = engine.instant_query("rate(requests_total[5m])", 10 * MINUTE)
    assert result.result_type == "vector"
    assert isinstance(result.value, list)
    by_model = {dict(s.labels)["model"]: s.v for s in result.value if isinstance(s, Sample)}
    # One increment per 15 s scrape times the model's factor; __name__ is dropped.
    assert by_model == pytest.approx({"m0": 1 / 15, "m1": 2 / 15, "m2": 3 / 15})
    assert all("__name__" not in dict(s.labels) for s in result.value if isinstance(s, Sample))


def test_range_query_steps_and_sorting() -> None:
    engine = Engine(counter_storage())
    result = engine.range_query("sum by (model) (requests_total)", 0, 2 * MINUTE, 30_000)
    assert result.result_type == "matrix"
    assert isinstance(result.value, list)
    series = [s for s in result.value if isinstance(s, RangeSeries)]
    assert [dict(s.labels)["model"] for s in series] == ["m0", "m1", "m2"]
    assert series[0].timestamps.tolist() == [0, 30_000, 60_000, 90_000, 120_000]
    assert series[2].values.tolist() == [0.0, 6.0, 12.0, 18.0, 24.0]


def test_too_many_samples_is_prometheus_error() -> None:
    engine = Engine(counter_storage(), max_samples=100)
    with pytest.raises(QueryLimitError) as err:
        engine.instant_query("sum(rate(requests_total[15m]))", 15 * MINUTE)
    assert str(err.value) == (
        "query processing would load too many samples into memory in query execution"
    )
    assert err.value.error_type == "execution"


def test_too_many_series_returned() -> None:
    engine = Engine(counter_storage(series=5), max_series=4)
    with pytest.raises(QueryLimitError, match="5 series, more than the limit of 4"):
        engine.instant_query("requests_total", MINUTE)
    assert len(engine.instant_query("sum by (model) (requests_total) > 4", MINUTE).value) < 5


def test_timeout_is_a_timeout_error() -> None:
    engine = Engine(counter_storage(), timeout_s=0.0)
    with pytest.raises(QueryTimeout) as err:
        engine.instant_query("requests_total", MINUTE)
    assert err.value.error_type == "timeout"
    assert str(err.value) == "query timed out in expression evaluation"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sum(rate(x[5m])", "1:4: parse error: unclosed left parenthesis"),
        ("1 +", "1:4: parse error: unexpected end of input"),
        ("foo(up)", '1:1: parse error: unknown function with name "foo"'),
        (
            "rate(up)",
            '1:6: parse error: expected type range vector in call to function "rate", '
            "got instant vector",
        ),
    ],
)
def test_syntax_errors_name_the_place(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        Engine(MemoryStorage()).instant_query(query, 0)
    assert str(err.value) == message
    assert err.value.error_type == "bad_data"


def test_range_query_rejects_range_vectors_and_bad_steps() -> None:
    engine = Engine(counter_storage())
    with pytest.raises(QuerySyntaxError, match='invalid expression type "range vector"'):
        engine.range_query("requests_total[5m]", 0, MINUTE, 15_000)
    with pytest.raises(QuerySyntaxError, match="zero or negative query resolution"):
        engine.range_query("requests_total", 0, MINUTE, 0)
    with pytest.raises(QuerySyntaxError, match="end timestamp must not be before start"):
        engine.range_query("requests_total", MINUTE, 0, 15_000)
    with pytest.raises(QuerySyntaxError, match="exceeded maximum resolution of 11,000"):
        engine.range_query("requests_total", 0, 11_001 * 1000, 1000)


def test_duplicate_label_sets_are_an_execution_error() -> None:
    storage = MemoryStorage()
    ts = np.array([0, 15_000], dtype=np.int64)
    storage.add(make_labels({"__name__": "a_total", "job": "x"}), ts, np.array([1.0, 2.0]))
    storage.add(make_labels({"__name__": "b_total", "job": "x"}), ts, np.array([1.0, 2.0]))
    with pytest.raises(QueryError, match="vector cannot contain metrics with the same labelset"):
        Engine(storage).instant_query('abs({job="x"})', 15_000)
    # Aggregating before the name is dropped is fine (delayed name removal).
    result = Engine(storage).instant_query('sum by (job) (abs({job="x"}))', 15_000)
    assert [(dict(s.labels), s.v) for s in result.value if isinstance(s, Sample)] == [
        ({"job": "x"}, 4.0)
    ]


def test_the_store_answers_like_memory(tmp_path: Path) -> None:
    storage = counter_storage()
    store = Store(tmp_path / "q.db")
    try:
        for k in range(61):
            samples = [
                (make_labels({"__name__": "requests_total", "model": f"m{i}"}), k * (i + 1.0))
                for i in range(3)
            ]
            store.append(k * 15_000, samples)
        query = (
            "sum by (model) (rate(requests_total[2m])) "
            "/ ignoring(model) group_left sum(rate(requests_total[2m]))"
        )
        ours = Engine(store).range_query(query, 5 * MINUTE, 15 * MINUTE, 15_000)
        ref = Engine(storage).range_query(query, 5 * MINUTE, 15 * MINUTE, 15_000)
        assert isinstance(ours.value, list) and isinstance(ref.value, list)
        assert len(ours.value) == len(ref.value) == 3
        for a, b in zip(ours.value, ref.value, strict=True):
            assert isinstance(a, RangeSeries) and isinstance(b, RangeSeries)
            assert a.labels == b.labels
            assert a.timestamps.tolist() == b.timestamps.tolist()
            assert np.allclose(a.values, b.values)
        first = ours.value[0]
        assert isinstance(first, RangeSeries)
        assert np.allclose(first.values, 1 / 6)  # m0 grows 1 of every 1+2+3
    finally:
        store.close()
