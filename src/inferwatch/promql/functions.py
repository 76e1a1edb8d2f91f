"""PromQL functions, each computed for every step of the query at once.

Range-vector functions get a :class:`MatrixValue` and find each step's window with
``MatrixValue.windows``; counting and first/last functions then index the flat sample
arrays, sums use ``reduceat`` (falling back to Prometheus's Kahan summation, lane by
lane, when the magnitudes need it), and the few functions that need every sample of a
window in order (``stddev_over_time``, ``deriv``, ``quantile_over_time``) walk the
windows lane by lane: lane ``k`` is the ``k``-th sample of every window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import promql_parser as pp

from inferwatch._errors import QueryError
from inferwatch.promql.aggregate import kahan_inc, needs_kahan, quantile_sorted, sort_nan_first
from inferwatch.promql.goformat import go_format_float
from inferwatch.promql.types import (
    F64,
    I64,
    Bools,
    MatrixValue,
    ScalarValue,
    StringValue,
    Value,
    VectorValue,
    all_drop,
    any_rows,
)
from inferwatch.tsdb.labels import METRIC_NAME, Labels, go_regex, metric_name

if TYPE_CHECKING:
    from inferwatch.promql.engine import Evaluator

#: Windows computed together by a range function: small enough to stay in cache.
BLOCK_WINDOWS = 32_768

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def call(ev: Evaluator, node: pp.Call) -> Value:
    name = node.func.name
    args = list(node.args.args) if hasattr(node.args, "args") else list(node.args)
    if name in _RANGE:
        return _range_function(ev, name, args, node)
    handler = _INSTANT.get(name)
    if handler is None:
        raise QueryError(f"function {name!r} is not supported", error_type="bad_data")
    return handler(ev, args, node)


# -- helpers -----------------------------------------------------------------------------


def _vector(ev: Evaluator, node: Any, *, keep_ts: bool = False) -> VectorValue:
    if keep_ts:
        inner = node
        while isinstance(inner, pp.ParenExpr):
            inner = inner.expr
        if isinstance(inner, pp.VectorSelector):
            return ev.vector_selector(inner, keep_ts=True)
    value = ev.eval(node)
    if not isinstance(value, VectorValue):
        raise QueryError("expected an instant vector argument", error_type="bad_data")
    return value


def _string(ev: Evaluator, node: Any) -> str:
    value = ev.eval(node)
    if not isinstance(value, StringValue):
        raise QueryError("expected a string argument", error_type="bad_data")
    return value.value


def _elementwise(vec: VectorValue, values: F64) -> VectorValue:
    return VectorValue(vec.labels, values, vec.present.copy(), drop=all_drop(len(vec.labels)))


def _math(fn: Callable[[F64], F64]) -> Callable[[Evaluator, list[Any], pp.Call], Value]:
    def handler(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
        vec = _vector(ev, args[0])
        with np.errstate(all="ignore"):
            return _elementwise(vec, fn(vec.values))

    return handler


# -- instant-vector functions --------------------------------------------------------------


def _round(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    vec = _vector(ev, args[0])
    nearest = ev.scalar_arg(args[1]) if len(args) > 1 else np.ones(ev.n)
    with np.errstate(all="ignore"):
        inverse = 1.0 / nearest
        values = np.floor(vec.values * inverse[None, :] + 0.5) / inverse[None, :]
    return _elementwise(vec, values)


def _clamp(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    vec = _vector(ev, args[0])
    lo = ev.scalar_arg(args[1])[None, :]
    hi = ev.scalar_arg(args[2])[None, :]
    values = np.maximum(lo, np.minimum(hi, vec.values))  # NaN wins, as Go's math.Max
    out = _elementwise(vec, values)
    if len(out.labels):
        bad = (lo > hi)[0]
        out.present &= ~bad[None, :]
    return out


def _clamp_min(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    vec = _vector(ev, args[0])
    lo = ev.scalar_arg(args[1])[None, :]
    values = np.maximum(lo, vec.values)
    return _elementwise(vec, values)


def _clamp_max(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    vec = _vector(ev, args[0])
    hi = ev.scalar_arg(args[1])[None, :]
    values = np.minimum(hi, vec.values)
    return _elementwise(vec, values)


def _timestamp(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    vec = _vector(ev, args[0], keep_ts=True)
    if vec.sample_ts is not None:
        values = vec.sample_ts / 1000.0
    else:
        values = np.broadcast_to(ev.steps / 1000.0, vec.values.shape).copy()
    return _elementwise(vec, values)


def _vector_fn(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    values = ev.scalar_arg(args[0])
    return VectorValue([()], values[None, :].copy(), np.ones((1, ev.n), dtype=bool))


def _scalar_fn(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    vec = _vector(ev, args[0])
    if not vec.labels:
        return ScalarValue(np.full(ev.n, np.nan))
    count = vec.present.sum(axis=0)
    first = np.argmax(vec.present, axis=0)
    values = vec.values[first, np.arange(ev.n)]
    return ScalarValue(np.where(count == 1, values, np.nan))


def _time(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    return ScalarValue(ev.steps / 1000.0)


def _pi(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    return ScalarValue(np.full(ev.n, math.pi))


def _sort(descending: bool) -> Callable[[Evaluator, list[Any], pp.Call], Value]:
    def handler(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
        vec = _vector(ev, args[0])
        if ev.n != 1 or not vec.labels:
            return vec
        rows = [i for i in range(len(vec.labels)) if vec.present[i, 0]]

        def key(i: int) -> tuple[bool, float]:
            v = float(vec.values[i, 0])
            return (math.isnan(v), -v if descending else v)

        rows.sort(key=key)
        return vec.take(rows)

    return handler


def _sort_by_label(descending: bool) -> Callable[[Evaluator, list[Any], pp.Call], Value]:
    def handler(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
        vec = _vector(ev, args[0])
        names = [_string(ev, a) for a in args[1:]]
        if ev.n != 1 or not vec.labels:
            return vec
        rows = [i for i in range(len(vec.labels)) if vec.present[i, 0]]

        def key(i: int) -> tuple[tuple[tuple[tuple[int, str], ...], ...], Labels]:
            d = dict(vec.labels[i])
            return tuple(_natural(d.get(n, "")) for n in names), vec.labels[i]

        rows.sort(key=key, reverse=descending)
        return vec.take(rows)

    return handler


def _natural(text: str) -> tuple[tuple[int, str], ...]:
    """A natural sort key: runs of digits compare as numbers (``cpu2 < cpu10``)."""
    return tuple(
        (int(part), "") if part.isdigit() else (-1, part)
        for part in re.split(r"(\d+)", text)
        if part
    )


def go_expand(template: str, match: re.Match[str]) -> str:
    """Go's ``regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "$" or i + 1 >= len(template):
            out.append(ch)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end >= 0 else ""
            if end < 0 or not re.fullmatch(r"[A-Za-z0-9_]+", name):
                out.append(ch)
                i += 1
                continue
            i = end + 1
        else:
            m = re.match(r"[A-Za-z0-9_]+", template[i + 1 :])
            if m is None:
                out.append(ch)
                i += 1
                continue
            name = m.group(0)
            i += 1 + len(name)
        out.append(_group(match, name))
    return "".join(out)


