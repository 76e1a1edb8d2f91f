"""Shadow models: mirror a sample of live requests to a candidate model, off the request path.

A :class:`Shadow` wraps the primary model call (or is fed by hand with
:meth:`Shadow.mirror`). On the request path it costs a sampling decision and, for a
sampled call, one non-blocking put on a bounded queue: the primary's result is returned
as before, whatever the candidate does. Worker threads take mirrored calls off the
queue, run the candidate on the same arguments, and compare its answer with the
primary's (``==`` by default, or the ``compare`` function given).

Policies, so that a bad candidate never reaches the primary:

- **Full queue**: the mirror is dropped and counted (``result="dropped"``); the primary
  never waits.
- **Candidate raises**: counted as ``result="error"`` with its type.
- **Candidate hangs**: each call gets ``timeout_s``. A watchdog thread (waking a few
  times per ``timeout_s``, at least every half second) counts a call past it as
  ``result="timeout"`` and *abandons* it: Python cannot interrupt a running function,
  so the thread running it is left to finish on its own (its result is thrown away)
  and a fresh thread takes over, as long as fewer than ``max_stuck`` abandoned calls
  are running. Past that no thread replaces it: the queue fills and further mirrors
  are dropped and counted, until an abandoned call returns and its thread takes up
  the work again. So at most ``workers + max_stuck - 1`` candidate threads exist. An
  async candidate is cancelled at ``timeout_s`` instead.

Series (labels ``model``, ``version`` of the primary and ``candidate``):

- ``inferwatch_shadow_requests_total{result}``: mirrored calls by what became of them: ``ok``,
  ``error``, ``timeout`` or ``dropped``.
- ``inferwatch_shadow_comparisons_total{agree}``: calls where both answered, by ``agree="true"`` or
  ``"false"``; the agreement rate over any window is
  ``rate(...{agree="true"}[w]) / ignoring(agree) sum without(agree) (rate(...[w]))``.
- ``inferwatch_shadow_latency_seconds{role}``: latency histograms of the ``primary`` and the
  ``candidate`` on the same mirrored calls, for the latency delta.
- ``inferwatch_shadow_errors_total{role, error_type}``: failures of either side on mirrored calls,
  for the error-rate delta.
- ``inferwatch_shadow_candidate_cpu_seconds_total``: CPU time the candidate used (thread CPU time).
- ``inferwatch_shadow_queue_length`` and ``inferwatch_shadow_stuck_threads``: the backlog
  and the number of abandoned candidate calls still running.

With ``record=path`` every mirrored call (and every batch of drops) is also appended to
a JSON-lines file, which ``inferwatch shadow report`` (see :func:`summarize`) turns into
a summary of the run.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import math
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter_ns
from typing import IO, TYPE_CHECKING, Any, TypeVar

from inferwatch._duration import check_seconds
from inferwatch._errors import ConfigError
from inferwatch.sdk.family import FamilySnapshot
from inferwatch.sdk.sketch import QuantileSketch

if TYPE_CHECKING:
    from inferwatch.sdk.registry import Registry

__all__ = ["Shadow", "ShadowSummary", "read_records", "summarize"]

log = logging.getLogger("inferwatch")

F = TypeVar("F", bound=Callable[..., Any])
Compare = Callable[[Any, Any], object]

_BASE_LABELS = ("model", "version", "candidate")
_STOP = object()
#: The watchdog checks for hung calls this many times per ``timeout_s`` ...
_CHECKS_PER_TIMEOUT = 4
#: ... and at least this often (seconds).
_MAX_CHECK_S = 0.5


def _default_compare(primary: Any, candidate: Any) -> bool:
    """``primary == candidate``; element-wise results (numpy arrays) must all be true."""
    if getattr(primary, "shape", None) != getattr(candidate, "shape", None):
        return False  # arrays of different shapes (or an array and a scalar)
    same = primary == candidate
    if isinstance(same, bool):
        return same
    all_of = getattr(same, "all", None)
    if callable(all_of):
        return bool(all_of())
    return bool(same)


@dataclass(slots=True, eq=False)
class _Job:
    """One mirrored call, from the primary's side to a worker and its runner."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    primary_result: Any
    primary_error: str | None
    primary_s: float
    time: float
    started: float = math.inf
    finished: bool = False
    abandoned: bool = False
    result: Any = None
    error: str | None = None
    timed_out: bool = False
    candidate_s: float = 0.0
    cpu_s: float = 0.0


