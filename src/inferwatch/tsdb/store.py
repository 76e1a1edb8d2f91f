"""The embedded time-series store: one SQLite file holding a write-ahead log and chunks.

::

    store = Store("inferwatch.db")
    store.append(ts_ms, [(make_labels({"__name__": "up", "job": "x"}), 1.0)])
    series = store.select([Matcher("__name__", "=", "up")], mint_ms, maxt_ms)

- **Durable on return.** ``append`` commits its batch to the ``wal`` table before it
  returns. SQLite runs in WAL journal mode; with the default ``fsync="batch"`` a commit
  survives a crash of the process at once and reaches the disk within a second (a
  background checkpoint syncs it), so a power loss costs at most the last second.
  ``fsync="always"`` syncs every commit; ``"never"`` leaves it to the OS.
- **Head and chunks.** Appended batches stay in memory (the :class:`~.head.Head`) and in
  the ``wal`` table. When the head spans ``head_span`` seconds, its samples are encoded
  into one chunk per series (:mod:`.chunks`) and written to ``chunks``, one range of
  series refs per transaction; only when every range is in does a last run of small
  transactions delete the WAL rows they came from. The cut runs in a background thread
  and encodes outside the write lock, so appends wait only for its short SQL writes.
  The ``cut`` row of ``meta`` records how far a cut got: a store reopened after a
  crash in the middle of one finishes it, so no sample is lost or stored twice.
- **Prometheus semantics.** Samples of a series must come in increasing time: an older
  sample is rejected as out of order, one at the same time as a duplicate; both are
  counted, never stored. Staleness markers are stored as values.
- **Repeated scrapes.** An append whose label sets are the very objects of a recent
  append's (what a scrape cache hands on) reuses that append's series refs instead of
  looking each label set up.
- **Limits.** ``max_series`` and ``max_series_per_metric`` bound cardinality; samples
  of series beyond them are rejected, counted per metric, and logged once per metric.
- **Retention** by age and by size, and **compaction** of small old chunks into large
  ones, run in small transactions so they never hold the lock for long.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import is_, itemgetter
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from inferwatch._errors import InferwatchError
from inferwatch.sdk.family import FamilySnapshot
from inferwatch.tsdb import chunks
from inferwatch.tsdb.head import Batch, Head, compact_refs
from inferwatch.tsdb.index import Postings
from inferwatch.tsdb.labels import Labels, Matcher, metric_name
from inferwatch.tsdb.series import AppendResult, Series

log = logging.getLogger("inferwatch.tsdb")

MAGIC = "inferwatch-tsdb"
#: Series refs encoded and written together by a head cut (bounds the cut's temporary
#: memory and how long one of its transactions holds the write lock).
_CUT_REFS = 1024
#: WAL samples deleted per transaction at the end of a head cut.
_CUT_DELETE_SAMPLES = 200_000
#: Appends whose label sets are remembered (say one per target), see ``Store._remember``.
_RECENT_APPENDS = 256
#: The most samples one chunk holds when backfilling or compacting.
MAX_CHUNK_SAMPLES = 1440
FORMAT_VERSION = "1"
FsyncPolicy = Literal["always", "batch", "never"]

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE series(id INTEGER PRIMARY KEY, labels TEXT NOT NULL UNIQUE);
CREATE TABLE chunks(
    series_id INTEGER NOT NULL, min_t INTEGER NOT NULL, max_t INTEGER NOT NULL,
    n INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX chunks_by_series ON chunks(series_id, max_t);
CREATE INDEX chunks_by_time ON chunks(max_t);
CREATE TABLE wal(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, refs BLOB NOT NULL,
    vals BLOB NOT NULL);
"""


class StoreError(InferwatchError, RuntimeError):
    """The store file cannot be used (not SQLite, not ours, newer format, corrupt)."""


