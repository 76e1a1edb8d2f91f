"""Structured logs: one JSON line per inference, per alert state change, per probe result.

Records go through the standard :mod:`logging` module, on three loggers:

- ``inferwatch.inference``: ``event="inference"`` with ``request_id``, ``trace_id``,
  ``span_id`` (from a W3C ``traceparent`` header), ``model``, ``version``, ``outcome``,
  ``error_type``, ``latency_seconds``, ``batch_size`` and the fields of
  :func:`log_context`;
- ``inferwatch.alerts``: ``event="alert_state_change"`` (:func:`log_alert_change`);
- ``inferwatch.probes``: ``event="probe_result"`` (:func:`log_probe_result`).

Any handler a user adds to these loggers (or to the root) receives them; ``Monitor.logs``
adds a size-rotating JSON file. On the request path an inference costs one tuple appended
to a buffer (no formatting, no lock, no I/O); a background thread turns the buffer into
:class:`logging.LogRecord` values and hands them to the logger's handlers. Nothing here
raises into the model service, and nothing is done at all until logs are configured.

Redaction (:class:`Redactor`) runs as a filter on these loggers, so every handler sees the
redacted record: fields named like secrets (``password``, ``token``, ``api_key``,
``authorization``, ...) and fields given in ``redact=`` become ``"[REDACTED]"``; values
that look like credentials (bearer tokens, JWTs, cloud and chat tokens, passwords in
URLs and query strings) have that part replaced; fields marked ``personal=`` become
``"pii:"`` and 16 hex digits of a salted HMAC-SHA256, so lines about the same person can
still be matched up without the value being stored.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import itertools
import json
import logging
import logging.handlers
import os
import random
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from time import time_ns
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.json import JsonFormatter

from inferwatch._errors import ConfigError
from inferwatch.sdk.family import FamilySnapshot

if TYPE_CHECKING:
    from inferwatch.sdk.recorder import InferenceRecorder
    from inferwatch.sdk.registry import Registry

__all__ = [
    "ALERT_LOGGER",
    "INFERENCE_LOGGER",
    "PROBE_LOGGER",
    "InferenceLogging",
    "JsonLogFormatter",
    "Redactor",
    "configure",
    "log_alert_change",
    "log_context",
    "log_probe_result",
    "parse_traceparent",
    "shutdown",
]

INFERENCE_LOGGER = "inferwatch.inference"
ALERT_LOGGER = "inferwatch.alerts"
PROBE_LOGGER = "inferwatch.probes"
LOGGER_NAMES = (INFERENCE_LOGGER, ALERT_LOGGER, PROBE_LOGGER)

#: Inference records waiting for the writer thread; past this, new ones are dropped.
MAX_PENDING = 1 << 16
#: How often the writer thread wakes to write what has been buffered.
FLUSH_INTERVAL_S = 0.1
REDACTED = "[REDACTED]"

# -- request context ------------------------------------------------------------------

#: The ASGI scope or WSGI environ of the request being served (set by the middleware).
#: Read only when a record is written, on the writer thread.
REQUEST: ContextVar[Mapping[str, Any] | None] = ContextVar("inferwatch_request", default=None)
_CONTEXT: ContextVar[LogContext | None] = ContextVar("inferwatch_log_context", default=None)

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """``(trace_id, parent_id)`` from a W3C ``traceparent`` header, or None when invalid.

    Follows the Trace Context spec: lowercase hex, version ``ff`` and all-zero ids are
    invalid, version ``00`` has exactly four parts, later versions may append more.
    """
    if not value:
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id, parent_id


@dataclass(frozen=True, slots=True)
class LogContext:
    """What :func:`log_context` adds to the inference records written inside it."""

    request_id: str | None = None
    traceparent: str | None = None
    fields: Mapping[str, object] = field(default_factory=dict)


@contextlib.contextmanager
def log_context(
    *, request_id: str | None = None, traceparent: str | None = None, **fields: object
) -> Iterator[None]:
    """Add a request id, a trace and extra fields to the inference records logged inside.

    Use it where requests do not come through the instrumented web app (a queue
    consumer, a batch job), or to attach your own fields (``user_id=...``; mark personal
    ones with ``Monitor.logs(personal=[...])``). Nested contexts add to the outer one.
    """
    outer = _CONTEXT.get()
    if outer is not None:
        merged = {**outer.fields, **fields}
        request_id = request_id if request_id is not None else outer.request_id
        traceparent = traceparent if traceparent is not None else outer.traceparent
    else:
        merged = dict(fields)
    token = _CONTEXT.set(LogContext(request_id, traceparent, merged))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _request_headers(request: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(traceparent, x-request-id)`` of an ASGI scope or a WSGI environ."""
    if "headers" in request and "type" in request:
        traceparent = request_id = None
        for name, value in request["headers"]:
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")
        return traceparent, request_id
    return request.get("HTTP_TRACEPARENT"), request.get("HTTP_X_REQUEST_ID")


