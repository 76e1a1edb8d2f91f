from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inferwatch.testing import FakeClock
from inferwatch.tsdb import store as store_module
from inferwatch.tsdb.labels import STALE_NAN, Matcher, is_stale, make_labels
from inferwatch.tsdb.store import Store, StoreError

T0 = 1_700_000_000_000
UP = [Matcher("__name__", "=", "up")]


def lab(name: str = "up", **kw: str) -> tuple[tuple[str, str], ...]:
    return make_labels({"__name__": name, **kw})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    s = Store(db, fsync="never")
    yield s
    s.close()


def test_appended_samples_are_selected_in_range(store: Store) -> None:
    for k in range(10):
        store.append(T0 + k * 1000, [(lab(job="a"), float(k)), (lab(job="b"), -float(k))])
    [a, b] = store.select(UP, T0 + 2000, T0 + 5000)
    assert a.labels == lab(job="a")
    assert a.timestamps.tolist() == [T0 + 2000, T0 + 3000, T0 + 4000, T0 + 5000]
    assert a.values.tolist() == [2.0, 3.0, 4.0, 5.0]
    assert b.values.tolist() == [-2.0, -3.0, -4.0, -5.0]


def test_out_of_order_and_duplicate_samples_are_rejected_and_counted(store: Store) -> None:
    store.append(T0 + 1000, [(lab(), 1.0)])
    assert store.append(T0, [(lab(), 2.0)]).out_of_order == 1
    assert store.append(T0 + 1000, [(lab(), 3.0)]).duplicate == 1
    repeated = store.append(T0 + 2000, [(lab(), 4.0), (lab(), 5.0)])
    assert (repeated.accepted, repeated.duplicate) == (1, 1)
    [s] = store.select(UP, 0, T0 * 2)
    assert s.values.tolist() == [1.0, 4.0]
    rejected = {f.name: f for f in store.collect()}["inferwatch_tsdb_samples_rejected_total"]
    assert rejected.samples[("out_of_order",)] == 1
    assert rejected.samples[("duplicate",)] == 2


def test_new_series_are_reported(store: Store) -> None:
    assert store.append(T0, [(lab(job="a"), 1.0), (lab(job="b"), 1.0)]).new_series == 2
    assert store.append(T0 + 1, [(lab(job="a"), 1.0), (lab(job="c"), 1.0)]).new_series == 1


def test_staleness_marker_is_stored_bit_exact(store: Store) -> None:
    store.append(T0, [(lab(), 1.0)])
    store.append(T0 + 1000, [(lab(), STALE_NAN)])
    store.cut_head()
    [s] = store.select(UP, 0, T0 * 2)
    assert is_stale(s.values[1])


def test_samples_survive_restart_from_head_and_from_chunks(db: Path) -> None:
    with Store(db) as s:
        for k in range(5):
            s.append(T0 + k, [(lab(), float(k))])
        s.cut_head()
        for k in range(5, 8):
            s.append(T0 + k, [(lab(), float(k))])
    with Store(db) as s:
        [series] = s.select(UP, 0, T0 * 2)
        assert series.values.tolist() == [float(k) for k in range(8)]
        assert s.append(T0 + 7, [(lab(), 9.0)]).duplicate == 1  # order is remembered


def test_head_is_cut_into_chunks_when_it_spans_head_span(db: Path) -> None:
    with Store(db, head_span=10) as s:
        for k in range(30):
            s.append(T0 + k * 1000, [(lab(), float(k))])
        s.wait_for_cut(timeout=10)
        assert s.chunk_bytes() > 0
        [series] = s.select(UP, 0, T0 * 2)
        assert series.values.tolist() == [float(k) for k in range(30)]
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM wal").fetchone()[0]
    assert rows < 30


