"""A child ingests while the test SIGKILLs it at random moments; nothing acknowledged is lost.

After every kill the SQLite file must pass ``PRAGMA integrity_check`` as the crash left
it, and the reopened store must hold every timestamp the child acknowledged for all its
series, with the right values, each sample once.
"""

from __future__ import annotations

import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import numpy.typing as npt

from inferwatch.tsdb import chunks
from inferwatch.tsdb.labels import Labels, Matcher
from inferwatch.tsdb.store import Store
from tests.tsdb.crash_child import BASE_MS, NAME, SERIES, STEP_MS, series_labels, values

CHILD = Path(__file__).with_name("crash_child.py")
KILLS_WHILE_INGESTING = 20
KILLS_WHILE_STARTING = 4
COMPACT_EVERY = 37


def test_acknowledged_samples_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(1337)
    db, acks = tmp_path / "crash.db", tmp_path / "acks"
    runs = ["ingesting"] * KILLS_WHILE_INGESTING + ["starting"] * KILLS_WHILE_STARTING
    rng.shuffle(runs)
    for run, phase in enumerate(runs):
        log = tmp_path / f"child-{run}.log"
        kill_child(db, acks, log, phase, rng)
        try:
            check_integrity(db)
            check_samples(db, acknowledged(acks))
        except AssertionError as exc:
            raise AssertionError(f"after kill {run + 1} ({phase}): {exc}") from exc
    assert len(acknowledged(acks)) > 100 * KILLS_WHILE_INGESTING, "the child barely ran"


def kill_child(db: Path, acks: Path, log: Path, phase: str, rng: random.Random) -> None:
    """Start the child, SIGKILL it a random moment into ``phase``, and reap it."""
    args = [sys.executable, str(CHILD), str(db), str(acks), str(COMPACT_EVERY)]
    with log.open("wb") as err:
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
    try:
        assert child.stdout is not None
        if phase == "starting":
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            ready, _, _ = select.select([child.stdout], [], [], 60)
            line = child.stdout.readline() if ready else b""
            assert line == b"ready\n", f"child not ready: {log.read_text(errors='replace')}"
            time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL, (
        f"child exited by itself ({child.returncode}): {log.read_text(errors='replace')}"
    )


def acknowledged(acks: Path) -> list[int]:
    if not acks.exists():
        return []
    text = acks.read_text()
    return [int(line) for line in text.split("\n")[:-1]]  # a cut-off last line is no ack


def check_integrity(db: Path) -> None:
    """``PRAGMA integrity_check`` on the file as the kill left it, read-only."""
    if not db.exists():
        return
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        result = conn.execute("PRAGMA integrity_check").fetchall()
    assert result == [("ok",)], result


def check_samples(db: Path, acks: list[int]) -> None:
    if not acks:
        return
    assert acks == sorted(set(acks)), "the child acknowledged a timestamp twice"
    with Store(db, retention_seconds=None) as store:
        found = {s.labels: s for s in store.select([Matcher("__name__", "=", NAME)], 0, 2**62)}
    expected_labels = [series_labels(i) for i in range(SERIES)]
    assert sorted(found) == sorted(expected_labels)
    newest = max(int(s.timestamps[-1]) for s in found.values())
    # Every append the child made is there, acknowledged or not (a kill can land between
    # the commit and the acknowledgement), and nothing else.
    want_ts = np.arange(BASE_MS, newest + STEP_MS, STEP_MS, dtype=np.int64)
    assert newest >= acks[-1], f"acknowledged up to {acks[-1]}, stored up to {newest}"
    for i, labels in enumerate(expected_labels):
        got = found[labels]
        missing = np.setdiff1d(want_ts, got.timestamps)
        assert missing.size == 0, f"{labels}: {missing.size} samples lost, first {missing[:5]}"
        np.testing.assert_array_equal(got.timestamps, want_ts)
        want_values = values(want_ts, i)
        bad = np.flatnonzero(got.values.view(np.int64) != want_values.view(np.int64))
        assert bad.size == 0, f"{labels}: wrong values at {want_ts[bad[:5]]}"
    check_no_duplicates(db, expected_labels, int(want_ts.size))


def check_no_duplicates(db: Path, expected: list[Labels], samples_per_series: int) -> None:
    """Count every stored sample, in chunks and in the write-ahead log, straight from SQL."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        refs = dict(conn.execute("SELECT id, labels FROM series").fetchall())
        stored: dict[int, list[npt.NDArray[np.int64]]] = {ref: [] for ref in refs}
        for ref, data in conn.execute("SELECT series_id, data FROM chunks"):
            stored[ref].append(chunks.decode(data)[0])
        for ts, wal_refs in conn.execute("SELECT ts, refs FROM wal"):
            for ref in np.frombuffer(wal_refs, np.int64).tolist():
                stored[ref].append(np.array([ts], np.int64))
    assert len(refs) == len(expected), f"{len(refs)} series rows for {len(expected)} series"
    for ref, parts in stored.items():
        ts = np.concatenate(parts) if parts else np.empty(0, np.int64)
        duplicated = ts.size - np.unique(ts).size
        assert duplicated == 0, f"series {refs[ref]}: {duplicated} samples stored twice"
        assert ts.size == samples_per_series, f"series {refs[ref]}: {ts.size} samples stored"
