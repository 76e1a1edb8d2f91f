"""Aggregation operators (``sum``, ``avg``, ``topk``, ``quantile``, ...) over groups of
series, computed for every step at once with ``reduceat`` over rows sorted by group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import promql_parser as pp

from inferwatch._errors import QueryError
from inferwatch.promql.goformat import go_format_float
from inferwatch.promql.types import F64, Bools, ScalarValue, StringValue, Value, VectorValue
from inferwatch.tsdb.labels import METRIC_NAME, Labels

if TYPE_CHECKING:
    from inferwatch.promql.engine import Evaluator


def _group_key(labels: Labels, by: bool, names: frozenset[str]) -> Labels:
    if by:
        return tuple(p for p in labels if p[0] in names)
    return tuple(p for p in labels if p[0] not in names and p[0] != METRIC_NAME)


def aggregate(ev: Evaluator, node: pp.AggregateExpr) -> Value:
    op = str(node.op).lower()
    mod = node.modifier
    by = mod is None or mod.type == pp.AggModifierType.By
    names = frozenset(mod.labels) if mod is not None else frozenset()
    param_value = None
    if node.param is not None:
        param_value = ev.eval(node.param)
    vec = ev.eval(node.expr)
    if not isinstance(vec, VectorValue):
        raise QueryError(
            f"expected type instant vector in aggregation expression, got {type(vec).__name__}",
            error_type="bad_data",
        )
    n = ev.n
    if op == "count_values":
        if not isinstance(param_value, StringValue):
            raise QueryError("count_values needs a string parameter", error_type="bad_data")
        return _count_values(vec, param_value.value, by, names, n)
    # Group rows: keys in order of first appearance, rows sorted by group.
    keys: dict[Labels, int] = {}
    gid = np.empty(len(vec.labels), dtype=np.int64)
    for i, lb in enumerate(vec.labels):
        gid[i] = keys.setdefault(_group_key(lb, by, names), len(keys))
    key_list = list(keys)
    if op in ("topk", "bottomk", "limitk"):
        assert isinstance(param_value, ScalarValue)
        return _topk(ev, vec, gid, len(key_list), param_value.values, op)
    if not vec.labels:
        return VectorValue.empty(n)
    order = np.argsort(gid, kind="stable")
    sgid = gid[order]
    starts = np.flatnonzero(np.r_[True, sgid[1:] != sgid[:-1]])
    values = vec.values[order]
    present = vec.present[order]
    count = np.add.reduceat(present.astype(np.float64), starts, axis=0)
    out_present = count > 0
    with np.errstate(all="ignore"):
        if op == "sum":
            out = _sum(values, present, starts)
        elif op == "avg":
            out = _avg(values, present, starts, count)
        elif op == "count":
            out = count
        elif op == "group":
            out = np.ones_like(count)
        elif op in ("max", "min"):
            fill = np.where(present, values, np.nan)
            ufunc = np.fmax if op == "max" else np.fmin
            out = ufunc.reduceat(fill, starts, axis=0)
        elif op in ("stddev", "stdvar"):
            var = _welford(values, present, starts, len(order))
            out = np.sqrt(var) if op == "stddev" else var
        elif op == "quantile":
            assert isinstance(param_value, ScalarValue)
            phi = param_value.values
            _warn_quantile(ev, phi, node.param)
            out = _quantile(values, present, starts, len(order), phi)
        else:
            raise QueryError(f"unsupported aggregation {op!r}", error_type="bad_data")
    drop = None
    if by and METRIC_NAME in names:
        flags = vec.flags()
        drop = np.zeros(len(key_list), dtype=bool)
        np.logical_or.at(drop, gid, flags)
    return VectorValue(key_list, np.asarray(out, dtype=np.float64), out_present, drop=drop)


def _welford(values: F64, present: Bools, starts: npt.NDArray[np.intp], total: int) -> F64:
    """Population variance per group, accumulated member by member as Prometheus does."""
    sizes = np.diff(np.r_[starts, total])
    shape = (len(starts), values.shape[1])
    mean, m2, cnt = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for k in range(int(sizes.max())):
        rows = np.minimum(starts + k, total - 1)
        active = (k < sizes)[:, None] & present[rows]
        v = values[rows]
        cnt = cnt + active
        delta = v - mean
        mean = np.where(active, mean + delta / np.maximum(cnt, 1), mean)
        m2 = np.where(active, m2 + delta * (v - mean), m2)
    return m2 / cnt


def _warn_quantile(ev: Evaluator, phi: F64, param: object) -> None:
    bad = phi[(phi < 0) | (phi > 1) | np.isnan(phi)]
    if len(bad):
        ev.notes.warn(
            "PromQL warning: quantile value should be between 0 and 1, got "
            f"{go_format_float(float(bad[0]))}{ev.position(param)}"
        )


def needs_kahan(values: F64) -> bool:
    """Whether plain float sums may lose digits Prometheus's Kahan summation keeps."""
    finite = values[np.isfinite(values)]
    return bool(finite.size) and float(np.abs(finite).max()) > 2.0**53


