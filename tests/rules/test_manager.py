"""The rule manager: schedule, reload, restore after restart, sending alerts."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from inferwatch._errors import RuleFileError
from inferwatch.alerting.alert import Alert
from inferwatch.rules.manager import RuleManager, eval_timestamp
from inferwatch.testing import FakeClock
from inferwatch.tsdb.labels import Matcher, make_labels
from inferwatch.tsdb.store import Store

RULES = """\
groups:
- name: serving
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: ModelDown
    expr: up == 0
    for: {for_}
    labels:
      severity: page
"""


class CapturingSink:
    def __init__(self) -> None:
        self.batches: list[list[Alert]] = []

    def send_alerts(self, alerts: Sequence[Alert]) -> None:
        self.batches.append(list(alerts))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "rules.db", fsync="never") as s:
        yield s


def write_rules(tmp_path: Path, for_: str = "0s", name: str = "rules.yml") -> Path:
    path = tmp_path / name
    path.write_text(RULES.format(for_=for_))
    return path


def set_up(store: Store, ts: float, value: float) -> None:
    store.append(
        int(ts * 1000), [(make_labels({"__name__": "up", "job": "api", "instance": "a"}), value)]
    )


def run(manager: RuleManager, clock: FakeClock, store: Store, minutes: int, up: float = 0) -> None:
    """Advance a minute at a time, writing ``up`` and evaluating due groups."""
    for _ in range(minutes):
        set_up(store, clock(), up)
        clock.advance(60)
        manager.tick()


def new_manager(store: Store, clock: FakeClock, **kwargs: object) -> RuleManager:
    return RuleManager(store, clock=clock, evaluation_interval_s=60, **kwargs)  # type: ignore[arg-type]


def test_groups_are_evaluated_at_aligned_times_from_the_next_one_on(
    store: Store, tmp_path: Path
) -> None:
    clock = FakeClock()
    manager = new_manager(store, clock)
    manager.load([write_rules(tmp_path)])
    (group,) = manager.groups()
    set_up(store, clock(), 1)
    assert manager.tick() == []
    first = manager.next_evaluation(group)
    assert clock() < first <= clock() + 60
    assert first == eval_timestamp(group.file, group.name, 60, first)
    clock.advance(first - clock())
    assert manager.tick() == [group]
    assert group.last_evaluation == first
    clock.advance(59)
    assert manager.tick() == []
    clock.advance(1)
    assert manager.tick() == [group]


def test_missed_evaluations_are_skipped(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    manager = new_manager(store, clock)
    manager.load([write_rules(tmp_path)])
    (group,) = manager.groups()
    first = manager.next_evaluation(group)
    manager.evaluate_due(first + 3600 + 5)
    assert group.last_evaluation == first + 3600
    assert manager.next_evaluation(group) == first + 3660


def test_recording_rule_output_reaches_the_store(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    manager = new_manager(store, clock)
    manager.load([write_rules(tmp_path)])
    run(manager, clock, store, 3, up=1)
    series = store.select([Matcher("__name__", "=", "job:up:sum")], 0, int(clock() * 1000))
    assert [s.labels for s in series] == [make_labels({"__name__": "job:up:sum", "job": "api"})]
    assert list(series[0].values) == [1.0, 1.0, 1.0]


def test_reload_with_a_broken_file_keeps_the_previous_rules(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    manager = new_manager(store, clock)
    path = write_rules(tmp_path)
    manager.load([path])
    run(manager, clock, store, 2)
    before = manager.alerts()
    assert [rule.alert for rule, _ in before] == ["ModelDown"]
    path.write_text("groups:\n- name: serving\n  rules:\n  - alert: X\n    expr: up ==\n")
    with pytest.raises(RuleFileError):
        manager.load([path])
    assert manager.last_reload_error is not None and "rules.yml" in manager.last_reload_error
    assert [r.name for g in manager.groups() for r in g.rules] == ["job:up:sum", "ModelDown"]
    assert manager.alerts() == before
    run(manager, clock, store, 1)
    assert manager.alerts()[0][1] is before[0][1]
    manager.load([write_rules(tmp_path)])
    assert manager.last_reload_error is None


def test_reload_keeps_alert_state_of_rules_that_stay(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    manager = new_manager(store, clock)
    manager.load([write_rules(tmp_path, for_="10m")])
    run(manager, clock, store, 3)
    (_, alert) = manager.alerts()[0]
    manager.load([write_rules(tmp_path, for_="10m")])
    assert manager.alerts()[0][1] is alert


def test_alerts_are_resent_every_resend_delay_and_resolutions_at_once(
    store: Store, tmp_path: Path
) -> None:
    clock = FakeClock()
    sink = CapturingSink()
    manager = new_manager(
        store,
        clock,
        sink=sink,
        resend_delay_s=60,
        external_labels={"cluster": "eu", "severity": "ignored"},
        external_url="http://inferwatch:9090/",
    )
    manager.load([write_rules(tmp_path)])
    run(manager, clock, store, 1)
    sent_at = manager.groups()[0].last_evaluation
    assert len(sink.batches) == 1
    (alert,) = sink.batches[0]
    assert dict(alert.labels) == {
        "alertname": "ModelDown",
        "cluster": "eu",
        "instance": "a",
        "job": "api",
        "severity": "page",
    }
    assert alert.starts_at == sent_at
    assert alert.ends_at == sent_at + 240
    assert alert.generator_url == ("http://inferwatch:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1")
    run(manager, clock, store, 1)
    assert len(sink.batches) == 1  # resend delay not passed yet (strictly)
    run(manager, clock, store, 1)
    assert len(sink.batches) == 2
    run(manager, clock, store, 1, up=1)
    assert len(sink.batches) == 3
    (resolved,) = sink.batches[2]
    resolved_at = manager.groups()[0].last_evaluation
    assert resolved.ends_at == resolved_at
    assert resolved.resolved(resolved_at)
    run(manager, clock, store, 1, up=1)
    assert len(sink.batches) == 3
    run(manager, clock, store, 1, up=1)
    assert len(sink.batches) == 4  # resolved alerts are re-sent too
    assert manager.alerts() == []


def test_pending_alerts_are_not_sent(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    sink = CapturingSink()
    manager = new_manager(store, clock, sink=sink)
    manager.load([write_rules(tmp_path, for_="5m")])
    run(manager, clock, store, 4)
    assert sink.batches == []
    run(manager, clock, store, 2)
    assert len(sink.batches) == 1


def test_restart_restores_a_firing_alert_without_waiting_for_again(
    store: Store, tmp_path: Path
) -> None:
    clock = FakeClock()
    path = write_rules(tmp_path, for_="1h")
    first = new_manager(store, clock)
    first.load([path])
    run(first, clock, store, 70)
    ((_, alert),) = first.alerts()
    assert alert.state == "firing"
    active_at = alert.active_at
    first.stop()

    clock.advance(300)  # down for five minutes
    sink = CapturingSink()
    second = new_manager(store, clock, sink=sink)
    second.load([path])
    run(second, clock, store, 2)
    ((_, restored),) = second.alerts()
    assert restored.active_at == math.floor(active_at)  # stored as whole seconds
    assert restored.state == "firing"
    assert [dict(a.labels)["alertname"] for batch in sink.batches for a in batch] == ["ModelDown"]


def test_restart_keeps_the_time_a_long_for_already_waited(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    path = write_rules(tmp_path, for_="1h")
    first = new_manager(store, clock)
    first.load([path])
    run(first, clock, store, 30)
    ((_, alert),) = first.alerts()
    assert alert.state == "pending"
    spent = first.groups()[0].last_evaluation - alert.active_at

    clock.advance(300)
    second = new_manager(store, clock)
    second.load([path])
    run(second, clock, store, 1)
    ((_, restored),) = second.alerts()
    # The time spent pending before the restart counts; the downtime does not.
    assert second.groups()[0].last_evaluation - restored.active_at == pytest.approx(spent, abs=1)
    run(second, clock, store, int((3600 - spent) / 60) + 1)
    assert second.alerts()[0][1].state == "firing"


def test_an_outage_beyond_the_tolerance_is_not_restored(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    path = write_rules(tmp_path, for_="1h")
    first = new_manager(store, clock)
    first.load([path])
    run(first, clock, store, 30)

    clock.advance(2 * 3600)
    second = new_manager(store, clock, outage_tolerance_s=3600)
    second.load([path])
    run(second, clock, store, 1)
    ((_, restored),) = second.alerts()
    assert restored.active_at == second.groups()[0].last_evaluation


def test_removed_groups_get_staleness_markers(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    manager = new_manager(store, clock)
    path = write_rules(tmp_path)
    manager.load([path])
    run(manager, clock, store, 2, up=1)
    empty = tmp_path / "empty.yml"
    empty.write_text("groups: []\n")
    manager.load([empty])
    assert manager.groups() == []
    (series,) = store.select([Matcher("__name__", "=", "job:up:sum")], 0, int(clock() * 1000))
    assert series.values[-1] != series.values[-1]  # NaN: the staleness marker


def test_threads_evaluate_groups_until_stopped(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "fast.yml"
    path.write_text(
        "groups:\n- name: fast\n  interval: 50ms\n  rules:\n  - record: one\n    expr: vector(1)\n"
    )
    manager = RuleManager(store)
    manager.load([path])
    manager.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if manager.groups()[0].last_evaluation:
                break
            time.sleep(0.01)
    finally:
        manager.stop()
    assert manager.groups()[0].statuses[0].health == "ok"
    assert store.select([Matcher("__name__", "=", "one")], 0, int(time.time() * 1000) + 1000)


def test_new_data_evaluates_early_at_most_four_times_per_interval(
    store: Store, tmp_path: Path
) -> None:
    clock = FakeClock()
    sink = CapturingSink()
    manager = new_manager(store, clock, sink=sink)
    manager.load([write_rules(tmp_path)])
    (group,) = manager.groups()
    key = f"{group.file};{group.name}"
    first = manager.next_evaluation(group)
    assert not manager.evaluate_early(key, first - 30)  # never before the first scheduled one
    clock.advance(first - clock())
    set_up(store, clock(), 1)
    manager.tick()
    assert sink.batches == []
    # The target goes down 10 s later: the next scrape triggers an evaluation at once.
    clock.advance(10)
    set_up(store, clock(), 0)
    assert not manager.evaluate_early(key, clock())  # 10 s < a quarter of 60 s
    clock.advance(6)
    set_up(store, clock(), 0)
    assert manager.evaluate_early(key, clock())
    assert group.last_evaluation == clock()
    [[alert]] = sink.batches
    assert alert.labels["alertname"] == "ModelDown" and alert.starts_at == clock()
    assert not manager.evaluate_early(key, clock() + 5)
    # The aligned schedule goes on unchanged.
    assert manager.next_evaluation(group) == first + 60


def test_trigger_wakes_the_running_groups(store: Store, tmp_path: Path) -> None:
    manager = RuleManager(store)
    path = tmp_path / "r.yml"
    path.write_text(
        "groups:\n- name: g\n  interval: 3s\n  rules:\n  - record: one\n    expr: vector(1)\n"
    )
    manager.load([path])
    (group,) = manager.groups()
    manager.start()
    try:
        deadline = time.monotonic() + 10
        while not group.last_evaluation and time.monotonic() < deadline:
            time.sleep(0.01)
        first = group.last_evaluation
        time.sleep(1.0)  # more than a quarter of the interval
        manager.trigger()
        while group.last_evaluation == first and time.monotonic() < deadline:
            time.sleep(0.01)
        early = group.last_evaluation
    finally:
        manager.stop()
    assert first and first < early < first + 3  # evaluated before the next scheduled time