def test_cardinality_limits_reject_and_name_the_metric(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Store(db, max_series=100, max_series_per_metric=3) as s:
        result = s.append(T0, [(lab("noisy", id=str(i)), 1.0) for i in range(5)])
        assert (result.accepted, result.too_many_series) == (3, 2)
        assert result.rejected_metrics == {"noisy"}
        s.append(T0 + 1, [(lab("noisy", id="99"), 1.0)])
        assert s.append(T0 + 1, [(lab("calm"), 1.0)]).accepted == 1
        counts = {f.name: f for f in s.collect()}["inferwatch_tsdb_series_rejected_total"]
        assert counts.samples == {("noisy",): 3}
    lines = [r.getMessage() for r in caplog.records if "noisy" in r.getMessage()]
    assert len(lines) == 1
    assert "max_series_per_metric" in lines[0]


def test_total_series_limit(db: Path) -> None:
    with Store(db, max_series=2) as s:
        result = s.append(T0, [(lab(job=str(i)), 1.0) for i in range(4)])
        assert (result.accepted, result.too_many_series) == (2, 2)


def test_retention_by_age_deletes_only_old_chunks(db: Path) -> None:
    clock = FakeClock(start=T0 / 1000)
    with Store(db, retention_seconds=3600, clock=clock) as s:
        s.append(T0, [(lab(), 1.0)])
        s.cut_head()
        s.append(T0 + 3_000_000, [(lab(), 2.0)])
        s.cut_head()
        assert s.enforce_retention() == 0
        clock.advance(3700)
        assert s.enforce_retention() == 1
        [series] = s.select(UP, 0, T0 * 2)
        assert series.values.tolist() == [2.0]


def test_retention_by_size_deletes_oldest_first(db: Path) -> None:
    rng = np.random.default_rng(0)
    with Store(db, retention_seconds=None, retention_bytes=20_000) as s:
        for k in range(40):
            s.append(T0 + k * 60_000, [(lab(job=str(i)), float(rng.normal())) for i in range(50)])
            if k % 10 == 9:
                s.cut_head()
        assert s.chunk_bytes() > 20_000
        s.enforce_retention()
        assert s.chunk_bytes() <= 20_000
        left = s.select(UP, 0, T0 * 2)
        assert len(left) == 50
        assert {int(x.timestamps[-1]) for x in left} == {T0 + 39 * 60_000}
        first_block = sum(int(x.timestamps[0]) == T0 for x in left)
        assert first_block < 50  # the oldest chunks went first
        assert all(x.values.size >= 20 for x in left)  # the newest two blocks stayed


def test_compaction_merges_chunks_and_keeps_every_sample(db: Path) -> None:
    clock = FakeClock(start=T0 / 1000 + 86400)
    with Store(db, clock=clock) as s:
        for k in range(60):
            s.append(T0 + k * 5000, [(lab(job=str(i)), float(k * i)) for i in range(20)])
            if k % 6 == 5:
                s.cut_head()
        before = [
            (x.labels, x.timestamps.tolist(), x.values.tolist()) for x in s.select(UP, 0, T0 * 2)
        ]
        size_before = s.chunk_bytes()
        assert s.compact(older_than=3600) == 200
        after = [
            (x.labels, x.timestamps.tolist(), x.values.tolist()) for x in s.select(UP, 0, T0 * 2)
        ]
        assert after == before
        assert s.chunk_bytes() < size_before


def test_backfilled_history_merges_with_live_samples(store: Store) -> None:
    store.append_series(lab(), np.array([T0 - 2000, T0 - 1000]), np.array([1.0, 2.0]))
    store.append(T0, [(lab(), 3.0)])
    assert store.append(T0 - 500, [(lab(), 9.0)]).out_of_order == 1
    [s] = store.select(UP, 0, T0 * 2)
    assert s.values.tolist() == [1.0, 2.0, 3.0]


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        Store(bad)
    assert bad.read_bytes().startswith(b"this is not")


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    foreign = tmp_path / "app.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE users(name TEXT)")
    con.execute("INSERT INTO users VALUES ('ada')")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="another program"):
        Store(foreign)
    assert sqlite3.connect(foreign).execute("SELECT name FROM users").fetchall() == [("ada",)]


