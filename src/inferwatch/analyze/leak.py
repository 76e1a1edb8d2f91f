"""Memory leaks: a robust growth rate of process and GPU memory, and allocation-site diffs.

Two tools, for the two questions a leak raises:

- **Is memory growing?** :class:`MemoryGrowthCollector` samples the process's resident
  memory (and each GPU's used memory, through NVML) every ``period_s`` and exports the
  Theil-Sen slope over the last ``window_s`` as ``process_memory_growth_bytes_per_second``
  and ``gpu_memory_growth_bytes_per_second{gpu}``. Theil-Sen (the median of the slopes
  between every pair of samples) ignores up to ~29% of outliers, so a garbage-collector
  spike or an allocator returning a burst of pages does not look like a leak, while a
  steady climb does. ``examples/rules/memory-leak.yml`` alerts on a sustained one.
- **What is leaking?** :class:`AllocationTracker` wraps :mod:`tracemalloc`: start
  tracing, take snapshots, and list the allocation sites that grew most since the
  previous snapshot. :func:`allocation_app` serves it over HTTP (an ASGI app to mount in
  the service) and ``inferwatch leaks snapshot --url ...`` calls it.

:func:`theil_sen` and :class:`GrowthWindow` are pure: they take values and times.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from inferwatch._duration import check_seconds
from inferwatch._errors import ConfigError
from inferwatch.sdk.family import FamilySnapshot

__all__ = [
    "AllocationGrowth",
    "AllocationTracker",
    "GrowthWindow",
    "MemoryGrowthCollector",
    "allocation_app",
    "theil_sen",
]

log = logging.getLogger("inferwatch")

#: Pairs of samples above which :func:`theil_sen` uses numpy rather than pure Python.
_NUMPY_MIN = 64


# -- the trend ---------------------------------------------------------------------------


def theil_sen(times: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """The Theil-Sen line through ``(times[i], values[i])``: ``(slope, intercept)``.

    The slope is the median of the slopes of all pairs with distinct times; the
    intercept is the median of ``values - slope * times`` (as
    ``scipy.stats.theilslopes`` computes them). O(n^2) time and memory: meant for
    bounded windows (a few hundred points). Raises ``ValueError`` with fewer than two
    distinct times.
    """
    n = len(times)
    if n != len(values):
        raise ValueError(f"times and values differ in length ({n} != {len(values)})")
    if n >= _NUMPY_MIN:
        import numpy as np

        t = np.asarray(times, dtype=float)
        v = np.asarray(values, dtype=float)
        i, j = np.triu_indices(n, k=1)
        dt = t[j] - t[i]
        keep = dt != 0
        if not keep.any():
            raise ValueError("Theil-Sen needs at least two distinct times")
        slope = float(np.median((v[j] - v[i])[keep] / dt[keep]))
        return slope, float(np.median(v - slope * t))
    slopes = [
        (values[j] - values[i]) / (times[j] - times[i])
        for i in range(n)
        for j in range(i + 1, n)
        if times[j] != times[i]
    ]
    if not slopes:
        raise ValueError("Theil-Sen needs at least two distinct times")
    slope = _median(slopes)
    return slope, _median([v - slope * t for t, v in zip(times, values, strict=True)])


def _median(xs: list[float]) -> float:
    ordered = sorted(xs)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2.0


class GrowthWindow:
    """Samples of one reading over the last ``window_s`` seconds, and their trend.

    Pure: :meth:`add` takes the time with the value. :meth:`slope` is the Theil-Sen
    slope in units per second, or ``None`` until ``min_samples`` samples spanning at
    least ``min_span_s`` are in the window (so a fresh process does not report a
    "trend" of two points).
    """

    def __init__(self, window_s: float, *, min_samples: int = 6, min_span_s: float = 0.0) -> None:
        self.window_s = window_s
        self.min_samples = min_samples
        self.min_span_s = min_span_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, t: float, value: float) -> None:
        """Add a sample taken at ``t`` and forget those older than the window."""
        if not math.isfinite(value):
            return
        self._samples.append((t, value))
        horizon = t - self.window_s
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()

    def __len__(self) -> int:
        return len(self._samples)

    def span_s(self) -> float:
        """Seconds between the oldest and the newest sample in the window."""
        if not self._samples:
            return 0.0
        return self._samples[-1][0] - self._samples[0][0]

    def slope(self) -> float | None:
        """The Theil-Sen growth rate per second, or ``None`` with too few samples."""
        if len(self._samples) < max(self.min_samples, 2) or self.span_s() < self.min_span_s:
            return None
        times = [s[0] for s in self._samples]
        values = [s[1] for s in self._samples]
        # Subtract the first time: epoch seconds squared lose precision in the slopes.
        t0 = times[0]
        return theil_sen([t - t0 for t in times], values)[0]


# -- the collector -----------------------------------------------------------------------


def _process_rss() -> float:
    import psutil

    return float(psutil.Process(os.getpid()).memory_info().rss)


class _NVMLReader:
    """Used memory of every GPU by index, through NVML (pynvml or a FakeNVML)."""

    def __init__(self, nvml: Any | None) -> None:
        self._given = nvml
        self._nvml: Any = None
        self._failed = False

    def __call__(self) -> dict[str, float]:
        if self._failed:
            return {}
        if self._nvml is None:
            nvml = self._given
            try:
                if nvml is None:
                    import pynvml

                    nvml = pynvml
                nvml.nvmlInit()
            except Exception as exc:
                self._failed = True
                log.info("GPU memory growth unavailable: NVML could not start (%r)", exc)
                return {}
            self._nvml = nvml
        out: dict[str, float] = {}
        nvml = self._nvml
        for i in range(nvml.nvmlDeviceGetCount()):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                out[str(i)] = float(nvml.nvmlDeviceGetMemoryInfo(handle).used)
            except Exception:  # NotSupported on this device: leave it out
                continue
        return out

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):  # NVML already gone: nothing to release
                self._nvml.nvmlShutdown()
            self._nvml = None


class MemoryGrowthCollector:
    """Exports the growth rate of process RSS and GPU memory over a sliding window.

    Every ``period_s`` it reads ``rss()`` (default: this process's resident memory) and,
    when ``gpu`` is true, every GPU's used memory through ``nvml`` (``pynvml`` by default,
    or :class:`~inferwatch.testing.FakeNVML`); it keeps ``window_s`` seconds of samples
    and reports their Theil-Sen slope:

    - ``process_memory_growth_bytes_per_second``
    - ``gpu_memory_growth_bytes_per_second{gpu}``

    A rate appears once ``min_samples`` samples span at least half the window. Samples
    are taken by :meth:`start`'s background thread, or on :meth:`collect` when a period
    has passed (so it also works with no thread, at the pace of the scrapes), or by
    calling :meth:`sample`; ``clock`` (seconds) times them, so a
    :class:`~inferwatch.testing.FakeClock` drives it in tests. Never raises from
    :meth:`collect` or :meth:`sample`.
    """

    def __init__(
        self,
        *,
        period_s: float = 5.0,
        window_s: float = 600.0,
        min_samples: int = 6,
        rss: Callable[[], float] | None = None,
        gpu: bool = True,
        nvml: Any | None = None,
        gpu_memory: Callable[[], Mapping[str, float]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_seconds("period_s", period_s)
        check_seconds("window_s", window_s)
        if window_s < 2 * period_s:
            raise ConfigError(
                f"window_s ({window_s!r}) must hold at least two periods (period_s={period_s!r})",
                field="window_s",
                value=window_s,
            )
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 2:
            raise ConfigError(
                f"min_samples must be an integer >= 2, got {min_samples!r}",
                field="min_samples",
                value=min_samples,
            )
        self.period_s = float(period_s)
        self.window_s = float(window_s)
        self.min_samples = min_samples
        self._rss = rss or _process_rss
        self._nvml_reader: _NVMLReader | None = None
        if gpu_memory is not None:
            self._gpu: Callable[[], Mapping[str, float]] | None = gpu_memory
        elif gpu:
            self._nvml_reader = _NVMLReader(nvml)
            self._gpu = self._nvml_reader
        else:
            self._gpu = None
        self._clock = clock
        self._lock = threading.Lock()
        self._process = self._window()
        self._gpus: dict[str, GrowthWindow] = {}
        self._last: float | None = None
        self._logged: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _window(self) -> GrowthWindow:
        return GrowthWindow(
            self.window_s, min_samples=self.min_samples, min_span_s=self.window_s / 2
        )

    def sample(self) -> None:
        """Read the memory now and add it to the windows."""
        now = self._clock()
        rss = self._read("rss", self._rss)
        gpus = self._read("gpu", self._gpu) if self._gpu is not None else None
        with self._lock:
            self._last = now
            if rss is not None:
                self._process.add(now, float(rss))
            for gpu, used in (gpus or {}).items():
                window = self._gpus.get(gpu)
                if window is None:
                    window = self._gpus[gpu] = self._window()
                window.add(now, float(used))

    def maybe_sample(self) -> bool:
        """Sample if a period has passed since the last sample; True if it did."""
        last = self._last
        if last is not None and self._clock() - last < self.period_s:
            return False
        self.sample()
        return True

    def _read(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            if what not in self._logged:
                self._logged.add(what)
                log.warning("memory growth: cannot read %s memory: %r", what, exc)
            return None

    def process_growth(self) -> float | None:
        """The process's RSS growth in bytes per second (``None`` until enough samples)."""
        with self._lock:
            return self._process.slope()

    def gpu_growth(self) -> dict[str, float]:
        """Each GPU's memory growth in bytes per second, by NVML index."""
        with self._lock:
            windows = dict(self._gpus)
            out = {}
            for gpu, window in windows.items():
                slope = window.slope()
                if slope is not None:
                    out[gpu] = slope
        return out

    def collect(self) -> Iterable[FamilySnapshot]:
        """Sample if a period has passed, then export the growth rates."""
        out: list[FamilySnapshot] = []
        try:
            if self._thread is None:
                self.maybe_sample()
            growth = self.process_growth()
            if growth is not None:
                fam = FamilySnapshot(
                    "process_memory_growth_bytes_per_second",
                    "Theil-Sen trend of the process's resident memory over the window, "
                    "in bytes per second.",
                    "gauge",
                    merge="all",
                )
                fam.samples[()] = growth
                out.append(fam)
            gpus = self.gpu_growth()
            if gpus:
                fam = FamilySnapshot(
                    "gpu_memory_growth_bytes_per_second",
                    "Theil-Sen trend of each GPU's used memory over the window, "
                    "in bytes per second.",
                    "gauge",
                    ("gpu",),
                    merge="local",
                )
                for gpu, slope in gpus.items():
                    fam.samples[(gpu,)] = slope
                out.append(fam)
        except Exception as exc:  # pragma: no cover - the last line of defence
            if "collect" not in self._logged:
                self._logged.add("collect")
                log.warning("memory growth collector failed: %r", exc)
        return out

    def start(self) -> MemoryGrowthCollector:
        """Sample every ``period_s`` from a daemon thread (real time); returns self."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="inferwatch-memory-growth", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.period_s)

    def stop(self) -> None:
        """Stop the sampling thread (if started) and release NVML."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)
        if self._nvml_reader is not None:
            self._nvml_reader.close()


