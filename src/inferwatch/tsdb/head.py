"""The head: recent samples in memory, as the batches they were appended in.

Every append is one batch: one timestamp, the refs of the series it carries (sorted)
and their values. Keeping batches whole makes appends vectorised (numpy checks the
order of a thousand samples at once) and makes each batch the unit of the write-ahead
log. Batches are cut into per-series chunks when the head grows past its span.

The values take 8 bytes a sample; the refs take 4 (int32 while refs fit), and none
when a batch carries the same series as a recent one (a target scraped again), whose
ref array it then shares. Both live in large blocks rather than one allocation per
batch: long-lived arrays among an append's temporaries of the same sizes would leave
the allocator's heap full of holes (tens of MB at 100k series).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar, cast

import numpy as np
import numpy.typing as npt

NO_SAMPLE = np.iinfo(np.int64).min
#: Sorted series refs: int32 while they fit, else int64.
Refs: TypeAlias = npt.NDArray[np.signedinteger[Any]]
_INT32_MAX = np.iinfo(np.int32).max
#: Distinct ref arrays remembered for sharing (one per target, say, of the last scrapes).
_SHARED_REF_SETS = 256
#: Bytes of one block of head arrays (its untouched end costs no memory).
_BLOCK_BYTES = 1 << 24
_Array = TypeVar("_Array", bound=npt.NDArray[Any])
#: Selects of an unchanged head before it is merged whole (and the merge kept).
_READS_TO_MERGE = 4
#: A merged head's search key: ref << _TS_BITS | (timestamp - the head's first).
_TS_BITS = 32
_TS_MAX = (1 << _TS_BITS) - 1
#: timestamps, values, search keys, the keys' base timestamp.
_Merged: TypeAlias = tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64], int
]


@dataclass(frozen=True, slots=True)
class Batch:
    """Samples appended together: ``refs`` sorted, ``values`` aligned, one timestamp.

    ``refs`` may be shared with other batches: never modify it.
    """

    seq: int
    ts: int
    refs: Refs
    values: npt.NDArray[np.float64]


def compact_refs(refs: npt.NDArray[np.int64]) -> Refs:
    """``refs`` as int32 when every ref fits, as they do below 2**31 series created."""
    if refs.size and int(refs[-1]) > _INT32_MAX:  # sorted: the last is the largest
        return refs
    return refs.astype(np.int32)


class Head:
    """In-memory batches plus each series' last timestamp (for order checks)."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.samples = 0
        self._last_ts = np.full(1024, NO_SAMPLE, dtype=np.int64)
        #: Row ``i``: ``batches[i]``'s timestamp, first ref and last ref, so a select
        #: finds the batches of its time range and refs vectorised (a rule's own small
        #: output batches, thousands an hour, never hold the refs of a scraped metric).
        self._batch_meta = np.empty((1024, 3), dtype=np.int64)
        self._min_ts: int | None = None
        self._max_ts: int | None = None
        #: Every sample of ``batches[:_merged_n]`` sorted by ref then time, or None.
        self._merged: _Merged | None = None
        self._merged_n = 0
        #: Selects since the head last changed (a head read again and again gets merged).
        self._reads = 0
        #: Recent distinct ref arrays by (size, first, last ref), for batches to share.
        self._ref_sets: dict[tuple[int, int, int], Refs] = {}
        self._block = np.empty(0, np.uint8)
        self._block_used = 0

    def keep(self, array: _Array) -> _Array:
        """A read-only copy of ``array`` for a batch, in the current block.

        A block is freed when no batch uses it any more (after the head cuts that move
        its batches into chunks).
        """
        size = array.nbytes
        out: npt.NDArray[Any]
        if size * 4 > _BLOCK_BYTES:  # large enough to be an allocation of its own
            out = array.copy()
        else:
            if self._block_used + size > self._block.size:
                self._block = np.empty(_BLOCK_BYTES, np.uint8)
                self._block_used = 0
            start = self._block_used
            out = self._block[start : start + size].view(array.dtype)
            out[...] = array
            self._block_used = start + -(-size // 8) * 8  # the next one 8-byte aligned
        out.flags.writeable = False
        return cast("_Array", out)  # a view of the same dtype and shape

    def shared(self, refs: Refs) -> Refs:
        """A kept copy of ``refs``, or an equal ref array a recent batch holds."""
        if refs.size == 0:
            return refs
        key = (int(refs.size), int(refs[0]), int(refs[-1]))
        known = self._ref_sets.get(key)
        if known is not None and known.dtype == refs.dtype and np.array_equal(known, refs):
            return known
        kept = self.keep(refs)
        self._ref_sets.pop(key, None)
        self._ref_sets[key] = kept
        if len(self._ref_sets) > _SHARED_REF_SETS:
            del self._ref_sets[next(iter(self._ref_sets))]  # the oldest
        return kept

    def last_ts(self, refs: Refs) -> npt.NDArray[np.int64]:
        self._grow(int(refs.max(initial=0)))
        return self._last_ts[refs]

    def set_last_ts(self, refs: Refs, ts: int | npt.NDArray[np.int64]) -> None:
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
        n = len(self.batches)
        if n == len(self._batch_meta):
            grown = np.empty((2 * n, 3), dtype=np.int64)
            grown[:n] = self._batch_meta
            self._batch_meta = grown
        self._batch_meta[n] = _meta(batch)
        self.batches.append(batch)
        self.samples += int(batch.refs.size)
        self._min_ts = batch.ts if self._min_ts is None else min(self._min_ts, batch.ts)
        self._max_ts = batch.ts if self._max_ts is None else max(self._max_ts, batch.ts)
        self._reads = 0

    def drop_through(self, seq: int) -> None:
        """Forget the batches up to and including ``seq`` (they are in chunks now)."""
        kept = [b for b in self.batches if b.seq > seq]
        self.batches = kept
        self.samples = sum(int(b.refs.size) for b in kept)
        self._batch_meta = np.empty((max(1024, 2 * len(kept)), 3), dtype=np.int64)
        if kept:
            self._batch_meta[: len(kept)] = [_meta(b) for b in kept]
        self._min_ts = min((b.ts for b in kept), default=None)
        self._max_ts = max((b.ts for b in kept), default=None)
        self._merged = None
        self._merged_n = 0
        self._reads = 0
        # A ref array no batch uses would keep its whole block alive.
        used = {id(b.refs) for b in kept}
        self._ref_sets = {k: v for k, v in self._ref_sets.items() if id(v) in used}

    @property
    def min_ts(self) -> int | None:
        return self._min_ts

    @property
    def max_ts(self) -> int | None:
        return self._max_ts

    def sorted_samples(
        self, lo: int = 0, hi: int | None = None, batches: list[Batch] | None = None
    ) -> tuple[Refs, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Samples of refs in ``[lo, hi)`` as (refs, timestamps, values), by ref then time.

        Each batch's refs are sorted, so a ref range is one slice of every batch and
        only that range's samples are copied. ``batches`` defaults to the whole head.
        """
        parts_r, parts_v, times, counts = [], [], [], []
        for b in self.batches if batches is None else batches:
            start, end = (0, b.refs.size) if hi is None else _range(b.refs, lo, hi)
            if start < end:
                parts_r.append(b.refs[start:end])
                parts_v.append(b.values[start:end])
                times.append(b.ts)
                counts.append(end - start)
        if not parts_r:
            empty = np.empty(0, np.int64)
            return empty, empty, np.empty(0, np.float64)
        # A series' samples are in time order from batch to batch (appends reject
        # older ones), so a stable sort by ref alone sorts by ref, then time. The sort
        # is a radix sort of sorted runs: well under a millisecond per 100k samples.
        refs = np.concatenate(parts_r)
        order = np.argsort(refs, kind="stable")
        refs = refs[order]
        ts = np.repeat(np.array(times, np.int64), counts)[order]
        values = np.concatenate(parts_v)[order]
        return refs, ts, values

    def series_samples(
        self, refs: npt.NDArray[np.int64], mint: int, maxt: int
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """The head samples of the given refs with ``mint <= t <= maxt``.

        While appends keep coming, a select sorts only the batches in its time range
        and only their slices in its range of refs: a rule's 1 m window over one metric
        is a small part of a 30 m head, and its cost does not grow with the head. A
        head read many times without a change (a dashboard over a quiet store) is
        merged whole once and searched. Batches appended since that merge which hold
        none of the select's refs in its time range (a rule's own output, say) leave
        the merge usable for it.
        """
        out: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        if refs.size == 0 or not self.batches:
            return out
        lo_ref, hi_ref = int(refs.min()), int(refs.max()) + 1
        self._reads += 1
        merged = self._merged_for(lo_ref, hi_ref, mint, maxt)
        if merged is not None:
            all_ts, all_values, keys, base = merged
            refs = refs[refs <= _INT32_MAX]  # a merged head has no larger ones
            shifted = refs.astype(np.int64) << _TS_BITS
            starts = np.searchsorted(keys, shifted + max(mint - base, 0), side="left")
            ends = np.searchsorted(keys, shifted + min(maxt - base, _TS_MAX), side="right")
        else:
            picked = self._touching(0, lo_ref, hi_ref, mint, maxt)
            window = [self.batches[i] for i in picked.tolist()]
            all_refs, all_ts, all_values = self.sorted_samples(lo_ref, hi_ref, window)
            if all_refs.size == 0:
                return out
            if all_refs.dtype != refs.dtype:
                refs = refs[refs <= _DTYPE_MAX[all_refs.dtype]].astype(all_refs.dtype)
            starts = np.searchsorted(all_refs, refs, side="left")
            ends = np.searchsorted(all_refs, refs, side="right")
        for ref, start, end in zip(refs.tolist(), starts.tolist(), ends.tolist(), strict=True):
            if start < end:
                out[ref] = (all_ts[start:end], all_values[start:end])
        return out

    def _touching(
        self, start: int, lo_ref: int, hi_ref: int, mint: int, maxt: int
    ) -> npt.NDArray[np.intp]:
        """Indexes of the batches from ``start`` on with a timestamp in ``[mint, maxt]``
        whose refs reach into ``[lo_ref, hi_ref)``."""
        meta = self._batch_meta[start : len(self.batches)]
        ts = meta[:, 0]
        hit = (ts >= mint) & (ts <= maxt) & (meta[:, 1] < hi_ref) & (meta[:, 2] >= lo_ref)
        return np.flatnonzero(hit) + start

    def _merged_for(self, lo_ref: int, hi_ref: int, mint: int, maxt: int) -> _Merged | None:
        """The whole-head merge when it serves this select, else None (sort a window)."""
        n = len(self.batches)
        merged = self._merged
        if merged is not None:
            if not self._touching(self._merged_n, lo_ref, hi_ref, mint, maxt).size:
                return merged
            self._merged = None  # stale for this select; free its memory
        if self._reads < _READS_TO_MERGE:
            return None
        span = (self._max_ts or 0) - (self._min_ts or 0)
        if span > _TS_MAX:  # keys would not fit; a head never spans 49 days
            return None
        base = self._min_ts or 0
        all_refs, all_ts, all_values = self.sorted_samples()
        if all_refs.size and int(all_refs[-1]) > _INT32_MAX:  # keys would overflow
            return None
        keys = (all_refs.astype(np.int64) << _TS_BITS) | (all_ts - base)
        self._merged = (all_ts, all_values, keys, base)
        self._merged_n = n
        return self._merged


def _meta(batch: Batch) -> tuple[int, int, int]:
    """A batch's timestamp, first and last ref (an empty one matches no ref)."""
    if batch.refs.size == 0:
        return batch.ts, 0, -1
    return batch.ts, int(batch.refs[0]), int(batch.refs[-1])


_DTYPE_MAX = {np.dtype(np.int32): int(_INT32_MAX), np.dtype(np.int64): int(np.iinfo(np.int64).max)}


def _range(refs: Refs, lo: int, hi: int) -> tuple[int, int]:
    """Where the refs in ``[lo, hi)`` are in sorted ``refs`` (searched in their dtype)."""
    limit = _DTYPE_MAX.get(refs.dtype) or int(np.iinfo(refs.dtype).max)
    start = refs.size if lo > limit else int(np.searchsorted(refs, refs.dtype.type(lo)))
    end = refs.size if hi > limit else int(np.searchsorted(refs, refs.dtype.type(hi)))
    return start, end
