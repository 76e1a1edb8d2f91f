from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from inferwatch._errors import QueryError
from inferwatch.promql.memstore import MemoryStorage
from inferwatch.promql.promqltest import (
    BadCmd,
    ClearCmd,
    EvalCmd,
    LoadCmd,
    QueryEngine,
    almost_equal,
    load_subset,
    main,
    parse_duration,
    parse_number,
    parse_series,
    parse_test,
    run_file,
    run_text,
)
from inferwatch.promql.value import Queryable, QueryResult, RangeSeries, Sample, Scalar
from inferwatch.tsdb.labels import STALE_NAN, Matcher, is_stale, make_labels

REPO_ROOT = Path(__file__).resolve().parents[2]
# The project's shared copy when checked out beside it; else the copy vendored here
# (Prometheus's files, Apache-2.0, unchanged; see data/promqltest/SOURCE.txt).
_SHARED = REPO_ROOT.parent / "shared" / "conformance" / "promqltest"
CONFORMANCE = _SHARED if _SHARED.is_dir() else Path(__file__).parent / "data" / "promqltest"
SUBSET_TSV = CONFORMANCE / "SUBSET.tsv"


def lbl(**pairs: str) -> tuple[tuple[str, str], ...]:
    return make_labels(pairs)


# --------------------------------------------------------------------------- fakes


class FakeEngine:
    """Answers every query from ``answer(kind, expr, args)``; records the calls."""

    def __init__(self, answer: Callable[[str, str, tuple[int, ...]], QueryResult]) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str, tuple[int, ...]]] = []

    def instant_query(self, query: str, time_ms: int, /) -> QueryResult:
        self.calls.append(("instant", query, (time_ms,)))
        return self.answer("instant", query, (time_ms,))

    def range_query(self, query: str, start_ms: int, end_ms: int, step_ms: int, /) -> QueryResult:
        self.calls.append(("range", query, (start_ms, end_ms, step_ms)))
        return self.answer("range", query, (start_ms, end_ms, step_ms))


class SelectorEngine:
    """A tiny real engine: a bare metric name, the latest sample within 5 minutes."""

    def __init__(self, storage: Queryable) -> None:
        self.storage = storage

    def _at(self, query: str, t: int) -> list[Sample]:
        if not query.isidentifier():
            raise QueryError(f"unsupported query {query!r}", error_type="bad_data")
        out = []
        for s in self.storage.select([Matcher("__name__", "=", query)], t - 300_000 + 1, t):
            v = float(s.values[-1])
            if not is_stale(v):
                out.append(Sample(s.labels, t, v))
        return out

    def instant_query(self, query: str, time_ms: int, /) -> QueryResult:
        return QueryResult("vector", self._at(query, time_ms))

    def range_query(self, query: str, start_ms: int, end_ms: int, step_ms: int, /) -> QueryResult:
        points: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
        for t in range(start_ms, end_ms + 1, step_ms):
            for s in self._at(query, t):
                points.setdefault(s.labels, []).append((t, s.v))
        return QueryResult(
            "matrix",
            [
                RangeSeries(
                    k,
                    np.array([p[0] for p in v], dtype=np.int64),
                    np.array([p[1] for p in v], dtype=np.float64),
                )
                for k, v in sorted(points.items())
            ],
        )


def run_selector(text: str) -> list[tuple[int, bool, str]]:
    results = run_text(text, engine_factory=SelectorEngine)
    return [(r.line, r.passed, r.message) for r in results]


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("text", "ms"),
    [("0", 0), ("10s", 10_000), ("1m", 60_000), ("1h30m", 5_400_000), ("1s500ms", 1_500)],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "10", "1.5s", "-1m", "m"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_value_notation_expands_like_prometheus() -> None:
    labels, values = parse_series('foo{a="x", b="y"} 1+2x3 5-1x2 7x2 _ _x2 stale Inf -Inf NaN')
    assert labels == make_labels({"__name__": "foo", "a": "x", "b": "y"})
    assert values[:12] == [1, 3, 5, 7, 5, 4, 3, 7, 7, 7, None, None]
    assert values[12] is None
    assert is_stale(values[13])  # type: ignore[arg-type]
    assert values[14] == math.inf and values[15] == -math.inf
    assert math.isnan(values[16]) and not is_stale(values[16])  # type: ignore[arg-type]


def test_series_labels_name_forms() -> None:
    assert parse_series("{} 1")[0] == ()
    assert parse_series('{__name__="m", a="1",} 1')[0] == make_labels({"__name__": "m", "a": "1"})
    assert parse_series('{"my.metric", a="q\\"uote"} 1')[0] == make_labels(
        {"__name__": "my.metric", "a": 'q"uote'}
    )
    assert parse_series("up 2e3 .5 -1E-2")[1] == [2000.0, 0.5, -0.01]