# -- allocation sites ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllocationGrowth:
    """One allocation site and how it changed between two snapshots.

    ``file`` and ``line`` are the innermost frame; ``traceback`` lists the frames kept
    (``frames`` when tracing started), innermost first, as ``file:line``.
    """

    file: str
    line: int
    size_bytes: int
    size_diff_bytes: int
    count: int
    count_diff: int
    traceback: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The site as plain JSON-ready values."""
        data = asdict(self)
        data["traceback"] = list(self.traceback)
        return data


KeyType = Literal["lineno", "traceback", "filename"]


def allocation_diff(
    old: tracemalloc.Snapshot,
    new: tracemalloc.Snapshot,
    *,
    top: int = 10,
    key_type: KeyType = "lineno",
) -> list[AllocationGrowth]:
    """The ``top`` allocation sites that grew most (in bytes) from ``old`` to ``new``.

    Sites that shrank or did not change are left out.
    """
    stats = new.compare_to(old, key_type)
    grown = [s for s in stats if s.size_diff > 0]
    grown.sort(key=lambda s: s.size_diff, reverse=True)
    out = []
    for stat in grown[:top]:
        frames = stat.traceback
        first = frames[0] if len(frames) else None
        out.append(
            AllocationGrowth(
                file=first.filename if first else "<unknown>",
                line=first.lineno if first else 0,
                size_bytes=stat.size,
                size_diff_bytes=stat.size_diff,
                count=stat.count,
                count_diff=stat.count_diff,
                traceback=tuple(f"{f.filename}:{f.lineno}" for f in frames),
            )
        )
    return out


class AllocationTracker:
    """On-demand :mod:`tracemalloc` diffs: which allocation sites grew since last time.

    ::

        tracker = AllocationTracker()
        tracker.start()            # tracing costs CPU and memory: start it when needed
        ...                        # let the service run
        tracker.diff(top=10)       # sites grown since start (or the previous diff)
        tracker.stop()

    ``frames``: frames kept per allocation (1 is cheapest; more tells which caller).
    Allocations by :mod:`tracemalloc` itself and by this module are left out. One
    tracker per process: tracing is process-wide.
    """

    def __init__(self, *, frames: int = 1) -> None:
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise ConfigError(
                f"frames must be an integer >= 1, got {frames!r}", field="frames", value=frames
            )
        self.frames = frames
        self._lock = threading.Lock()
        self._previous: tracemalloc.Snapshot | None = None
        self._started_here = False

    @property
    def tracing(self) -> bool:
        """Whether :mod:`tracemalloc` is tracing now."""
        return tracemalloc.is_tracing()

    def start(self) -> None:
        """Start tracing (if not already) and take the baseline snapshot."""
        with self._lock:
            if not tracemalloc.is_tracing():
                tracemalloc.start(self.frames)
                self._started_here = True
            self._previous = self._snapshot()

    def _snapshot(self) -> tracemalloc.Snapshot:
        return tracemalloc.take_snapshot().filter_traces(
            (
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, __file__),
                tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
                tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
                tracemalloc.Filter(False, "<unknown>"),
            )
        )

    def diff(self, *, top: int = 10, key_type: KeyType = "lineno") -> list[AllocationGrowth]:
        """Snapshot now and return the ``top`` sites grown since the previous snapshot;
        the new snapshot becomes the previous. Starts tracing first if it is off (the
        first diff after that is then empty)."""
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ConfigError(f"top must be an integer >= 1, got {top!r}", field="top", value=top)
        if key_type not in ("lineno", "traceback", "filename"):
            raise ConfigError(
                f"key_type must be lineno, traceback or filename, got {key_type!r}",
                field="key_type",
                value=key_type,
            )
        with self._lock:
            if not tracemalloc.is_tracing():
                tracemalloc.start(self.frames)
                self._started_here = True
                self._previous = None
            current = self._snapshot()
            previous, self._previous = self._previous, current
        if previous is None:
            return []
        return allocation_diff(previous, current, top=top, key_type=key_type)

    def traced_memory(self) -> tuple[int, int]:
        """``(current, peak)`` bytes traced, as :func:`tracemalloc.get_traced_memory`."""
        return tracemalloc.get_traced_memory()

    def stop(self) -> None:
        """Stop tracing (only if this tracker started it) and forget the snapshots."""
        with self._lock:
            self._previous = None
            if self._started_here and tracemalloc.is_tracing():
                tracemalloc.stop()
            self._started_here = False


# -- HTTP ----------------------------------------------------------------------------------


ASGIApp = Callable[..., Any]


def allocation_app(tracker: AllocationTracker | None = None) -> ASGIApp:
    """An ASGI app that serves an :class:`AllocationTracker` as JSON.

    Mount it under a path in the service, for example with FastAPI or Starlette::

        app.mount("/debug/leaks", allocation_app())

    Routes (relative to the mount point):

    - ``POST .../snapshot?top=10&key_type=lineno``: snapshot and return the sites grown
      since the previous snapshot (the first call starts tracing and returns none);
    - ``POST .../stop``: stop tracing;
    - ``GET ...``: whether tracing is on and the memory traced.

    Tracing slows allocations and holds memory while on: keep the route on an internal
    port or behind authentication, and stop tracing when done.
    """
    own = tracker if tracker is not None else AllocationTracker()

    async def app(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        status, body = _handle(own, scope["method"], scope.get("path", ""), scope)
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


def _handle(
    tracker: AllocationTracker, method: str, path: str, scope: Mapping[str, Any]
) -> tuple[int, dict[str, Any]]:
    last = path.rstrip("/").rsplit("/", 1)[-1]
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    if last in ("snapshot", "stop") and method != "POST":
        return 405, {"error": f"use POST for {last}"}
    if last == "stop":
        tracker.stop()
        return 200, _status(tracker)
    if last == "snapshot":
        try:
            top = int(query.get("top", ["10"])[0])
        except ValueError:
            return 400, {"error": f"top must be an integer, got {query['top'][0]!r}"}
        key_type = query.get("key_type", ["lineno"])[0]
        was_tracing = tracker.tracing
        try:
            sites = tracker.diff(top=top, key_type=key_type)  # type: ignore[arg-type]
        except ConfigError as exc:
            return 400, {"error": str(exc), "field": exc.field}
        body = _status(tracker)
        body["started"] = not was_tracing
        body["sites"] = [site.to_dict() for site in sites]
        return 200, body
    if method != "GET":
        return 405, {"error": "use GET for the status, POST for snapshot and stop"}
    return 200, _status(tracker)


def _status(tracker: AllocationTracker) -> dict[str, Any]:
    current, peak = tracker.traced_memory()
    return {"tracing": tracker.tracing, "traced_bytes": current, "peak_traced_bytes": peak}