class Store:
    """One embedded store; thread-safe. See the module docstring."""

    def __init__(
        self,
        path: str | Path = "inferwatch.db",
        *,
        fsync: FsyncPolicy = "batch",
        retention_seconds: float | None = 15 * 86400,
        retention_bytes: int | None = None,
        head_span: float = 1800.0,
        max_series: int = 1_000_000,
        max_series_per_metric: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if fsync not in ("always", "batch", "never"):
            raise ValueError(f"fsync must be 'always', 'batch' or 'never', not {fsync!r}")
        self.path = Path(path)
        self.fsync = fsync
        self.retention_seconds = retention_seconds
        self.retention_bytes = retention_bytes
        self.head_span_ms = int(head_span * 1000)
        self.max_series = max_series
        self.max_series_per_metric = max_series_per_metric
        self._clock = clock
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._cut_lock = threading.Lock()
        self._db = self._open(self.path)
        self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._refs: dict[Labels, int] = {}
        self._index = Postings()
        self._per_metric: dict[str, int] = {}
        self._head = Head()
        #: Label-set lists of recent appends and their refs, by the id of the first.
        self._recent: dict[int, tuple[list[Labels], npt.NDArray[np.int64]]] = {}
        self._recent_count = 0
        self._next_seq = 1
        self._counters: dict[str, float] = {}
        self._cardinality_rejections: dict[str, float] = {}
        self._logged_metrics: set[str] = set()
        self._closed = False
        self._last_ref = 0
        self._load()
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        self._maintenance: threading.Thread | None = None
        self._cutter: threading.Thread | None = None
        if fsync == "batch":
            self._syncer = threading.Thread(target=self._sync_loop, name="inferwatch-tsdb-sync")
            self._syncer.daemon = True
            self._syncer.start()

    # -- opening -----------------------------------------------------------------------

    def _open(self, path: Path) -> sqlite3.Connection:
        existed = path.exists() and path.stat().st_size > 0
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            if not existed:
                db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # before WAL writes the header
            db.execute("PRAGMA journal_mode=WAL")
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{path}: not a usable SQLite database ({exc}); move it away or give another path"
            ) from None
        if existed and tables:
            if "meta" not in tables:
                raise StoreError(
                    f"{path}: a SQLite database of another program (tables: "
                    f"{', '.join(sorted(tables))}); inferwatch will not write into it"
                )
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("magic") != MAGIC:
                raise StoreError(f"{path}: not an inferwatch store (magic {meta.get('magic')!r})")
            if meta.get("version") != FORMAT_VERSION:
                raise StoreError(
                    f"{path}: store format {meta.get('version')!r}, this inferwatch reads "
                    f"{FORMAT_VERSION!r}"
                )
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"{path}: the database is corrupt: {check}")
        else:
            db.execute("BEGIN")
            for statement in _statements():
                db.execute(statement)
            db.execute(
                "INSERT INTO meta VALUES ('magic', ?), ('version', ?)", (MAGIC, FORMAT_VERSION)
            )
            db.execute("COMMIT")
        sync = {"always": "FULL", "batch": "NORMAL", "never": "OFF"}[self.fsync]
        db.execute(f"PRAGMA synchronous={sync}")
        return db

    def _load(self) -> None:
        """Rebuild the index, the last timestamps and the head from the file."""
        for ref, text in self._db.execute("SELECT id, labels FROM series"):
            labels: Labels = tuple((k, v) for k, v in json.loads(text))
            self._register(ref, labels)
            self._last_ref = max(self._last_ref, ref)
        rows = self._db.execute("SELECT series_id, max(max_t) FROM chunks GROUP BY series_id")
        pairs = np.array(rows.fetchall(), dtype=np.int64).reshape(-1, 2)
        if pairs.size:
            self._head.set_last_ts(pairs[:, 0], pairs[:, 1])
        for seq, ts, refs, vals in self._db.execute(
            "SELECT seq, ts, refs, vals FROM wal ORDER BY seq"
        ):
            ref_array = self._head.shared(compact_refs(np.frombuffer(refs, np.int64)))
            batch = Batch(seq, ts, ref_array, self._head.keep(np.frombuffer(vals, np.float64)))
            self._head.add(batch)
            self._head.set_last_ts(batch.refs, ts)
            self._next_seq = seq + 1
        marker = self._db.execute("SELECT value FROM meta WHERE key = 'cut'").fetchone()
        if marker is not None:  # a head cut was cut short: finish it
            through_seq, next_ref = json.loads(marker[0])
            self._cut([b for b in self._head.batches if b.seq <= through_seq], next_ref)

    def _register(self, ref: int, labels: Labels) -> None:
        self._refs[labels] = ref
        self._index.add(ref, labels)
        name = metric_name(labels)
        self._per_metric[name] = self._per_metric.get(name, 0) + 1

    # -- writing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN ... COMMIT on the writer connection, ROLLBACK if anything fails."""
        db = self._db
        db.execute("BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def append(self, ts_ms: int, samples: Sequence[tuple[Labels, float]]) -> AppendResult:
        """Append samples sharing one timestamp; they are durable when this returns."""
        result = AppendResult()
        if not samples:
            return result
        ts_ms = int(ts_ms)
        label_sets = list(map(itemgetter(0), samples))
        key = id(label_sets[0])
        with self._write_lock:
            self._check_open()
            new_rows: list[tuple[int, Labels]] = []
            recent = self._recent.get(key)
            if (
                recent is not None
                and len(recent[0]) == len(label_sets)
                and all(map(is_, label_sets, recent[0]))
            ):
                ref_array = recent[1]
                value_array = np.fromiter(map(itemgetter(1), samples), np.float64, len(samples))
            else:
                refs_get = self._refs.get
                refs: list[int] = []
                values: list[float] = []
                for labels, value in samples:
                    ref = refs_get(labels)
                    if ref is None:
                        ref = self._new_series(labels, new_rows, result)
                        if ref < 0:
                            continue
                    refs.append(ref)
                    values.append(value)
                ref_array, value_array = np.array(refs, np.int64), np.array(values, np.float64)
                if not new_rows and not result.too_many_series:
                    self._remember(key, label_sets, ref_array)
            self._append_refs(ts_ms, ref_array, value_array, new_rows, result)
        self._maybe_cut()
        return result

    def _remember(self, key: int, label_sets: list[Labels], refs: npt.NDArray[np.int64]) -> None:
        """Keep the refs of an append's label sets: a scrape of the same target with the
        same label-set objects (a scrape cache gives them) then looks none of them up.

        Keyed by the first label set (one entry a target, as a rule); the label sets are
        held, so no other object takes their ids meanwhile. At most about two label sets
        a series are held.
        """
        recent = self._recent
        old = recent.pop(key, None)
        self._recent_count += len(label_sets) - (0 if old is None else len(old[0]))
        recent[key] = (label_sets, refs)
        limit = 2 * len(self._refs) + 1000
        while len(recent) > _RECENT_APPENDS or (len(recent) > 1 and self._recent_count > limit):
            self._recent_count -= len(recent.pop(next(iter(recent)))[0])  # the oldest

    def _new_series(
        self, labels: Labels, new_rows: list[tuple[int, Labels]], result: AppendResult
    ) -> int:
        name = metric_name(labels)
        if (
            len(self._refs) >= self.max_series
            or self._per_metric.get(name, 0) >= self.max_series_per_metric
        ):
            result.too_many_series += 1
            result.rejected_metrics.add(name)
            self._cardinality_rejections[name] = self._cardinality_rejections.get(name, 0.0) + 1
            if name not in self._logged_metrics:
                self._logged_metrics.add(name)
                limit = (
                    "max_series" if len(self._refs) >= self.max_series else "max_series_per_metric"
                )
                log.warning(
                    "tsdb: rejecting new series of metric %r: %s limit reached (%d series in "
                    "total, %d of this metric); counted in "
                    "inferwatch_tsdb_series_rejected_total",
                    name,
                    limit,
                    len(self._refs),
                    self._per_metric.get(name, 0),
                )
            return -1
        self._last_ref += 1
        ref = self._last_ref
        self._register(ref, labels)
        new_rows.append((ref, labels))
        result.new_series += 1
        return ref

    def _append_refs(
        self,
        ts: int,
        refs: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        new_rows: list[tuple[int, Labels]],
        result: AppendResult,
    ) -> None:
        if refs.size:
            order = np.argsort(refs, kind="stable")
            refs = refs[order]
            values = values[order]
            repeated = np.zeros(refs.size, dtype=bool)
            repeated[1:] = refs[1:] == refs[:-1]
            last = self._head.last_ts(refs)
            out_of_order = ts < last
            duplicate = (ts == last) | repeated
            ok = ~(out_of_order | duplicate)
            result.out_of_order += int(out_of_order.sum())
            result.duplicate += int((duplicate & ~out_of_order).sum())
            refs = refs[ok]
            values = values[ok]
        seq = self._next_seq
        try:
            with self._transaction() as db:
                if new_rows:
                    self._insert_series(db, new_rows)
                if refs.size:
                    db.execute(
                        "INSERT INTO wal(seq, ts, refs, vals) VALUES (?, ?, ?, ?)",
                        (seq, ts, refs.tobytes(), values.tobytes()),
                    )
        except BaseException:
            self._forget_new(new_rows)
            raise
        if refs.size:
            self._next_seq = seq + 1
            head = self._head
            head.add(Batch(seq, ts, head.shared(compact_refs(refs)), head.keep(values)))
            self._head.set_last_ts(refs, ts)
            result.accepted += int(refs.size)
        self._count("samples_appended", result.accepted)
        self._count("rejected_out_of_order", result.out_of_order)
        self._count("rejected_duplicate", result.duplicate)
        self._count("rejected_too_many_series", result.too_many_series)

    @staticmethod
    def _insert_series(db: sqlite3.Connection, new_rows: list[tuple[int, Labels]]) -> None:
        # Each label set as JSON as it is written: 100k new series' texts are not all
        # held at once (freed, they would leave the allocator's arenas full of holes).
        db.executemany(
            "INSERT INTO series(id, labels) VALUES (?, ?)",
            ((ref, json.dumps(labels, separators=(",", ":"))) for ref, labels in new_rows),
        )

    def _forget_new(self, new_rows: list[tuple[int, Labels]]) -> None:
        """Undo the in-memory registration of series whose rows were not committed."""
        for ref, _ in new_rows:
            self._unregister(ref)
        self._last_ref -= len(new_rows)

    def _unregister(self, ref: int) -> None:
        self._recent.clear()
        self._recent_count = 0
        labels = self._index.labels(ref)
        self._index.remove(ref)
        self._refs.pop(labels, None)
        name = metric_name(labels)
        self._per_metric[name] -= 1

    def _count(self, key: str, n: int) -> None:
        if n:
            self._counters[key] = self._counters.get(key, 0.0) + n

    def append_series(
        self, labels: Labels, timestamps: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
    ) -> int:
        """Write one series' samples straight into chunks (backfill of history).

        Timestamps must strictly increase. For a new series, later appends continue
        after the backfilled samples; for a series that already has samples, the
        backfilled ones are history beside them (a timestamp stored twice is read once,
        the copy written first winning). Returns the number of samples written.
        """
        ts = np.asarray(timestamps, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float64)
        if ts.size != vals.size:
            raise ValueError(f"backfill of {labels}: {ts.size} timestamps, {vals.size} values")
        if ts.size == 0:
            return 0
        if np.any(np.diff(ts) <= 0):
            raise ValueError(f"backfill of {labels}: timestamps must strictly increase")
        with self._write_lock:
            self._check_open()
            ref = self._refs.get(labels)
            new_rows: list[tuple[int, Labels]] = []
            if ref is None:
                ref = self._new_series(labels, new_rows, AppendResult())
                if ref < 0:
                    raise ValueError(f"backfill of {labels}: cardinality limit reached")
            try:
                with self._transaction() as db:
                    if new_rows:
                        self._insert_series(db, new_rows)
                    db.executemany(
                        "INSERT INTO chunks VALUES (?, ?, ?, ?, ?)",
                        chunk_rows(ref, ts, vals, MAX_CHUNK_SAMPLES),
                    )
            except BaseException:
                self._forget_new(new_rows)
                raise
            if new_rows:
                self._head.set_last_ts(np.array([ref], np.int64), int(ts[-1]))
        return int(ts.size)

    # -- head cut ------------------------------------------------------------------------

    def _head_is_full(self) -> bool:
        lo, hi = self._head.min_ts, self._head.max_ts
        return lo is not None and hi is not None and hi - lo >= self.head_span_ms

    def _maybe_cut(self) -> None:
        """Start a background cut when the head is full and no cut is running.

        Appends never wait for the encoding: the cut takes the write lock only for its
        SQL writes.
        """
        if not self._head_is_full():
            return
        running = self._cutter
        if running is not None and running.is_alive():
            return
        self._cutter = threading.Thread(target=self._background_cut, name="inferwatch-tsdb-cut")
        self._cutter.daemon = True
        self._cutter.start()

    def _background_cut(self) -> None:
        try:
            if self._head_is_full():
                self.cut_head()
        except StoreError:
            pass  # closed meanwhile: the head stays in the WAL
        except Exception as exc:  # pragma: no cover - disk trouble; retried at the next append
            log.warning("tsdb: head cut failed, will retry: %r", exc)

    def wait_for_cut(self, timeout: float | None = None) -> None:
        """Wait until a background head cut, if one is running, has finished."""
        running = self._cutter
        if running is not None:
            running.join(timeout)

    def cut_head(self) -> int:
        """Move every head sample into chunks; return how many samples were moved."""
        with self._cut_lock:
            batches = list(self._head.batches)
            if not batches:
                return 0
            moved = self._cut(batches, 0)
            self._count("head_cuts", 1)
            return moved

    def _cut(self, batches: list[Batch], first_ref: int) -> int:
        """Write the chunks of ``batches`` for refs from ``first_ref`` on, then delete
        their WAL rows and drop them from the head; return how many samples moved.

        Each range of refs is one transaction, which also records in ``meta`` that the
        refs before the next range are written, so a cut cut short by a crash is
        finished on the next start from where it stopped. Until the WAL rows are gone,
        their samples are in the head and in chunks: ``select`` reads them once.
        """
        if not batches:
            self._write_marker(None)
            return 0
        through = batches[-1].seq
        top = max(int(b.refs[-1]) for b in batches)  # a batch is never empty
        moved = 0
        # One range of refs at a time: each batch's refs are sorted, so a range is a
        # slice of every batch, and only that range's samples are copied and sorted.
        for lo in range(first_ref, top + 1, _CUT_REFS):
            refs, ts, values = self._head.sorted_samples(lo, lo + _CUT_REFS, batches)
            if refs.size == 0:
                continue
            rows: list[ChunkRow] = []
            bounds = np.flatnonzero(np.diff(refs)) + 1
            for start, end in zip(
                np.concatenate(([0], bounds)).tolist(),
                np.concatenate((bounds, [refs.size])).tolist(),
                strict=True,
            ):
                rows.extend(
                    chunk_rows(int(refs[start]), ts[start:end], values[start:end], end - start)
                )
            with self._write_lock:
                self._check_open()
                with self._transaction() as db:
                    db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?)", rows)
                    self._write_marker((through, lo + _CUT_REFS))
            moved += int(refs.size)
        # Every chunk is in: now the WAL rows go, oldest first, a few at a time.
        group = 0
        for i, batch in enumerate(batches):
            group += int(batch.refs.size)
            last = i == len(batches) - 1
            if group < _CUT_DELETE_SAMPLES and not last:
                continue
            with self._write_lock:
                self._check_open()
                with self._transaction() as db:
                    db.execute("DELETE FROM wal WHERE seq <= ?", (batch.seq,))
                    if last:
                        self._write_marker(None)
                self._head.drop_through(batch.seq)
            group = 0
        return moved

    def _write_marker(self, progress: tuple[int, int] | None) -> None:
        """Record (in the open transaction) how far a head cut got: its batches through
        seq ``progress[0]`` are in chunks for the refs below ``progress[1]``."""
        if progress is None:
            self._db.execute("DELETE FROM meta WHERE key = 'cut'")
        else:
            self._db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('cut', ?)",
                (json.dumps(list(progress)),),
            )

    # -- reading ---------------------------------------------------------------------------

    def select(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> list[Series]:
        """Series matching every matcher with their samples in ``[mint_ms, maxt_ms]``.

        Series without samples in the range are left out. Results are sorted by labels.
        """
        refs = self._index_select(matchers)
        if not refs:
            return []
        ref_array = np.array(refs, dtype=np.int64)
        # The head before the chunks: a sample a head cut moves in between is then read
        # twice (and kept once), never missed.
        with self._write_lock:
            head = self._head.series_samples(ref_array, mint_ms, maxt_ms)
        parts: dict[int, list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]] = {}
        for ref, data in self._read_chunks(refs, mint_ms, maxt_ms):
            t, v = chunks.decode(data)
            lo = int(np.searchsorted(t, mint_ms, side="left"))
            hi = int(np.searchsorted(t, maxt_ms, side="right"))
            if lo < hi:
                parts.setdefault(ref, []).append((t[lo:hi], v[lo:hi]))
        for ref, tv in head.items():
            parts.setdefault(ref, []).append(tv)
        out = []
        for ref, pieces in parts.items():
            if len(pieces) == 1:
                t, v = pieces[0]
            else:
                t = np.concatenate([p[0] for p in pieces])
                v = np.concatenate([p[1] for p in pieces])
                t, first = np.unique(t, return_index=True)  # sorted, overlaps removed
                v = v[first]
            out.append(Series(self._index.labels(ref), t, v))
        out.sort(key=lambda s: s.labels)
        return out

    def _index_select(self, matchers: Sequence[Matcher]) -> list[int]:
        with self._write_lock:
            return self._index.select(matchers)

    def _read_chunks(self, refs: list[int], mint: int, maxt: int) -> Iterable[tuple[int, bytes]]:
        with self._read_lock:
            self._check_open()
            for start in range(0, len(refs), 500):
                part = refs[start : start + 500]
                marks = ",".join("?" * len(part))
                yield from self._reader.execute(
                    f"SELECT series_id, data FROM chunks WHERE series_id IN ({marks}) "
                    "AND max_t >= ? AND min_t <= ? ORDER BY series_id, min_t, rowid",
                    (*part, mint, maxt),
                ).fetchall()

    def label_names(self) -> list[str]:
        with self._write_lock:
            return self._index.label_names()

    def label_values(self, name: str) -> list[str]:
        with self._write_lock:
            return self._index.label_values(name)

    def series_count(self) -> int:
        return len(self._refs)

    # -- retention and compaction ---------------------------------------------------------

    def enforce_retention(self, *, batch: int = 2000) -> int:
        """Delete chunks past the age and size limits, a little at a time; return rows gone."""
        deleted = 0
        if self.retention_seconds is not None:
            cutoff = int((self._clock() - self.retention_seconds) * 1000)
            while True:
                with self._write_lock:
                    cur = self._db.execute(
                        "DELETE FROM chunks WHERE rowid IN "
                        "(SELECT rowid FROM chunks WHERE max_t < ? LIMIT ?)",
                        (cutoff, batch),
                    )
                    n = cur.rowcount
                deleted += n
                if n < batch:
                    break
        if self.retention_bytes is not None:
            deleted += self._delete_oldest(self.chunk_bytes() - self.retention_bytes, batch)
        if deleted:
            with self._write_lock:
                self._db.execute("PRAGMA incremental_vacuum")
            self._count("retention_deleted_chunks", deleted)
        return deleted

    def _delete_oldest(self, excess: int, batch: int) -> int:
        """Delete the oldest chunks until ``excess`` bytes are freed, ``batch`` rows a time."""
        deleted = 0
        while excess > 0:
            with self._read_lock:
                rows = self._reader.execute(
                    "SELECT rowid, length(data) FROM chunks ORDER BY max_t LIMIT ?", (batch,)
                ).fetchall()
            if not rows:
                break
            victims = []
            for rowid, size in rows:
                if excess <= 0:
                    break
                victims.append(rowid)
                excess -= size
            with self._write_lock:
                marks = ",".join("?" * len(victims))
                self._db.execute(f"DELETE FROM chunks WHERE rowid IN ({marks})", victims)
            deleted += len(victims)
        return deleted

    def chunk_bytes(self) -> int:
        """Bytes of chunk data stored."""
        with self._read_lock:
            row = self._reader.execute(
                "SELECT coalesce(sum(length(data)), 0) FROM chunks"
            ).fetchone()
        return int(row[0])

    def file_bytes(self) -> int:
        """Bytes of the database file and its SQLite WAL on disk."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(f"{self.path}{suffix}")
            if p.exists():
                total += p.stat().st_size
        return total

    def compact(
        self,
        *,
        older_than: float = 7200.0,
        target_samples: int = MAX_CHUNK_SAMPLES,
        series_per_txn: int = 200,
    ) -> int:
        """Merge small chunks older than ``older_than`` seconds into chunks of up to
        ``target_samples`` samples; return how many chunks were rewritten."""
        cutoff = int((self._clock() - older_than) * 1000)
        with self._read_lock:
            candidates = [
                r[0]
                for r in self._reader.execute(
                    "SELECT series_id FROM chunks WHERE max_t < ? AND n < ? "
                    "GROUP BY series_id HAVING count(*) > 1",
                    (cutoff, target_samples),
                )
            ]
        rewritten = 0
        for start in range(0, len(candidates), series_per_txn):
            group = candidates[start : start + series_per_txn]
            marks = ",".join("?" * len(group))
            with self._read_lock:
                rows = self._reader.execute(
                    f"SELECT rowid, series_id, data FROM chunks WHERE series_id IN ({marks}) "
                    "AND max_t < ? AND n < ? ORDER BY series_id, min_t",
                    (*group, cutoff, target_samples),
                ).fetchall()
            by_series: dict[int, list[tuple[int, bytes]]] = {}
            for rowid, sid, data in rows:
                by_series.setdefault(sid, []).append((rowid, data))
            new_rows: list[ChunkRow] = []
            old_rowids: list[int] = []
            for sid, items in by_series.items():
                if len(items) < 2:
                    continue
                decoded = [chunks.decode(d) for _, d in items]
                t = np.concatenate([d[0] for d in decoded])
                v = np.concatenate([d[1] for d in decoded])
                t, first = np.unique(t, return_index=True)
                new_rows.extend(chunk_rows(sid, t, v[first], target_samples))
                old_rowids.extend(r for r, _ in items)
            if not new_rows:
                continue
            with self._write_lock, self._transaction() as db:
                marks = ",".join("?" * len(old_rowids))
                db.execute(f"DELETE FROM chunks WHERE rowid IN ({marks})", old_rowids)
                db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?)", new_rows)
            rewritten += len(old_rowids)
        self._count("compacted_chunks", rewritten)
        return rewritten

    def start_maintenance(self, interval: float = 300.0) -> None:
        """Run retention and compaction every ``interval`` seconds in a daemon thread."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.enforce_retention()
                    self.compact()
                except StoreError:
                    return  # closed
                except (sqlite3.Error, OSError) as exc:  # pragma: no cover - disk trouble
                    log.warning("tsdb: maintenance failed, will retry: %r", exc)

        thread = threading.Thread(target=loop, name="inferwatch-tsdb-maintenance", daemon=True)
        thread.start()
        self._maintenance = thread

    # -- lifecycle ----------------------------------------------------------------------------

    def _sync_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                with self._write_lock:
                    if self._closed:
                        return
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # pragma: no cover - disk trouble
                log.warning("tsdb: periodic sync failed: %r", exc)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")

    def close(self) -> None:
        """Sync and close the file (the head stays in the WAL for the next start)."""
        self._stop.set()
        for thread in (self._syncer, self._maintenance, self._cutter):
            if thread is not None:
                thread.join(timeout=5)
        with self._write_lock, self._read_lock:
            if self._closed:
                return
            self._closed = True
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._reader.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- self-monitoring ------------------------------------------------------------------------

    def collect(self) -> Iterable[FamilySnapshot]:
        """The store's own metrics, for a registry."""
        c = self._counters
        yield FamilySnapshot(
            "inferwatch_tsdb_samples_appended_total",
            "Samples accepted by the store.",
            "counter",
            samples={(): c.get("samples_appended", 0.0)},
            merge="local",
        )
        rejected = FamilySnapshot(
            "inferwatch_tsdb_samples_rejected_total",
            "Samples the store refused, by reason.",
            "counter",
            ("reason",),
            merge="local",
        )
        for reason in ("out_of_order", "duplicate", "too_many_series"):
            rejected.samples[(reason,)] = c.get(f"rejected_{reason}", 0.0)
        yield rejected
        yield FamilySnapshot(
            "inferwatch_tsdb_series_rejected_total",
            "Samples of new series refused by the cardinality limits, by metric.",
            "counter",
            ("metric",),
            {(k,): v for k, v in self._cardinality_rejections.items()},
            merge="local",
        )
        yield FamilySnapshot(
            "inferwatch_tsdb_series",
            "Series known to the store.",
            "gauge",
            samples={(): float(len(self._refs))},
            merge="local",
        )
        yield FamilySnapshot(
            "inferwatch_tsdb_head_samples",
            "Samples in the in-memory head.",
            "gauge",
            samples={(): float(self._head.samples)},
            merge="local",
        )


ChunkRow = tuple[int, int, int, int, bytes]


def chunk_rows(
    ref: int, ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64], max_samples: int
) -> list[ChunkRow]:
    """``chunks`` table rows for one series' sorted samples, ``max_samples`` per chunk."""
    rows = []
    for start in range(0, ts.size, max_samples):
        t, v = ts[start : start + max_samples], values[start : start + max_samples]
        rows.append((ref, int(t[0]), int(t[-1]), int(t.size), chunks.encode(t, v)))
    return rows


def _statements() -> list[str]:
    return [s.strip() for s in _SCHEMA.split(";") if s.strip()]


def default_path() -> Path:
    """``$INFERWATCH_DB`` or ``inferwatch.db`` in the working directory."""
    return Path(os.environ.get("INFERWATCH_DB", "inferwatch.db"))
