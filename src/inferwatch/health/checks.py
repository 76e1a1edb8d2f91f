"""Liveness and readiness of one model service, with a canary inference.

::

    readiness = monitor.readiness(
        canary=predict,                      # the model call, sync or async
        samples=[known_row],                 # each sample is passed to canary(sample)
        validator=lambda out: out[0] == 3,   # True, or raise with the reason
        latency_budget_s=0.5,
        requires_gpu=True,
    )
    monitor.set_model_loaded(True)           # or model_loaded=lambda: model is not None

:class:`Readiness` answers ``/readyz``. It runs, in order:

- ``model_loaded``: the flag set by :meth:`Readiness.set_model_loaded` or the
  ``model_loaded`` callable; unknown (never set) counts as loaded;
- ``gpu`` (only with ``requires_gpu=True``): NVML reports at least one GPU, read through
  :class:`~inferwatch.collectors.GPUCollector` (so ``FakeNVML`` stands in for tests);
- ``canary`` (only with a ``canary``): the canary runs on every sample, each output passes
  the validator, and the whole run ends within ``latency_budget_s``. It is skipped while
  the model is not loaded or a required GPU is absent.

A result is kept for ``cache_s`` seconds (of the injected ``clock``), so Kubernetes
probing every second does not run the model every second; concurrent requests share one
evaluation. A sync canary runs on a thread of its own (never on the event loop), an
async one as a task on the caller's loop; either is abandoned after ``canary_timeout_s``
of real time, and while an abandoned sync canary is still running no second one starts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from inferwatch._duration import check_seconds
from inferwatch._errors import ConfigError
from inferwatch.sdk.family import FamilySnapshot

__all__ = [
    "CheckResult",
    "Readiness",
    "ReadinessReport",
    "liveness_body",
]

CheckStatus = Literal["ok", "fail", "skip"]
Validator = Callable[[Any], object]
ModelLoaded = bool | Callable[[], bool] | None

#: Canary timeout when neither ``canary_timeout_s`` nor a latency budget is given.
DEFAULT_CANARY_TIMEOUT_S = 5.0
_MV = ("model", "version")
_NO_SAMPLES = object()


def liveness_body() -> dict[str, str]:
    """The ``/healthz`` body: answering at all is the proof of life."""
    return {"status": "ok"}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one readiness check: ``status`` is ``ok``, ``fail`` or ``skip``."""

    name: str
    status: CheckStatus
    reason: str = ""
    duration_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        out["duration_seconds"] = round(self.duration_seconds, 6)
        return out


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """One evaluation of readiness: every check, and when it was computed (clock time)."""

    checks: tuple[CheckResult, ...]
    computed_at: float

    @property
    def ready(self) -> bool:
        """True when no check failed (skipped checks do not count)."""
        return all(c.status != "fail" for c in self.checks)

    @property
    def http_status(self) -> int:
        """200 when ready, 503 when not."""
        return 200 if self.ready else 503

    def check(self, name: str) -> CheckResult | None:
        """The result of the check called ``name``, if it ran."""
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """The ``/readyz`` body: ``{"status", "checks": [...], "cached_at"}``."""
        return {
            "status": "ok" if self.ready else "fail",
            "checks": [c.to_json() for c in self.checks],
            "cached_at": self.computed_at,
        }


@dataclass(slots=True)
class _CanaryRun:
    """One canary run in progress or done; ``future`` yields ``(ok, reason, seconds)``."""

    future: concurrent.futures.Future[tuple[bool, str, float]]
    started_at: float  # clock time
    deadline: float  # time.monotonic(): timeouts are real time
    task: asyncio.Task[None] | None = None
    abandoned: bool = False


