"""Silences: Alertmanager 0.25's create/update/expire rules, state over time, persistence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from inferwatch.alerting.matchers import parse_matchers
from inferwatch.alerting.silence import Silence, SilenceNotFound, Silences
from inferwatch.testing import FakeClock


def silence(
    clock: FakeClock, start: float = 0, end: float = 3600, text: str = 'job="api"'
) -> Silence:
    return Silence(
        matchers=tuple(parse_matchers(text)),
        starts_at=clock() + start,
        ends_at=clock() + end,
        created_by="alice",
        comment="deploy",
    )


def test_state_moves_from_pending_to_active_to_expired() -> None:
    clock = FakeClock()
    store = Silences(None, clock=clock)
    sid = store.set(silence(clock, start=60, end=120))
    stored = store.get(sid)
    assert stored is not None and stored.state(clock()) == "pending"
    assert store.mutes({"job": "api"}, clock()) == []
    clock.advance(60)
    assert stored.state(clock()) == "active"
    assert store.mutes({"job": "api", "x": "y"}, clock()) == [sid]
    assert store.mutes({"job": "web"}, clock()) == []
    clock.advance(60)
    assert stored.state(clock()) == "expired"
    assert store.mutes({"job": "api"}, clock()) == []


def test_create_moves_start_in_the_past_to_now() -> None:
    clock = FakeClock()
    store = Silences(None, clock=clock)
    sid = store.set(silence(clock, start=-600))
    stored = store.get(sid)
    assert stored is not None
    assert stored.starts_at == clock() and stored.updated_at == clock()
    assert stored.created_by == "alice"


def test_update_of_active_silence_end_keeps_the_id() -> None:
    clock = FakeClock()
    store = Silences(None, clock=clock)
    sid = store.set(silence(clock))
    clock.advance(10)
    current = store.get(sid)
    assert current is not None
    assert store.set(replace(current, ends_at=current.ends_at + 600, comment="longer")) == sid
    updated = store.get(sid)
    assert updated is not None and updated.comment == "longer" and updated.updated_at == clock()


def test_update_changing_matchers_expires_old_and_creates_new() -> None:
    clock = FakeClock()
    store = Silences(None, clock=clock)
    sid = store.set(silence(clock))
    clock.advance(10)
    old = store.get(sid)
    assert old is not None
    new_id = store.set(replace(old, matchers=tuple(parse_matchers('job="web"'))))
    assert new_id != sid
    expired = store.get(sid)
    assert expired is not None and expired.state(clock()) == "expired"
    assert expired.ends_at == clock()
    assert store.mutes({"job": "web"}, clock()) == [new_id]


def test_update_changing_start_of_active_silence_creates_new() -> None:
    clock = FakeClock()
    store = Silences(None, clock=clock)
    sid = store.set(silence(clock))
    clock.advance(10)
    old = store.get(sid)
    assert old is not None
    assert store.set(replace(old, starts_at=old.starts_at + 5)) != sid


def test_expire_pending_and_active() -> None:
    clock = FakeClock()
    store = Silences(None, clock=clock)
    pending = store.set(silence(clock, start=600, end=1200))
    active = store.set(silence(clock))
    clock.advance(1)
    store.expire(pending)
    store.expire(active)
    p, a = store.get(pending), store.get(active)
    assert p is not None and (p.starts_at, p.ends_at) == (clock(), clock())
    assert a is not None and a.ends_at == clock() and a.state(clock()) == "expired"
    with pytest.raises(ValueError, match="already expired"):
        store.expire(active)
    with pytest.raises(SilenceNotFound, match="silence not found"):
        store.expire("nope")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda c: replace(silence(c), matchers=()), "at least one matcher required"),
        (lambda c: silence(c, text='job=~".*"'), "must not match the empty string"),
        (lambda c: silence(c, start=100, end=50), "end time must not be before start time"),
        (lambda c: replace(silence(c), id="unknown-id"), "silence not found"),
    ],
)
def test_invalid_silences_are_rejected(make, message: str) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    store = Silences(None, clock=clock)
    with pytest.raises(ValueError, match=message):
        store.set(make(clock))
    assert store.list() == []


def test_list_filters_and_orders_like_the_api() -> None:
    clock = FakeClock()
    store = Silences(None, clock=clock)
    later = store.set(silence(clock, end=7200))
    sooner = store.set(silence(clock, end=3600, text='job="api", env="prod"'))
    pending = store.set(silence(clock, start=60, end=7200, text='job="web"'))
    assert [s.id for s in store.list()] == [sooner, later, pending]
    assert [s.id for s in store.list(parse_matchers('env="prod"'))] == [sooner]
    assert [s.id for s in store.list(parse_matchers('job=~"a.*"'))] == [sooner, later]


def test_gc_drops_silences_past_retention() -> None:
    clock = FakeClock()
    store = Silences(None, clock=clock, retention_s=3600)
    sid = store.set(silence(clock, end=60))
    clock.advance(60 + 3599)
    assert store.gc() == 0
    clock.advance(2)
    assert store.gc() == 1
    assert store.get(sid) is None


def test_silences_survive_reopening_the_file(tmp_path: Path) -> None:
    clock = FakeClock()
    path = str(tmp_path / "silences.db")
    store = Silences(path, clock=clock)
    sid = store.set(silence(clock, text='job="api", env=~"prod|stag"'))
    expired = store.set(silence(clock, text='job="old"'))
    store.expire(expired)
    store.close()
    reopened = Silences(path, clock=clock)
    again = reopened.get(sid)
    assert again == store.get(sid)
    assert again is not None and again.comment == "deploy"
    assert reopened.mutes({"job": "api", "env": "stag"}, clock()) == [sid]
    old = reopened.get(expired)
    assert old is not None and old.state(clock()) == "expired"
    reopened.close()