def _sum(values: F64, present: Bools, starts: npt.NDArray[np.intp]) -> F64:
    masked = np.where(present, values, 0.0)
    if not needs_kahan(masked):
        return np.add.reduceat(masked, starts, axis=0)
    return _kahan_groups(masked, starts)


def _kahan_groups(masked: F64, starts: npt.NDArray[np.intp]) -> F64:
    ends = np.r_[starts[1:], masked.shape[0]]
    out = np.empty((len(starts), masked.shape[1]))
    for g, (a, b) in enumerate(zip(starts, ends, strict=True)):
        s = np.zeros(masked.shape[1])
        c = np.zeros(masked.shape[1])
        for row in masked[a:b]:
            s, c = kahan_inc(row, s, c)
        out[g] = s + c
    return out


def kahan_inc(inc: F64, total: F64, comp: F64) -> tuple[F64, F64]:
    """Prometheus's ``kahanSumInc`` (Neumaier's variant), element-wise."""
    with np.errstate(all="ignore"):
        t = total + inc
        big = np.abs(total) >= np.abs(inc)
        comp = np.where(
            np.isinf(t), 0.0, comp + np.where(big, (total - t) + inc, (inc - t) + total)
        )
    return t, comp


def _avg(values: F64, present: Bools, starts: npt.NDArray[np.intp], count: F64) -> F64:
    total = _sum(values, present, starts)
    with np.errstate(all="ignore"):
        mean = total / count
        overflow = np.isinf(mean) & ~np.isinf(
            np.add.reduceat(np.where(present & np.isinf(values), 1.0, 0.0), starts, axis=0) * np.inf
        )
        if overflow.any():
            ends = np.r_[starts[1:], values.shape[0]]
            counts_rows = np.repeat(count, ends - starts, axis=0)
            scaled = np.where(present, values / counts_rows, 0.0)
            mean = np.where(overflow, np.add.reduceat(scaled, starts, axis=0), mean)
    return mean


def quantile_sorted(sorted_vals: F64, n: npt.NDArray[np.int64], phi: F64) -> F64:
    """Prometheus's quantile over the first ``n`` values of each sorted column."""
    with np.errstate(all="ignore"):
        rank = np.where(np.isnan(phi), 0.0, np.clip(phi, 0, 1)) * (n - 1)
        lower = np.clip(np.floor(rank), 0, np.maximum(n - 1, 0)).astype(np.int64)
        upper = np.clip(lower + 1, 0, np.maximum(n - 1, 0)).astype(np.int64)
        weight = rank - np.floor(rank)
        cols = np.arange(sorted_vals.shape[1])
        lo = sorted_vals[lower, cols]
        hi = sorted_vals[upper, cols]
        out = lo * (1 - weight) + hi * weight
    out = np.where(phi < 0, -np.inf, out)
    out = np.where(phi > 1, np.inf, out)
    out = np.where(np.isnan(phi), np.nan, out)
    return np.where(n > 0, out, np.nan)