class _Runner:
    """A thread that takes mirrored calls off the queue, runs the candidate, and counts
    the outcome. One whose call the watchdog abandoned (past the timeout) exits when
    that call returns, unless it is owed as a replacement (see :class:`Shadow`)."""

    def __init__(self, shadow: Shadow) -> None:
        self._shadow = shadow
        self.job: _Job | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"inferwatch-shadow-{shadow.candidate_name}", daemon=True
        )

    def _run(self) -> None:
        shadow = self._shadow
        loop: asyncio.AbstractEventLoop | None = None
        try:
            while True:
                job = shadow._queue.get()
                if not isinstance(job, _Job):
                    return
                job.started = time.perf_counter()
                self.job = job
                if shadow.is_async:
                    if loop is None:
                        loop = asyncio.new_event_loop()
                    self._call_async(loop, job)
                else:
                    self._call(job)
                if not shadow._finish(self, job):
                    return
        finally:
            if loop is not None:
                loop.close()

    def _call(self, job: _Job) -> None:
        candidate = self._shadow.candidate
        cpu0 = time.thread_time()
        t0 = perf_counter_ns()
        try:
            job.result = candidate(*job.args, **job.kwargs)
        except BaseException as exc:  # even SystemExit: the runner must report back
            job.error = type(exc).__name__
        job.candidate_s = (perf_counter_ns() - t0) / 1e9
        job.cpu_s = time.thread_time() - cpu0

    def _call_async(self, loop: asyncio.AbstractEventLoop, job: _Job) -> None:
        candidate = self._shadow.candidate
        timeout = self._shadow.timeout_s
        cpu0 = time.thread_time()
        t0 = perf_counter_ns()
        try:
            job.result = loop.run_until_complete(
                asyncio.wait_for(candidate(*job.args, **job.kwargs), timeout)
            )
        except TimeoutError:
            job.timed_out = True
        except BaseException as exc:  # CancelledError, SystemExit: report back all the same
            job.error = type(exc).__name__
        job.candidate_s = (perf_counter_ns() - t0) / 1e9
        job.cpu_s = time.thread_time() - cpu0


class _Stats:
    """The counters and histograms behind the series (guarded by the shadow's lock)."""

    def __init__(self) -> None:
        self.results: dict[str, float] = {"ok": 0.0, "error": 0.0, "timeout": 0.0}
        self.agree = {"true": 0.0, "false": 0.0}
        self.latency = {"primary": QuantileSketch(), "candidate": QuantileSketch()}
        self.errors: dict[tuple[str, str], float] = {}
        self.cpu_s = 0.0


