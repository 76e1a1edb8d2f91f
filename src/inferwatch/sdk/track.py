"""Timing model calls: the ``@monitor.track`` wrappers and the ``inference()`` context.

Each wrapper does the least work on the call path: ``next()`` on a counter on entry,
two ``perf_counter_ns()`` reads, and one list append on exit. Classification of
failures (error type, :class:`~inferwatch.Rejected`) happens only when the model code
raises. Nothing here raises into the model service: a failure of the batch-size
function or of the recording itself is counted as an internal error.

Structured inference logs (:mod:`inferwatch.sdk.logs`) add one attribute check per
call while no log is configured; a configured one adds one buffered tuple. A result
cache (:mod:`inferwatch.sdk.cache`) is chosen at decoration time, so uncached functions
pay nothing for it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Generator
from time import perf_counter_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any

from inferwatch._errors import ConfigError, Rejected
from inferwatch.sdk.cache import UNCACHEABLE
from inferwatch.sdk.logs import sink_for

if TYPE_CHECKING:
    from inferwatch.sdk.cache import Cache
    from inferwatch.sdk.recorder import InferenceRecorder
    from inferwatch.sdk.registry import Registry

BatchSize = Callable[[Any], int] | int | None
#: Whether any inference log is configured (set by :mod:`inferwatch.sdk.logs`): the one
#: check the hot path makes for logs. A module global is the cheapest read there is.
LOGGING = False
_FOLD_MASK = 0x3FFF


def log_inference(
    rec: InferenceRecorder, outcome: str, error_type: str, ns: int, size: int | None
) -> None:
    """Buffer the structured log record of one inference, when its model logs."""
    sink = sink_for(rec)
    if sink is not None:
        sink.emit(outcome, error_type, ns, size)


def record_exception(
    rec: InferenceRecorder, ns: int, exc: BaseException, size: int | None = None
) -> None:
    """Record a call that ended with ``exc`` as rejected or as an error of its type."""
    if isinstance(exc, Rejected):
        rec.rejected.append(ns)
        outcome, etype = "rejected", ""
    elif isinstance(exc, GeneratorExit):
        rec.ok.append(ns)  # the consumer stopped iterating: not a failure of the model
        outcome, etype = "success", ""
    else:
        etype = type(exc).__name__
        rec.errors.append((ns, etype))
        outcome = "error"
    if LOGGING:
        log_inference(rec, outcome, etype, ns, size)


def _batch_getter(fn: Callable[..., Any], batch_size: BatchSize) -> Callable[..., int] | None:
    """A function of the call's arguments giving the batch size, or None."""
    if batch_size is None:
        return None
    if isinstance(batch_size, int):
        fixed = batch_size
        return lambda args, kwargs: fixed
    measure = batch_size
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    index = 1 if params and params[0] in ("self", "cls") else 0
    first_name = params[index] if len(params) > index else None

    def getter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
        if len(args) > index:
            return int(measure(args[index]))
        return int(measure(kwargs[first_name]))  # type: ignore[index]

    return getter


def wrap(
    fn: Callable[..., Any],
    rec: InferenceRecorder,
    registry: Registry,
    batch_size: BatchSize,
    cache: Cache | None = None,
) -> Callable[..., Any]:
    """Wrap a sync, async, generator or async-generator function to record its calls.

    With a ``cache``, a sync or async function's results are cached (see
    :class:`~inferwatch.sdk.cache.Cache`); generators cannot be cached.
    """
    get_batch = _batch_getter(fn, batch_size)
    started = rec.started
    ok_append = rec.ok.append
    batched_append = rec.ok_batched.append
    batch_append = rec.batches.append

    def batch_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
        assert get_batch is not None
        try:
            return get_batch(args, kwargs)
        except Exception as exc:
            registry.internal_error("batch_size", exc)
            return None

    def finish_ok(ns: int, size: int | None) -> None:
        if size is None:
            ok_append(ns)
        else:
            batched_append(ns)
            batch_append(size)

    if cache is not None:
        if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            raise ConfigError(
                f"cannot cache the results of generator function {fn.__qualname__!r}: "
                "drop cache= or cache a function that returns its result",
                field="cache",
                value=cache,
            )
        return _wrap_cached(fn, rec, registry, cache, batch_of if get_batch else None, finish_ok)

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            size = batch_of(args, kwargs) if get_batch else None
            if not next(started) & _FOLD_MASK:
                rec.maybe_fold()
            t0 = perf_counter_ns()
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except BaseException as exc:
                record_exception(rec, perf_counter_ns() - t0, exc, size)
                raise
            ns = perf_counter_ns() - t0
            finish_ok(ns, size)
            if LOGGING:
                log_inference(rec, "success", "", ns, size)

        return agen_wrapper

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            size = batch_of(args, kwargs) if get_batch else None
            if not next(started) & _FOLD_MASK:
                rec.maybe_fold()
            t0 = perf_counter_ns()
            try:
                result: Any = yield from fn(*args, **kwargs)
            except BaseException as exc:
                record_exception(rec, perf_counter_ns() - t0, exc, size)
                raise
            ns = perf_counter_ns() - t0
            finish_ok(ns, size)
            if LOGGING:
                log_inference(rec, "success", "", ns, size)
            return result

        return gen_wrapper

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            size = batch_of(args, kwargs) if get_batch else None
            if not next(started) & _FOLD_MASK:
                rec.maybe_fold()
            t0 = perf_counter_ns()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                record_exception(rec, perf_counter_ns() - t0, exc, size)
                raise
            ns = perf_counter_ns() - t0
            finish_ok(ns, size)
            if LOGGING:
                log_inference(rec, "success", "", ns, size)
            return result

        return async_wrapper

    if get_batch is not None:

        @functools.wraps(fn)
        def batched_wrapper(*args: Any, **kwargs: Any) -> Any:
            size = batch_of(args, kwargs)
            if not next(started) & _FOLD_MASK:
                rec.maybe_fold()
            t0 = perf_counter_ns()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                record_exception(rec, perf_counter_ns() - t0, exc, size)
                raise
            ns = perf_counter_ns() - t0
            finish_ok(ns, size)
            if LOGGING:
                log_inference(rec, "success", "", ns, size)
            return result

        return batched_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not next(started) & _FOLD_MASK:
            rec.maybe_fold()
        t0 = perf_counter_ns()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            record_exception(rec, perf_counter_ns() - t0, exc)
            raise
        ns = perf_counter_ns() - t0
        ok_append(ns)
        if LOGGING:
            log_inference(rec, "success", "", ns, None)
        return result

    return wrapper


