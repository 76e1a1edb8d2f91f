"""The PromQL engine: parse with promql-parser, evaluate with numpy over a Queryable.

Every node is evaluated at all steps of the query at once (see :mod:`.types`): a
selector loads its series once, a range function finds every window of every series
with one ``searchsorted`` and reduces them with vectorised numpy, and vector matching
and aggregation work on whole ``(series, steps)`` arrays. An instant query is a range
query with one step. Semantics are Prometheus 3's: left-open windows ``(t - range, t]``,
a left-open 5 minute lookback for instant selectors, staleness markers ending a series,
``__name__`` dropped by functions and arithmetic.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import promql_parser as pp

from inferwatch._errors import QueryError, QueryLimitError, QuerySyntaxError, QueryTimeout
from inferwatch.promql import functions
from inferwatch.promql.types import (
    F64,
    I64,
    MatrixValue,
    ScalarValue,
    StringValue,
    Value,
    VectorValue,
    all_drop,
    drop_name,
    search_series,
)
from inferwatch.promql.value import (
    Queryable,
    QueryResult,
    RangeSeries,
    Sample,
    Scalar,
    String,
)
from inferwatch.tsdb.labels import METRIC_NAME, STALE_NAN_BITS, Labels, Matcher

DEFAULT_SUBQUERY_STEP_MS = 60_000
MAX_POINTS_PER_SERIES = 11_000

_MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def parse(query: str) -> pp.Expr:
    """Parse ``query``; a syntax or type error becomes :class:`QuerySyntaxError`."""
    try:
        return pp.parse(query)
    except ValueError as exc:
        message, position = _prometheus_message(query, str(exc))
        raise QuerySyntaxError(f"{position}parse error: {message}") from None
    except BaseException as exc:  # a panic in the Rust parser (pyo3 PanicException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise QuerySyntaxError(f"1:1: parse error: {exc}") from None


_TYPE_WORDS = {"matrix": "range vector", "vector": "instant vector"}
_EXPECTED_TYPE = re.compile(r"expected type (\w+) in call to function '([^']+)', got (\w+)")


def _prometheus_message(query: str, message: str) -> tuple[str, str]:
    """promql-parser's message in Prometheus's words, and its ``line:col: `` prefix."""
    if message.startswith("unknown function with name '"):
        name = message.split("'")[1]
        idx = query.find(name)
        return f'unknown function with name "{name}"', f"1:{max(idx, 0) + 1}: "
    typed = _EXPECTED_TYPE.fullmatch(message)
    if typed is not None:
        want, fn, got = typed.groups()
        idx = query.find(fn + "(")
        col = idx + len(fn) + 2 if idx >= 0 else 1
        return (
            f'expected type {_TYPE_WORDS.get(want, want)} in call to function "{fn}", '
            f"got {_TYPE_WORDS.get(got, got)}",
            f"1:{col}: ",
        )
    if message == "invalid promql query" and _completes(query):
        return "unexpected end of input", f"1:{len(query) + 1}: "
    return message, _error_position(query, message)


def _completes(query: str) -> bool:
    """Whether the query is a valid prefix: adding an operand makes it parse."""
    for tail in (" 1", " x)", " 1)", " x"):
        try:
            pp.parse(query + tail)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            continue
        return True
    return False


def _error_position(query: str, message: str) -> str:
    """Prometheus's ``line:column: `` prefix, where the message lets us find the place."""
    if "end of input" in message or "unclosed" in message:
        col = len(query) + 1
        if "unclosed left parenthesis" in message:
            depth, col = 0, 1
            for i, ch in enumerate(query):
                if ch == "(":
                    if depth == 0:
                        col = i + 1
                    depth += 1
                elif ch == ")":
                    depth -= 1
        return f"1:{col}: "
    # Messages that quote the offending text: find it in the query.
    for marker in (" syntax: ", " for ", ": "):
        if marker in message:
            text = message.rsplit(marker, 1)[1].strip()
            idx = query.find(text) if text else -1
            if idx >= 0:
                return f"1:{idx + 1}: "
    return "1:1: "