class Shadow:
    """Mirrors a sample of the primary model's calls to ``candidate`` and compares answers.

    ::

        shadow = monitor.shadow(model_v2.predict, name="v2", sample_rate=0.1)

        @shadow                     # outermost, so the primary's answer is what it sees
        @monitor.track
        def predict(x): ...

    ``candidate`` is a sync or async function taking the primary's arguments; the
    primary it decorates is a sync or async function returning its answer (not a
    generator). ``sample_rate``: the share of calls mirrored, 0 to 1.
    ``compare(primary, candidate)``: truthy when the answers agree (default ``==``,
    element-wise for numpy arrays); only calls both sides answered are compared.
    ``queue_size``: the most mirrored calls waiting or running; more are dropped and
    counted. ``workers``: threads running the candidate. ``timeout_s``, ``max_stuck``:
    see the module's hang policy. ``record``: a JSON-lines file to append every mirrored
    call to, for ``inferwatch shadow report``. ``rng`` (a seeded ``random.Random``) and
    ``clock`` (record timestamps) are for tests. Register it in a registry
    (``monitor.shadow`` does) to export the series; call :meth:`close` when done.
    """

    def __init__(
        self,
        candidate: Callable[..., Any],
        *,
        model: str,
        version: str = "",
        name: str | None = None,
        sample_rate: float = 0.1,
        compare: Compare | None = None,
        queue_size: int = 1000,
        workers: int = 1,
        timeout_s: float = 5.0,
        max_stuck: int = 4,
        record: str | os.PathLike[str] | None = None,
        registry: Registry | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not callable(candidate):
            raise ConfigError(
                f"shadow candidate must be callable, got {candidate!r}",
                field="candidate",
                value=candidate,
            )
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | float):
            raise ConfigError(
                f"sample_rate must be a number from 0 to 1, got {sample_rate!r}",
                field="sample_rate",
                value=sample_rate,
            )
        if not 0.0 <= sample_rate <= 1.0:
            raise ConfigError(
                f"sample_rate must be from 0 to 1, got {sample_rate!r}",
                field="sample_rate",
                value=sample_rate,
            )
        _positive_int("queue_size", queue_size)
        _positive_int("workers", workers)
        _positive_int("max_stuck", max_stuck)
        check_seconds("timeout_s", timeout_s)
        if compare is not None and not callable(compare):
            raise ConfigError(
                f"compare must be a function (primary, candidate) -> bool, got {compare!r}",
                field="compare",
                value=compare,
            )
        self.candidate = candidate
        self.candidate_name = name or getattr(candidate, "__qualname__", "candidate")
        self.model = model
        self.version = version
        self.sample_rate = float(sample_rate)
        self.timeout_s = float(timeout_s)
        self.max_stuck = max_stuck
        self.queue_size = queue_size
        self.is_async = inspect.iscoroutinefunction(candidate)
        self._compare: Compare = compare or _default_compare
        self._registry = registry
        self._random = (rng or random.Random()).random
        self._clock = clock
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._stats = _Stats()
        # One lock for the counters; the request path takes it once per mirrored call.
        self._lock = threading.Lock()
        self._outstanding = 0
        self._dropped = 0.0
        self._dropped_recorded = 0.0
        self._runners: set[_Runner] = set()
        self._stuck = 0
        self._owed = 0
        self._closed = False
        self._wake = threading.Event()
        self._record: IO[str] | None = None
        self._record_lock = threading.Lock()
        if record is not None:
            path = Path(record)
            try:
                self._record = path.open("a", encoding="utf-8", buffering=1)
            except OSError as exc:
                raise ConfigError(
                    f"cannot open the shadow record file {str(path)!r}: {exc.strerror or exc}",
                    field="record",
                    value=str(path),
                ) from exc
        self.workers = workers
        for _ in range(workers):
            self._start_runner()
        self._watchdog = threading.Thread(
            target=self._watch,
            name=f"inferwatch-shadow-watchdog-{self.candidate_name}",
            daemon=True,
        )
        self._watchdog.start()

    # -- the request path --------------------------------------------------------------

    def mirror(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        result: Any = None,
        error: BaseException | str | None = None,
        latency_s: float = math.nan,
    ) -> None:
        """Maybe mirror one primary call: sample it and queue it without waiting.

        ``result`` is the primary's answer, ``error`` its exception (or error type) when
        it failed, ``latency_s`` how long it took. Never raises and never blocks.
        """
        try:
            if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
                return
            self._enqueue(
                tuple(args),
                dict(kwargs) if kwargs else {},
                result,
                error if error is None or isinstance(error, str) else type(error).__name__,
                latency_s,
            )
        except Exception as exc:
            self._internal_error(exc)

    def _enqueue(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        error: str | None,
        latency_s: float,
    ) -> None:
        with self._lock:
            if self._closed or self._outstanding >= self.queue_size:
                self._dropped += 1.0
                return
            self._outstanding += 1
        self._queue.put(_Job(args, kwargs, result, error, latency_s, self._clock()))

    def __call__(self, fn: F) -> F:
        """Decorate the primary model call (sync or async) to mirror its calls."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
                    return await fn(*args, **kwargs)
                t0 = perf_counter_ns()
                try:
                    out = await fn(*args, **kwargs)
                except Exception as exc:
                    self._mirror_sampled(args, kwargs, None, exc, t0)
                    raise
                self._mirror_sampled(args, kwargs, out, None, t0)
                return out

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
                return fn(*args, **kwargs)
            t0 = perf_counter_ns()
            try:
                out = fn(*args, **kwargs)
            except Exception as exc:
                self._mirror_sampled(args, kwargs, None, exc, t0)
                raise
            self._mirror_sampled(args, kwargs, out, None, t0)
            return out

        return wrapper  # type: ignore[return-value]

    def _mirror_sampled(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        exc: BaseException | None,
        t0: int,
    ) -> None:
        try:
            latency = (perf_counter_ns() - t0) / 1e9
            error = None if exc is None else type(exc).__name__
            self._enqueue(args, kwargs, result, error, latency)
        except Exception as internal:
            self._internal_error(internal)

    # -- the workers -------------------------------------------------------------------

    def _start_runner(self) -> None:
        runner = _Runner(self)
        with self._lock:
            self._runners.add(runner)
        runner.thread.start()

    def _finish(self, runner: _Runner, job: _Job) -> bool:
        """Count a call that returned; False when its runner should exit."""
        with self._lock:
            job.finished = True
            runner.job = None
            if job.abandoned:
                self._stuck -= 1
                if self._owed > 0 and not self._closed:
                    self._owed -= 1  # take up the work of the runner never replaced
                    self._runners.add(runner)
                    return True
                return False
        try:
            self._account(job)
        except Exception as exc:  # a bug here must not stop the runner
            self._internal_error(exc)
        finally:
            with self._lock:
                self._outstanding -= 1
        return True

    def _watch(self) -> None:
        """Abandon candidate calls past their timeout (the watchdog thread)."""
        limit = self.timeout_s * 2 + 0.1 if self.is_async else self.timeout_s
        period = min(self.timeout_s / _CHECKS_PER_TIMEOUT, _MAX_CHECK_S)
        while not self._wake.wait(period):
            try:
                self._abandon_hung(limit)
            except Exception as exc:
                self._internal_error(exc)

    def _abandon_hung(self, limit: float) -> None:
        # An async candidate is cancelled by its runner at timeout_s; the longer limit
        # here only catches one that blocks its event loop.
        now = time.perf_counter()
        hung: list[_Job] = []
        replace = 0
        with self._lock:
            for runner in list(self._runners):
                job = runner.job
                if job is None or job.finished or now - job.started < limit:
                    continue
                job.abandoned = job.timed_out = True
                hung.append(job)
                self._runners.discard(runner)
                self._stuck += 1
                if self._stuck < self.max_stuck and not self._closed:
                    replace += 1
                else:
                    self._owed += 1
        for job in hung:
            try:
                self._account(job)
            finally:
                with self._lock:
                    self._outstanding -= 1
        for _ in range(replace):
            self._start_runner()

    def _account(self, job: _Job) -> None:
        agree: bool | None = None
        if job.timed_out:
            outcome = "timeout"
        elif job.error is not None:
            outcome = "error"
        else:
            outcome = "ok"
            if job.primary_error is None:
                try:
                    agree = bool(self._compare(job.primary_result, job.result))
                except Exception as exc:
                    self._internal_error(exc)
        stats = self._stats
        with self._lock:
            stats.results[outcome] += 1.0
            if agree is not None:
                stats.agree["true" if agree else "false"] += 1.0
            if not math.isnan(job.primary_s):
                stats.latency["primary"].add(job.primary_s)
            if outcome == "ok" or outcome == "error":
                stats.latency["candidate"].add(job.candidate_s)
                stats.cpu_s += job.cpu_s
            for role, err in (("primary", job.primary_error), ("candidate", job.error)):
                if err is not None:
                    stats.errors[(role, err)] = stats.errors.get((role, err), 0.0) + 1.0
            if outcome == "timeout":
                key = ("candidate", "Timeout")
                stats.errors[key] = stats.errors.get(key, 0.0) + 1.0
        if self._record is not None:
            self._write_record(job, outcome, agree)

    def _write_record(self, job: _Job, outcome: str, agree: bool | None) -> None:
        base = {"model": self.model, "version": self.version, "candidate": self.candidate_name}
        lines = []
        with self._lock:
            dropped = self._dropped - self._dropped_recorded
            self._dropped_recorded = self._dropped
        if dropped:
            lines.append({"time": self._clock(), **base, "result": "dropped", "count": dropped})
        primary_s = None if math.isnan(job.primary_s) else job.primary_s
        timed_out = outcome == "timeout"
        lines.append(
            {
                "time": job.time,
                **base,
                "result": outcome,
                "agree": agree,
                "primary_latency_s": primary_s,
                "candidate_latency_s": None if timed_out else job.candidate_s,
                "candidate_cpu_s": None if timed_out else job.cpu_s,
                "primary_error": job.primary_error,
                "candidate_error": "Timeout" if timed_out else job.error,
            }
        )
        try:
            with self._record_lock:
                if self._record is not None:
                    for line in lines:
                        self._record.write(json.dumps(line, separators=(",", ":")) + "\n")
        except Exception as exc:
            self._internal_error(exc)

    def _internal_error(self, exc: BaseException) -> None:
        if self._registry is not None:
            self._registry.internal_error("shadow", exc)
        else:
            log.warning("inferwatch shadow: internal error: %r", exc)

    # -- control -----------------------------------------------------------------------

    def pending(self) -> int:
        """Mirrored calls queued or running (not counting abandoned ones)."""
        with self._lock:
            return self._outstanding

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued call has been handled; True if it was within ``timeout``.

        For tests, benchmarks and scripts; a service never needs to wait.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending() > 0:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop mirroring: later calls are dropped, queued ones are handled (up to
        ``timeout`` seconds), then the workers stop and the record file is closed.
        Abandoned (hung) candidate calls are left to their daemon threads."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
            self._owed = 0
            runners = list(self._runners)
        for _ in runners:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for runner in runners:
            runner.thread.join(max(0.0, deadline - time.monotonic()))
        self._wake.set()
        self._watchdog.join(max(0.0, deadline - time.monotonic()))
        with self._record_lock:
            if self._record is not None:
                self._flush_drops()
                self._record.close()
                self._record = None

    def _flush_drops(self) -> None:
        assert self._record is not None
        with self._lock:
            dropped = self._dropped - self._dropped_recorded
            self._dropped_recorded = self._dropped
        if dropped:
            line = {
                "time": self._clock(),
                "model": self.model,
                "version": self.version,
                "candidate": self.candidate_name,
                "result": "dropped",
                "count": dropped,
            }
            self._record.write(json.dumps(line, separators=(",", ":")) + "\n")

    def __enter__(self) -> Shadow:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------

    def counts(self) -> dict[str, float]:
        """Mirrored calls by result (``ok``, ``error``, ``timeout``, ``dropped``) and
        comparisons (``agree``, ``disagree``), as exported."""
        stats = self._stats
        with self._lock:
            out = dict(stats.results)
            out["agree"] = stats.agree["true"]
            out["disagree"] = stats.agree["false"]
            out["dropped"] = self._dropped
        return out

    def stuck_threads(self) -> int:
        """Abandoned candidate calls still running."""
        with self._lock:
            return self._stuck

    def collect(self) -> list[FamilySnapshot]:
        """The shadow series (the :class:`~inferwatch.collectors.Collector` protocol)."""
        base = (self.model, self.version, self.candidate_name)
        stats = self._stats

        def family(name: str, doc: str, type_: Any, extra: tuple[str, ...] = ()) -> Any:
            return FamilySnapshot(name, doc, type_, (*_BASE_LABELS, *extra))

        requests = family(
            "inferwatch_shadow_requests_total",
            "Calls mirrored to the shadow candidate, by result (ok, error, timeout, dropped).",
            "counter",
            ("result",),
        )
        comparisons = family(
            "inferwatch_shadow_comparisons_total",
            "Mirrored calls where primary and candidate both answered, by agreement.",
            "counter",
            ("agree",),
        )
        latency = family(
            "inferwatch_shadow_latency_seconds",
            "Latency of the primary and the candidate on the same mirrored calls, in seconds.",
            "histogram",
            ("role",),
        )
        errors = family(
            "inferwatch_shadow_errors_total",
            "Failures on mirrored calls, by side (primary, candidate) and error type.",
            "counter",
            ("role", "error_type"),
        )
        cpu = family(
            "inferwatch_shadow_candidate_cpu_seconds_total",
            "CPU time the shadow candidate used on its worker threads, in seconds.",
            "counter",
        )
        cpu.unit = "seconds"
        latency.unit = "seconds"
        with self._lock:
            for result, count in stats.results.items():
                requests.samples[(*base, result)] = count
            for agree, count in stats.agree.items():
                comparisons.samples[(*base, agree)] = count
            for role, sketch in stats.latency.items():
                latency.samples[(*base, role)] = sketch.copy()
            for (role, err), count in stats.errors.items():
                errors.samples[(*base, role, err)] = count
            cpu.samples[base] = stats.cpu_s
            requests.samples[(*base, "dropped")] = self._dropped
        queue_length = family(
            "inferwatch_shadow_queue_length", "Mirrored calls waiting for the candidate.", "gauge"
        )
        queue_length.samples[base] = float(self._queue.qsize())
        stuck = family(
            "inferwatch_shadow_stuck_threads",
            "Candidate calls abandoned after the timeout that are still running.",
            "gauge",
        )
        stuck.samples[base] = float(self.stuck_threads())
        return [requests, comparisons, latency, errors, cpu, queue_length, stuck]

    def __repr__(self) -> str:
        return (
            f"Shadow(candidate={self.candidate_name!r}, model={self.model!r}, "
            f"version={self.version!r}, sample_rate={self.sample_rate})"
        )


def _positive_int(field_name: str, value: object, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"{field_name} must be an integer >= {minimum}, got {value!r}",
            field=field_name,
            value=value,
        )


# -- reports ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShadowSummary:
    """What one candidate did in a shadow run, as ``inferwatch shadow report`` prints it.

    Latencies are in seconds over the mirrored calls (``None`` without any); the deltas
    are candidate minus primary. ``agreement_ratio`` is over calls both sides answered.
    """

    model: str
    version: str
    candidate: str
    mirrored: int
    ok: int
    errors: int
    timeouts: int
    dropped: int
    comparisons: int
    agreement_ratio: float | None
    primary_error_ratio: float | None
    candidate_error_ratio: float | None
    primary_p50_s: float | None
    primary_p99_s: float | None
    candidate_p50_s: float | None
    candidate_p99_s: float | None
    p50_delta_s: float | None
    p99_delta_s: float | None
    candidate_cpu_s: float
    first: float | None
    last: float | None

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready values."""
        return {name: getattr(self, name) for name in self.__slots__}


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a shadow ``record`` file; a line that is not a JSON object (a
    write cut short by a crash) raises :class:`~inferwatch.ConfigError` with its line."""
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{os.fspath(path)}:{lineno}: not a JSON line ({exc.msg})",
                    field="record",
                    value=line.strip()[:80],
                ) from None
            if not isinstance(record, dict) or "result" not in record:
                raise ConfigError(
                    f"{os.fspath(path)}:{lineno}: not a shadow record (no 'result' field)",
                    field="record",
                    value=line.strip()[:80],
                )
            records.append(record)
    return records


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    # The nearest-rank quantile: the smallest value with at least q of the data at or below.
    index = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[index]


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def summarize(records: Iterable[Mapping[str, Any]]) -> list[ShadowSummary]:
    """Summarise shadow records (see :func:`read_records`) per model, version and
    candidate, sorted by those. Pure: takes the records, returns the summaries."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        key = (
            str(record.get("model", "")),
            str(record.get("version", "")),
            str(record.get("candidate", "")),
        )
        groups.setdefault(key, []).append(record)
    out = []
    for key in sorted(groups):
        out.append(_summarize_group(key, groups[key]))
    return out


