"""An in-memory :class:`~inferwatch.promql.value.Queryable`: series held as numpy arrays.

Use :class:`MemoryStorage` to run PromQL over a handful of hand-made series without a
store on disk, as the promqltest runner and unit tests do::

    storage = MemoryStorage()
    storage.add(make_labels({"__name__": "up", "job": "api"}), [0, 15_000], [1.0, 1.0])
    Engine(storage).instant_query("up", 15_000)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from inferwatch.tsdb.labels import METRIC_NAME, Labels, Matcher, label_value, make_labels
from inferwatch.tsdb.series import Series


class MemoryStorage:
    """Series kept in a dict from label set to sorted timestamp and value arrays.

    ``select`` follows the :class:`~inferwatch.promql.value.Queryable` contract: series
    matching every matcher that have samples in ``[mint_ms, maxt_ms]``, with only those
    samples (staleness markers included), sorted by label set.
    """

    def __init__(self) -> None:
        self._series: dict[Labels, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        self._by_name: dict[str, set[Labels]] = {}

    def add(
        self,
        labels: Labels | Mapping[str, str],
        timestamps: Sequence[int] | npt.NDArray[np.int64],
        values: Sequence[float] | npt.NDArray[np.float64],
    ) -> None:
        """Add samples (millisecond timestamps, float values) to a series.

        Samples merge into what the series already holds; where a timestamp is given
        again, the value added last wins. NaN payloads (the staleness marker) are kept.
        """
        key = make_labels(labels) if isinstance(labels, Mapping) else labels
        ts = np.asarray(timestamps, dtype=np.int64)
        vs = np.asarray(values, dtype=np.float64)
        if ts.shape != vs.shape or ts.ndim != 1:
            raise ValueError(
                f"timestamps and values must be 1-d arrays of one length, got shapes "
                f"{ts.shape} and {vs.shape}"
            )
        old = self._series.get(key)
        if old is not None:
            ts = np.concatenate([old[0], ts])
            vs = np.concatenate([old[1], vs])
        order = np.argsort(ts, kind="stable")
        ts, vs = ts[order], vs[order]
        # Among equal timestamps the stable sort keeps insertion order: keep the last.
        keep = np.ones(len(ts), dtype=bool)
        keep[:-1] = ts[1:] != ts[:-1]
        self._series[key] = (ts[keep], vs[keep])
        self._by_name.setdefault(label_value(key, METRIC_NAME), set()).add(key)

    def clear(self) -> None:
        """Drop every series."""
        self._series.clear()
        self._by_name.clear()

    def __len__(self) -> int:
        return len(self._series)

    def select(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> list[Series]:
        """Series matching all ``matchers`` with their samples in ``[mint_ms, maxt_ms]``."""
        candidates: set[Labels] | None = None
        for m in matchers:
            if m.name == METRIC_NAME and m.op == "=":
                candidates = self._by_name.get(m.value, set())
                break
        keys = self._series.keys() if candidates is None else candidates
        out: list[Series] = []
        for key in sorted(keys):
            if not all(m.matches(label_value(key, m.name)) for m in matchers):
                continue
            ts, vs = self._series[key]
            lo = int(np.searchsorted(ts, mint_ms, side="left"))
            hi = int(np.searchsorted(ts, maxt_ms, side="right"))
            if hi > lo:
                out.append(Series(key, ts[lo:hi], vs[lo:hi]))
        return out
