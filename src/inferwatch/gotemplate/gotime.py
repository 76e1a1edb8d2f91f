"""Times written as Go writes them: reference-time layouts and RFC 3339.

One writer for every place that shows a time the way Prometheus or Alertmanager
would: template functions (``.StartsAt.Format``, ``humanizeTimestamp``), the webhook
payload, ``/api/v1/rules`` and ``/api/v1/alerts``, and alerts posted to Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

#: Go's RFC 3339 with nanoseconds, trailing zeros trimmed (how its JSON writes times).
RFC3339_NANO = "2006-01-02T15:04:05.999999999Z07:00"
#: Go's zero time, as its JSON writes it.
ZERO_TIME = "0001-01-01T00:00:00Z"


_LAYOUT = re.compile(
    # Longest tokens first, as Go's layout scanner reads them.
    r"2006|January|Jan|Monday|Mon|MST|Z07:00|Z0700|Z07|-07:00|-0700|-07|"
    r"15|06|01|02|03|04|05|_2|PM|pm|1|2|3|4|5|\.0+|\.9+|,0+|,9+"
)


def _zone(dt: datetime, z: bool, colon: bool, hours_only: bool) -> str:
    offset = dt.utcoffset() or timedelta(0)
    if z and offset == timedelta(0):
        return "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    if hours_only:
        return f"{sign}{hh:02d}"
    return f"{sign}{hh:02d}:{mm:02d}" if colon else f"{sign}{hh:02d}{mm:02d}"


def go_time_format(dt: datetime, layout: str) -> str:
    """Format ``dt`` with a Go reference-time layout (``2006-01-02 15:04:05``)."""

    def token(m: re.Match[str]) -> str:
        t = m.group(0)
        if t[0] in ".," and len(t) > 1:
            digits = f"{dt.microsecond:06d}000"[: len(t) - 1]
            if t[1] == "9":
                digits = digits.rstrip("0")
                return f"{t[0]}{digits}" if digits else ""
            return t[0] + digits
        table: dict[str, Callable[[], str]] = {
            "2006": lambda: f"{dt.year:04d}",
            "06": lambda: f"{dt.year % 100:02d}",
            "January": lambda: dt.strftime("%B"),
            "Jan": lambda: dt.strftime("%b"),
            "01": lambda: f"{dt.month:02d}",
            "1": lambda: str(dt.month),
            "Monday": lambda: dt.strftime("%A"),
            "Mon": lambda: dt.strftime("%a"),
            "02": lambda: f"{dt.day:02d}",
            "_2": lambda: f"{dt.day:2d}",
            "2": lambda: str(dt.day),
            "15": lambda: f"{dt.hour:02d}",
            "03": lambda: f"{(dt.hour % 12) or 12:02d}",
            "3": lambda: str((dt.hour % 12) or 12),
            "04": lambda: f"{dt.minute:02d}",
            "4": lambda: str(dt.minute),
            "05": lambda: f"{dt.second:02d}",
            "5": lambda: str(dt.second),
            "PM": lambda: "PM" if dt.hour >= 12 else "AM",
            "pm": lambda: "pm" if dt.hour >= 12 else "am",
            "MST": lambda: "UTC" if dt.utcoffset() == timedelta(0) else (dt.tzname() or ""),
            "Z07:00": lambda: _zone(dt, True, True, False),
            "Z0700": lambda: _zone(dt, True, False, False),
            "Z07": lambda: _zone(dt, True, False, True),
            "-07:00": lambda: _zone(dt, False, True, False),
            "-0700": lambda: _zone(dt, False, False, False),
            "-07": lambda: _zone(dt, False, False, True),
        }
        return table[t]()

    return _LAYOUT.sub(token, layout)


def go_rfc3339(ts: float | None) -> str:
    """Unix seconds as Go's JSON writes a ``time.Time`` (UTC); ``None`` is the zero time."""
    if ts is None:
        return ZERO_TIME
    return go_time_format(datetime.fromtimestamp(ts, UTC), RFC3339_NANO)


__all__ = ["RFC3339_NANO", "ZERO_TIME", "go_rfc3339", "go_time_format"]
