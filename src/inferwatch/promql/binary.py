"""Binary operators: arithmetic, comparison (with ``bool``) and set operators, with vector
matching (``on``/``ignoring``, ``group_left``/``group_right``) at every step at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import promql_parser as pp

from inferwatch._errors import QueryError
from inferwatch.promql.goformat import go_labels
from inferwatch.promql.types import (
    F64,
    Bools,
    ScalarValue,
    Value,
    VectorValue,
    all_drop,
    any_rows,
)
from inferwatch.tsdb.labels import METRIC_NAME, Labels

if TYPE_CHECKING:
    from inferwatch.promql.engine import Evaluator

ARITHMETIC = {"+", "-", "*", "/", "%", "^", "atan2"}
COMPARISON = {"==", "!=", ">", "<", ">=", "<="}
SET_OPS = {"and", "or", "unless"}


def apply(op: str, a: F64, b: F64) -> F64:
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return np.true_divide(a, b)
        if op == "%":
            return np.fmod(a, b)
        if op == "^":
            return np.asarray(np.power(a, b), dtype=np.float64)
        if op == "atan2":
            return np.asarray(np.arctan2(a, b), dtype=np.float64)
        if op == "==":
            return np.asarray(np.equal(a, b), dtype=np.float64)
        if op == "!=":
            return np.asarray(np.not_equal(a, b), dtype=np.float64)
        if op == ">":
            return (a > b).astype(np.float64)
        if op == "<":
            return (a < b).astype(np.float64)
        if op == ">=":
            return (a >= b).astype(np.float64)
        if op == "<=":
            return (a <= b).astype(np.float64)
    raise QueryError(f"unknown binary operator {op!r}", error_type="bad_data")


def binary(ev: Evaluator, node: pp.BinaryExpr) -> Value:
    op = str(node.op).lower()
    mod = node.modifier
    return_bool = bool(mod is not None and mod.return_bool)
    lhs = ev.eval(node.lhs)
    rhs = ev.eval(node.rhs)
    if isinstance(lhs, ScalarValue) and isinstance(rhs, ScalarValue):
        return ScalarValue(apply(op, lhs.values, rhs.values))
    if isinstance(lhs, VectorValue) and isinstance(rhs, ScalarValue):
        return _vector_scalar(op, lhs, rhs.values, return_bool, swap=False)
    if isinstance(lhs, ScalarValue) and isinstance(rhs, VectorValue):
        return _vector_scalar(op, rhs, lhs.values, return_bool, swap=True)
    if isinstance(lhs, VectorValue) and isinstance(rhs, VectorValue):
        if op in SET_OPS:
            return _set_op(op, lhs, rhs, mod)
        return _vector_vector(op, lhs, rhs, mod, return_bool)
    raise QueryError(
        "binary expression must contain only scalar and instant vector types",
        error_type="bad_data",
    )


def _vector_scalar(
    op: str, vec: VectorValue, scalar: F64, return_bool: bool, *, swap: bool
) -> VectorValue:

    s = scalar[None, :]
    result = apply(op, s, vec.values) if swap else apply(op, vec.values, s)
    present = vec.present
    if op in COMPARISON:
        keep = result.astype(bool)
        if return_bool:
            values = result
        else:
            values = vec.values
            present = present & keep
    else:
        values = result
    drop = vec.drop
    if op in ARITHMETIC or return_bool:
        drop = all_drop(len(vec.labels))
    return VectorValue(vec.labels, values, present.copy(), drop=drop)


def _signature(labels: Labels, on: bool, names: frozenset[str]) -> Labels:
    if on:
        return tuple(p for p in labels if p[0] in names)
    return tuple(p for p in labels if p[0] not in names and p[0] != METRIC_NAME)


def _matching(mod: Any) -> tuple[bool, frozenset[str]]:
    if mod is None or mod.matching is None:
        return False, frozenset()
    on = mod.matching.type == pp.LabelModifierType.Include
    return on, frozenset(mod.matching.labels)


def _group_rows(vec: VectorValue, on: bool, names: frozenset[str]) -> dict[Labels, list[int]]:
    groups: dict[Labels, list[int]] = {}
    for i, lb in enumerate(vec.labels):
        groups.setdefault(_signature(lb, on, names), []).append(i)
    return groups


def _set_op(op: str, lhs: VectorValue, rhs: VectorValue, mod: Any) -> VectorValue:
    on, names = _matching(mod)
    n = lhs.present.shape[1] if lhs.labels else rhs.present.shape[1]
    rgroups = _group_rows(rhs, on, names)
    rseen = {sig: any_rows(rhs.present[rows]) for sig, rows in rgroups.items()}
    if op in ("and", "unless"):
        present = lhs.present.copy()
        none = np.zeros(n, dtype=bool)
        for i, lb in enumerate(lhs.labels):
            hit = rseen.get(_signature(lb, on, names), none)
            present[i] &= hit if op == "and" else ~hit
        return VectorValue(list(lhs.labels), lhs.values, present, drop=lhs.drop)
    lgroups = _group_rows(lhs, on, names)
    lseen = {sig: any_rows(lhs.present[rows]) for sig, rows in lgroups.items()}
    none = np.zeros(n, dtype=bool)
    rpresent = rhs.present.copy()
    for i, lb in enumerate(rhs.labels):
        rpresent[i] &= ~lseen.get(_signature(lb, on, names), none)
    from inferwatch.promql.engine import dedupe

    return dedupe(
        VectorValue(
            list(lhs.labels) + list(rhs.labels),
            np.concatenate([lhs.values, rhs.values]) if lhs.labels or rhs.labels else lhs.values,
            np.concatenate([lhs.present, rpresent]),
            drop=np.concatenate([lhs.flags(), rhs.flags()]),
        )
    )


def _vector_vector(
    op: str, lhs: VectorValue, rhs: VectorValue, mod: Any, return_bool: bool
) -> VectorValue:
    from inferwatch.promql.engine import dedupe

    on, names = _matching(mod)
    card = mod.card if mod is not None else pp.VectorMatchCardinality.OneToOne
    one_to_many = card == pp.VectorMatchCardinality.OneToMany
    include = list(mod.group_labels) if mod is not None and mod.group_labels else []
    many, one = (rhs, lhs) if one_to_many else (lhs, rhs)
    n = many.present.shape[1] if many.labels else one.present.shape[1]
    if not many.labels or not one.labels:
        return VectorValue.empty(n)

    # The "one" side: at most one sample per signature at each step.
    one_groups = _group_rows(one, on, names)
    one_rows: dict[Labels, tuple[F64, Bools, list[int]]] = {}
    for sig, rows in one_groups.items():
        if len(rows) == 1:
            one_rows[sig] = (one.values[rows[0]], one.present[rows[0]], rows)
            continue
        p = one.present[rows]
        counts = p.sum(axis=0)
        if (counts > 1).any():
            step = int(np.argmax(counts > 1))
            dup = sorted(one.labels[r] for r in rows if p[rows.index(r), step])[:2]
            side = "left" if one_to_many else "right"
            raise QueryError(
                f"found duplicate series for the match group {go_labels(sig)} on the {side} "
                f"hand-side of the operation: [{go_labels(dup[0])}, {go_labels(dup[1])}]"
                ";many-to-many matching not allowed: matching labels must be unique on one side"
            )
        first = np.argmax(p, axis=0)
        one_rows[sig] = (one.values[rows][first, np.arange(n)], any_rows(p), rows)

    out_labels: list[Labels] = []
    out_values: list[F64] = []
    out_present: list[Bools] = []
    out_matched: list[Bools] = []
    out_drop: list[bool] = []
    pair_sigs: list[Labels] = []
    drop = op in ARITHMETIC or return_bool
    many_drop = many.flags()
    for i, lb in enumerate(many.labels):
        sig = _signature(lb, on, names)
        hit = one_rows.get(sig)
        if hit is None:
            continue
        ov, op_present, orow = hit
        mv = many.values[i]
        left, right = (ov, mv) if one_to_many else (mv, ov)
        result = apply(op, left, right)
        present = many.present[i] & op_present
        out_matched.append(present)
        if op in COMPARISON:
            if return_bool:
                values = result
            else:
                values = left
                present = present & result.astype(bool)
        else:
            values = result
        out_labels.append(_result_labels(lb, one, orow, card, on, names, include))
        keeps_name = METRIC_NAME in dict(out_labels[-1])
        flag = drop or bool(many_drop[i])
        out_drop.append(flag and keeps_name)
        out_values.append(values)
        out_present.append(present)
        pair_sigs.append(sig)
    if not out_labels:
        return VectorValue.empty(n)
    present_arr = np.array(out_present, dtype=bool)
    values_arr = np.array(out_values, dtype=np.float64)
    _check_unique(pair_sigs, out_labels, np.array(out_matched, dtype=bool), card)
    return dedupe(
        VectorValue(out_labels, values_arr, present_arr, drop=np.array(out_drop, dtype=bool))
    )


def _result_labels(
    lb: Labels,
    one: VectorValue,
    orows: list[int],
    card: Any,
    on: bool,
    names: frozenset[str],
    include: list[str],
) -> Labels:
    out = dict(lb)
    if card == pp.VectorMatchCardinality.OneToOne:
        if on:
            out = {k: v for k, v in out.items() if k in names}
        else:
            for k in names:
                out.pop(k, None)
    if include:
        other = dict(one.labels[orows[0]])
        for name in include:
            value = other.get(name, "")
            if value:
                out[name] = value
            else:
                out.pop(name, None)
    return tuple(sorted(out.items()))


def _check_unique(sigs: list[Labels], labels: list[Labels], present: Bools, card: Any) -> None:
    if card == pp.VectorMatchCardinality.OneToOne:
        groups: dict[Labels, list[int]] = {}
        for i, s in enumerate(sigs):
            groups.setdefault(s, []).append(i)
        for rows in groups.values():
            if len(rows) > 1 and (present[rows].sum(axis=0) > 1).any():
                raise QueryError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
        return
    by_result: dict[Labels, list[int]] = {}
    for i, lb in enumerate(labels):
        by_result.setdefault(lb, []).append(i)
    for rows in by_result.values():
        if len(rows) > 1 and (present[rows].sum(axis=0) > 1).any():
            raise QueryError(
                "multiple matches for labels: grouping labels must ensure unique matches"
            )
