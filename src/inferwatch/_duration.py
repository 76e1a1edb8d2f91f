"""Prometheus duration strings (``15s``, ``1h30m``, ``500ms``, ``0``), read in one place.

Scrape configs, the promqltest runner and the HTTP API all take them.
"""

from __future__ import annotations

import math
import re

#: Units largest first, each with its length in milliseconds (a year is 365 days).
DURATION_UNITS: tuple[tuple[str, int], ...] = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
)
_DURATION = re.compile("".join(rf"(?:(\d+){name})?" for name, _ in DURATION_UNITS))


def duration_ms(text: str) -> int | None:
    """Milliseconds in a Prometheus duration, or None when ``text`` is not one.

    Integers only, largest unit first, each unit at most once; ``0`` alone is zero.
    """
    if text == "0":
        return 0
    match = _DURATION.fullmatch(text) if text else None
    if match is None:
        return None
    return sum(
        int(n) * unit for n, (_, unit) in zip(match.groups(), DURATION_UNITS, strict=True) if n
    )


def check_seconds(name: str, value: object, *, allow_zero: bool = False) -> None:
    """Raise :class:`~inferwatch.ConfigError` naming ``name`` unless ``value`` is a finite
    number of seconds above 0 (or 0 itself with ``allow_zero``); booleans are refused."""
    from inferwatch._errors import ConfigError

    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > 0 or (allow_zero and value == 0))
    )
    if not ok:
        what = "a number >= 0" if allow_zero else "a positive number of seconds"
        raise ConfigError(f"{name} must be {what}, got {value!r}", field=name, value=value)