def _summarize_group(key: tuple[str, str, str], records: list[Mapping[str, Any]]) -> ShadowSummary:
    counts = {"ok": 0, "error": 0, "timeout": 0, "dropped": 0}
    agree = compared = primary_errors = 0
    primary_lat: list[float] = []
    candidate_lat: list[float] = []
    cpu = 0.0
    times: list[float] = []
    for r in records:
        result = r.get("result")
        if isinstance(r.get("time"), int | float):
            times.append(float(r["time"]))
        if result == "dropped":
            counts["dropped"] += int(r.get("count", 1) or 0)
            continue
        if result not in counts:
            continue
        counts[result] += 1
        if r.get("agree") is not None:
            compared += 1
            agree += 1 if r["agree"] else 0
        if r.get("primary_error"):
            primary_errors += 1
        if isinstance(r.get("primary_latency_s"), int | float):
            primary_lat.append(float(r["primary_latency_s"]))
        if isinstance(r.get("candidate_latency_s"), int | float):
            candidate_lat.append(float(r["candidate_latency_s"]))
        if isinstance(r.get("candidate_cpu_s"), int | float):
            cpu += float(r["candidate_cpu_s"])
    handled = counts["ok"] + counts["error"] + counts["timeout"]
    p50, p99 = _quantile(primary_lat, 0.5), _quantile(primary_lat, 0.99)
    c50, c99 = _quantile(candidate_lat, 0.5), _quantile(candidate_lat, 0.99)
    return ShadowSummary(
        model=key[0],
        version=key[1],
        candidate=key[2],
        mirrored=handled + counts["dropped"],
        ok=counts["ok"],
        errors=counts["error"],
        timeouts=counts["timeout"],
        dropped=counts["dropped"],
        comparisons=compared,
        agreement_ratio=agree / compared if compared else None,
        primary_error_ratio=primary_errors / handled if handled else None,
        candidate_error_ratio=(counts["error"] + counts["timeout"]) / handled if handled else None,
        primary_p50_s=p50,
        primary_p99_s=p99,
        candidate_p50_s=c50,
        candidate_p99_s=c99,
        p50_delta_s=_delta(c50, p50),
        p99_delta_s=_delta(c99, p99),
        candidate_cpu_s=cpu,
        first=min(times) if times else None,
        last=max(times) if times else None,
    )