def to_matchers(selector: pp.VectorSelector) -> list[Matcher]:
    """The store matchers of a selector, its metric name included."""
    out = []
    if selector.name:
        out.append(Matcher(METRIC_NAME, "=", selector.name))
    for m in selector.matchers.matchers:
        try:
            out.append(Matcher(m.name, _MATCH_OPS[_enum_name(m.op)], m.value))  # type: ignore[arg-type]
        except ValueError as exc:
            raise QuerySyntaxError(f"parse error: {exc}") from None
    return out


def _at_ms(at: Any) -> int:
    """The time of an ``@ <time>`` modifier (promql-parser panics on negative times)."""
    try:
        stamp = at.at
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise QuerySyntaxError("@ modifier times before 1970 are not supported") from None
    return round(float(stamp.timestamp()) * 1000)


def _enum_name(value: object) -> str:
    return str(value).rsplit(".", 1)[-1]


def _ms(delta: timedelta | None) -> int:
    if delta is None:
        return 0
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@dataclass(slots=True)
class _Budget:
    deadline: float
    max_samples: int
    samples: int = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise QueryTimeout("query timed out in expression evaluation")

    def load(self, n: int) -> None:
        self.samples += n
        if self.samples > self.max_samples:
            raise QueryLimitError(
                "query processing would load too many samples into memory in query execution"
            )


@dataclass(slots=True)
class Annotations:
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def info(self, text: str) -> None:
        if text not in self.infos:
            self.infos.append(text)