def _context_fields(
    request: Mapping[str, Any] | None, context: LogContext | None
) -> tuple[dict[str, object], Mapping[str, object]]:
    """The request id and trace fields, and the user's fields, of one record."""
    traceparent = request_id = None
    if request is not None:
        traceparent, request_id = _request_headers(request)
    extra: Mapping[str, object] = {}
    if context is not None:
        request_id = context.request_id or request_id
        traceparent = context.traceparent or traceparent
        extra = context.fields
    trace = parse_traceparent(traceparent)
    ids: dict[str, object] = {
        "request_id": request_id or f"{random.getrandbits(128):032x}",
        "trace_id": trace[0] if trace else None,
        "span_id": trace[1] if trace else None,
    }
    return ids, extra


# -- formatting -------------------------------------------------------------------------


def _json_default(value: object) -> object:
    """How a value JSON cannot encode is written: ISO times, lists for sets, else str()."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def rfc3339(timestamp: float) -> str:
    """``2026-11-21T13:40:00.123456Z`` for a Unix time."""
    when = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JsonLogFormatter(JsonFormatter):
    """python-json-logger's formatter with inferwatch's layout: one JSON object per line.

    Fields: ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``event`` for inferwatch's
    records (else ``message``), then every extra field of the record. A value JSON
    cannot encode is written as its ``str()``; formatting never raises.
    """

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            json_default=_json_default,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = rfc3339(record.created)
        super().add_fields(log_data, record, message_dict)
        if "event" in log_data:
            log_data.pop("message", None)

    def format(self, record: logging.LogRecord) -> str:
        try:
            return super().format(record)
        except Exception as exc:  # a broken __str__, a recursive value, ...
            data: dict[str, object] = {"time": rfc3339(record.created)}
            data["level"] = record.levelname
            data["logger"] = record.name
            for key, value in record.__dict__.items():
                if key not in _STANDARD_ATTRS:
                    data[key] = _json_default(value)
            data["format_error"] = repr(exc)
            return json.dumps(data, default=_json_default)


_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# -- redaction --------------------------------------------------------------------------

_SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "secret", "token", "authorization", "auth", "apikey"}
    | {"cookie", "credential", "credentials", "passphrase", "privatekey", "signature"}
)
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_SECRET_VALUES = (
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9\-._~+/]{8,}=*"), r"\1 " + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})"), REDACTED),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), REDACTED),
    (re.compile(r"(://[^/\s:@]+):[^/\s@]+@"), r"\1:" + REDACTED + "@"),
    (
        re.compile(
            r"(?i)\b((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?token|auth)=)"
            r"[^&\s\"']+"
        ),
        r"\1" + REDACTED,
    ),
)


# A quick test that a string may hold a credential; the exact patterns run only then.
_MAYBE_SECRET = re.compile(
    r"(?i)bearer|basic|token|eyJ|AKIA|ASIA|gh[pousr]_|github_pat_|xox|sk-|AIza|://[^/\s]*@"
    r"|password|passwd|pwd|secret|api[_-]?key|auth="
)
#: Fields of inference records that inferwatch itself fills with safe values.
_TRUSTED_FIELDS = frozenset(
    {"event", "model", "version", "outcome", "error_type", "latency_seconds", "batch_size"}
    | {"trace_id", "span_id"}
)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a field name says it holds a secret (``api_key``, ``X-Auth-Token``, ...).

    Matched on words, so ``max_tokens`` or ``prompt_tokens`` are not secrets.
    """
    words = [w.lower() for w in _WORD_SPLIT.split(key) if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def redact_text(text: str) -> str:
    """``text`` with the parts that look like credentials replaced by ``[REDACTED]``."""
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern, replacement in _SECRET_VALUES:
        text = pattern.sub(replacement, text)
    return text


class Redactor(logging.Filter):
    """A filter that removes secrets and personal data from records before any handler.

    ``redact``: more field names (case-insensitive) to replace by ``"[REDACTED]"``, on top
    of the names that say they hold secrets (:func:`is_secret_key`). ``personal``: field
    names whose values become ``"pii:<16 hex>"``, a salted HMAC-SHA256 (``salt``; random
    per process by default, so give one to match values across restarts). Nested
    mappings and lists are walked; strings have credential-like parts replaced. Never
    raises, never drops a record.
    """

    def __init__(
        self, *, redact: Iterable[str] = (), personal: Iterable[str] = (), salt: bytes = b""
    ) -> None:
        super().__init__()
        self.redact = {name.lower() for name in redact}
        self.personal = {name.lower() for name in personal}
        self.salt = salt or secrets.token_bytes(16)

    def add(self, *, redact: Iterable[str] = (), personal: Iterable[str] = ()) -> None:
        self.redact.update(name.lower() for name in redact)
        self.personal.update(name.lower() for name in personal)

    def pseudonym(self, value: object) -> str:
        digest = hmac.new(self.salt, str(value).encode("utf-8", "replace"), hashlib.sha256)
        return "pii:" + digest.hexdigest()[:16]

    def clean(self, key: str, value: object, depth: int = 0) -> object:
        """The value to log for field ``key``."""
        lowered = key.lower()
        if lowered in self.personal:
            return self.pseudonym(value) if value is not None else None
        if lowered in self.redact or is_secret_key(key):
            return REDACTED if value is not None else None
        if isinstance(value, str):
            return redact_text(value)
        if depth > 8:
            return value
        if isinstance(value, Mapping):
            return {k: self.clean(str(k), v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.clean(key, v, depth + 1) for v in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            attrs = record.__dict__
            inference = attrs.get("event") == "inference"
            skip = _STANDARD_ATTRS | _TRUSTED_FIELDS if inference else _STANDARD_ATTRS
            for key in [k for k in attrs if k not in skip]:
                attrs[key] = self.clean(key, attrs[key])
            if isinstance(record.msg, str) and not inference:
                message = record.getMessage()
                cleaned = redact_text(message)
                if cleaned != message:
                    record.msg, record.args = cleaned, None
        except Exception:  # a record that cannot be cleaned is still logged
            pass
        return True


# -- inference records: buffer and writer thread -----------------------------------------

# One entry: sink, time_ns, outcome, error type, latency ns, batch size, request, context.
_Entry = tuple[
    "InferenceLog",
    int,
    str,
    str,
    int,
    "int | None",
    "Mapping[str, Any] | None",
    "LogContext | None",
]


class _Switch:
    """Whether any inference log is configured: the one check the hot path makes."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False


SWITCH = _Switch()


def _set_switch(on: bool) -> None:
    from inferwatch.sdk import track

    SWITCH.on = on
    track.LOGGING = on


_SINKS: dict[int, tuple[InferenceRecorder, InferenceLog]] = {}


def sink_for(rec: InferenceRecorder) -> InferenceLog | None:
    """The inference log of a recorder, or None when its model does not log."""
    entry = _SINKS.get(id(rec))
    if entry is not None and entry[0] is rec:
        return entry[1]
    return None


class _Writer:
    """The background thread that writes buffered inference records (one per process)."""

    def __init__(self) -> None:
        self.pending: list[_Entry] = []
        self._lock = threading.Lock()  # one drainer at a time keeps records in order
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="inferwatch-logs", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            self.drain()

    def drain(self) -> None:
        """Write every buffered record now (from any thread)."""
        with self._lock:
            pending = self.pending
            n = len(pending)
            if not n:
                return
            entries = pending[:n]
            del pending[:n]
            for entry in entries:
                entry[0].write(entry)

    def after_fork(self) -> None:
        self.pending = []
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        if SWITCH.on:
            self.ensure_started()


WRITER = _Writer()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WRITER.after_fork)


class InferenceLog:
    """The inference records of one model version: buffered here, written by a thread.

    Created by :meth:`Monitor.logs <inferwatch.Monitor.logs>`; the ``@monitor.track``
    wrappers and ``monitor.inference()`` call :meth:`emit` after each inference.
    """

    def __init__(self, recorder: InferenceRecorder, registry: Registry) -> None:
        self.recorder = recorder
        self.model, self.version = recorder.labels
        self.registry = registry
        self.logger = logging.getLogger(INFERENCE_LOGGER)
        self.dropped = 0
        self.written = 0

    def emit(self, outcome: str, error_type: str, latency_ns: int, batch_size: int | None) -> None:
        """Buffer one inference record (called on the request path; never raises)."""
        try:
            pending = WRITER.pending
            if len(pending) >= MAX_PENDING:
                self.dropped += 1
                return
            pending.append(
                (
                    self,
                    time_ns(),
                    outcome,
                    error_type,
                    latency_ns,
                    batch_size,
                    REQUEST.get(),
                    _CONTEXT.get(),
                )
            )
        except Exception as exc:
            self.registry.internal_error("logs", exc)

    def write(self, entry: _Entry) -> None:
        """Turn one buffered entry into a LogRecord for the logger's handlers."""
        try:
            _, t_ns, outcome, error_type, latency_ns, batch_size, request, context = entry
            level = logging.WARNING if outcome == "error" else logging.INFO
            logger = self.logger
            if not logger.isEnabledFor(level):
                return
            latency = latency_ns / 1e9
            ids, fields = _context_fields(request, context)
            extra: dict[str, object] = {
                "event": "inference",
                **ids,
                "model": self.model,
                "version": self.version,
                "outcome": outcome,
                "error_type": error_type or None,
                "latency_seconds": latency,
                "batch_size": batch_size,
            }
            for key, value in fields.items():
                extra.setdefault(key, value)
            record = logger.makeRecord(
                logger.name,
                level,
                "(inference)",
                0,
                "inference model=%s version=%s outcome=%s latency=%.6fs",
                (self.model, self.version, outcome, latency),
                None,
                extra=_safe_extra(extra),
            )
            record.created = t_ns / 1e9
            record.msecs = (t_ns // 1_000_000) % 1000
            logger.handle(record)
            self.written += 1
        except Exception as exc:
            self.registry.internal_error("logs", exc)

    def collect(self) -> Iterable[FamilySnapshot]:
        dropped = FamilySnapshot(
            "inferwatch_log_records_dropped_total",
            "Inference log records dropped because the log writer fell behind.",
            "counter",
            ("model", "version"),
        )
        dropped.samples[(self.model, self.version)] = float(self.dropped)
        return [dropped]


def _safe_extra(extra: Mapping[str, object]) -> dict[str, object]:
    """``extra`` with keys that would clash with LogRecord attributes prefixed."""
    return {(f"field_{k}" if k in _STANDARD_ATTRS else k): v for k, v in extra.items()}


# -- alert and probe records --------------------------------------------------------------


def log_alert_change(
    *,
    alertname: str,
    state: str,
    previous_state: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
    value: float | None = None,
    active_at: float | None = None,
    group: str | None = None,
) -> None:
    """Log one alert state change on ``inferwatch.alerts`` (WARNING when it fires).

    ``state``/``previous_state``: ``inactive``, ``pending``, ``firing`` (or ``resolved``).
    Call it where the state machine changes an alert's state; costs nothing unless the
    logger is enabled, and never raises.
    """
    try:
        logger = logging.getLogger(ALERT_LOGGER)
        level = logging.WARNING if state == "firing" else logging.INFO
        if not logger.isEnabledFor(level):
            return
        extra = {
            "event": "alert_state_change",
            "alertname": alertname,
            "state": state,
            "previous_state": previous_state,
            "labels": dict(labels),
            "annotations": dict(annotations or {}),
            "value": value,
            "active_at": rfc3339(active_at) if active_at is not None else None,
            "group": group,
        }
        logger.log(
            level,
            "alert %s %s -> %s",
            alertname,
            previous_state,
            state,
            extra=_safe_extra(extra),
        )
    except Exception:  # pragma: no cover - logging must not break rule evaluation
        pass


def log_probe_result(
    *,
    probe: str,
    url: str,
    success: bool,
    duration_seconds: float,
    status_code: int | None = None,
    failure: str | None = None,
    reason: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Log one probe result on ``inferwatch.probes`` (WARNING when it failed).

    Call it after each probe run; costs nothing unless the logger is enabled, and
    never raises. Credentials in ``url`` are redacted by the :class:`Redactor`.
    """
    try:
        logger = logging.getLogger(PROBE_LOGGER)
        level = logging.INFO if success else logging.WARNING
        if not logger.isEnabledFor(level):
            return
        extra = {
            "event": "probe_result",
            "probe": probe,
            "url": url,
            "success": success,
            "status_code": status_code,
            "duration_seconds": duration_seconds,
            "failure": failure,
            "reason": reason,
            "labels": dict(labels or {}),
        }
        logger.log(
            level,
            "probe %s %s",
            probe,
            "ok" if success else f"failed ({failure})",
            extra=_safe_extra(extra),
        )
    except Exception:  # pragma: no cover
        pass


# -- configuration ------------------------------------------------------------------------

_CONFIG_LOCK = threading.Lock()
_REDACTOR: Redactor | None = None
_FILE_HANDLERS: dict[Path, logging.handlers.RotatingFileHandler] = {}


@dataclass(slots=True)
class InferenceLogging:
    """What :func:`configure` set up: the sink of one model version and the file handler.

    :meth:`flush` writes every buffered record now (tests, shutdown); :meth:`close`
    stops this model's inference records and closes the file when no one else uses it.
    """

    sink: InferenceLog
    handler: logging.handlers.RotatingFileHandler | None
    redactor: Redactor
    path: Path | None

    def flush(self) -> None:
        WRITER.drain()
        if self.handler is not None:
            self.handler.flush()

    def close(self) -> None:
        self.flush()
        with _CONFIG_LOCK:
            _SINKS.pop(id(self.sink.recorder), None)
            _set_switch(bool(_SINKS))
            with contextlib.suppress(ValueError):
                self.sink.registry.unregister(self.sink)
            handler = self.handler
            others = [s for s in _ACTIVE if s is not self]
            if handler is not None and not any(s.path == self.path for s in others):
                if self.path is not None:
                    _FILE_HANDLERS.pop(self.path, None)
                for name in LOGGER_NAMES:
                    logging.getLogger(name).removeHandler(handler)
                handler.close()
            if self in _ACTIVE:
                _ACTIVE.remove(self)


_ACTIVE: list[InferenceLogging] = []


def configure(
    rec: InferenceRecorder,
    registry: Registry,
    *,
    path: str | os.PathLike[str] | None,
    max_bytes: int,
    backups: int,
    redact: Sequence[str],
    personal: Sequence[str],
    salt: bytes | str | None,
    level: int | str,
    propagate: bool,
) -> InferenceLogging:
    """Start logging the inferences of ``rec``'s model version; see ``Monitor.logs``."""
    if not isinstance(max_bytes, int) or max_bytes < 0:
        raise ConfigError(
            f"logs(max_bytes=...) must be an int >= 0 (0: never rotate), got {max_bytes!r}",
            field="max_bytes",
            value=max_bytes,
        )
    if not isinstance(backups, int) or backups < 0:
        raise ConfigError(
            f"logs(backups=...) must be an int >= 0, got {backups!r}",
            field="backups",
            value=backups,
        )
    for name, fields in (("redact", redact), ("personal", personal)):
        if isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields):
            raise ConfigError(
                f"logs({name}=...) must be a list of field names, got {fields!r}",
                field=name,
                value=fields,
            )
    levelno = logging.getLevelName(level) if isinstance(level, str) else level
    if not isinstance(levelno, int):
        raise ConfigError(f"logs(level=...) is not a logging level: {level!r}", field="level")
    salt_bytes = salt.encode() if isinstance(salt, str) else salt
    resolved = Path(path).resolve() if path is not None else None
    global _REDACTOR
    with _CONFIG_LOCK:
        if _REDACTOR is None:
            _REDACTOR = Redactor(redact=redact, personal=personal, salt=salt_bytes or b"")
        else:
            _REDACTOR.add(redact=redact, personal=personal)
            if salt_bytes:
                _REDACTOR.salt = salt_bytes
        redactor = _REDACTOR
        handler = None
        if resolved is not None:
            handler = _FILE_HANDLERS.get(resolved)
            if handler is None:
                resolved.parent.mkdir(parents=True, exist_ok=True)
                handler = logging.handlers.RotatingFileHandler(
                    resolved, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
                )
                handler.setFormatter(JsonLogFormatter())
                _FILE_HANDLERS[resolved] = handler
        for name in LOGGER_NAMES:
            logger = logging.getLogger(name)
            logger.setLevel(levelno)
            logger.propagate = propagate
            if redactor not in logger.filters:
                logger.addFilter(redactor)
            if handler is not None and handler not in logger.handlers:
                logger.addHandler(handler)
        entry = _SINKS.get(id(rec))
        if entry is not None and entry[0] is rec:
            sink = entry[1]
        else:
            sink = InferenceLog(rec, registry)
            _SINKS[id(rec)] = (rec, sink)
            registry.register(sink)
        _set_switch(True)
        state = InferenceLogging(sink, handler, redactor, resolved)
        _ACTIVE.append(state)
    WRITER.ensure_started()
    return state


def shutdown() -> None:
    """Write what is buffered, close every configuration and file, remove the filter.

    Runs at interpreter exit; call it earlier to stop inference logging altogether.
    """
    global _REDACTOR
    for state in list(_ACTIVE):
        state.close()
    WRITER.drain()
    with _CONFIG_LOCK:
        if _REDACTOR is not None:
            for name in LOGGER_NAMES:
                logging.getLogger(name).removeFilter(_REDACTOR)
            _REDACTOR = None


atexit.register(WRITER.drain)  # runs before logging's own shutdown closes the handlers
