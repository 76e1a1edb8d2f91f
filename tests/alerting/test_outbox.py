"""The persistent outbox: FIFO per queue, retries, drops, serialization."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from inferwatch.alerting.alert import Alert, Notification
from inferwatch.alerting.nflog import Database, NotificationLog
from inferwatch.alerting.outbox import (
    DELIVERED,
    FAILED,
    Outbox,
    notification_from_json,
    notification_to_json,
)
from inferwatch.testing import FakeClock
from inferwatch.testing.notify import CapturingNotifier

KEY = "team/webhook/0"


def notification(group: str, status: str = "firing", now: float = 0.0) -> Notification:
    return Notification(
        receiver="team",
        status=status,  # type: ignore[arg-type]
        alerts=(Alert({"alertname": "x", "i": group}, {"s": "t"}, 1.5, None, "http://g"),),
        group_labels={"alertname": "x"},
        common_labels={"alertname": "x"},
        common_annotations={},
        external_url="http://am",
        group_key=group,
        now=now,
    )


def outbox(clock: FakeClock, path: str | None = None) -> tuple[Outbox, NotificationLog]:
    db = Database(path)
    log = NotificationLog(db, clock=clock)
    return Outbox(db, log, clock=clock, jitter=False), log


def test_notifications_round_trip_through_json() -> None:
    n = notification("g", now=12.5)
    assert notification_from_json(notification_to_json(n)) == n


def test_a_failing_head_holds_back_its_queue_but_not_others() -> None:
    clock = FakeClock()
    box, log = outbox(clock)
    n = CapturingNotifier()
    box.enqueue("g1", KEY, notification("g1", "firing"), ["a"], [], clock())
    box.enqueue("g1", KEY, notification("g1", "resolved"), [], ["a"], clock())
    n.fail_times(1)
    box.deliver_due({KEY: n})
    assert n.notifications == []  # the only attempt failed; g1's second entry waits
    box.enqueue("g2", KEY, notification("g2"), ["b"], [], clock())
    box.deliver_due({KEY: n})
    assert [x.group_key for x in n.notifications] == ["g2"]
    clock.advance(1)
    box.deliver_due({KEY: n})
    assert [(x.group_key, x.status) for x in n.notifications] == [
        ("g2", "firing"),
        ("g1", "firing"),
        ("g1", "resolved"),
    ]
    entry = log.get("g1", KEY)
    assert entry is not None and entry.resolved == frozenset({"a"}) and entry.firing == frozenset()
    assert box.pending_count() == 0


def test_non_retryable_failure_is_dropped_and_counted() -> None:
    clock = FakeClock()
    box, _ = outbox(clock)
    n = CapturingNotifier()
    n.fail_times(1, retryable=False)
    box.enqueue("g", KEY, notification("g"), ["a"], [], clock())
    box.enqueue("g", KEY, notification("g", "resolved"), [], ["a"], clock())
    box.deliver_due({KEY: n})
    assert [e.state for e in box.entries()] == [FAILED, DELIVERED]
    assert box.failed_total[("webhook", "non_retryable")] == 1
    assert box.sent_total["webhook"] == 1


def test_silent_entries_update_the_log_without_sending() -> None:
    clock = FakeClock()
    box, log = outbox(clock)
    n = CapturingNotifier(send_resolved=False)
    box.enqueue("g", KEY, None, [], ["a"], clock())
    box.deliver_due({KEY: n})
    assert n.attempts == 0
    assert log.get("g", KEY) is not None


def test_backoff_doubles_to_the_cap_and_jitter_shortens_it() -> None:
    box, _ = outbox(FakeClock())
    assert [box.backoff(i) for i in (1, 2, 3, 9, 10, 20)] == [1, 2, 4, 256, 300, 300]
    box.jitter = True
    assert all(150 <= box.backoff(12) <= 300 for _ in range(20))


def test_pending_entries_survive_reopening(tmp_path: Path) -> None:
    clock = FakeClock()
    path = str(tmp_path / "o.db")
    box, _ = outbox(clock, path)
    box.enqueue("g", KEY, notification("g"), ["a"], [], clock())
    box2, _ = outbox(clock, path)
    n = CapturingNotifier()
    assert box2.next_due() == clock()
    assert box2.deliver_due({KEY: n}) == 1
    assert box2.deliver_due({KEY: n}) == 0
    assert len(n.notifications) == 1


class HangingNotifier:
    """A receiver that does not answer until released."""

    kind = "webhook"
    send_resolved = True

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def notify(self, n: Notification) -> None:
        self.entered.set()
        self.release.wait(30)


def test_a_hanging_receiver_holds_back_only_its_own_queue() -> None:
    box, _ = outbox(FakeClock(time.time()))
    box._clock = time.time  # real time: the delivery loop polls while a send hangs
    hanging, fast = HangingNotifier(), CapturingNotifier()
    slow_key, fast_key = "slow/webhook/0", "fast/webhook/0"
    notifiers = {slow_key: hanging, fast_key: fast}
    box.enqueue("g1", slow_key, notification("g1"), ["a"], [], time.time())
    worker = threading.Thread(target=box.deliver_due, args=(notifiers,))
    worker.start()
    try:
        assert hanging.entered.wait(10)
        # Queued while the slow receiver hangs: delivered without waiting for it.
        box.enqueue("g2", fast_key, notification("g2"), ["b"], [], time.time())
        deadline = time.monotonic() + 10
        while not fast.notifications and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [x.group_key for x in fast.notifications] == ["g2"]
        assert worker.is_alive()  # the slow send is still in flight
    finally:
        hanging.release.set()
        worker.join(10)
    assert box.pending_count() == 0