def test_native_histograms_are_reported_unsupported() -> None:
    with pytest.raises(ValueError, match="native histogram"):
        parse_series("h {{schema:0 sum:1 count:1}}")


def test_scalar_numbers_are_read_as_go_does() -> None:
    assert parse_number("0x10") == 16
    assert parse_number("010") == 8
    assert parse_number("1.5e3") == 1500
    assert math.isnan(parse_number("NaN"))
    assert parse_number("+Inf") == math.inf
    with pytest.raises(ValueError):
        parse_number('foo{a="b"} 1')


def test_almost_equal() -> None:
    assert almost_equal(1.0, 1.0 + 1e-9)
    assert not almost_equal(1.0, 1.001)
    assert almost_equal(math.nan, math.nan)
    assert almost_equal(STALE_NAN, STALE_NAN)
    assert not almost_equal(STALE_NAN, math.nan)
    assert not almost_equal(0.0, 1e-300)


# --------------------------------------------------------------------------- parsing


def test_parse_commands_and_lines() -> None:
    text = """\
# comment
load 5m
  foo{a="1"} 0+10x2
  bar@st 1
  baz {{schema:0 sum:1}}

eval instant at 10m foo
  expect no_warn
  foo{a="1"} 20

eval range from 0 to 10m step 5m foo
  foo{a="1"} 0 10 _

eval_fail instant at 0 sum(
  expected_fail_message unexpected end of input

clear
bogus line
"""
    cmds = parse_test(text)
    kinds = [type(c) for c in cmds]
    assert kinds == [LoadCmd, EvalCmd, EvalCmd, EvalCmd, ClearCmd, BadCmd]
    load = cmds[0]
    assert isinstance(load, LoadCmd)
    assert load.interval_ms == 300_000 and list(load.series.values()) == [[0, 10, 20]]
    assert load.skipped  # the histogram series
    instant, ranged, failing = cmds[1], cmds[2], cmds[3]
    assert isinstance(instant, EvalCmd) and isinstance(ranged, EvalCmd)
    assert isinstance(failing, EvalCmd)
    assert (instant.line, instant.expr, instant.eval_ms) == (7, "foo", 600_000)
    assert "no_warn" in instant.expects
    assert instant.expected == {make_labels({"__name__": "foo", "a": "1"}): (1, [20.0])}
    assert (ranged.line, ranged.is_range, ranged.step_ms, ranged.end_ms) == (
        11,
        True,
        300_000,
        600_000,
    )
    assert failing.fail and failing.expected_fail_message == "unexpected end of input"
    assert cmds[5].line == 18


def test_multiple_values_in_instant_eval_is_a_case_error() -> None:
    (cmd,) = parse_test("eval instant at 0 foo\n  foo 1 2\n")
    assert isinstance(cmd, EvalCmd) and cmd.error and "expect range vector" in cmd.error


def test_expect_lines() -> None:
    text = """\
eval instant at 1m foo
  expect fail regex: bad.*thing
  expect warn msg: PromQL warning: x (1:1)
  expect ordered
  expect range vector from 10s to 1m step 10s
"""
    (cmd,) = parse_test(text)
    assert isinstance(cmd, EvalCmd)
    assert cmd.is_fail and cmd.is_ordered
    assert cmd.expects["warn"][0].message == "PromQL warning: x (1:1)"
    assert cmd.expects["fail"][0].matches("a bad thing")
    assert (cmd.start_ms, cmd.end_ms, cmd.step_ms, cmd.eval_ms) == (10_000, 60_000, 10_000, 60_000)


# --------------------------------------------------------------------------- running

LOADED = """\
load 1m
  foo{a="1"} 0+1x10
  foo{a="2"} 5x10
"""


def test_matching_results_pass() -> None:
    text = (
        LOADED
        + """
eval instant at 5m foo
  foo{a="1"} 5
  foo{a="2"} 5

eval range from 0 to 2m step 1m foo
  foo{a="1"} 0 1 2
  foo{a="2"} 5 5 5
"""
    )
    assert run_selector(text) == [(5, True, ""), (9, True, "")]


def test_a_wrong_value_fails() -> None:
    text = LOADED + '\neval instant at 5m foo\n  foo{a="1"} 6\n  foo{a="2"} 5\n'
    [(line, passed, message)] = run_selector(text)
    assert (line, passed) == (5, False)
    assert "expected 6.0" in message and "got 5.0" in message


def test_wrong_range_values_and_gaps_fail() -> None:
    text = (
        LOADED + '\neval range from 0 to 2m step 1m foo\n  foo{a="1"} 0 _ 2\n  foo{a="2"} 5 5 5\n'
    )
    [(_, passed, message)] = run_selector(text)
    assert not passed and "expected 2 float points" in message


