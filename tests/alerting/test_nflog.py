"""The notification log and Alertmanager's needsUpdate."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferwatch.alerting.nflog import Database, NflogEntry, NotificationLog, needs_update


def entry(firing: set[str], resolved: set[str], timestamp: float = 0.0) -> NflogEntry:
    return NflogEntry("g", "r/webhook/0", frozenset(firing), frozenset(resolved), timestamp)


@pytest.mark.parametrize(
    ("last", "firing", "resolved", "send_resolved", "now", "expected"),
    [
        (None, {"a"}, set(), True, 0, True),  # first notification
        (None, set(), {"a"}, True, 0, False),  # only resolved, never notified
        (entry({"a"}, set()), {"a", "b"}, set(), True, 10, True),  # new firing alert
        (entry({"a", "b"}, set()), {"a"}, {"b"}, True, 10, True),  # one resolved
        (entry({"a", "b"}, set()), {"a"}, {"b"}, False, 10, False),  # ... not sent
        (entry({"a"}, set()), set(), {"a"}, False, 10, True),  # all resolved: always
        (entry(set(), {"a"}), set(), {"b"}, True, 10, False),  # fired and resolved unseen
        (entry({"a"}, set(), 0), {"a"}, set(), True, 99, False),  # before repeat
        (entry({"a"}, set(), 0), {"a"}, set(), True, 101, True),  # repeat interval passed
    ],
)
def test_needs_update_follows_alertmanager(
    last: NflogEntry | None,
    firing: set[str],
    resolved: set[str],
    send_resolved: bool,
    now: float,
    expected: bool,
) -> None:
    got = needs_update(
        last,
        frozenset(firing),
        frozenset(resolved),
        send_resolved=send_resolved,
        repeat_interval_s=100,
        now=now,
    )
    assert got is expected


def test_log_survives_reopening_and_gc_removes_old_entries(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    db = Database(path)
    log = NotificationLog(db, clock=lambda: 1000.0, retention_s=500)
    log.log("g1", "r/webhook/0", ["b", "a"], [], 1000.0)
    log.log("g2", "r/webhook/0", [], ["c"], 100.0)
    db.close()

    db = Database(path)
    log = NotificationLog(db, clock=lambda: 1000.0, retention_s=500)
    assert log.get("g1", "r/webhook/0") == NflogEntry(
        "g1", "r/webhook/0", frozenset({"a", "b"}), frozenset(), 1000.0
    )
    assert log.get("g1", "other/webhook/0") is None
    assert log.gc() == 1
    assert [e.group_key for e in log.entries()] == ["g1"]
    db.close()


def test_nested_transactions_roll_back_together() -> None:
    db = Database(None)
    log = NotificationLog(db, clock=lambda: 0.0)
    with pytest.raises(RuntimeError), db.transaction():
        log.log("g", "i", ["a"], [], 1.0)
        raise RuntimeError("boom")
    assert log.get("g", "i") is None