def _wrap_cached(
    fn: Callable[..., Any],
    rec: InferenceRecorder,
    registry: Registry,
    cache: Cache,
    batch_of: Callable[[tuple[Any, ...], dict[str, Any]], int | None] | None,
    finish_ok: Callable[[int, int | None], None],
) -> Callable[..., Any]:
    """The wrapper of a cached function: a hit is recorded as a fast successful call."""
    started = rec.started
    key_of = cache.key_of

    def lookup(key: Any) -> tuple[bool, Any]:
        try:
            return cache.lookup(key)
        except Exception as exc:  # a key whose __eq__ raises, ...
            registry.internal_error("cache", exc)
            return False, None

    def store(key: Any, value: Any) -> None:
        try:
            cache.store(key, value)
        except Exception as exc:
            registry.internal_error("cache", exc)

    def done(t0: int, size: int | None) -> None:
        ns = perf_counter_ns() - t0
        finish_ok(ns, size)
        if LOGGING:
            log_inference(rec, "success", "", ns, size)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def cached_async_wrapper(*args: Any, **kwargs: Any) -> Any:
            size = batch_of(args, kwargs) if batch_of else None
            if not next(started) & _FOLD_MASK:
                rec.maybe_fold()
            t0 = perf_counter_ns()
            key = key_of(args, kwargs)
            if key is not UNCACHEABLE:
                hit, value = lookup(key)
                if hit:
                    done(t0, size)
                    return value
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                record_exception(rec, perf_counter_ns() - t0, exc, size)
                raise
            if key is not UNCACHEABLE:
                store(key, result)
            done(t0, size)
            return result

        return cached_async_wrapper

    @functools.wraps(fn)
    def cached_wrapper(*args: Any, **kwargs: Any) -> Any:
        size = batch_of(args, kwargs) if batch_of else None
        if not next(started) & _FOLD_MASK:
            rec.maybe_fold()
        t0 = perf_counter_ns()
        key = key_of(args, kwargs)
        if key is not UNCACHEABLE:
            hit, value = lookup(key)
            if hit:
                done(t0, size)
                return value
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            record_exception(rec, perf_counter_ns() - t0, exc, size)
            raise
        if key is not UNCACHEABLE:
            store(key, result)
        done(t0, size)
        return result

    return cached_wrapper


class Inference:
    """One inference, timed by ``with monitor.inference() as inf:`` (or ``async with``).

    Call :meth:`mark_queued_done` when the request leaves its queue and compute starts,
    to split queue time from compute time; :meth:`reject` to record the request as
    shed without raising; :meth:`set_batch_size` when the size is known only inside.
    An exception leaving the block is recorded (as ``rejected`` for
    :class:`~inferwatch.Rejected`, else as ``error``) and propagates unchanged.
    """

    __slots__ = ("_queued_done", "_rec", "_rejected", "_t0", "batch_size")

    def __init__(self, rec: InferenceRecorder, batch_size: int | None = None) -> None:
        self._rec = rec
        self.batch_size = batch_size
        self._t0 = 0
        self._queued_done = 0
        self._rejected = False

    def mark_queued_done(self) -> None:
        """Mark the end of queueing: the time so far is queue time, the rest compute."""
        self._queued_done = perf_counter_ns()

    def set_batch_size(self, size: int) -> None:
        self.batch_size = size

    def reject(self) -> None:
        """Record this request as ``rejected`` (load shed) when the block ends."""
        self._rejected = True

    def __enter__(self) -> Inference:
        if not next(self._rec.started) & _FOLD_MASK:
            self._rec.maybe_fold()
        self._t0 = perf_counter_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end = perf_counter_ns()
        rec = self._rec
        ns = end - self._t0
        if self._queued_done:
            rec.queue.append(self._queued_done - self._t0)
            rec.compute.append(end - self._queued_done)
        if exc is not None:
            record_exception(rec, ns, exc, self.batch_size)
            return
        if self._rejected:
            rec.rejected.append(ns)
        elif self.batch_size is None:
            rec.ok.append(ns)
        else:
            rec.ok_batched.append(ns)
            rec.batches.append(int(self.batch_size))
        if LOGGING:
            log_inference(rec, "rejected" if self._rejected else "success", "", ns, self.batch_size)

    async def __aenter__(self) -> Inference:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