def test_missing_and_extra_series_fail() -> None:
    missing = LOADED + '\neval instant at 5m foo\n  foo{a="1"} 5\n  foo{a="2"} 5\n  foo{a="3"} 5\n'
    extra = LOADED + '\neval instant at 5m foo\n  foo{a="1"} 5\n'
    assert "not found" in run_selector(missing)[0][2]
    assert "unexpected metric" in run_selector(extra)[0][2]


def test_empty_expectation_needs_empty_result() -> None:
    assert run_selector(LOADED + "\neval instant at 5m nothing\n")[0][1]
    assert not run_selector(LOADED + "\neval instant at 5m foo\n")[0][1]


def test_clear_empties_the_store() -> None:
    text = LOADED + "\nclear\n\neval instant at 5m foo\n"
    assert run_selector(text)[0][1]


def test_staleness_markers_are_loaded() -> None:
    text = "load 1m\n  foo 1 stale\n\neval instant at 1m foo\n\neval instant at 0 foo\n  foo 1\n"
    assert [r[1] for r in run_selector(text)] == [True, True]


def test_expected_failures() -> None:
    text = (
        LOADED
        + """
eval instant at 5m sum(
  expect fail msg: unsupported query 'sum('

eval instant at 5m sum(
  expect fail msg: something else

eval_fail instant at 5m foo
"""
    )
    results = run_selector(text)
    assert results[0][1]
    assert not results[1][1] and "expected error" in results[1][2]
    assert not results[2][1] and "but got none" in results[2][2]


def _scalar_engine(value: float) -> Callable[[Queryable], QueryEngine]:
    def answer(kind: str, expr: str, args: tuple[int, ...]) -> QueryResult:
        if kind == "instant":
            return QueryResult("scalar", Scalar(args[0], value))
        start, end, step = args
        ts = np.arange(start, end + 1, step, dtype=np.int64)
        return QueryResult("matrix", [RangeSeries((), ts, np.full(len(ts), value))])

    return lambda storage: FakeEngine(answer)


def test_scalars_and_range_mode() -> None:
    good = run_text("eval instant at 1m 1+1\n  2\n", engine_factory=_scalar_engine(2.0))
    bad = run_text("eval instant at 1m 1+1\n  3\n", engine_factory=_scalar_engine(2.0))
    assert good[0].passed
    assert not bad[0].passed and "expected scalar 3.0" in bad[0].message


def test_range_mode_disagreement_fails() -> None:
    def answer(kind: str, expr: str, args: tuple[int, ...]) -> QueryResult:
        if kind == "instant":
            return QueryResult("vector", [Sample(lbl(a="1"), args[0], 1.0)])
        ts = np.array([0, 60_000, 120_000], dtype=np.int64)
        return QueryResult("matrix", [RangeSeries(lbl(a="1"), ts, np.array([1.0, 9.0, 1.0]))])

    text = 'eval instant at 1m x\n  {a="1"} 1\n'
    [result] = run_text(text, engine_factory=lambda s: FakeEngine(answer))
    assert not result.passed and "range mode" in result.message
    [result] = run_text(text, engine_factory=lambda s: FakeEngine(answer), range_mode=False)
    assert result.passed


def test_annotations_are_checked() -> None:
    def answer(kind: str, expr: str, args: tuple[int, ...]) -> QueryResult:
        return QueryResult(
            "vector", [], warnings=["PromQL warning: w (1:1)"] if expr == "w" else []
        )

    def run(text: str) -> bool:
        return run_text(text, engine_factory=lambda s: FakeEngine(answer), range_mode=False)[
            0
        ].passed

    assert run("eval instant at 0 w\n  expect warn\n")
    assert run("eval instant at 0 w\n  expect warn msg: PromQL warning: w (1:1)\n")
    assert not run("eval instant at 0 w\n  expect warn msg: PromQL warning: other (1:1)\n")
    assert not run("eval instant at 0 w\n  expect no_warn\n")
    assert not run("eval instant at 0 x\n  expect warn\n")
    assert not run("eval instant at 0 x\n  expect info\n")
    assert run("eval instant at 0 x\n  expect no_info\n")


def test_ordered_results() -> None:
    def answer(kind: str, expr: str, args: tuple[int, ...]) -> QueryResult:
        return QueryResult("vector", [Sample(lbl(a="2"), 0, 2.0), Sample(lbl(a="1"), 0, 1.0)])

    def run(text: str) -> bool:
        return run_text(text, engine_factory=lambda s: FakeEngine(answer), range_mode=False)[
            0
        ].passed

    assert run('eval instant at 0 x\n  expect ordered\n  {a="2"} 2\n  {a="1"} 1\n')
    assert not run('eval instant at 0 x\n  expect ordered\n  {a="1"} 1\n  {a="2"} 2\n')
    assert run('eval instant at 0 x\n  {a="1"} 1\n  {a="2"} 2\n')  # unordered by default


