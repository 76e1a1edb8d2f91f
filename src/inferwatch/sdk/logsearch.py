"""Search the JSON-lines files that ``Monitor.logs`` writes (``inferwatch logs search``).

A file is read together with its rotated predecessors (``FILE.N`` ... ``FILE.1``, then
``FILE``: oldest first, so matches come out in time order). Lines that are not JSON
objects are counted as malformed and skipped; a search never fails on them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferwatch._duration import duration_ms
from inferwatch._errors import ConfigError

__all__ = ["LogQuery", "SearchResult", "log_files", "parse_time", "search"]

_ROTATED = re.compile(r"\.(\d+)$")


def parse_time(text: str, *, now: float, field: str = "time") -> float:
    """A Unix time from RFC 3339 (``2026-11-21T13:40:00Z``), a Unix timestamp, or a
    duration before ``now`` (``15m``, ``1h30m``, ``2d``).

    Raises :class:`~inferwatch.ConfigError` naming ``field`` when ``text`` is none of them.
    """
    value = text.strip()
    ms = duration_ms(value)
    if ms is not None:
        return now - ms / 1000.0
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ConfigError(
            f"{field} {text!r} is neither RFC 3339 (2026-11-21T13:40:00Z), a Unix time, "
            "nor a duration before now (15m, 2h, 7d)",
            field=field,
            value=text,
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def record_time(record: dict[str, Any]) -> float | None:
    """The ``time`` of a log record as a Unix time, or None when missing or unreadable."""
    value = record.get("time")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def log_files(path: str | Path) -> list[Path]:
    """``path`` and its rotated files that exist, oldest first (``FILE.3, FILE.2, FILE.1,
    FILE``). A path that is itself a rotated file (``FILE.2``) is read alone."""
    base = Path(path)
    if _ROTATED.search(base.name):
        return [base] if base.is_file() else []
    rotated: list[tuple[int, Path]] = []
    if base.parent.is_dir():
        prefix = base.name + "."
        for candidate in base.parent.iterdir():
            if candidate.name.startswith(prefix):
                match = _ROTATED.fullmatch(candidate.name[len(base.name) :])
                if match and candidate.is_file():
                    rotated.append((int(match.group(1)), candidate))
    files = [p for _, p in sorted(rotated, reverse=True)]
    if base.is_file():
        files.append(base)
    return files


@dataclass(frozen=True, slots=True, kw_only=True)
class LogQuery:
    """What to keep: every given condition must hold (``None``: any).

    ``since``/``until``: Unix times (inclusive); ``text``: a case-insensitive substring
    of the raw line; the others are exact matches on the record's fields.
    """

    since: float | None = None
    until: float | None = None
    model: str | None = None
    version: str | None = None
    outcome: str | None = None
    request_id: str | None = None
    event: str | None = None
    text: str | None = None
    limit: int | None = None

    def matches(self, record: dict[str, Any], line: str) -> bool:
        for name in ("model", "version", "outcome", "request_id", "event"):
            wanted = getattr(self, name)
            if wanted is not None and str(record.get(name)) != wanted:
                return False
        if self.text is not None and self.text.lower() not in line.lower():
            return False
        if self.since is not None or self.until is not None:
            when = record_time(record)
            if when is None:
                return False
            if self.since is not None and when < self.since:
                return False
            if self.until is not None and when > self.until:
                return False
        return True


@dataclass(slots=True)
class SearchResult:
    """The matching records in file order, and what was read on the way."""

    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    lines: int = 0
    malformed: int = 0
    missing: list[Path] = field(default_factory=list)


def _lines(path: Path) -> Iterator[str]:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        yield from fh


def search(paths: Sequence[str | Path], query: LogQuery) -> SearchResult:
    """Read ``paths`` (each with its rotated files) and keep the records ``query`` matches.

    Records come out in time order (a record without a readable time keeps its place
    after the one before it); ``limit`` keeps the earliest.
    """
    result = SearchResult()
    seen: set[Path] = set()
    for path in paths:
        files = log_files(path)
        if not files:
            result.missing.append(Path(path))
        for file in files:
            if file.resolve() in seen:
                continue
            seen.add(file.resolve())
            result.files.append(file)
            _scan(file, query, result)
    last = float("-inf")
    keyed = []
    for record in result.records:
        when = record_time(record)
        last = when if when is not None else last
        keyed.append((last, record))
    keyed.sort(key=lambda pair: pair[0])  # stable: equal times keep file order
    result.records = [record for _, record in keyed[: query.limit]]
    return result


def _scan(file: Path, query: LogQuery, result: SearchResult) -> None:
    """Add the matches of one file."""
    for line in _lines(file):
        if not line.strip():
            continue
        result.lines += 1
        try:
            record = json.loads(line)
        except ValueError:
            result.malformed += 1
            continue
        if not isinstance(record, dict):
            result.malformed += 1
            continue
        if query.matches(record, line):
            result.records.append(record)


#: Columns of the table output: header, then the record fields shown in it.
TABLE_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("time", ("time",)),
    ("event", ("event", "message")),
    ("model", ("model",)),
    ("version", ("version",)),
    ("outcome", ("outcome", "state", "success")),
    ("error", ("error_type", "failure")),
    ("latency_s", ("latency_seconds", "duration_seconds")),
    ("batch", ("batch_size",)),
    ("request_id", ("request_id", "alertname", "probe")),
    ("trace_id", ("trace_id",)),
)


def table_row(record: dict[str, Any]) -> list[str]:
    """The cells of one record in :data:`TABLE_COLUMNS` order."""
    cells = []
    for _, names in TABLE_COLUMNS:
        value: object = next((record[n] for n in names if record.get(n) is not None), "")
        if isinstance(value, float):
            value = f"{value:.6f}"
        cells.append(str(value))
    return cells


def json_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False, default=str)