def test_concurrent_appends_and_selects_lose_nothing(store: Store) -> None:
    def writer(job: str) -> None:
        for k in range(300):
            store.append(T0 + k, [(lab(job=job), float(k))])
            if k % 100 == 99:
                store.cut_head()

    threads = [threading.Thread(target=writer, args=(str(j),)) for j in range(3)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for s in store.select(UP, 0, T0 * 2):
            assert np.all(np.diff(s.timestamps) > 0)
    for t in threads:
        t.join()
    result = store.select(UP, 0, T0 * 2)
    assert [s.values.size for s in result] == [300, 300, 300]


def test_closed_store_refuses_appends(db: Path) -> None:
    s = Store(db)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.append(T0, [(lab(), 1.0)])


def test_maintenance_thread_applies_retention(db: Path) -> None:
    clock = FakeClock(start=T0 / 1000 + 7200)
    with Store(db, retention_seconds=3600, clock=clock) as s:
        s.append(T0, [(lab(), 1.0)])
        s.cut_head()
        s.start_maintenance(interval=0.01)
        deadline = threading.Event()
        for _ in range(500):
            if s.chunk_bytes() == 0:
                break
            deadline.wait(0.01)
        assert s.chunk_bytes() == 0


def test_failed_backfill_leaves_the_store_usable(store: Store) -> None:
    with pytest.raises(ValueError):
        store.append_series(lab(job="a"), np.array([1, 2]), np.array([1.0]))
    with pytest.raises(ValueError, match="strictly increase"):
        store.append_series(lab(job="b"), np.array([2, 1]), np.array([1.0, 2.0]))
    assert store.append(T0, [(lab(job="c"), 1.0)]).accepted == 1
    assert store.series_count() == 1


def test_backfill_into_an_existing_series_keeps_its_order_horizon(store: Store) -> None:
    store.append(1000, [(lab(), 1.0)])
    store.append_series(lab(), np.array([500, 5000]), np.array([0.5, 5.0]))
    assert store.append(2000, [(lab(), 2.0)]).accepted == 1


def test_new_store_can_shrink_after_deletes(db: Path) -> None:
    Store(db).close()
    assert sqlite3.connect(db).execute("PRAGMA auto_vacuum").fetchone()[0] == 2


def test_appends_do_not_wait_for_a_head_cut(db: Path) -> None:
    with Store(db, head_span=10) as s:
        for k in range(11):
            s.append(T0 + k * 1000, [(lab(job=str(i)), float(k)) for i in range(2000)])
        # The cut of 22k samples runs in the background; the next appends are accepted
        # meanwhile and nothing is cut twice into tiny chunks.
        for k in range(11, 14):
            assert s.append(T0 + k * 1000, [(lab(job="0"), float(k))]).accepted == 1
        s.wait_for_cut(timeout=30)
        cuts = s._counters.get("head_cuts", 0)
        assert cuts == 1
        [series] = s.select([Matcher("job", "=", "0")], 0, T0 * 2)
        assert series.values.tolist() == [float(k) for k in range(14)]


class CutInterrupted(Exception):
    """Stands for a crash in the middle of a head cut."""


def interrupt_cut_after(monkeypatch: pytest.MonkeyPatch, ranges: int) -> None:
    """Cut the head 10 refs per transaction, and stop after ``ranges`` are committed."""
    monkeypatch.setattr(store_module, "_CUT_REFS", 10)
    real = Store._transaction
    committed = []

    @contextlib.contextmanager
    def transaction(self: Store) -> Iterator[sqlite3.Connection]:
        with real(self) as db:
            yield db
        committed.append(1)
        if len(committed) == ranges:
            raise CutInterrupted

    monkeypatch.setattr(Store, "_transaction", transaction)


def stored_timestamps(db: Path) -> dict[int, list[int]]:
    """Every sample's timestamp per series ref, in chunks and in the WAL, from SQL."""
    from inferwatch.tsdb import chunks

    out: dict[int, list[int]] = {}
    with sqlite3.connect(db) as con:
        for ref, data in con.execute("SELECT series_id, data FROM chunks"):
            out.setdefault(ref, []).extend(chunks.decode(data)[0].tolist())
        for ts, refs in con.execute("SELECT ts, refs FROM wal"):
            for ref in np.frombuffer(refs, np.int64).tolist():
                out.setdefault(ref, []).append(ts)
    return {ref: sorted(ts) for ref, ts in out.items()}


def test_a_head_cut_writes_one_range_of_refs_per_transaction(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_CUT_REFS", 10)
    transactions = []
    real = Store._transaction

    def counting(self: Store) -> object:
        transactions.append(1)
        return real(self)

    with Store(db) as s:
        for k in range(3):
            s.append(T0 + k, [(lab(job=str(i)), float(k)) for i in range(35)])
        monkeypatch.setattr(Store, "_transaction", counting)
        assert s.cut_head() == 105
        # refs 1..35 in ranges [0, 10) ... [30, 40), then one WAL delete
        assert len(transactions) == 5
        assert s._head.samples == 0
    assert sqlite3.connect(db).execute("SELECT count(*) FROM wal").fetchone()[0] == 0


def test_a_store_reopened_after_a_cut_cut_short_finishes_it(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Store(db)
    for k in range(4):
        s.append(T0 + k, [(lab(job=str(i)), float(k)) for i in range(45)])
    interrupt_cut_after(monkeypatch, ranges=2)
    with pytest.raises(CutInterrupted):
        s.cut_head()
    # Meanwhile the first ranges are in chunks and in the WAL: read once all the same.
    series = s.select(UP, 0, T0 * 2)
    assert [x.timestamps.tolist() for x in series] == [[T0, T0 + 1, T0 + 2, T0 + 3]] * 45
    s.close()
    counts = stored_timestamps(db)
    assert sum(len(ts) != len(set(ts)) for ts in counts.values()) > 0  # the crash's state
    monkeypatch.undo()
    with Store(db) as s:
        assert s._head.samples == 0  # the cut was finished on opening
        series = s.select(UP, 0, T0 * 2)
        assert [x.values.tolist() for x in series] == [[0.0, 1.0, 2.0, 3.0]] * 45
    assert all(ts == [T0, T0 + 1, T0 + 2, T0 + 3] for ts in stored_timestamps(db).values())
    assert sqlite3.connect(db).execute("SELECT value FROM meta WHERE key = 'cut'").fetchall() == []


def test_appends_after_a_cut_cut_short_stay_in_the_head(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Store(db)
    s.append(T0, [(lab(job=str(i)), 1.0) for i in range(25)])
    interrupt_cut_after(monkeypatch, ranges=1)
    with pytest.raises(CutInterrupted):
        s.cut_head()
    monkeypatch.undo()
    s.append(T0 + 1, [(lab(job=str(i)), 2.0) for i in range(25)])
    s.close()
    with Store(db) as s:
        assert s._head.samples == 25  # the second append, not part of the cut
        series = s.select(UP, 0, T0 * 2)
        assert [x.values.tolist() for x in series] == [[1.0, 2.0]] * 25
    assert all(ts == [T0, T0 + 1] for ts in stored_timestamps(db).values())


def test_appends_of_the_same_label_set_objects_keep_every_rule(store: Store) -> None:
    label_sets = [lab(job=str(i)) for i in range(50)]
    for k in range(3):
        result = store.append(T0 + k, [(labels, float(k)) for labels in label_sets])
        assert result.accepted == 50
    again = store.append(T0 + 1, [(labels, 9.0) for labels in label_sets])
    assert (again.accepted, again.out_of_order) == (0, 50)
    same_time = store.append(T0 + 2, [(labels, 9.0) for labels in label_sets])
    assert (same_time.accepted, same_time.duplicate) == (0, 50)
    series = store.select(UP, 0, T0 * 2)
    assert [s.values.tolist() for s in series] == [[0.0, 1.0, 2.0]] * 50
