"""The prediction log: predictions and their delayed labels, joined by request id.

A :class:`PredictionLog` is one table, ``inferwatch_predictions``, keyed by
``(model, version, request_id)``. A row holds the prediction (JSON), its confidence score,
the features (JSON, optional) and, once it arrives, the label. Two back ends share the
schema and the statements:

- :class:`SQLitePredictionLog` (the default): a file, in WAL mode, safe for several
  processes on one host (each opens its own connection);
- :class:`PostgresPredictionLog`: a ``postgresql://`` URL, for replicas on several hosts
  sharing one log (needs the ``postgres`` extra, psycopg 3).

:func:`open_prediction_log` picks one from a path or URL.

How a label is joined, exactly once, by whichever process sees both halves:

1. a prediction is upserted; it fills a row that an early label created, or is ignored
   if the request id already has a prediction (first one wins);
2. a label is upserted; it fills a row that has no label yet, is refused as a
   ``duplicate`` if the row has one (first label wins) and as ``expired`` if the
   prediction is older than the retention, or creates a *pending* row (a label that
   arrived before its prediction);
3. after committing either, the writer *claims* joinable rows: ``UPDATE ... SET joined = 1
   WHERE joined = 0 AND label IS NOT NULL AND predicted_at IS NOT NULL RETURNING ...``.
   Whichever process's claim updates a row counts it; the others see ``joined = 1``.

Because the upserts commit before the claim runs, of two processes that write the two
halves at the same moment the later claim sees both, and the row lock taken by the
``UPDATE`` lets only one of them count it (under SQLite's one-writer lock and under
PostgreSQL's READ COMMITTED alike).

:meth:`PredictionLog.purge` applies the retention: predictions older than it become
tombstones (the key and time kept, the payload dropped, so a late label is told
``expired`` rather than unknown) and are deleted after a second retention period;
pending labels older than their time-to-live are deleted and counted by the caller as
unmatched ``unknown``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from inferwatch._errors import ConfigError

__all__ = [
    "JoinedLabel",
    "LabelRow",
    "LabelStatus",
    "PostgresPredictionLog",
    "PredictionLog",
    "PredictionRow",
    "SQLitePredictionLog",
    "StoredPrediction",
    "open_prediction_log",
]

TABLE = "inferwatch_predictions"

#: What became of one label written to the log.
#: ``stored``: it filled its prediction's row (and is joined by the next claim);
#: ``pending``: no prediction with that id yet, kept until one arrives or its TTL ends;
#: ``duplicate``: the id already has a label (the first one wins);
#: ``expired``: the prediction is older than the retention.
LabelStatus = Literal["stored", "pending", "duplicate", "expired"]


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One prediction to write: ``prediction`` is a class name or a number."""

    request_id: str
    predicted_at: float
    prediction: str | float
    score: float | None = None
    features_json: str | None = None


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One label to write: ``labelled_at`` is when the label became known."""

    request_id: str
    label: str | float
    labelled_at: float


@dataclass(frozen=True, slots=True)
class JoinedLabel:
    """A prediction and its label, claimed for counting by this process."""

    request_id: str
    prediction: str | float
    score: float | None
    predicted_at: float
    label: str | float
    labelled_at: float


@dataclass(frozen=True, slots=True)
class StoredPrediction:
    """A row of the log as stored (``prediction`` is None for a pending label)."""

    request_id: str
    predicted_at: float | None
    prediction: str | float | None
    score: float | None
    features: Any
    label: str | float | None
    labelled_at: float | None
    joined: bool
    expired: bool


_SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        request_id TEXT NOT NULL,
        predicted_at DOUBLE PRECISION,
        prediction TEXT,
        score DOUBLE PRECISION,
        features TEXT,
        label TEXT,
        labelled_at DOUBLE PRECISION,
        received_at DOUBLE PRECISION,
        joined INTEGER NOT NULL DEFAULT 0,
        expired INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (model, version, request_id)
    )""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_time ON {TABLE} (model, version, predicted_at)",
    # Only unjoined labelled rows: what a claim looks at, kept tiny.
    f"""CREATE INDEX IF NOT EXISTS {TABLE}_joinable ON {TABLE} (model, version)
        WHERE joined = 0 AND label IS NOT NULL""",
]

_INSERT_PREDICTION = f"""
    INSERT INTO {TABLE} (model, version, request_id, predicted_at, prediction, score, features)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (model, version, request_id) DO UPDATE SET
        predicted_at = excluded.predicted_at, prediction = excluded.prediction,
        score = excluded.score, features = excluded.features
    WHERE {TABLE}.predicted_at IS NULL"""

_INSERT_LABEL = f"""
    INSERT INTO {TABLE} (model, version, request_id, label, labelled_at, received_at)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (model, version, request_id) DO UPDATE SET
        label = excluded.label, labelled_at = excluded.labelled_at,
        received_at = excluded.received_at
    WHERE {TABLE}.label IS NULL AND {TABLE}.expired = 0
        AND ({TABLE}.predicted_at IS NULL OR {TABLE}.predicted_at >= ?)
    RETURNING predicted_at"""

_WHY_REFUSED = f"""
    SELECT label IS NOT NULL FROM {TABLE} WHERE model = ? AND version = ? AND request_id = ?"""

_CLAIM = f"""
    UPDATE {TABLE} SET joined = 1
    WHERE model = ? AND version = ? AND joined = 0 AND label IS NOT NULL
        AND predicted_at IS NOT NULL
    RETURNING request_id, prediction, score, predicted_at, label, labelled_at"""

_TOMBSTONE = f"""
    UPDATE {TABLE} SET expired = 1, prediction = NULL, score = NULL, features = NULL,
        label = NULL, labelled_at = NULL
    WHERE model = ? AND version = ? AND expired = 0 AND predicted_at < ?"""

_DELETE_TOMBSTONES = f"""
    DELETE FROM {TABLE} WHERE model = ? AND version = ? AND expired = 1 AND predicted_at < ?"""

_DELETE_PENDING = f"""
    DELETE FROM {TABLE}
    WHERE model = ? AND version = ? AND predicted_at IS NULL AND received_at < ?"""

_GET = f"""
    SELECT request_id, predicted_at, prediction, score, features, label, labelled_at,
        joined, expired
    FROM {TABLE} WHERE model = ? AND version = ? AND request_id = ?"""

_LABELLED = f"""
    SELECT request_id, prediction, score, predicted_at, label, labelled_at
    FROM {TABLE}
    WHERE model = ? AND version = ? AND joined = 1 AND expired = 0
        AND labelled_at >= ? AND labelled_at < ?
    ORDER BY labelled_at, request_id"""


def _decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class PredictionLog(ABC):
    """The storage interface the quality tracker writes through; see the module doc.

    Every method is thread-safe (one connection, used under a lock) and runs in its own
    transaction. ``model`` and ``version`` select one model version's rows, so one log
    may serve several trackers.
    """

    #: Where the log lives, for messages (a path, or a URL without its password).
    location: str

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()

    # -- what a back end provides -------------------------------------------------------

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """A context manager giving a cursor inside one transaction (under the lock)."""

    @abstractmethod
    def _sql(self, statement: str) -> str:
        """The statement in the back end's parameter style."""

    @abstractmethod
    def _close(self) -> None: ...

    # -- the interface --------------------------------------------------------------------

    def write_predictions(self, model: str, version: str, rows: Sequence[PredictionRow]) -> int:
        """Store predictions in one transaction; return how many were new (the rest
        repeated a request id that already has a prediction and were ignored)."""
        if not rows:
            return 0
        params = [
            (model, version, r.request_id, r.predicted_at, json.dumps(r.prediction), r.score,
             r.features_json)
            for r in rows
        ]  # fmt: skip
        with self._transaction() as cur:
            cur.executemany(self._sql(_INSERT_PREDICTION), params)
            count = cur.rowcount
        return len(rows) if count is None or count < 0 else int(count)

    def write_labels(
        self, model: str, version: str, labels: Sequence[LabelRow], *, now: float, cutoff: float
    ) -> list[LabelStatus]:
        """Store labels in one transaction and say what became of each.

        ``now`` is the receive time (for the pending TTL); a label whose prediction was
        made before ``cutoff`` is ``expired``. Each row is one atomic statement: if the
        transaction fails, none of the rows is stored.
        """
        out: list[LabelStatus] = []
        insert = self._sql(_INSERT_LABEL)
        why = self._sql(_WHY_REFUSED)
        with self._transaction() as cur:
            for row in labels:
                cur.execute(
                    insert,
                    (model, version, row.request_id, json.dumps(row.label), row.labelled_at,
                     now, cutoff),
                )  # fmt: skip
                got = cur.fetchall()
                if got:
                    out.append("pending" if got[0][0] is None else "stored")
                    continue
                cur.execute(why, (model, version, row.request_id))
                found = cur.fetchone()
                out.append("duplicate" if found is not None and found[0] else "expired")
        return out

    def claim(self, model: str, version: str) -> list[JoinedLabel]:
        """Mark every row that has both a prediction and a label, and is not yet joined,
        as joined, and return them: the caller counts exactly these."""
        with self._transaction() as cur:
            cur.execute(self._sql(_CLAIM), (model, version))
            rows = cur.fetchall()
        return [
            JoinedLabel(rid, json.loads(pred), score, float(pat), json.loads(label), float(lat))
            for rid, pred, score, pat, label, lat in rows
        ]

    def purge(
        self, model: str, version: str, *, cutoff: float, tombstone_cutoff: float,
        pending_cutoff: float,
    ) -> int:  # fmt: skip
        """Apply the retention; return the number of pending labels dropped unmatched.

        Predictions made before ``cutoff`` become tombstones, tombstones of predictions
        made before ``tombstone_cutoff`` are deleted, and pending labels received
        before ``pending_cutoff`` are deleted.
        """
        with self._transaction() as cur:
            cur.execute(self._sql(_TOMBSTONE), (model, version, cutoff))
            cur.execute(self._sql(_DELETE_TOMBSTONES), (model, version, tombstone_cutoff))
            cur.execute(self._sql(_DELETE_PENDING), (model, version, pending_cutoff))
            dropped = cur.rowcount
        return max(int(dropped or 0), 0)

    def get(self, model: str, version: str, request_id: str) -> StoredPrediction | None:
        """The row of one request id, or None."""
        with self._transaction() as cur:
            cur.execute(self._sql(_GET), (model, version, request_id))
            row = cur.fetchone()
        if row is None:
            return None
        rid, pat, pred, score, features, label, lat, joined, expired = row
        return StoredPrediction(
            rid, pat, _decode(pred), score, _decode(features), _decode(label), lat,
            bool(joined), bool(expired),
        )  # fmt: skip

    def labelled(
        self, model: str, version: str, *, since: float = 0.0, until: float = float("inf")
    ) -> list[JoinedLabel]:
        """Joined predictions whose label became known in ``[since, until)``, oldest first:
        the rows to compute quality over any window exactly (for reports)."""
        until = min(until, 1e300)
        with self._transaction() as cur:
            cur.execute(self._sql(_LABELLED), (model, version, since, until))
            rows = cur.fetchall()
        return [
            JoinedLabel(rid, json.loads(pred), score, float(pat), json.loads(label), float(lat))
            for rid, pred, score, pat, label, lat in rows
        ]

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            self._close()

    def reset_after_fork(self) -> None:
        """Drop the connection inherited from the parent (without closing the parent's
        socket); the next call opens a new one."""
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"


