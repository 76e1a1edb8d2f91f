"""The load loop of one process: open loop on a fixed schedule, or closed loop.

Open loop (``rate``): request ``i`` is meant to start at ``start + i / rate``, whatever
the server does. At that moment it goes to a free connection or, when all are busy,
waits in a queue for one. Its latency is measured from the intended start, so time
spent queued behind a slow answer counts (the correction for coordinated omission
that wrk2 makes); the service time, from the moment a connection took the request, is
kept beside it. Closed loop (``concurrency``): every connection sends its next request
as soon as the previous answer is in; latency and service time are the same thing.

Requests that start during the warm-up are sent but not counted. When the measured
duration is over no new request starts; requests in flight get up to ``timeout`` to
finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import ssl
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from inferwatch.loadtest.connection import Connection
from inferwatch.loadtest.spec import LoadSpec
from inferwatch.loadtest.tally import Tally, fold

#: Called about five times a second with (requests finished, of which failed or >= 400).
ProgressCallback = Callable[[int, int], None]

_NS = 1_000_000_000
_LATE_NS = 10_000_000
_MIN_WAIT_NS = 1_000_000
_TICK = 0.05
_RECONNECT_DELAY = 0.01


class Engine:
    """Runs one process's share of a :class:`LoadSpec` and tallies what happened.

    ``share`` and ``shares`` split the load between worker processes: this engine
    opens its part of the connections and, in open loop, takes every ``shares``-th
    request of the common schedule, starting with number ``share``.
    """

    def __init__(self, spec: LoadSpec, *, share: int = 0, shares: int = 1) -> None:
        self.spec = spec
        self.open_loop = spec.open_loop
        total = spec.parallelism
        self.n_connections = total // shares + (1 if share < total % shares else 0)
        self.share = share
        self.shares = shares
        self.timeout_ns = int(spec.timeout * _NS)
        self.finished = 0
        self.errors = 0
        self.idle: list[Connection] = []
        self.queue: deque[int] = deque()
        self.measure_from = 0
        self.stop_at = 0
        self.stopping = False
        self.connections: list[Connection] = []
        self._at: array[int] = array("q")
        self._latency: array[int] = array("q")
        self._service: array[int] = array("q")
        self._status: array[int] = array("h")
        self._failed_at: array[int] = array("q")
        self._failures: Counter[str] = Counter()
        self._late = 0
        self._max_lag = 0

    # -- callbacks from the connections -------------------------------------------------

    def on_response(self, conn: Connection, status: int) -> None:
        now = time.monotonic_ns()
        self.finished += 1
        if status >= 400:
            self.errors += 1
        intended = conn.intended_ns
        if intended >= self.measure_from:
            self._at.append(intended - self.measure_from)
            self._latency.append(now - intended)
            self._service.append(now - conn.sent_ns)
            self._status.append(status)
        self._next(conn, now)

    def on_failure(self, conn: Connection, kind: str) -> None:
        self.finished += 1
        self.errors += 1
        if conn.intended_ns >= self.measure_from:
            self._failed_at.append(conn.intended_ns - self.measure_from)
            self._failures[kind] += 1
        if self.open_loop or self.stopping:
            self._next(conn, time.monotonic_ns())
        else:
            # Closed loop: do not spin on a server that refuses connections.
            loop = asyncio.get_running_loop()
            loop.call_later(_RECONNECT_DELAY, self._next, conn, time.monotonic_ns())

    def _next(self, conn: Connection, now: int) -> None:
        if self.open_loop:
            if self.queue:
                conn.send(self.queue.popleft())
            else:
                self.idle.append(conn)
        elif not self.stopping and now < self.stop_at:
            conn.send(now)

    # -- the run --------------------------------------------------------------------------

    async def run(self, start_ns: int, on_progress: ProgressCallback | None = None) -> Tally:
        """Connect, wait until ``start_ns`` (``time.monotonic_ns()``), load, and tally."""
        spec = self.spec
        target = spec.target
        tls = ssl.create_default_context() if target.tls else None
        request = spec.request_bytes()
        self.connections = [
            Connection(
                self,
                request,
                target.host,
                target.port,
                tls=tls,
                server_hostname=target.host,
                head_request=spec.method == "HEAD",
            )
            for _ in range(self.n_connections)
        ]
        # Connect up front, so that connecting is not part of the first latencies; a
        # connection that fails here connects again when it is given a request.
        await asyncio.gather(*(c.connect() for c in self.connections), return_exceptions=True)
        self.measure_from = start_ns + int(spec.warmup * _NS)
        self.stop_at = self.measure_from + int(spec.duration * _NS)
        await _sleep_until(start_ns)
        ticker = asyncio.get_running_loop().create_task(self._tick(on_progress))
        try:
            if self.open_loop:
                self.idle = list(self.connections)
                await self._schedule(start_ns)
            else:
                for conn in self.connections:
                    conn.send(time.monotonic_ns())
                await _sleep_until(self.stop_at)
            self.stopping = True
            unsent = sum(1 for t in self.queue if t >= self.measure_from)
            self.queue.clear()
            deadline = time.monotonic_ns() + self.timeout_ns + _NS // 10
            while any(c.busy for c in self.connections) and time.monotonic_ns() < deadline:
                await asyncio.sleep(0.005)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            for conn in self.connections:
                conn.close()
        if on_progress is not None:
            on_progress(self.finished, self.errors)
        return self._tally(unsent)

    async def _schedule(self, start_ns: int) -> None:
        """Hand out requests at their intended starts until the measured run ends."""
        rate = self.spec.rate
        assert rate is not None
        step = self.shares / rate * _NS
        first = start_ns + self.share / rate * _NS
        stop_at = self.stop_at
        idle = self.idle
        queue = self.queue
        i = 0
        intended = int(first)
        clock = time.monotonic_ns
        while intended < stop_at:
            now = clock()
            while intended <= now and intended < stop_at:
                lag = now - intended
                if lag > _LATE_NS:
                    self._late += 1
                    if lag > self._max_lag:
                        self._max_lag = lag
                if idle:
                    idle.pop().send(intended)
                else:
                    queue.append(intended)
                i += 1
                intended = int(first + i * step)
            if intended < stop_at:
                # Wake at most once a millisecond (the event loop's timer resolution);
                # shorter sleeps would hand out one request per loop turn and cap the rate.
                await asyncio.sleep(max(intended - clock(), _MIN_WAIT_NS) / _NS)

    async def _tick(self, on_progress: ProgressCallback | None) -> None:
        """Time out requests that waited too long; report progress now and then."""
        n = 0
        while True:
            await asyncio.sleep(_TICK)
            now = time.monotonic_ns()
            for conn in self.connections:
                if conn.busy and now - conn.sent_ns > self.timeout_ns:
                    conn.abort("timeout")
            n += 1
            if on_progress is not None and n % 4 == 0:
                on_progress(self.finished, self.errors)

    def _tally(self, unsent: int) -> Tally:
        seconds = max(1, math.ceil(self.spec.duration))
        windows = fold(
            seconds, self._at, self._latency, self._service, self._status, self._failed_at
        )
        return Tally(
            windows=windows,
            statuses=Counter(self._status),
            failures=self._failures,
            unsent=unsent,
            late=self._late,
            max_lag_ns=self._max_lag,
        )


async def _sleep_until(when_ns: int) -> None:
    delay = (when_ns - time.monotonic_ns()) / _NS
    if delay > 0:
        await asyncio.sleep(delay)


def run_engine(
    spec: LoadSpec,
    start_ns: int,
    *,
    share: int = 0,
    shares: int = 1,
    on_progress: ProgressCallback | None = None,
) -> Tally:
    """Run one engine in a fresh event loop (uvloop when it is installed)."""
    engine = Engine(spec, share=share, shares=shares)
    try:
        # Optional and untyped where it is installed: looked up by name for mypy's sake.
        uvloop: Any = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.run(engine.run(start_ns, on_progress))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(engine.run(start_ns, on_progress))
