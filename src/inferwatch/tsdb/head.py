"""The head: recent samples in memory, as the batches they were appended in.

Every append is one batch: one timestamp, the refs of the series it carries (sorted)
and their values. Keeping batches whole makes appends vectorised (numpy checks the
order of a thousand samples at once) and makes each batch the unit of the write-ahead
log. Batches are cut into per-series chunks when the head grows past its span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

NO_SAMPLE = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True)
class Batch:
    """Samples appended together: ``refs`` sorted, ``values`` aligned, one timestamp."""

    seq: int
    ts: int
    refs: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


class Head:
    """In-memory batches plus each series' last timestamp (for order checks)."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.samples = 0
        self._last_ts = np.full(1024, NO_SAMPLE, dtype=np.int64)
        self._merged: (
            tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]] | None
        ) = None

    def last_ts(self, refs: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        self._grow(int(refs.max(initial=0)))
        return self._last_ts[refs]

    def set_last_ts(self, refs: npt.NDArray[np.int64], ts: int | npt.NDArray[np.int64]) -> None:
        self._grow(int(refs.max(initial=0)))
        self._last_ts[refs] = np.maximum(self._last_ts[refs], ts)

    def _grow(self, ref: int) -> None:
        size = self._last_ts.size
        if ref >= size:
            new_size = max(size * 2, ref + 1)
            grown = np.full(new_size, NO_SAMPLE, dtype=np.int64)
            grown[:size] = self._last_ts
            self._last_ts = grown

    def add(self, batch: Batch) -> None:
        self.batches.append(batch)
        self.samples += int(batch.refs.size)
        self._merged = None

    def drop_through(self, seq: int) -> None:
        """Forget the batches up to and including ``seq`` (they are in chunks now)."""
        kept = [b for b in self.batches if b.seq > seq]
        self.batches = kept
        self.samples = sum(int(b.refs.size) for b in kept)
        self._merged = None

    @property
    def min_ts(self) -> int | None:
        return min((b.ts for b in self.batches), default=None)

    @property
    def max_ts(self) -> int | None:
        return max((b.ts for b in self.batches), default=None)

    def sorted_samples(
        self, lo: int = 0, hi: int | None = None, batches: list[Batch] | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Samples of refs in ``[lo, hi)`` as (refs, timestamps, values), by ref then time.

        Each batch's refs are sorted, so a ref range is one slice of every batch and
        only that range's samples are copied. ``batches`` defaults to the whole head.
        """
        parts_r, parts_t, parts_v = [], [], []
        for b in self.batches if batches is None else batches:
            start, end = (0, b.refs.size) if hi is None else np.searchsorted(b.refs, (lo, hi))
            if start < end:
                parts_r.append(b.refs[start:end])
                parts_t.append(np.full(end - start, b.ts, np.int64))
                parts_v.append(b.values[start:end])
        if not parts_r:
            empty = np.empty(0, np.int64)
            return empty, empty, np.empty(0, np.float64)
        refs = np.concatenate(parts_r)
        ts = np.concatenate(parts_t)
        values = np.concatenate(parts_v)
        order = np.lexsort((ts, refs))
        return refs[order], ts[order], values[order]

    def merged(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """All head samples sorted by ref then time (cached until the head changes)."""
        if self._merged is None:
            self._merged = self.sorted_samples()
        return self._merged

    def series_samples(
        self, refs: npt.NDArray[np.int64], mint: int, maxt: int
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """The head samples of the given refs with ``mint <= t <= maxt``."""
        all_refs, all_ts, all_values = self.merged()
        out: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        if all_refs.size == 0 or refs.size == 0:
            return out
        starts = np.searchsorted(all_refs, refs, side="left")
        ends = np.searchsorted(all_refs, refs, side="right")
        for ref, start, end in zip(refs.tolist(), starts.tolist(), ends.tolist(), strict=True):
            if start == end:
                continue
            ts = all_ts[start:end]
            lo = int(np.searchsorted(ts, mint, side="left"))
            hi = int(np.searchsorted(ts, maxt, side="right"))
            if lo < hi:
                out[ref] = (ts[lo:hi], all_values[start:end][lo:hi])
        return out
