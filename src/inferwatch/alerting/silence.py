"""Silences: mute alerts matching a set of matchers for a time window.

The rules are Alertmanager 0.25's (``silence/silence.go``):

- a silence is *pending* before ``starts_at``, *active* until ``ends_at``, then
  *expired*; expired silences are kept for ``retention_s`` (120 h) and then removed
  by :meth:`Silences.gc`;
- :meth:`Silences.set` with an empty id creates a silence (a start in the past becomes
  now); with an existing id it updates in place only when the matchers are unchanged
  and the change is allowed for the current state (an active silence keeps its start
  and must end in the future; a pending one must still start in the future).
  Otherwise the old silence is expired (unless already expired) and a new one with a
  new id is created;
- :meth:`Silences.expire` ends an active silence now, and makes a pending one start and
  end now.

Silences live in memory and, when a path is given, in a SQLite file, written on every
change, so they survive a restart.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from inferwatch.alerting.matchers import LABEL_NAME, Matcher, matches_all

SilenceState = Literal["pending", "active", "expired"]

DEFAULT_RETENTION_S = 120 * 3600.0


class SilenceNotFound(ValueError):
    """No silence has the given id (``silence not found``)."""


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence. Times are Unix seconds; ``id`` is empty for one not yet stored."""

    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""
    id: str = ""
    updated_at: float = 0.0

    def state(self, now: float) -> SilenceState:
        """``pending`` before the start, ``active`` until the end, then ``expired``."""
        if now < self.starts_at:
            return "pending"
        if now < self.ends_at:
            return "active"
        return "expired"

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the silence's matchers all match ``labels`` (ignoring time)."""
        return matches_all(self.matchers, labels)


def validate(silence: Silence) -> None:
    """Raise ValueError if the silence is not one Alertmanager would store."""
    if not silence.matchers:
        raise ValueError("silence invalid: at least one matcher required")
    for i, m in enumerate(silence.matchers):
        if LABEL_NAME.fullmatch(m.name) is None:
            raise ValueError(
                f"silence invalid: invalid label matcher {i}: invalid label name {m.name!r}"
            )
    if all(m.matches_value("") for m in silence.matchers):
        raise ValueError("silence invalid: at least one matcher must not match the empty string")
    if silence.starts_at <= 0:
        raise ValueError("silence invalid: invalid zero start timestamp")
    if silence.ends_at <= 0:
        raise ValueError("silence invalid: invalid zero end timestamp")
    if silence.ends_at < silence.starts_at:
        raise ValueError("silence invalid: end time must not be before start time")


def filter_matches(silence: Silence, filters: Sequence[Matcher]) -> bool:
    """Alertmanager's API filter on silences: each filter matcher is applied to the
    silence's matcher values by name (an empty filter value accepts an absent name)."""
    values = {m.name: m.value for m in silence.matchers}
    for f in filters:
        present = f.name in values
        value = values.get(f.name, "")
        if f.value == "" and (present if f.op in ("!=", "!~") else not present):
            continue
        if not f.matches_value(value):
            return False
    return True


def _can_update(old: Silence, new: Silence, now: float) -> bool:
    if old.matchers != new.matchers:
        return False
    state = old.state(now)
    if state == "active":
        return new.starts_at == old.starts_at and new.ends_at >= now
    if state == "pending":
        return new.starts_at >= now
    return False


_SCHEMA = """
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL
)
"""