class SQLitePredictionLog(PredictionLog):
    """The prediction log in a SQLite file (WAL mode; several processes may share it).

    ``path`` is a file path (its directory must exist) or ``":memory:"`` (one process,
    for tests). ``busy_timeout_s``: how long a write waits for another process's.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 10.0) -> None:
        super().__init__()
        self.path = str(path)
        self.location = self.path
        self._busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        with self._transaction() as cur:
            for statement in _SCHEMA:
                cur.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:" and not Path(self.path).parent.is_dir():
            raise ConfigError(
                f"prediction log {self.path!r}: directory {str(Path(self.path).parent)!r} "
                "does not exist",
                field="log",
                value=self.path,
            )
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_s, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            finally:
                cur.close()

    def _sql(self, statement: str) -> str:
        return statement

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def reset_after_fork(self) -> None:
        # The parent's connection must not be used (nor closed) in the child.
        self._conn = None
        super().reset_after_fork()


class PostgresPredictionLog(PredictionLog):
    """The prediction log in PostgreSQL, for replicas that share one log.

    ``url`` is a libpq URL (``postgresql://user:password@host:5432/db``). The table is
    created on first connect (serialised by an advisory lock, so replicas starting
    together do not collide). ``connect_timeout_s`` bounds each connection attempt.
    """

    _DDL_LOCK = 0x1F_57A7C4  # an arbitrary advisory-lock key for schema creation

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError:  # pragma: no cover - the postgres extra is not installed
            raise ConfigError(
                "a postgresql:// prediction log needs psycopg 3: "
                "pip install 'inferwatch[postgres]'",
                field="log",
                value=_redact(url),
            ) from None
        self._psycopg = psycopg
        self.url = url
        self.location = _redact(url)
        self._connect_timeout_s = connect_timeout_s
        self._conn: Any = None
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._DDL_LOCK,))
            for statement in _SCHEMA:
                cur.execute(statement)

    def _connect(self) -> Any:
        return self._psycopg.connect(
            self.url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout_s))
        )

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            conn = self._conn
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except self._psycopg.OperationalError:
                # The server went away: reconnect on the next call.
                self._close()
                raise

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def reset_after_fork(self) -> None:
        self._conn = None
        super().reset_after_fork()


def _redact(url: str) -> str:
    """The URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def open_prediction_log(target: str | os.PathLike[str] | PredictionLog) -> PredictionLog:
    """The log for a path or URL: ``postgresql://...`` (or ``postgres://``) opens a
    :class:`PostgresPredictionLog`; ``sqlite:///path``, a plain path or ``":memory:"``
    a :class:`SQLitePredictionLog`. A :class:`PredictionLog` is returned as is."""
    if isinstance(target, PredictionLog):
        return target
    text = os.fspath(target)
    if not text:
        raise ConfigError("the prediction log needs a path or a URL", field="log", value=text)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresPredictionLog(text)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]  # sqlite:///relative, sqlite:////absolute
    elif "://" in text:
        raise ConfigError(
            f"unsupported prediction log URL {_redact(text)!r}: use a file path, "
            "sqlite:///path or postgresql://...",
            field="log",
            value=_redact(text),
        )
    return SQLitePredictionLog(text)
