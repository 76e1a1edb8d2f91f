"""The values the evaluator passes between nodes, one array column per evaluation step.

An expression is evaluated at every step of a query at once: an instant query is a
range query with one step. An instant vector is a matrix of values with a presence mask
(a series has a value at some steps and not at others); a scalar is one value per step;
a range vector holds the raw samples of each series flattened into two arrays, with the
window end of every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from inferwatch.tsdb.labels import METRIC_NAME, Labels

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(slots=True)
class ScalarValue:
    """A scalar at each step: ``values`` has one entry per step."""

    values: F64


@dataclass(slots=True)
class StringValue:
    value: str


@dataclass(slots=True)
class VectorValue:
    """An instant vector at each step.

    ``values`` and ``present`` are ``(series, steps)``; a series is in the vector at a
    step where ``present`` is true. ``sample_ts`` (same shape) is the timestamp of the
    sample each value came from, kept only by selectors for ``timestamp()``. The row
    order is the order of an instant query's result (``sort``, ``topk`` set it).
    """

    labels: list[Labels]
    values: F64
    present: Bools
    sample_ts: I64 | None = None
    drop: Bools | None = None

    @classmethod
    def empty(cls, steps: int) -> VectorValue:
        return cls([], np.zeros((0, steps)), np.zeros((0, steps), dtype=bool))

    def flags(self) -> Bools:
        """Which rows drop ``__name__`` when the query ends (delayed name removal)."""
        if self.drop is None:
            return np.zeros(len(self.labels), dtype=bool)
        return self.drop

    def take(self, rows: npt.NDArray[np.intp] | list[int]) -> VectorValue:
        ts = None if self.sample_ts is None else self.sample_ts[rows]
        drop = None if self.drop is None else self.drop[rows]
        return VectorValue(
            [self.labels[i] for i in rows], self.values[rows], self.present[rows], ts, drop
        )


@dataclass(slots=True)
class MatrixValue:
    """A range vector: for each series its samples, and the window of each step.

    The samples of series ``i`` are ``t[offsets[i]:offsets[i+1]]`` and the same slice
    of ``v`` (staleness markers removed). ``ends`` holds the end of each step's window
    (the step's time less any offset, or the ``@`` time); a window is
    ``(end - range_ms, end]``. ``drop`` marks series whose ``__name__`` a function
    inside a subquery has already marked for removal.
    """

    labels: list[Labels]
    t: I64
    v: F64
    offsets: I64
    ends: I64
    range_ms: int
    drop: Bools | None = None

    def block(self, start: int, stop: int) -> MatrixValue:
        """Series ``start:stop`` alone, their samples sliced out (no copy)."""
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        return MatrixValue(
            self.labels[start:stop],
            self.t[lo:hi],
            self.v[lo:hi],
            self.offsets[start : stop + 1] - lo,
            self.ends,
            self.range_ms,
            None if self.drop is None else self.drop[start:stop],
        )

    def windows(self) -> tuple[I64, I64]:
        """``lo, hi``: ``(series, steps)`` index bounds of each window into ``t``/``v``."""
        lo, hi = search_series(self.t, self.offsets, [self.ends - self.range_ms, self.ends])
        return lo, hi


def search_series(t: I64, offsets: I64, times: list[I64]) -> list[I64]:
    """``searchsorted(side="right")`` of each step's time within every series at once.

    ``t`` holds the samples of series ``i`` at ``offsets[i]:offsets[i+1]``; for each array
    in ``times`` (one time per step) the result is ``(series, steps)``: the index into
    ``t`` just past the series' last sample at or before that time. One search over a
    key of series number and time (``series << 42 | time``) serves all series.
    """
    m = len(offsets) - 1
    if m == 0 or len(t) == 0:
        return [np.broadcast_to(offsets[:-1, None], (m, len(ts))).copy() for ts in times]
    base = min(min(int(ts.min()) for ts in times), int(t.min())) - 1
    sid = np.repeat(np.arange(m, dtype=np.int64), np.diff(offsets))
    key = (sid << 42) + (t - base)
    rows = (np.arange(m, dtype=np.int64) << 42)[:, None]
    return [
        np.searchsorted(key, rows + (ts - base)[None, :], side="right").astype(np.int64)
        for ts in times
    ]


Value = ScalarValue | StringValue | VectorValue | MatrixValue


def any_rows(present: Bools) -> Bools:
    """Whether any row is present, at each step."""
    return np.asarray(present.any(axis=0), dtype=bool)


def all_drop(rows: int) -> Bools:
    return np.ones(rows, dtype=bool)


def drop_name(labels: Labels) -> Labels:
    if labels and any(k == METRIC_NAME for k, _ in labels):
        return tuple(p for p in labels if p[0] != METRIC_NAME)
    return labels
