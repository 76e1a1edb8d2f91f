"""The process that test_crash.py kills: ingests scrapes into a store until killed.

Usage: ``python crash_child.py DB ACKS COMPACT_EVERY``. It opens the store, prints
``ready``, and appends one scrape of :data:`SERIES` series every :data:`STEP_MS` of
simulated time, going on from the newest timestamp already stored. After each append
returns it adds the timestamp to ``ACKS`` (one unbuffered ``os.write``), so a timestamp
in that file is one that ``append`` acknowledged. Every ``COMPACT_EVERY`` appends it
compacts; the small ``head_span`` cuts the head every :data:`CUT_EVERY` appends, in
many small transactions.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import numpy.typing as npt

from inferwatch.tsdb import store as store_module
from inferwatch.tsdb.labels import STALE_NAN, Labels, Matcher, make_labels
from inferwatch.tsdb.store import Store

# Many transactions per head cut (one per 16 refs), so kills land between them too.
store_module._CUT_REFS = 16
store_module._CUT_DELETE_SAMPLES = 4000

NAME = "crash_test_value"
SERIES = 200
BASE_MS = 1_700_000_000_000
STEP_MS = 100
HEAD_SPAN_S = 2.0
CUT_EVERY = int(HEAD_SPAN_S * 1000 / STEP_MS)


def series_labels(i: int) -> Labels:
    return make_labels({"__name__": NAME, "job": "crash", "instance": f"i{i:03d}"})


def values(ts_ms: npt.ArrayLike, index: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The values of series ``index`` at ``ts_ms`` (broadcast): exact decimals, with
    staleness markers in every tenth series (so both chunk encodings are used)."""
    step = (np.asarray(ts_ms, dtype=np.int64) - BASE_MS) // STEP_MS
    i = np.asarray(index, dtype=np.int64)
    out = np.asarray(step * 0.25 + i, dtype=np.float64)
    return np.where((i % 10 == 0) & (step % 7 == 3), STALE_NAN, out)


def newest(store: Store) -> int | None:
    found = store.select([Matcher("__name__", "=", NAME)], BASE_MS, 2**62)
    return max((int(s.timestamps[-1]) for s in found), default=None)


def main(db: str, acks: str, compact_every: int) -> None:
    now_ms = [BASE_MS]
    store = Store(db, head_span=HEAD_SPAN_S, retention_seconds=None, clock=lambda: now_ms[0] / 1000)
    last = newest(store)
    ts = BASE_MS if last is None else last + STEP_MS
    fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    labels = [series_labels(i) for i in range(SERIES)]
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    appended = 0
    while True:
        now_ms[0] = ts
        scrape = values(ts, np.arange(SERIES)).tolist()
        result = store.append(ts, list(zip(labels, scrape, strict=True)))
        if result.accepted != SERIES:
            sys.exit(f"append at {ts} accepted {result.accepted} of {SERIES}: {result}")
        os.write(fd, f"{ts}\n".encode())
        appended += 1
        if appended % compact_every == 0:
            store.compact(older_than=1.0)
        ts += STEP_MS


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