class Evaluator:
    """Evaluates one expression at the steps ``steps`` (ms) of one query."""

    def __init__(
        self,
        engine: Engine,
        query: str,
        steps: I64,
        *,
        start_ms: int,
        end_ms: int,
        interval_ms: int,
        budget: _Budget,
        notes: Annotations,
    ) -> None:
        self.engine = engine
        self.query = query
        self.steps = steps
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.interval_ms = interval_ms
        self.budget = budget
        self.notes = notes

    @property
    def n(self) -> int:
        return len(self.steps)

    def child(self, steps: I64, interval_ms: int) -> Evaluator:
        return Evaluator(
            self.engine,
            self.query,
            steps,
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            interval_ms=interval_ms,
            budget=self.budget,
            notes=self.notes,
        )

    def position(self, node: Any) -> str:
        """``(line:col)`` of a node's text in the query, as Prometheus's annotations show."""
        idx = -1
        for text in _node_texts(node):
            idx = self.query.find(text)
            if idx >= 0:
                break
        return f" (1:{max(idx, 0) + 1})"

    # -- dispatch --------------------------------------------------------------------------

    def eval(self, node: Any) -> Value:
        self.budget.check_time()
        if isinstance(node, pp.ParenExpr):
            return self.eval(node.expr)
        if isinstance(node, pp.NumberLiteral):
            return ScalarValue(np.full(self.n, node.val))
        if isinstance(node, pp.StringLiteral):
            return StringValue(node.val)
        if isinstance(node, pp.VectorSelector):
            return self.vector_selector(node)
        if isinstance(node, pp.MatrixSelector):
            return self.matrix_selector(node)
        if isinstance(node, pp.SubqueryExpr):
            return self.subquery(node)
        if isinstance(node, pp.UnaryExpr):
            return self.unary(node)
        if isinstance(node, pp.BinaryExpr):
            return self.binary(node)
        if isinstance(node, pp.AggregateExpr):
            from inferwatch.promql.aggregate import aggregate

            return aggregate(self, node)
        if isinstance(node, pp.Call):
            return functions.call(self, node)
        raise QueryError(f"unsupported expression {node}", error_type="bad_data")

    def scalar_arg(self, node: Any) -> F64:
        value = self.eval(node)
        if not isinstance(value, ScalarValue):
            raise QueryError(
                f"expected a scalar, got {type(value).__name__}", error_type="bad_data"
            )
        return value.values

    # -- selectors ---------------------------------------------------------------------------

    def eval_times(self, offset: timedelta | None, at: Any) -> I64:
        """The times a selector (or subquery) is evaluated at for each step."""
        off = _ms(offset)
        if at is None:
            base = self.steps
        else:
            if at.type == pp.AtModifierType.Start:
                t = self.start_ms
            elif at.type == pp.AtModifierType.End:
                t = self.end_ms
            else:
                t = _at_ms(at)
            base = np.full(self.n, t, dtype=np.int64)
        return (base - off).astype(np.int64)

    def select(
        self, selector: pp.VectorSelector, mint: int, maxt: int
    ) -> tuple[list[Labels], I64, F64, I64]:
        matchers = to_matchers(selector)
        series = self.engine.storage.select(matchers, mint, maxt)
        labels = [s.labels for s in series]
        counts = np.fromiter((len(s.timestamps) for s in series), dtype=np.int64, count=len(series))
        offsets = np.zeros(len(series) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        if series:
            t = np.concatenate([s.timestamps for s in series]).astype(np.int64, copy=False)
            v = np.concatenate([s.values for s in series]).astype(np.float64, copy=False)
        else:
            t, v = np.zeros(0, dtype=np.int64), np.zeros(0)
        self.budget.load(len(t))
        return labels, t, v, offsets

    def vector_selector(self, node: pp.VectorSelector, keep_ts: bool = False) -> VectorValue:
        ends = self.eval_times(node.offset, node.at)
        lookback = self.engine.lookback_delta_ms
        labels, t, v, offsets = self.select(node, int(ends.min()) - lookback + 1, int(ends.max()))
        m = len(labels)
        if m == 0:
            return VectorValue.empty(self.n)
        idx = search_series(t, offsets, [ends])[0] - 1
        valid = idx >= offsets[:-1, None]
        idx = np.where(valid, idx, 0)
        sample_t = t[idx]
        values = v[idx]
        valid &= sample_t > (ends - lookback)[None, :]
        valid &= values.view(np.int64) != STALE_NAN_BITS
        return VectorValue(labels, values, valid, sample_t if keep_ts else None)

    def matrix_selector(self, node: pp.MatrixSelector) -> MatrixValue:
        vs = node.vector_selector
        ends = self.eval_times(vs.offset, vs.at)
        range_ms = _ms(node.range)
        labels, t, v, offsets = self.select(vs, int(ends.min()) - range_ms + 1, int(ends.max()))
        keep = v.view(np.int64) != STALE_NAN_BITS
        if not keep.all():
            sid = np.repeat(np.arange(len(labels), dtype=np.int64), np.diff(offsets))
            t, v = t[keep], v[keep]
            counts = np.bincount(sid[keep], minlength=len(labels))
            offsets = np.zeros(len(labels) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
        return MatrixValue(labels, t, v, offsets, ends, range_ms)

    def subquery(self, node: pp.SubqueryExpr) -> MatrixValue:
        ends = self.eval_times(node.offset, node.at)
        range_ms = _ms(node.range)
        step = _ms(node.step) or self.engine.default_subquery_step_ms
        mint = int(ends.min()) - range_ms
        start = (mint // step) * step
        if start <= mint:
            start += step
        inner_steps = np.arange(start, int(ends.max()) + 1, step, dtype=np.int64)
        inner = self.child(inner_steps, step).eval(node.expr)
        if isinstance(inner, ScalarValue):
            inner = VectorValue(
                [()], inner.values[None, :], np.ones((1, len(inner_steps)), dtype=bool)
            )
        if not isinstance(inner, VectorValue):
            raise QueryError("subquery is only allowed on instant vector", error_type="bad_data")
        keep = [i for i in range(len(inner.labels)) if inner.present[i].any()]
        labels = [inner.labels[i] for i in keep]
        drop = inner.flags()[keep]
        pres = inner.present[keep]
        counts = pres.sum(axis=1)
        offsets = np.zeros(len(keep) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        grid = np.broadcast_to(inner_steps, pres.shape)
        t = grid[pres].astype(np.int64)
        v = inner.values[keep][pres]
        self.budget.load(len(t))
        return MatrixValue(labels, t, v, offsets, ends, range_ms, drop)

    # -- operators ---------------------------------------------------------------------------

    def unary(self, node: pp.UnaryExpr) -> Value:
        value = self.eval(node.expr)
        if isinstance(value, ScalarValue):
            return ScalarValue(-value.values)
        if isinstance(value, VectorValue):
            return VectorValue(
                value.labels, -value.values, value.present, drop=all_drop(len(value.labels))
            )
        raise QueryError("unary minus needs a scalar or an instant vector", error_type="bad_data")

    def binary(self, node: pp.BinaryExpr) -> Value:
        from inferwatch.promql.binary import binary

        return binary(self, node)


def _node_texts(node: Any) -> list[str]:
    """Texts that may show where a node starts in the query, most specific first."""
    texts = [str(node), str(node).replace("{}", "")]
    inner = node
    while isinstance(inner, (pp.ParenExpr, pp.SubqueryExpr)):
        inner = inner.expr
    if isinstance(inner, pp.MatrixSelector):
        inner = inner.vector_selector
    if isinstance(inner, pp.VectorSelector):
        if inner.name:
            texts.append(inner.name)
        texts.append("{")
    return [t for t in texts if t]


def dedupe(vec: VectorValue) -> VectorValue:
    """Merge rows with the same label set; two present at one step is Prometheus's error."""
    if len(vec.labels) < 2:
        return vec
    index: dict[Labels, int] = {}
    groups: list[list[int]] = []
    for i, lb in enumerate(vec.labels):
        g = index.get(lb)
        if g is None:
            index[lb] = len(groups)
            groups.append([i])
        else:
            groups[g].append(i)
    if len(groups) == len(vec.labels):
        return vec
    flags = vec.flags()
    labels, values, present, drop = [], [], [], []
    for rows in groups:
        drop.append(bool(flags[rows].any()))
        if len(rows) == 1:
            labels.append(vec.labels[rows[0]])
            values.append(vec.values[rows[0]])
            present.append(vec.present[rows[0]])
            continue
        p = vec.present[rows]
        if (p.sum(axis=0) > 1).any():
            raise QueryError("vector cannot contain metrics with the same labelset")
        any_p = p.any(axis=0)
        first = np.argmax(p, axis=0)
        labels.append(vec.labels[rows[0]])
        values.append(vec.values[rows][first, np.arange(p.shape[1])])
        present.append(any_p)
    return VectorValue(
        labels, np.array(values), np.array(present, dtype=bool), drop=np.array(drop, dtype=bool)
    )


def remove_names(vec: VectorValue) -> VectorValue:
    """Drop ``__name__`` where a function or operator marked it, then check uniqueness."""
    if vec.drop is None or not vec.drop.any():
        return vec
    labels = [drop_name(lb) if d else lb for lb, d in zip(vec.labels, vec.drop, strict=True)]
    return dedupe(VectorValue(labels, vec.values, vec.present, vec.sample_ts))


class Engine:
    """Evaluates PromQL over ``storage`` with Prometheus 3 semantics.

    Limits: ``timeout_s`` per query (``timeout`` error), ``max_samples`` loaded from the
    store per query and ``max_series`` returned (``execution`` errors).
    """

    def __init__(
        self,
        storage: Queryable,
        *,
        lookback_delta_ms: int = 300_000,
        timeout_s: float = 120.0,
        max_samples: int = 50_000_000,
        max_series: int | None = None,
        default_subquery_step_ms: int = DEFAULT_SUBQUERY_STEP_MS,
    ) -> None:
        self.storage = storage
        self.lookback_delta_ms = lookback_delta_ms
        self.timeout_s = timeout_s
        self.max_samples = max_samples
        self.max_series = max_series
        self.default_subquery_step_ms = default_subquery_step_ms

    def instant_query(
        self, query: str, time_ms: int, *, timeout_s: float | None = None
    ) -> QueryResult:
        """Evaluate ``query`` at ``time_ms``."""
        expr = parse(query)
        steps = np.array([time_ms], dtype=np.int64)
        ev, notes = self._evaluator(query, steps, time_ms, time_ms, 0, timeout_s)
        value = ev.eval(expr)
        if isinstance(value, VectorValue):
            value = remove_names(value)
        result = self._instant_result(value, time_ms)
        return self._finish(result, notes, ev)

    def range_query(
        self,
        query: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        timeout_s: float | None = None,
    ) -> QueryResult:
        """Evaluate ``query`` at every ``step_ms`` from ``start_ms`` through ``end_ms``."""
        if step_ms <= 0:
            raise QuerySyntaxError(
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer"
            )
        if end_ms < start_ms:
            raise QuerySyntaxError("end timestamp must not be before start time")
        if (end_ms - start_ms) // step_ms > MAX_POINTS_PER_SERIES:
            raise QuerySyntaxError(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        expr = parse(query)
        kind = _static_type(expr)
        if kind not in ("vector", "scalar"):
            raise QuerySyntaxError(
                f'invalid expression type "{_TYPE_NAMES[kind]}" for range query, '
                "must be Scalar or instant Vector"
            )
        steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        ev, notes = self._evaluator(query, steps, start_ms, end_ms, step_ms, timeout_s)
        value = ev.eval(expr)
        if isinstance(value, VectorValue):
            value = remove_names(value)
        if isinstance(value, ScalarValue):
            matrix = [RangeSeries((), steps.copy(), value.values.astype(np.float64))]
        elif isinstance(value, VectorValue):
            matrix = []
            for i, lb in enumerate(value.labels):
                p = value.present[i]
                if p.any():
                    matrix.append(RangeSeries(lb, steps[p], value.values[i][p]))
            matrix.sort(key=lambda s: s.labels)
        else:
            raise QuerySyntaxError("range query needs a scalar or an instant vector")
        return self._finish(QueryResult("matrix", matrix), notes, ev)

    def _evaluator(
        self,
        query: str,
        steps: I64,
        start: int,
        end: int,
        interval: int,
        timeout_s: float | None,
    ) -> tuple[Evaluator, Annotations]:
        limit = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        budget = _Budget(time.monotonic() + limit, self.max_samples)
        notes = Annotations()
        ev = Evaluator(
            self,
            query,
            steps,
            start_ms=start,
            end_ms=end,
            interval_ms=interval or DEFAULT_SUBQUERY_STEP_MS,
            budget=budget,
            notes=notes,
        )
        return ev, notes

    def _instant_result(self, value: Value, t: int) -> QueryResult:
        if isinstance(value, ScalarValue):
            return QueryResult("scalar", Scalar(t, float(value.values[0])))
        if isinstance(value, StringValue):
            return QueryResult("string", String(t, value.value))
        if isinstance(value, VectorValue):
            vector = [
                Sample(lb, t, float(value.values[i, 0]))
                for i, lb in enumerate(value.labels)
                if value.present[i, 0]
            ]
            return QueryResult("vector", vector)
        matrix = []
        drop = value.drop
        for i, lb in enumerate(value.labels):
            if drop is not None and drop[i]:
                lb = drop_name(lb)
            lo, hi = int(value.offsets[i]), int(value.offsets[i + 1])
            ts, vs = value.t[lo:hi], value.v[lo:hi]
            end = int(value.ends[0])
            sel = (ts > end - value.range_ms) & (ts <= end)
            if sel.any():
                matrix.append(RangeSeries(lb, ts[sel], vs[sel]))
        matrix.sort(key=lambda s: s.labels)
        return QueryResult("matrix", matrix)

    def _finish(self, result: QueryResult, notes: Annotations, ev: Evaluator) -> QueryResult:
        limit = self.max_series
        if limit is not None and isinstance(result.value, list) and len(result.value) > limit:
            raise QueryLimitError(
                f"query returned {len(result.value)} series, more than the limit of {limit}"
            )
        result.warnings = notes.warnings
        result.infos = notes.infos
        result.samples_loaded = ev.budget.samples
        return result


_TYPE_NAMES = {
    "vector": "instant vector",
    "matrix": "range vector",
    "scalar": "scalar",
    "string": "string",
}


def _static_type(node: Any) -> str:
    """The PromQL type of an expression, as the parser would infer it."""
    if isinstance(node, pp.ParenExpr):
        return _static_type(node.expr)
    if isinstance(node, pp.NumberLiteral):
        return "scalar"
    if isinstance(node, pp.StringLiteral):
        return "string"
    if isinstance(node, (pp.MatrixSelector, pp.SubqueryExpr)):
        return "matrix"
    if isinstance(node, pp.UnaryExpr):
        return _static_type(node.expr)
    if isinstance(node, pp.BinaryExpr):
        lhs, rhs = _static_type(node.lhs), _static_type(node.rhs)
        return "scalar" if lhs == rhs == "scalar" else "vector"
    if isinstance(node, pp.Call):
        return _enum_name(node.func.return_type).lower()
    return "vector"