class Silences:
    """The silence store. ``path`` is a SQLite file (None: memory only); ``clock``
    gives Unix seconds. Thread-safe."""

    def __init__(
        self,
        path: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        retention_s: float = DEFAULT_RETENTION_S,
    ) -> None:
        self._clock = clock
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._silences: dict[str, Silence] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute(_SCHEMA)
            for row in self._db.execute(
                "SELECT id, matchers, starts_at, ends_at, updated_at, created_by, comment "
                "FROM silences"
            ):
                self._silences[row[0]] = Silence(
                    id=row[0],
                    matchers=tuple(
                        Matcher(m["name"], m["op"], m["value"]) for m in json.loads(row[1])
                    ),
                    starts_at=row[2],
                    ends_at=row[3],
                    updated_at=row[4],
                    created_by=row[5],
                    comment=row[6],
                )

    def close(self) -> None:
        """Close the SQLite file (the store is unusable afterwards)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _store(self, silence: Silence) -> None:
        self._silences[silence.id] = silence
        if self._db is not None:
            matchers = json.dumps(
                [{"name": m.name, "op": m.op, "value": m.value} for m in silence.matchers]
            )
            self._db.execute(
                "INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    silence.id,
                    matchers,
                    silence.starts_at,
                    silence.ends_at,
                    silence.updated_at,
                    silence.created_by,
                    silence.comment,
                ),
            )

    def set(self, silence: Silence) -> str:
        """Create (empty ``id``) or update a silence and return its id, which is new
        when the update could not be made in place (see the module docs).

        Raises :class:`SilenceNotFound` for an unknown id, ValueError for an invalid
        silence (no matchers, all matching the empty string, end before start).
        """
        with self._lock:
            now = self._clock()
            old = self._silences.get(silence.id) if silence.id else None
            if silence.id and old is None:
                raise SilenceNotFound(f"silence not found: {silence.id}")
            if old is not None and _can_update(old, silence, now):
                validate(silence)
                self._store(replace(silence, updated_at=now))
                return silence.id
            new = replace(
                silence,
                id=str(uuid.uuid4()),
                starts_at=max(silence.starts_at, now),
                updated_at=now,
            )
            validate(new)
            if old is not None and old.state(now) != "expired":
                self._expire(old, now)
            self._store(new)
            return new.id

    def _expire(self, silence: Silence, now: float) -> None:
        state = silence.state(now)
        if state == "expired":
            raise ValueError(f"silence {silence.id} already expired")
        if state == "active":
            self._store(replace(silence, ends_at=now, updated_at=now))
        else:
            self._store(replace(silence, starts_at=now, ends_at=now, updated_at=now))

    def expire(self, silence_id: str) -> None:
        """End a silence now. Raises :class:`SilenceNotFound` for an unknown id and
        ValueError when it has already expired."""
        with self._lock:
            old = self._silences.get(silence_id)
            if old is None:
                raise SilenceNotFound(f"silence not found: {silence_id}")
            self._expire(old, self._clock())

    def get(self, silence_id: str) -> Silence | None:
        """The silence with this id, or None."""
        with self._lock:
            return self._silences.get(silence_id)

    def list(self, filter_matchers: Iterable[Matcher] | None = None) -> builtins.list[Silence]:
        """All silences (or those passing the API's ``filter``), in Alertmanager's
        API order: active by end, then pending by start, then expired, latest end first."""
        filters = list(filter_matchers or ())
        with self._lock:
            now = self._clock()
            found = [s for s in self._silences.values() if filter_matches(s, filters)]
        order = {"active": 0, "pending": 1, "expired": 2}

        def key(s: Silence) -> tuple[int, float, str]:
            state = s.state(now)
            when = s.starts_at if state == "pending" else s.ends_at
            return (order[state], -when if state == "expired" else when, s.id)

        return sorted(found, key=key)

    def mutes(self, labels: Mapping[str, str], now: float) -> builtins.list[str]:
        """Ids of the silences active at ``now`` that match ``labels``."""
        with self._lock:
            return [
                s.id
                for s in self._silences.values()
                if s.state(now) == "active" and s.matches(labels)
            ]

    def gc(self) -> int:
        """Remove silences that ended more than ``retention_s`` ago; return how many."""
        with self._lock:
            cutoff = self._clock() - self.retention_s
            gone = [sid for sid, s in self._silences.items() if s.ends_at < cutoff]
            for sid in gone:
                del self._silences[sid]
                if self._db is not None:
                    self._db.execute("DELETE FROM silences WHERE id = ?", (sid,))
            return len(gone)


__all__ = [
    "DEFAULT_RETENTION_S",
    "Silence",
    "SilenceNotFound",
    "SilenceState",
    "Silences",
    "filter_matches",
    "validate",
]