def test_engine_crash_is_a_failed_case_not_a_crash() -> None:
    def answer(kind: str, expr: str, args: tuple[int, ...]) -> QueryResult:
        raise ZeroDivisionError("boom")

    results = run_text(
        "eval instant at 0 x\n\neval instant at 0 y\n", engine_factory=lambda s: FakeEngine(answer)
    )
    assert [r.passed for r in results] == [False, False]
    assert "ZeroDivisionError: boom" in results[0].message


def test_a_hanging_engine_fails_its_case_after_the_runner_limit() -> None:
    def answer(kind: str, expr: str, args: tuple[int, ...]) -> QueryResult:
        time.sleep(5)
        raise AssertionError("not reached")

    [result] = run_text(
        "eval instant at 0 x\n", engine_factory=lambda s: FakeEngine(answer), case_timeout_s=0.1
    )
    assert not result.passed and "limit" in result.message


def test_a_rust_panic_in_the_engine_fails_its_case() -> None:
    class Panic(BaseException):  # what pyo3 raises when a Rust extension panics
        pass

    def answer(kind: str, expr: str, args: tuple[int, ...]) -> QueryResult:
        raise Panic("called `Result::unwrap()` on an `Err` value")

    [result] = run_text("eval instant at 0 x\n", engine_factory=lambda s: FakeEngine(answer))
    assert not result.passed and "Panic" in result.message


def test_native_histogram_case_fails_clearly() -> None:
    [result] = run_selector("eval instant at 0 h\n  h {{schema:0 sum:1 count:1}}\n")
    assert not result[1] and "native histogram" in result[2]


def test_lines_filter_runs_only_those_cases() -> None:
    text = LOADED + "\neval instant at 5m nothing\n\neval instant at 5m foo\n"
    assert [r.line for r in run_text(text, engine_factory=SelectorEngine, lines={5})] == [5]


def test_main_prints_counts_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.test"
    path.write_text("eval instant at 0 1\n  2\n", encoding="utf-8")
    subset = tmp_path / "SUBSET.tsv"
    subset.write_text("file\tline\tkind\tin_subset\nx.test\t1\tinstant\t1\n", encoding="utf-8")
    assert load_subset(subset) == {"x.test": {1}}
    status = main([str(path), "--subset", str(subset)], _scalar_engine(3.0))
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert out[0] == "x.test: 0 passed, 1 failed"
    assert (summary["passed"], summary["failed"], summary["total"]) == (0, 1, 1)
    assert summary["failures"][0]["line"] == 1
    assert status == 1


# --------------------------------------------------------------------------- memstore


def test_memory_storage_select_and_merge() -> None:
    store = MemoryStorage()
    a = make_labels({"__name__": "m", "job": "x"})
    store.add(a, [0, 20, 10], [0.0, 2.0, 1.0])
    store.add(a, [10, 30], [9.0, STALE_NAN])
    store.add(make_labels({"__name__": "m", "job": "y"}), [100], [1.0])
    [s] = store.select([Matcher("__name__", "=", "m"), Matcher("job", "=~", "x|z")], 10, 30)
    assert s.timestamps.tolist() == [10, 20, 30]
    assert s.values[:2].tolist() == [9.0, 2.0] and is_stale(float(s.values[2]))
    assert store.select([Matcher("job", "!=", "")], 40, 50) == []
    assert [x.labels for x in store.select([Matcher("__name__", "=~", ".+")], 0, 100)] == [
        a,
        make_labels({"__name__": "m", "job": "y"}),
    ]
    store.clear()
    assert store.select([Matcher("__name__", "=", "m")], 0, 100) == []


# --------------------------------------------------------------------------- conformance


def _subset_files() -> list[str]:
    if not SUBSET_TSV.exists():
        return ["<no conformance data>"]
    return sorted(load_subset(SUBSET_TSV))


@pytest.mark.parametrize("name", _subset_files())
def test_conformance_subset(name: str) -> None:
    if not SUBSET_TSV.exists():
        pytest.skip(f"PromQL conformance data not found at {CONFORMANCE}")
    lines = load_subset(SUBSET_TSV)[name]
    results = run_file(CONFORMANCE / name, lines=lines)
    assert {r.line for r in results} == lines
    failures = [f"line {r.line}: {r.expr}\n    {r.message}" for r in results if not r.passed]
    assert not failures, f"{len(failures)} of {len(results)} subset cases fail:\n" + "\n".join(
        failures
    )
