"""The live signals that guards act on, read in-process (no HTTP, no query).

Two sources:

- :class:`RecorderWindow`: a rolling view of one model version's
  :class:`~inferwatch.sdk.recorder.InferenceRecorder`. Each evaluation folds the
  recorder and keeps a snapshot of its cumulative aggregates (the latency sketch's
  bucket counts and the outcome counts); a window's figures are the difference
  between the newest snapshot and the one at the window's start, so latency
  quantiles keep the sketch's 0.5% bound and nothing is added to the hot path.
- :class:`ResourceSignals`: GPU readings through
  :class:`~inferwatch.collectors.GPUCollector` (``FakeNVML`` in tests), this process's
  RSS and the host's CPU and memory through psutil, and signals the user defines as
  functions.

:data:`SIGNALS` names every built-in signal with its kind, which decides the
thresholds that make sense for it (a ratio lies in 0..1, a duration is not negative).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from inferwatch._errors import ConfigError
from inferwatch.sdk.sketch import QuantileSketch

if TYPE_CHECKING:
    from inferwatch.collectors.gpu import GPUCollector
    from inferwatch.sdk.recorder import InferenceRecorder
    from inferwatch.sdk.registry import Registry

SignalKind = Literal["ratio", "seconds", "bytes", "celsius", "count", "rate", "custom"]
SignalValues = dict[str, float | None]


@dataclass(frozen=True, slots=True)
class SignalInfo:
    """A signal a guard condition may name: its ``kind`` and what it measures."""

    name: str
    kind: SignalKind
    description: str


_ALL: tuple[SignalInfo, ...] = (
    SignalInfo("latency_p50_seconds", "seconds", "median inference latency over the window"),
    SignalInfo("latency_p90_seconds", "seconds", "90th percentile inference latency, window"),
    SignalInfo("latency_p99_seconds", "seconds", "99th percentile inference latency, window"),
    SignalInfo("error_ratio", "ratio", "errors / (successes + errors) over the window"),
    SignalInfo("throughput_per_second", "rate", "inferences finished per second, window"),
    SignalInfo("in_flight", "count", "inferences started and not yet finished"),
    SignalInfo("gpu_memory_used_ratio", "ratio", "device memory in use, the fullest GPU"),
    SignalInfo("gpu_utilization_ratio", "ratio", "kernel busy time, the busiest GPU"),
    SignalInfo("gpu_temperature_celsius", "celsius", "core temperature, the hottest GPU"),
    SignalInfo("process_resident_memory_bytes", "bytes", "resident set size of this process"),
    SignalInfo("system_cpu_utilization_ratio", "ratio", "host CPU busy since the last read"),
    SignalInfo("system_memory_used_ratio", "ratio", "host memory in use"),
)
#: Every built-in signal by name.
SIGNALS: dict[str, SignalInfo] = {info.name: info for info in _ALL}
#: Signals computed from the recorder over the guard's window.
WINDOW_SIGNALS = frozenset(
    {
        "latency_p50_seconds",
        "latency_p90_seconds",
        "latency_p99_seconds",
        "error_ratio",
        "throughput_per_second",
    }
)
_QUANTILES = {"latency_p50_seconds": 0.5, "latency_p90_seconds": 0.9, "latency_p99_seconds": 0.99}
_GPU_SIGNALS = {
    "gpu_memory_used_ratio": "gpu_memory_used_ratio",
    "gpu_utilization_ratio": "gpu_utilization_ratio",
    "gpu_temperature_celsius": "gpu_temperature_celsius",
}


def signal_kind(name: str, custom: Collection[str] = ()) -> SignalKind:
    """The kind of signal ``name``; raises :class:`ConfigError` (field ``signal``) for
    a name that is neither built in nor among ``custom``."""
    if name in custom:
        return "custom"
    info = SIGNALS.get(name)
    if info is None:
        raise ConfigError(
            f"unknown signal {name!r}; use one of {', '.join(SIGNALS)}, or define it with "
            "signals={name: function}",
            field="signal",
            value=name,
        )
    return info.kind


def check_threshold(signal: str, threshold: object, custom: Collection[str] = ()) -> float:
    """``threshold`` as a float that makes sense for ``signal``, or :class:`ConfigError`
    naming ``signal`` (unknown name) or ``threshold`` (not a finite number, negative,
    a ratio above 1)."""
    kind = signal_kind(signal, custom)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ConfigError(
            f"threshold for {signal} must be a number, got {threshold!r}",
            field="threshold",
            value=threshold,
        )
    value = float(threshold)
    if not math.isfinite(value):
        raise ConfigError(
            f"threshold for {signal} must be finite, got {threshold!r}",
            field="threshold",
            value=threshold,
        )
    if kind == "ratio" and not 0.0 <= value <= 1.0:
        raise ConfigError(
            f"{signal} is a ratio from 0 to 1; threshold {threshold!r} is outside it "
            "(write 80% as 0.8)",
            field="threshold",
            value=threshold,
        )
    if kind in ("seconds", "bytes", "count", "rate") and value < 0:
        raise ConfigError(
            f"{signal} is never negative; threshold {threshold!r} makes no sense",
            field="threshold",
            value=threshold,
        )
    return value


@dataclass(frozen=True, slots=True)
class _Snapshot:
    at: float
    buckets: dict[int, float]
    zero: float
    count: float
    successes: float
    errors: float


class RecorderWindow:
    """Rolling figures of one recorder over the last ``window_s`` seconds.

    Call :meth:`sample` at each evaluation (it folds the recorder: no hot-path cost),
    then :meth:`values`. The window spans from the newest snapshot at least
    ``window_s`` old (or the oldest kept) to now, so with sparse evaluations it can
    be somewhat longer than ``window_s``.
    """

    def __init__(self, recorder: InferenceRecorder, window_s: float) -> None:
        self.recorder = recorder
        self.window_s = window_s
        self._snapshots: deque[_Snapshot] = deque()

    def _outcomes(self) -> tuple[float, float]:
        """Fold the recorder; its successes and errors so far."""
        rec = self.recorder
        rec.fold()
        successes = errors = 0.0
        for (outcome, _), count in list(rec.outcomes.items()):
            if outcome == "success":
                successes += count
            elif outcome == "error":
                errors += count
        return successes, errors

    def _take(self, now: float) -> _Snapshot:
        successes, errors = self._outcomes()
        sketch = self.recorder.latency
        # dict() of a dict is one C call: atomic against a concurrent fold.
        buckets = dict(sketch.buckets)
        return _Snapshot(now, buckets, sketch.zero_count, sketch.count, successes, errors)

    def sample(self, now: float) -> None:
        """Take a snapshot at ``now`` and drop those older than the window needs."""
        snaps = self._snapshots
        snaps.append(self._take(now))
        start = now - self.window_s
        while len(snaps) > 2 and snaps[1].at <= start:
            snaps.popleft()

    def restart(self, now: float) -> None:
        """Forget the history: the next window starts at ``now`` (after a circuit closes,
        the errors that opened it must not open it again)."""
        self._snapshots.clear()
        self._snapshots.append(self._take(now))

    def live_totals(self) -> tuple[float, float]:
        """Successes and errors counted up to now (folds the recorder; keeps nothing)."""
        return self._outcomes()

    def totals(self) -> tuple[float, float]:
        """Successes and errors counted up to the newest snapshot."""
        if not self._snapshots:
            return 0.0, 0.0
        last = self._snapshots[-1]
        return last.successes, last.errors

    def values(self, min_requests: int = 1) -> SignalValues:
        """The window signals; latency and error ratio are None with fewer than
        ``min_requests`` finished inferences in the window."""
        out: SignalValues = dict.fromkeys(WINDOW_SIGNALS)
        if not self._snapshots:
            return out
        first, last = self._snapshots[0], self._snapshots[-1]
        finished = (last.successes - first.successes) + (last.errors - first.errors)
        span = last.at - first.at
        if span > 0:
            out["throughput_per_second"] = finished / span
        if finished < max(min_requests, 1):
            return out
        out["error_ratio"] = (last.errors - first.errors) / finished
        diff = QuantileSketch()
        old = first.buckets
        for key, count in last.buckets.items():
            delta = count - old.get(key, 0.0)
            if delta > 0:
                diff.buckets[key] = delta
        diff.zero_count = last.zero - first.zero
        diff.count = last.count - first.count
        diff.min, diff.max = 0.0, math.inf
        if diff.count > 0:
            for name, q in _QUANTILES.items():
                out[name] = diff.quantile(q)
        return out


class ResourceSignals:
    """GPU, process, host and user-defined signals, read when a guard evaluates.

    ``nvml``: ``pynvml`` or a :class:`~inferwatch.testing.FakeNVML` (default: pynvml,
    loaded on the first GPU read). ``custom``: functions returning a number, by
    signal name. A reading that fails is None (the condition does not hold) and is
    counted as an internal error in ``registry``; nothing here raises.
    """

    def __init__(
        self,
        *,
        nvml: Any | None = None,
        custom: Mapping[str, Callable[[], float]] | None = None,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nvml = nvml
        self._clock = clock
        self.custom: dict[str, Callable[[], float]] = dict(custom or {})
        self._registry = registry
        self._gpu: GPUCollector | None = None
        self._process: Any = None

    def read(self, names: Collection[str]) -> SignalValues:
        """The current value of each of ``names`` that is not a window signal."""
        out: SignalValues = {}
        gpu_wanted = [n for n in names if n in _GPU_SIGNALS and n not in self.custom]
        if gpu_wanted:
            out.update(self._read_gpu(gpu_wanted))
        for name in names:
            if name in out or name in WINDOW_SIGNALS:
                continue
            out[name] = self._read_one(name)
        return out

    def _failed(self, what: str, exc: Exception) -> None:
        if self._registry is not None:
            self._registry.internal_error(f"guard:{what}", exc)

    def _read_one(self, name: str) -> float | None:
        try:
            fn = self.custom.get(name)
            if fn is not None:
                value = float(fn())
                return value if math.isfinite(value) else None
            if name == "process_resident_memory_bytes":
                import psutil

                if self._process is None:
                    self._process = psutil.Process()
                return float(self._process.memory_info().rss)
            if name == "system_cpu_utilization_ratio":
                import psutil

                return float(psutil.cpu_percent(interval=None)) / 100.0
            if name == "system_memory_used_ratio":
                import psutil

                return float(psutil.virtual_memory().percent) / 100.0
        except Exception as exc:
            self._failed(name, exc)
        return None

    def _read_gpu(self, names: list[str]) -> SignalValues:
        out: SignalValues = dict.fromkeys(names)
        try:
            if self._gpu is None:
                from inferwatch.collectors.gpu import GPUCollector

                self._gpu = GPUCollector(nvml=self._nvml, clock=self._clock)
            families = {fam.name: fam for fam in self._gpu.collect()}
        except Exception as exc:
            self._failed("gpu", exc)
            return out
        for name in names:
            fam = families.get(_GPU_SIGNALS[name])
            values = (
                [float(v) for v in fam.samples.values() if isinstance(v, (int, float))]
                if fam
                else []
            )
            out[name] = max(values) if values else None
        return out

    def close(self) -> None:
        """Release NVML if a GPU signal was read."""
        if self._gpu is not None:
            self._gpu.close()