def sort_nan_first(values: F64, present: Bools) -> F64:
    """Sort each column: NaN first (as Go sorts floats), then numbers, absent last."""
    key = np.where(present, values, np.inf)
    isnan = present & np.isnan(values)
    key = np.where(isnan, -np.inf, key)
    # Order by (absent, not nan, value) with a stable sort on the value key.
    order = np.lexsort((key, ~isnan, ~present), axis=0)
    return np.take_along_axis(np.where(present, values, np.inf), order, axis=0)


def _quantile(
    values: F64, present: Bools, starts: npt.NDArray[np.intp], total: int, phi: F64
) -> F64:
    ends = np.r_[starts[1:], total]
    out = np.empty((len(starts), values.shape[1]))
    for g, (a, b) in enumerate(zip(starts, ends, strict=True)):
        v, p = values[a:b], present[a:b]
        out[g] = quantile_sorted(sort_nan_first(v, p), p.sum(axis=0), phi)
    return out


def _topk(
    ev: Evaluator, vec: VectorValue, gid: npt.NDArray[np.int64], groups: int, k: F64, op: str
) -> VectorValue:
    n = ev.n
    if np.isnan(k).any():
        raise QueryError("Parameter value is NaN")
    if (np.abs(k) > 2.0**62).any():
        bad = float(k[np.abs(k) > 2.0**62][0])
        raise QueryError(f"Parameter value is out of range: {go_format_float(bad)}")
    if not vec.labels:
        return VectorValue.empty(n)
    kk = np.floor(k).astype(np.int64)
    present = np.zeros_like(vec.present)
    rank_of = np.zeros(vec.values.shape, dtype=np.int64)
    for g in range(groups):
        rows = np.flatnonzero(gid == g)
        v = vec.values[rows]
        p = vec.present[rows]
        if op == "topk":
            key = np.where(np.isnan(v), -np.inf, -v)
            nan_key = np.isnan(v)
        else:
            key = np.where(np.isnan(v), np.inf, v)
            nan_key = np.isnan(v)
        # Order: present first, then NaN last, then by value; ties keep input order.
        order = np.lexsort((key, nan_key, ~p), axis=0)
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(len(rows))[:, None].repeat(n, axis=1), axis=0)
        present[rows] = p & (ranks < kk[None, :])
        rank_of[rows] = ranks
    out = VectorValue(list(vec.labels), vec.values, present, drop=vec.drop)
    if n == 1:
        # An instant query lists each group's elements in rank order, groups as they came.
        first_row: dict[int, int] = {}
        for i in range(len(vec.labels)):
            first_row.setdefault(int(gid[i]), i)
        order_rows = sorted(
            (i for i in range(len(vec.labels)) if present[i, 0]),
            key=lambda i: (first_row[int(gid[i])], rank_of[i, 0]),
        )
        out = out.take(order_rows)
    return out


def _count_values(
    vec: VectorValue, label: str, by: bool, names: frozenset[str], n: int
) -> VectorValue:
    counts: dict[Labels, F64] = {}
    order: list[Labels] = []
    for i, lb in enumerate(vec.labels):
        base = dict(_group_key(lb, by, names))
        for j in np.flatnonzero(vec.present[i]):
            key = dict(base)
            key[label] = go_format_float(float(vec.values[i, j]))
            lbl = tuple(sorted(key.items()))
            if lbl not in counts:
                counts[lbl] = np.zeros(n)
                order.append(lbl)
            counts[lbl][j] += 1
    if not order:
        return VectorValue.empty(n)
    values = np.array([counts[k] for k in order])
    return VectorValue(order, values, values > 0)
