"""The times and durations the client commands take on the command line.

Times: RFC 3339 (``2026-11-21T13:40:00Z``), Unix seconds (``1763732400``), ``now``, or
relative to now (``now-5m``, ``now+1h``). Durations: Prometheus style (``15s``,
``1h30m``, ``500ms``) or a plain number of seconds (``90``, ``0.5``).
"""

from __future__ import annotations

import datetime as dt
import math
import re

from inferwatch._duration import duration_ms
from inferwatch._errors import ConfigError

_RELATIVE = re.compile(r"now\s*(?:([+-])\s*(\S+))?")


def parse_duration(text: str, *, field: str) -> float:
    """Seconds in a Prometheus duration or a plain positive number of seconds.

    Raises :class:`~inferwatch.ConfigError` naming ``field`` and the text otherwise.
    """
    value = text.strip()
    ms = duration_ms(value)
    if ms is not None:
        seconds = ms / 1000.0
    else:
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(
            f"{field}: {text!r} is not a duration above zero "
            "(a Prometheus duration such as 15s, 5m, 1h30m, or seconds)",
            field=field,
            value=text,
        )
    return seconds


def parse_time(text: str, *, now: float, field: str) -> float:
    """A Unix time from RFC 3339, Unix seconds, ``now`` or ``now-DURATION``/``now+DURATION``.

    Raises :class:`~inferwatch.ConfigError` naming ``field`` and the text otherwise.
    """
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative is not None:
        sign, duration = relative.groups()
        if sign is None:
            return now
        offset = parse_duration(duration, field=field)
        return now - offset if sign == "-" else now + offset
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{field}: {text!r} is not a time: give RFC 3339 (2026-11-21T13:40:00Z), "
            "Unix seconds, or a time relative to now (now-5m)",
            field=field,
            value=text,
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


__all__ = ["parse_duration", "parse_time"]
