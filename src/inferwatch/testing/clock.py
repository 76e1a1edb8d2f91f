"""A clock that tests move by hand."""

from __future__ import annotations

import threading


class FakeClock:
    """A monotonic clock whose time only moves when :meth:`advance` is called.

    Pass ``clock=fake`` (it is callable) wherever inferwatch takes a clock, then move
    time with ``fake.advance(seconds)`` instead of sleeping.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds
            return self._now