def _group(match: re.Match[str], name: str) -> str:
    try:
        value = match.group(int(name)) if name.isdigit() else match.group(name)
    except IndexError:
        return ""
    return value or ""


def _label_replace(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    from inferwatch.promql.engine import dedupe

    vec = _vector(ev, args[0])
    dst, repl, src, regex = (_string(ev, a) for a in args[1:5])
    try:
        pattern = re.compile(f"(?s:{go_regex(regex)})\\Z")
    except re.error as exc:
        raise QueryError(f"invalid regular expression in label_replace(): {regex}") from exc
    if not _LABEL_NAME.match(dst):
        raise QueryError(f"invalid destination label name in label_replace(): {dst}")
    labels = []
    drop = vec.flags().copy()
    for i, lb in enumerate(vec.labels):
        d = dict(lb)
        m = pattern.match(d.get(src, ""))
        if m is not None and dst == METRIC_NAME:
            drop[i] = False
        if m is not None:
            value = go_expand(repl, m)
            if value:
                d[dst] = value
            else:
                d.pop(dst, None)
            lb = tuple(sorted(d.items()))
        labels.append(lb)
    return dedupe(VectorValue(labels, vec.values, vec.present.copy(), drop=drop))


def _label_join(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    from inferwatch.promql.engine import dedupe

    vec = _vector(ev, args[0])
    dst = _string(ev, args[1])
    sep = _string(ev, args[2])
    srcs = [_string(ev, a) for a in args[3:]]
    if not _LABEL_NAME.match(dst):
        raise QueryError(f"invalid destination label name in label_join(): {dst}")
    labels = []
    drop = vec.flags().copy()
    if dst == METRIC_NAME:
        drop[:] = False
    for lb in vec.labels:
        d = dict(lb)
        value = sep.join(d.get(s, "") for s in srcs)
        if value:
            d[dst] = value
        else:
            d.pop(dst, None)
        labels.append(tuple(sorted(d.items())))
    return dedupe(VectorValue(labels, vec.values, vec.present.copy(), drop=drop))


def _absent_labels(node: Any) -> Labels:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    if isinstance(node, pp.MatrixSelector):
        node = node.vector_selector
    if not isinstance(node, pp.VectorSelector):
        return ()
    seen: dict[str, str] = {}
    dup: set[str] = set()
    for m in node.matchers.matchers:
        if m.name == METRIC_NAME:
            continue
        if (
            str(m.op).endswith("Equal")
            and not str(m.op).endswith("NotEqual")
            and m.name not in seen
        ):
            seen[m.name] = m.value
        else:
            dup.add(m.name)
    return tuple(sorted((k, v) for k, v in seen.items() if k not in dup and v != ""))


def _absent(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    vec = _vector(ev, args[0])
    present = ~any_rows(vec.present) if vec.labels else np.ones(ev.n, dtype=bool)
    return VectorValue([_absent_labels(args[0])], np.ones((1, ev.n)), present[None, :])


def _date(
    fn: Callable[[npt.NDArray[np.datetime64], F64], F64],
) -> Callable[[Evaluator, list[Any], pp.Call], Value]:
    def handler(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
        if args:
            vec = _vector(ev, args[0])
        else:
            vec = VectorValue([()], (ev.steps / 1000.0)[None, :], np.ones((1, ev.n), dtype=bool))
        seconds = vec.values
        bad = ~np.isfinite(seconds)
        secs = np.where(bad, 0, np.trunc(np.where(bad, 0, seconds))).astype(np.int64)
        stamps = secs.astype("datetime64[s]")
        values = fn(stamps, secs.astype(np.float64))
        values = np.where(bad, np.nan, values)
        return _elementwise(vec, values)

    return handler


def _days(s: npt.NDArray[np.datetime64]) -> npt.NDArray[np.datetime64]:
    return s.astype("datetime64[D]")


def _months(s: npt.NDArray[np.datetime64]) -> npt.NDArray[np.datetime64]:
    return s.astype("datetime64[M]")


_DATE: dict[str, Callable[[npt.NDArray[np.datetime64], F64], F64]] = {
    "minute": lambda s, x: np.floor_divide(x, 60) % 60,
    "hour": lambda s, x: np.floor_divide(x, 3600) % 24,
    "day_of_week": lambda s, x: (np.floor_divide(x, 86400) + 4) % 7,
    "day_of_month": lambda s, x: (
        (_days(s) - _months(s).astype("datetime64[D]")).astype(np.float64) + 1
    ),
    "day_of_year": lambda s, x: (
        (_days(s) - s.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.float64) + 1
    ),
    "days_in_month": lambda s, x: (
        (_months(s) + 1).astype("datetime64[D]") - _months(s).astype("datetime64[D]")
    ).astype(np.float64),
    "month": lambda s, x: (_months(s).astype(np.int64) % 12 + 1).astype(np.float64),
    "year": lambda s, x: (s.astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.float64),
}


# -- histogram_quantile ----------------------------------------------------------------------


def _parse_le(value: str) -> float | None:
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        lowered = text.lower()
        if lowered in ("+inf", "inf"):
            return math.inf
        if lowered == "-inf":
            return -math.inf
        return None


def _almost_equal(a: F64, b: F64, eps: float) -> Bools:
    min_normal = 2.2250738585072014e-308
    with np.errstate(all="ignore"):
        abs_sum = np.abs(a) + np.abs(b)
        diff = np.abs(a - b)
        small = (a == 0) | (b == 0) | (abs_sum < min_normal)
        rel = diff / np.minimum(abs_sum, np.finfo(np.float64).max)
        close = np.where(small, diff < eps * min_normal, rel < eps)
        return np.asarray((a == b) | (np.isnan(a) & np.isnan(b)) | close, dtype=bool)


def bucket_quantile(q: F64, upper: F64, counts: F64) -> tuple[F64, Bools]:
    """Prometheus's ``BucketQuantile`` for each column of ``counts`` (buckets sorted by
    ``upper``, duplicates merged); returns the quantiles and where monotonicity was forced."""
    nb, n = counts.shape
    counts = counts.copy()
    forced = np.zeros(n, dtype=bool)
    if nb:
        prev = counts[0].copy()
        for i in range(1, nb):
            curr = counts[i]
            same = curr == prev
            close = ~same & _almost_equal(prev, curr, 1e-12)
            lower = ~same & ~close & (curr < prev)
            counts[i] = np.where(close | lower, prev, curr)
            forced |= lower
            prev = np.where(same | close | lower, prev, curr)
    out = np.full(n, np.nan)
    if nb >= 2 and math.isinf(upper[-1]) and upper[-1] > 0:
        obs = counts[-1]
        with np.errstate(all="ignore"):
            rank = q * obs
            reach = counts[:-1] >= rank[None, :]
            b = np.where(reach.any(axis=0), np.argmax(reach, axis=0), nb - 1)
            cols = np.arange(n)
            bb = np.clip(b, 0, nb - 1)
            prev_i = np.clip(bb - 1, 0, nb - 1)
            start = np.where(bb > 0, upper[prev_i], 0.0)
            end = upper[bb]
            count = counts[bb, cols] - np.where(bb > 0, counts[prev_i, cols], 0.0)
            r = rank - np.where(bb > 0, counts[prev_i, cols], 0.0)
            value = start + (end - start) * (r / count)
            value = np.where(b == nb - 1, upper[nb - 2], value)
            value = np.where((b == 0) & (upper[0] <= 0), upper[0], value)
            value = np.where((obs == 0) | np.isnan(obs), np.nan, value)
        out = value
    else:
        forced[:] = False
    out = np.where(q < 0, -np.inf, out)
    out = np.where(q > 1, np.inf, out)
    out = np.where(np.isnan(q), np.nan, out)
    return out, forced


def _histogram_quantile(ev: Evaluator, args: list[Any], node: pp.Call) -> Value:
    q = ev.scalar_arg(args[0])
    vec = _vector(ev, args[1])
    bad_q = q[(q < 0) | (q > 1) | np.isnan(q)]
    if len(bad_q):
        ev.notes.warn(
            "PromQL warning: quantile value should be between 0 and 1, got "
            f"{go_format_float(float(bad_q[0]))}{ev.position(args[0])}"
        )
    groups: dict[Labels, list[tuple[float, int]]] = {}
    names: dict[Labels, str] = {}
    for i, lb in enumerate(vec.labels):
        if not vec.present[i].any():
            continue
        d = dict(lb)
        le = _parse_le(d.pop("le", ""))
        if le is None:
            ev.notes.warn(
                f'PromQL warning: bucket label "le" is missing or has a malformed value of '
                f'"{dict(lb).get("le", "")}" for metric name "{metric_name(lb)}"'
                f"{ev.position(args[1])}"
            )
            continue
        key = tuple(sorted(d.items()))
        groups.setdefault(key, []).append((le, i))
        names.setdefault(key, metric_name(lb))
    out_labels: list[Labels] = []
    out_values: list[F64] = []
    out_present: list[Bools] = []
    n = ev.n
    for key, members in groups.items():
        members.sort(key=lambda p: p[0])
        uppers = np.array([p[0] for p in members])
        rows = [p[1] for p in members]
        present = vec.present[rows]
        values = np.where(present, vec.values[rows], 0.0)
        result = np.full(n, np.nan)
        has = any_rows(present)
        patterns, inverse = np.unique(present.T, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        forced_any = False
        for p_idx, pattern in enumerate(patterns):
            cols = np.flatnonzero(inverse == p_idx)
            if not pattern.any():
                continue
            sel = np.flatnonzero(pattern)
            ups = uppers[sel]
            cnt = values[np.ix_(sel, cols)]
            uniq, starts = np.unique(ups, return_index=True)
            if len(uniq) != len(ups):
                cnt = np.add.reduceat(cnt, starts, axis=0)
            res, forced = bucket_quantile(q[cols], uniq, cnt)
            result[cols] = res
            forced_any |= bool(forced.any())
        if forced_any:
            ev.notes.info(
                "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
                "(see https://prometheus.io/docs/prometheus/latest/querying/functions/"
                f'#histogram_quantile) for metric name "{names[key]}"{ev.position(args[1])}'
            )
        out_labels.append(key)
        out_values.append(result)
        out_present.append(has)
    if not out_labels:
        return VectorValue.empty(n)
    return VectorValue(
        out_labels,
        np.array(out_values),
        np.array(out_present, dtype=bool),
        drop=all_drop(len(out_labels)),
    )


# -- range-vector functions ------------------------------------------------------------------


def _matrix(ev: Evaluator, node: Any) -> MatrixValue:
    value = ev.eval(node)
    if not isinstance(value, MatrixValue):
        raise QueryError("expected a range vector argument", error_type="bad_data")
    return value


def _range_function(ev: Evaluator, name: str, args: list[Any], node: pp.Call) -> Value:

    scalar_first = name in ("quantile_over_time",)
    param: F64 | None = None
    if scalar_first:
        param = ev.scalar_arg(args[0])
        mat = _matrix(ev, args[1])
    else:
        mat = _matrix(ev, args[0])
    if name == "predict_linear":
        param = ev.scalar_arg(args[1])
    if name == "absent_over_time":
        return _absent_over_time(ev, mat, args[0])
    m = len(mat.labels)
    if m == 0:
        return VectorValue.empty(ev.n)
    # Work through the series a block at a time so the temporaries stay in cache.
    fn = _RANGE[name]
    values = np.empty((m, ev.n))
    present = np.empty((m, ev.n), dtype=bool)
    block = max(1, BLOCK_WINDOWS // max(ev.n, 1))
    for start in range(0, m, block):
        stop = min(start + block, m)
        part = mat.block(start, stop)
        lo, hi = part.windows()
        with np.errstate(all="ignore"):
            values[start:stop], present[start:stop] = fn(ev, part, lo, hi, hi - lo, param)
    if name in ("rate", "increase", "irate") and present.any():
        _counter_info(ev, mat, present, args[0])
    if name == "quantile_over_time" and param is not None:
        from inferwatch.promql.aggregate import _warn_quantile

        _warn_quantile(ev, param, args[0])
    drop = mat.drop if name in ("last_over_time", "first_over_time") else all_drop(m)
    return VectorValue(mat.labels, values, present, drop=drop)


def _counter_info(ev: Evaluator, mat: MatrixValue, present: Bools, arg: Any) -> None:
    names = {metric_name(mat.labels[i]) for i in np.flatnonzero(present.any(axis=1))}
    for name in sorted(names):
        if not name.endswith(("_total", "_sum", "_count", "_bucket")):
            ev.notes.info(
                "PromQL info: metric might not be a counter, name does not end in "
                f'_total/_sum/_count/_bucket: "{name}"{ev.position(arg)}'
            )


RangeFn = Callable[[Any, MatrixValue, I64, I64, I64, "F64 | None"], tuple[F64, Bools]]


def _safe(idx: I64, size: int) -> I64:
    return np.clip(idx, 0, max(size - 1, 0))


def _extrapolated(
    mat: MatrixValue, lo: I64, hi: I64, cnt: I64, *, counter: bool, rate: bool
) -> tuple[F64, Bools]:
    t, v = mat.t, mat.v
    present = cnt >= 2
    first = _safe(lo, len(v))
    last = _safe(hi - 1, len(v))
    result = v[last] - v[first]
    if counter:
        drops = np.zeros(len(v))
        if len(v) > 1:
            drops[1:] = np.where(v[1:] < v[:-1], v[:-1], 0.0)
        cum = np.cumsum(drops)
        result = result + cum[last] - cum[first]
    ends = mat.ends[None, :]
    range_start = ends - mat.range_ms
    first_t = t[first]
    last_t = t[last]
    to_start = (first_t - range_start) / 1000.0
    to_end = (ends - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    avg = sampled / np.maximum(cnt - 1, 1)
    threshold = avg * 1.1
    to_start = np.where(to_start >= threshold, avg / 2, to_start)
    if counter:
        first_v = v[first]
        zero_ok = (result > 0) & (first_v >= 0)
        to_zero = sampled * (first_v / np.where(result == 0, 1.0, result))
        to_start = np.where(zero_ok & (to_zero < to_start), to_zero, to_start)
    to_end = np.where(to_end >= threshold, avg / 2, to_end)
    factor = (sampled + to_start + to_end) / sampled
    if rate:
        factor = factor / (mat.range_ms / 1000.0)
    return result * factor, present


def _rate(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return _extrapolated(mat, lo, hi, cnt, counter=True, rate=True)


def _increase(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return _extrapolated(mat, lo, hi, cnt, counter=True, rate=False)


def _delta(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return _extrapolated(mat, lo, hi, cnt, counter=False, rate=False)


def _instant_value(
    mat: MatrixValue, lo: I64, hi: I64, cnt: I64, *, rate: bool
) -> tuple[F64, Bools]:
    t, v = mat.t, mat.v
    last = _safe(hi - 1, len(v))
    prev = _safe(hi - 2, len(v))
    diff = v[last] - v[prev]
    if rate:
        diff = np.where(v[last] < v[prev], v[last], diff)
        interval = (t[last] - t[prev]) / 1000.0
        return diff / interval, (cnt >= 2) & (interval != 0)
    return diff, cnt >= 2


def _irate(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return _instant_value(mat, lo, hi, cnt, rate=True)


def _idelta(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return _instant_value(mat, lo, hi, cnt, rate=False)


def _transitions(mat: MatrixValue, lo: I64, hi: I64, cnt: I64, changed: Bools) -> tuple[F64, Bools]:
    marks = np.zeros(len(mat.v), dtype=np.int64)
    if len(mat.v) > 1:
        marks[1:] = changed
    cum = np.cumsum(marks)
    first = _safe(lo, len(mat.v))
    last = _safe(hi - 1, len(mat.v))
    return (cum[last] - cum[first]).astype(np.float64), cnt >= 1


def _changes(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    v = mat.v
    changed = ~((v[1:] == v[:-1]) | (np.isnan(v[1:]) & np.isnan(v[:-1])))
    return _transitions(mat, lo, hi, cnt, changed)


def _resets(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    v = mat.v
    return _transitions(mat, lo, hi, cnt, v[1:] < v[:-1])


def _reduce_pairs(ufunc: np.ufunc, v: F64, lo: I64, hi: I64) -> F64:
    padded = np.append(v, 0.0)
    idx = np.stack([lo.ravel(), hi.ravel()], axis=1).ravel()
    idx = np.clip(idx, 0, len(v))
    out: F64 = ufunc.reduceat(padded, idx)[::2]
    return out.reshape(lo.shape)


def _lanes(
    mat: MatrixValue, lo: I64, cnt: I64
) -> tuple[int, Callable[[int], tuple[I64, F64, Bools]]]:
    width = int(cnt.max()) if cnt.size else 0

    def lane(k: int) -> tuple[I64, F64, Bools]:
        active = k < cnt
        idx = _safe(lo + k, len(mat.v))
        return mat.t[idx], mat.v[idx], active

    return width, lane


def _kahan_sum(mat: MatrixValue, lo: I64, cnt: I64) -> F64:
    width, lane = _lanes(mat, lo, cnt)
    s = np.zeros(lo.shape)
    c = np.zeros(lo.shape)
    for k in range(width):
        _, v, active = lane(k)
        ns, nc = kahan_inc(np.where(active, v, 0.0), s, c)
        s, c = np.where(active, ns, s), np.where(active, nc, c)
    return s + c


def _sum_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    if needs_kahan(mat.v) or not np.isfinite(mat.v).all():
        return _kahan_sum(mat, lo, cnt), cnt > 0
    return _reduce_pairs(np.add, mat.v, lo, hi), cnt > 0


def _avg_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    if not needs_kahan(mat.v) and np.isfinite(mat.v).all():
        return _reduce_pairs(np.add, mat.v, lo, hi) / cnt, cnt > 0
    width, lane = _lanes(mat, lo, cnt)
    shape = lo.shape
    total, comp, mean = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    incremental = np.zeros(shape, dtype=bool)
    for k in range(width):
        _, v, active = lane(k)
        count = float(k + 1)
        new_s, new_c = kahan_inc(v, total, comp)
        regular = active & ~incremental & ((k == 0) | ~np.isinf(new_s))
        switch = active & ~incremental & ~regular
        total = np.where(regular, new_s, total)
        comp = np.where(regular, new_c, comp)
        if switch.any():
            mean = np.where(switch, total / (count - 1), mean)
            comp = np.where(switch, comp / (count - 1), comp)
            incremental |= switch
        inc = active & incremental
        if inc.any():
            q = (count - 1) / count
            m2, c2 = kahan_inc(v / count, q * mean, q * comp)
            mean = np.where(inc, m2, mean)
            comp = np.where(inc, c2, comp)
    c = np.maximum(cnt, 1)
    return np.where(incremental, mean + comp, total / c + comp / c), cnt > 0


def _min_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return _reduce_pairs(np.fmin, mat.v, lo, hi), cnt > 0


def _max_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return _reduce_pairs(np.fmax, mat.v, lo, hi), cnt > 0


def _count_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return cnt.astype(np.float64), cnt > 0


def _last_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return mat.v[_safe(hi - 1, len(mat.v))], cnt > 0


def _first_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return mat.v[_safe(lo, len(mat.v))], cnt > 0


def _present_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return np.ones(lo.shape), cnt > 0


def _variance(mat: MatrixValue, lo: I64, cnt: I64) -> F64:
    width, lane = _lanes(mat, lo, cnt)
    shape = lo.shape
    mean, c_mean, aux, c_aux = (np.zeros(shape) for _ in range(4))
    for k in range(width):
        _, v, active = lane(k)
        count = float(k + 1)
        delta = v - (mean + c_mean)
        m2, cm2 = kahan_inc(delta / count, mean, c_mean)
        a2, ca2 = kahan_inc(delta * (v - (m2 + cm2)), aux, c_aux)
        mean = np.where(active, m2, mean)
        c_mean = np.where(active, cm2, c_mean)
        aux = np.where(active, a2, aux)
        c_aux = np.where(active, ca2, c_aux)
    return (aux + c_aux) / np.maximum(cnt, 1)


def _stdvar_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return _variance(mat, lo, cnt), cnt > 0


def _stddev_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    return np.sqrt(_variance(mat, lo, cnt)), cnt > 0


def _window_matrix(mat: MatrixValue, lo: I64, cnt: I64) -> tuple[F64, Bools]:
    """Every window's samples as ``(width, windows)``; absent entries masked."""
    width = int(cnt.max()) if cnt.size else 0
    flat_lo = lo.ravel()
    flat_cnt = cnt.ravel()
    k = np.arange(width)[:, None]
    active = k < flat_cnt[None, :]
    idx = _safe(flat_lo[None, :] + k, len(mat.v))
    return mat.v[idx], active


def _quantile_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    assert p is not None
    values, active = _window_matrix(mat, lo, cnt)
    m, n = lo.shape
    phi = np.broadcast_to(p[None, :], (m, n)).ravel()
    if values.shape[0] == 0:
        return np.full(lo.shape, np.nan), cnt > 0
    out = quantile_sorted(sort_nan_first(values, active), cnt.ravel(), phi)
    return out.reshape(lo.shape), cnt > 0


def _mad_over_time(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    values, active = _window_matrix(mat, lo, cnt)
    if values.shape[0] == 0:
        return np.full(lo.shape, np.nan), cnt > 0
    half = np.full(values.shape[1], 0.5)
    c = cnt.ravel()
    med = quantile_sorted(sort_nan_first(values, active), c, half)
    dev = np.abs(values - med[None, :])
    out = quantile_sorted(sort_nan_first(dev, active), c, half)
    return out.reshape(lo.shape), cnt > 0


def _regression(mat: MatrixValue, lo: I64, cnt: I64, intercept_t: I64) -> tuple[F64, F64]:
    width, lane = _lanes(mat, lo, cnt)
    shape = lo.shape
    sx, cx, sy, cy, sxy, cxy, sx2, cx2 = (np.zeros(shape) for _ in range(8))
    init_y = mat.v[_safe(lo, len(mat.v))]
    const_y = np.ones(shape, dtype=bool)
    for k in range(width):
        t, v, active = lane(k)
        if k > 0:
            const_y &= ~(active & (v != init_y))
        x = (t - intercept_t) / 1e3
        for acc in (("x", x), ("y", v), ("xy", x * v), ("x2", x * x)):
            name, inc = acc
            inc = np.where(active, inc, 0.0)
            if name == "x":
                sx, cx = kahan_inc(inc, sx, cx)
            elif name == "y":
                sy, cy = kahan_inc(inc, sy, cy)
            elif name == "xy":
                sxy, cxy = kahan_inc(inc, sxy, cxy)
            else:
                sx2, cx2 = kahan_inc(inc, sx2, cx2)
    n = cnt.astype(np.float64)
    sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
    cov = sxy - sx * sy / n
    var = sx2 - sx * sx / n
    slope = cov / var
    intercept = sy / n - slope * sx / n
    inf_y = np.isinf(init_y)
    slope = np.where(const_y, np.where(inf_y, np.nan, 0.0), slope)
    intercept = np.where(const_y, np.where(inf_y, np.nan, init_y), intercept)
    return slope, intercept


def _deriv(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    first_t = mat.t[_safe(lo, len(mat.t))]
    slope, _ = _regression(mat, lo, cnt, first_t)
    return slope, cnt >= 2


def _predict_linear(
    ev: Any, mat: MatrixValue, lo: I64, hi: I64, cnt: I64, p: F64 | None
) -> tuple[F64, Bools]:
    assert p is not None
    ends = np.broadcast_to(ev.steps[None, :], lo.shape)
    slope, intercept = _regression(mat, lo, cnt, ends)
    return slope * p[None, :] + intercept, cnt >= 2


def _absent_over_time(ev: Evaluator, mat: MatrixValue, arg: Any) -> Value:
    if mat.labels:
        lo, hi = mat.windows()
        present = ~any_rows((hi - lo) > 0)
    else:
        present = np.ones(ev.n, dtype=bool)
    return VectorValue([_absent_labels(arg)], np.ones((1, ev.n)), present[None, :])


_RANGE: dict[str, Any] = {
    "rate": _rate,
    "increase": _increase,
    "delta": _delta,
    "irate": _irate,
    "idelta": _idelta,
    "changes": _changes,
    "resets": _resets,
    "deriv": _deriv,
    "predict_linear": _predict_linear,
    "sum_over_time": _sum_over_time,
    "avg_over_time": _avg_over_time,
    "min_over_time": _min_over_time,
    "max_over_time": _max_over_time,
    "count_over_time": _count_over_time,
    "last_over_time": _last_over_time,
    "first_over_time": _first_over_time,
    "present_over_time": _present_over_time,
    "stddev_over_time": _stddev_over_time,
    "stdvar_over_time": _stdvar_over_time,
    "quantile_over_time": _quantile_over_time,
    "mad_over_time": _mad_over_time,
    "absent_over_time": None,
}

_SIMPLE: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "sgn": np.sign,
    "deg": np.degrees,
    "rad": np.radians,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
}

_INSTANT: dict[str, Callable[[Evaluator, list[Any], pp.Call], Value]] = {
    **{name: _math(fn) for name, fn in _SIMPLE.items()},
    **{name: _date(fn) for name, fn in _DATE.items()},
    "round": _round,
    "clamp": _clamp,
    "clamp_min": _clamp_min,
    "clamp_max": _clamp_max,
    "timestamp": _timestamp,
    "vector": _vector_fn,
    "scalar": _scalar_fn,
    "time": _time,
    "pi": _pi,
    "sort": _sort(False),
    "sort_desc": _sort(True),
    "sort_by_label": _sort_by_label(False),
    "sort_by_label_desc": _sort_by_label(True),
    "label_replace": _label_replace,
    "label_join": _label_join,
    "absent": _absent,
    "histogram_quantile": _histogram_quantile,
}