class Readiness:
    """Readiness checks of one model version, cached, with metrics; see the module doc.

    Prefer :meth:`inferwatch.Monitor.readiness`, which configures the monitor's own one
    (registered in its registry and served by ``monitor.instrument(app)``); standalone,
    ``Readiness(model=..., version=...).configure(...)``. ``canary`` is called as
    ``canary(sample)`` for each of ``samples`` (or as ``canary()`` once when ``samples``
    is None); ``validator(output)`` returns a truthy value to accept, or falsy or raises
    to reject (the exception's message becomes the reason). ``latency_budget_s`` bounds
    the whole canary run; ``canary_timeout_s`` (default: twice the budget, at least 5 s)
    is when it is given up. ``clock`` measures durations and the cache (``time.time`` by
    default; ``FakeClock`` in tests); the canary timeout is always real time.
    """

    def __init__(
        self, *, model: str = "", version: str = "", clock: Callable[[], float] = time.time
    ) -> None:
        self.model = model
        self.version = version
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded: bool | None = None
        self._loaded_fn: Callable[[], bool] | None = None
        self.canary: Callable[..., Any] | None = None
        self.samples: tuple[Any, ...] | None = None
        self.validator: Validator | None = None
        self.latency_budget_s: float | None = None
        self.canary_timeout_s = DEFAULT_CANARY_TIMEOUT_S
        self.requires_gpu = False
        self.cache_s = 10.0
        self._gpu: Any = None
        self._is_async = False
        self._cached: ReadinessReport | None = None
        self._pending: concurrent.futures.Future[ReadinessReport] | None = None
        self._pending_generation = 0
        self._canary_run: _CanaryRun | None = None
        self._last_canary: tuple[bool, float] | None = None
        self._counts: dict[tuple[str, str], float] = {}
        # Bumped by set_model_loaded/configure: an evaluation that began before is
        # answered but not cached.
        self._generation = 0

    def configure(
        self,
        *,
        canary: Callable[..., Any] | None = None,
        samples: Sequence[Any] | None = None,
        validator: Validator | None = None,
        latency_budget_s: float | None = None,
        canary_timeout_s: float | None = None,
        requires_gpu: bool = False,
        cache_s: float = 10.0,
        model_loaded: ModelLoaded = None,
        nvml: Any | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Readiness:
        """Set the checks (replacing earlier ones) and drop the cached result; returns self.

        ``model_loaded=None`` keeps what :meth:`set_model_loaded` said; ``clock=None``
        keeps the clock. Raises :class:`ConfigError` naming a bad argument.
        """
        if canary is not None and not callable(canary):
            raise ConfigError(
                f"canary must be callable, got {canary!r}", field="canary", value=canary
            )
        if validator is not None and not callable(validator):
            raise ConfigError(
                f"validator must be callable, got {validator!r}", field="validator", value=validator
            )
        if canary is None and (samples is not None or validator is not None):
            name = "samples" if samples is not None else "validator"
            raise ConfigError(f"{name} needs a canary to run on", field=name, value=None)
        if samples is not None and (isinstance(samples, str | bytes) or not len(samples)):
            raise ConfigError(
                f"samples must be a non-empty sequence of inputs, got {samples!r}",
                field="samples",
                value=samples,
            )
        _positive("latency_budget_s", latency_budget_s, allow_none=True)
        _positive("canary_timeout_s", canary_timeout_s, allow_none=True)
        _positive("cache_s", cache_s, allow_zero=True)
        if not isinstance(requires_gpu, bool):
            raise ConfigError(
                f"requires_gpu must be True or False, got {requires_gpu!r}",
                field="requires_gpu",
                value=requires_gpu,
            )
        if not (model_loaded is None or isinstance(model_loaded, bool) or callable(model_loaded)):
            raise ConfigError(
                f"model_loaded must be a bool or a callable returning one, got {model_loaded!r}",
                field="model_loaded",
                value=model_loaded,
            )
        if canary_timeout_s is None:
            budget = latency_budget_s or 0.0
            canary_timeout_s = max(DEFAULT_CANARY_TIMEOUT_S, 2 * budget)
        gpu: Any = None
        if requires_gpu:
            from inferwatch.collectors.gpu import GPUCollector

            # Every evaluation may retry nvmlInit: evaluations are paced by the cache.
            gpu = GPUCollector(nvml=nvml, clock=clock or self._clock, retry_interval=0.0)
        with self._lock:
            if clock is not None:
                self._clock = clock
            self.canary = canary
            self.samples = tuple(samples) if samples is not None else None
            self.validator = validator
            self.latency_budget_s = latency_budget_s
            self.canary_timeout_s = float(canary_timeout_s)
            self.requires_gpu = requires_gpu
            self.cache_s = float(cache_s)
            if isinstance(model_loaded, bool):
                self._loaded, self._loaded_fn = model_loaded, None
            elif model_loaded is not None:
                self._loaded, self._loaded_fn = None, model_loaded
            self._gpu = gpu
            self._is_async = canary is not None and _is_async_callable(canary)
            self._cached = None
            self._generation += 1
        return self

    # -- model loaded ------------------------------------------------------------------

    def set_model_loaded(self, loaded: bool) -> None:
        """Say whether the model is loaded; the next ``/readyz`` re-evaluates at once."""
        if not isinstance(loaded, bool):
            raise ConfigError(
                f"set_model_loaded() takes True or False, got {loaded!r}",
                field="loaded",
                value=loaded,
            )
        with self._lock:
            self._loaded = loaded
            self._loaded_fn = None
            self._cached = None
            self._generation += 1

    def model_loaded(self) -> bool | None:
        """Whether the model is loaded now: None when nobody said (counts as loaded)."""
        if self._loaded_fn is not None:
            return bool(self._loaded_fn())
        return self._loaded

    # -- evaluation ----------------------------------------------------------------------

    def check(self) -> ReadinessReport:
        """The readiness report, from the cache or evaluated now (blocks up to the canary
        timeout). For WSGI servers and scripts; ASGI apps use :meth:`check_async`."""
        fut, owner = self._claim()
        if not owner:
            return fut.result()
        try:
            report = self._finish(self._evaluate_sync())
        except BaseException as exc:
            self._release(fut, exc)
            raise
        self._release(fut, report)
        return report

    async def check_async(self) -> ReadinessReport:
        """Like :meth:`check`, without blocking the event loop."""
        fut, owner = self._claim()
        if not owner:
            # Shielded: a caller that goes away must not cancel the shared evaluation.
            return await asyncio.shield(asyncio.wrap_future(fut))
        try:
            report = self._finish(await self._evaluate_async())
        except BaseException as exc:
            self._release(fut, exc)
            raise
        self._release(fut, report)
        return report

    def _claim(self) -> tuple[concurrent.futures.Future[ReadinessReport], bool]:
        """The shared evaluation to wait for, and whether this caller must run it."""
        with self._lock:
            cached = self._cached
            if cached is not None and self._clock() - cached.computed_at < self.cache_s:
                done: concurrent.futures.Future[ReadinessReport] = concurrent.futures.Future()
                done.set_result(cached)
                return done, False
            if self._pending is not None:
                return self._pending, False
            self._pending = concurrent.futures.Future()
            self._pending_generation = self._generation
            return self._pending, True

    def _release(
        self,
        fut: concurrent.futures.Future[ReadinessReport],
        outcome: ReadinessReport | BaseException,
    ) -> None:
        with self._lock:
            self._pending = None
            current = self._pending_generation == self._generation
            if isinstance(outcome, ReadinessReport) and current:
                self._cached = outcome
        if fut.done():
            return
        if isinstance(outcome, ReadinessReport):
            fut.set_result(outcome)
        else:
            fut.set_exception(outcome)

    def _finish(self, checks: list[CheckResult]) -> ReadinessReport:
        report = ReadinessReport(tuple(checks), self._clock())
        with self._lock:
            for c in checks:
                key = (c.name, c.status)
                self._counts[key] = self._counts.get(key, 0.0) + 1.0
        return report

    def _evaluate_sync(self) -> list[CheckResult]:
        checks, blocked = self._quick_checks()
        if self.canary is not None:
            checks.append(self._skipped(blocked) if blocked else self._canary_sync())
        return checks

    async def _evaluate_async(self) -> list[CheckResult]:
        loop = asyncio.get_running_loop()
        # NVML and a user's model_loaded callable may block: keep them off the loop.
        checks, blocked = await loop.run_in_executor(None, self._quick_checks)
        if self.canary is not None:
            checks.append(self._skipped(blocked) if blocked else await self._canary_async())
        return checks

    def _skipped(self, blocked: str) -> CheckResult:
        return CheckResult("canary", "skip", f"not run: {blocked}")

    def _quick_checks(self) -> tuple[list[CheckResult], str]:
        """``model_loaded`` and ``gpu``, and why the canary must not run ("" if it may)."""
        checks = [self._check_loaded()]
        blocked = "" if checks[0].status == "ok" else "model not loaded"
        if self.requires_gpu:
            gpu = self._check_gpu()
            checks.append(gpu)
            if gpu.status == "fail" and not blocked:
                blocked = "no GPU"
        return checks, blocked

    def _check_loaded(self) -> CheckResult:
        t0 = self._clock()
        try:
            loaded = self.model_loaded()
        except Exception as exc:
            return CheckResult(
                "model_loaded",
                "fail",
                f"model_loaded callable raised {_describe(exc)}",
                self._since(t0),
            )
        if loaded is None:
            return CheckResult(
                "model_loaded",
                "ok",
                "assumed loaded: set_model_loaded() was never called",
                self._since(t0),
            )
        if not loaded:
            return CheckResult("model_loaded", "fail", "model is not loaded", self._since(t0))
        return CheckResult("model_loaded", "ok", "", self._since(t0))

    def _check_gpu(self) -> CheckResult:
        t0 = self._clock()
        count = 0.0
        for fam in self._gpu.collect():
            if fam.name == "gpu_count":
                count = float(fam.samples.get((), 0.0))
        if count < 1:
            return CheckResult(
                "gpu", "fail", "the model requires a GPU, but NVML reports none", self._since(t0)
            )
        return CheckResult("gpu", "ok", f"{count:g} GPU(s) visible", self._since(t0))

    def _since(self, t0: float) -> float:
        return max(0.0, self._clock() - t0)

    # -- the canary ----------------------------------------------------------------------

    def _inputs(self) -> Iterable[Any]:
        return self.samples if self.samples is not None else (_NO_SAMPLES,)

    def _call(self, sample: Any) -> Any:
        assert self.canary is not None
        return self.canary() if sample is _NO_SAMPLES else self.canary(sample)

    def _judge(self, outputs: list[Any], seconds: float) -> tuple[bool, str, float]:
        """Run the validator on every output and compare the time with the budget."""
        for index, output in enumerate(outputs):
            where = f"sample {index}: " if self.samples is not None else ""
            if self.validator is None:
                continue
            try:
                accepted = self.validator(output)
            except Exception as exc:
                message = str(exc) or type(exc).__name__
                return False, f"{where}validator rejected the output: {message}", seconds
            if not accepted:
                return False, f"{where}validator rejected the output {_short(output)}", seconds
        budget = self.latency_budget_s
        if budget is not None and seconds > budget:
            return (
                False,
                f"canary took {seconds:.3f} s, over the latency budget of {budget:g} s",
                seconds,
            )
        return True, "", seconds

    def _run_sync_canary(self) -> tuple[bool, str, float]:
        t0 = self._clock()
        outputs: list[Any] = []
        for index, sample in enumerate(self._inputs()):
            try:
                output = self._call(sample)
                if inspect.isawaitable(output):
                    output = asyncio.run(_await(output))
            except Exception as exc:
                where = f" on sample {index}" if self.samples is not None else ""
                return False, f"canary raised {_describe(exc)}{where}", self._since(t0)
            outputs.append(output)
        return self._judge(outputs, self._since(t0))

    async def _run_async_canary(self) -> tuple[bool, str, float]:
        t0 = self._clock()
        outputs: list[Any] = []
        for index, sample in enumerate(self._inputs()):
            try:
                output = self._call(sample)
                if inspect.isawaitable(output):
                    output = await output
            except Exception as exc:
                where = f" on sample {index}" if self.samples is not None else ""
                return False, f"canary raised {_describe(exc)}{where}", self._since(t0)
            outputs.append(output)
        return self._judge(outputs, self._since(t0))

    def _busy(self) -> CheckResult | None:
        """A failure when an abandoned canary is still running (none starts beside it)."""
        run = self._canary_run
        if run is None or run.future.done():
            return None
        return CheckResult(
            "canary",
            "fail",
            f"canary timed out after {self.canary_timeout_s:g} s and is still running "
            f"(started {self._since(run.started_at):.3f} s ago); not starting another",
        )

    def _start_thread(self) -> _CanaryRun:
        """Run the canary on a thread of its own (an async canary in its own loop)."""
        fut: concurrent.futures.Future[tuple[bool, str, float]] = concurrent.futures.Future()
        run = _CanaryRun(fut, self._clock(), time.monotonic() + self.canary_timeout_s)

        def body() -> None:
            try:
                if self._is_async:
                    outcome = asyncio.run(self._bounded_async())
                else:
                    outcome = self._run_sync_canary()
            except BaseException as exc:  # a bug here must still settle the future
                outcome = (False, f"canary could not run: {_describe(exc)}", 0.0)
            fut.set_result(outcome)

        threading.Thread(target=body, name="inferwatch-canary", daemon=True).start()
        return run

    async def _bounded_async(self) -> tuple[bool, str, float]:
        try:
            return await asyncio.wait_for(self._run_async_canary(), self.canary_timeout_s)
        except TimeoutError:
            return False, self._timeout_reason(), self.canary_timeout_s

    def _timeout_reason(self) -> str:
        return f"canary timed out after {self.canary_timeout_s:g} s"

    def _settle(self, run: _CanaryRun, outcome: tuple[bool, str, float] | None) -> CheckResult:
        if outcome is None:
            run.abandoned = True
            ok, reason, seconds = False, self._timeout_reason(), self.canary_timeout_s
        else:
            ok, reason, seconds = outcome
        self._last_canary = (ok, seconds)
        return CheckResult("canary", "ok" if ok else "fail", reason, seconds)

    def _canary_sync(self) -> CheckResult:
        busy = self._busy()
        if busy is not None:
            return busy
        run = self._canary_run = self._start_thread()
        try:
            outcome = run.future.result(timeout=max(0.0, run.deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            return self._settle(run, None)
        return self._settle(run, outcome)

    async def _canary_async(self) -> CheckResult:
        busy = self._busy()
        if busy is not None:
            return busy
        if self._is_async:
            fut: concurrent.futures.Future[tuple[bool, str, float]] = concurrent.futures.Future()
            run = _CanaryRun(fut, self._clock(), time.monotonic() + self.canary_timeout_s)
            run.task = asyncio.get_running_loop().create_task(self._task_body(fut))
        else:
            run = self._start_thread()
        self._canary_run = run
        remaining = max(0.0, run.deadline - time.monotonic())
        try:
            # Shielded, or the timeout would cancel the run's future under its thread.
            waiting = asyncio.shield(asyncio.wrap_future(run.future))
            outcome = await asyncio.wait_for(waiting, remaining)
        except TimeoutError:
            if run.task is not None:
                run.task.cancel()
            return self._settle(run, None)
        return self._settle(run, outcome)

    async def _task_body(self, fut: concurrent.futures.Future[tuple[bool, str, float]]) -> None:
        try:
            outcome = await self._run_async_canary()
        except asyncio.CancelledError:
            fut.set_result((False, self._timeout_reason(), self.canary_timeout_s))
            raise
        except BaseException as exc:
            outcome = (False, f"canary could not run: {_describe(exc)}", 0.0)
        if not fut.done():
            fut.set_result(outcome)

    # -- metrics -----------------------------------------------------------------------

    def collect(self) -> list[FamilySnapshot]:
        """``inferwatch_model_loaded``, ``inferwatch_ready``, the canary's success and
        duration, and ``inferwatch_readiness_checks_total``; never raises."""
        key = (self.model, self.version)
        out: list[FamilySnapshot] = []
        try:
            loaded = self.model_loaded()
        except Exception:
            loaded = False
        if loaded is not None:
            out.append(_gauge("inferwatch_model_loaded", _LOADED_HELP, key, float(loaded), "min"))
        with self._lock:
            cached = self._cached
            counts = dict(self._counts)
        last = self._last_canary
        if cached is not None:
            out.append(_gauge("inferwatch_ready", _READY_HELP, key, float(cached.ready), "min"))
        if last is not None:
            out.append(
                _gauge("inferwatch_canary_success", _CANARY_OK_HELP, key, float(last[0]), "min")
            )
            duration = _gauge(
                "inferwatch_canary_duration_seconds", _CANARY_TIME_HELP, key, last[1], "max"
            )
            duration.unit = "seconds"
            out.append(duration)
        total = FamilySnapshot(
            "inferwatch_readiness_checks_total",
            "Readiness checks run (cached answers not counted), by check and result.",
            "counter",
            (*_MV, "check", "result"),
        )
        for (check, result), value in counts.items():
            total.samples[(*key, check, result)] = value
        if total.samples:
            out.append(total)
        return out


_LOADED_HELP = "1 when the model is loaded, 0 when not (set_model_loaded or model_loaded=)."
_READY_HELP = "1 when the last readiness evaluation passed, 0 when it failed."
_CANARY_OK_HELP = "1 when the last canary inference passed its validator within budget, else 0."
_CANARY_TIME_HELP = "Duration of the last canary run over all its samples, in seconds."


def _gauge(
    name: str, doc: str, key: tuple[str, str], value: float, merge: Literal["min", "max"]
) -> FamilySnapshot:
    fam = FamilySnapshot(name, doc, "gauge", _MV, merge=merge)
    fam.samples[key] = value
    return fam


def _positive(
    name: str, value: float | None, *, allow_none: bool = False, allow_zero: bool = False
) -> None:
    if value is None and allow_none:
        return
    check_seconds(name, value, allow_zero=allow_zero)


def _is_async_callable(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


async def _await(value: Awaitable[Any]) -> Any:
    return await value


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
