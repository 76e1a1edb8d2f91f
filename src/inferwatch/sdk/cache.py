"""A result cache for deterministic predictions: ``@monitor.track(cache=Cache(...))``.

Built on cachetools (``TTLCache`` with a ``ttl``, ``LRUCache`` without), behind one lock,
because cachetools' caches are not thread-safe. The key is made from the call's
arguments (see :func:`default_key`); a call whose arguments give no key (a DataFrame,
an object that hashes by nothing stable) goes to the model uncached and is counted as
``result="uncacheable"``, never as an error.

A hit is still an inference: it appears in ``inferwatch_inferences_total`` with outcome
``success`` and the hit's own (short) latency in ``inferwatch_inference_duration_seconds``,
so throughput and latency show what callers saw; ``inferwatch_cache_requests_total``
tells hits apart. Exceptions are never cached. A hit returns the same object that was
cached: callers must not mutate it.

Series (labels ``model``, ``version``, ``cache``: the decorated function's name unless
``name=`` is given; caches of the same name add up):

- ``inferwatch_cache_requests_total{result="hit|miss|uncacheable"}``
- ``inferwatch_cache_evictions_total{reason="size|expired"}``
- ``inferwatch_cache_size`` (entries) and ``inferwatch_cache_max_size``
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Final

from cachetools import LRUCache, TTLCache

from inferwatch._errors import ConfigError
from inferwatch.sdk.family import FamilySnapshot

__all__ = ["UNCACHEABLE", "Cache", "CacheCollector", "CacheStats", "as_cache", "default_key"]

KeyFunction = Callable[..., Hashable]


class _Uncacheable:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCACHEABLE"


#: Returned by a key function when a call cannot be cached; the call goes to the model.
UNCACHEABLE: Final[_Uncacheable] = _Uncacheable()
_MAX_DEPTH = 16
_SCALARS = frozenset({int, float, str, bool, bytes, type(None), complex})


def _freeze(value: object, depth: int = 0) -> Hashable:
    """A hashable stand-in for ``value`` that is equal exactly when the values are."""
    kind = type(value)
    if kind in (int, float, str, bool, bytes, type(None), complex):
        return (kind.__name__, value)  # 1 and 1.0 and True stay apart
    if depth > _MAX_DEPTH:
        raise TypeError("argument nested too deeply to make a cache key")
    if kind in (list, tuple):
        return (kind.__name__, tuple(_freeze(v, depth + 1) for v in value))  # type: ignore[attr-defined]
    if kind is dict:
        items = value.items()  # type: ignore[attr-defined]
        return ("dict", tuple((_freeze(k, depth + 1), _freeze(v, depth + 1)) for k, v in items))
    if kind in (set, frozenset):
        return (kind.__name__, frozenset(_freeze(v, depth + 1) for v in value))  # type: ignore[attr-defined]
    if kind.__module__ == "numpy":
        return _numpy_key(value)
    hash(value)  # TypeError for unhashable objects
    return (kind, value)


def _numpy_key(value: Any) -> Hashable:
    """An array (or numpy scalar) as dtype, shape and a 128-bit digest of its bytes."""
    if not hasattr(value, "dtype") or value.dtype.hasobject:
        raise TypeError("numpy arrays of Python objects cannot be cache keys")
    if not hasattr(value, "shape") or not hasattr(value, "tobytes"):
        raise TypeError(f"unsupported numpy value {type(value).__name__}")
    data = memoryview(value) if value.flags.c_contiguous else value.tobytes()
    digest = hashlib.blake2b(data, digest_size=16).digest()
    return ("ndarray", value.dtype.str, value.shape, digest)


def default_key(*args: Any, **kwargs: Any) -> Hashable:
    """The cache key of a call: its arguments made hashable, or :data:`UNCACHEABLE`.

    Scalars, strings and bytes as they are; lists, tuples, dicts and sets element by
    element; numpy arrays by dtype, shape and a BLAKE2 digest of their bytes; any other
    hashable object by its hash and equality. Anything else makes the call uncacheable.
    """
    if not kwargs and len(args) == 1 and type(args[0]) in _SCALARS:
        return (type(args[0]), args[0])  # the common single-scalar call, made quick
    try:
        key = tuple(_freeze(a) for a in args)
        if kwargs:
            return (key, tuple((k, _freeze(v)) for k, v in sorted(kwargs.items())))
        return key
    except TypeError:
        return UNCACHEABLE


class _Counted(LRUCache[Hashable, Any]):
    """An LRU cache counting evictions for size."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.evicted_size = 0
        self.evicted_expired = 0

    def popitem(self) -> tuple[Hashable, Any]:
        item = super().popitem()
        self.evicted_size += 1
        return item


class _CountedTTL(TTLCache[Hashable, Any]):
    """An LRU cache with a time to live, counting evictions for size and for age."""

    def __init__(self, maxsize: int, ttl: float, timer: Callable[[], float]) -> None:
        super().__init__(maxsize, ttl, timer=timer)
        self.evicted_size = 0
        self.evicted_expired = 0

    def popitem(self) -> tuple[Hashable, Any]:
        item = super().popitem()
        self.evicted_size += 1
        return item

    def expire(self, time: float | None = None) -> list[tuple[Hashable, Any]]:
        expired: list[tuple[Hashable, Any]] = super().expire(time)
        self.evicted_expired += len(expired)
        return expired


class CacheStats:
    """Counts of one cache: ``hits``, ``misses``, ``uncacheable``, evictions and size."""

    __slots__ = ("evicted_expired", "evicted_size", "hits", "misses", "size", "uncacheable")

    def __init__(self) -> None:
        self.hits = self.misses = self.uncacheable = 0
        self.evicted_size = self.evicted_expired = self.size = 0


class Cache:
    """An LRU cache, optionally with a time to live, for a model's deterministic results.

    ::

        @monitor.track(cache=Cache(maxsize=4096, ttl=300))
        def predict(features): ...

    ``maxsize``: entries kept (least recently used evicted first). ``ttl``: seconds an
    entry lives (``None``: until evicted). ``key``: a function of the call's arguments
    returning a hashable key, or :data:`UNCACHEABLE` to skip the cache for that call
    (default: :func:`default_key`). ``name``: the ``cache`` label (default: the
    decorated function's name). ``timer``: the clock for ``ttl`` (a
    :class:`~inferwatch.testing.FakeClock` in tests). Thread-safe. One ``Cache`` serves one
    decorated function.
    """

    def __init__(
        self,
        maxsize: int = 1024,
        ttl: float | None = None,
        *,
        key: KeyFunction | None = None,
        name: str | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigError(
                f"Cache(maxsize=...) must be an int >= 1, got {maxsize!r}",
                field="maxsize",
                value=maxsize,
            )
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0
        ):
            raise ConfigError(
                f"Cache(ttl=...) must be a number of seconds > 0 or None, got {ttl!r}",
                field="ttl",
                value=ttl,
            )
        if key is not None and not callable(key):
            raise ConfigError(
                f"Cache(key=...) must be a function of the call's arguments, got {key!r}",
                field="key",
                value=key,
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(
                f"Cache(name=...) must be a non-empty string, got {name!r}",
                field="name",
                value=name,
            )
        self.maxsize = maxsize
        self.ttl = ttl
        self.key: KeyFunction = key if key is not None else default_key
        self.name = name
        self._lock = threading.Lock()
        self._data: _Counted | _CountedTTL = (
            _Counted(maxsize) if ttl is None else _CountedTTL(maxsize, float(ttl), timer)
        )
        self.hits = 0
        self.misses = 0
        self.uncacheable = 0
        self._labels: tuple[str, str, str] | None = None

    def bind(self, model: str, version: str, function_name: str) -> None:
        """Attach the cache to one decorated function (done by ``@monitor.track``)."""
        if self._labels is not None:
            raise ConfigError(
                f"this Cache already serves {self._labels[2]!r} of model {self._labels[0]!r}; "
                "give each decorated function its own Cache",
                field="cache",
            )
        self._labels = (model, version, self.name or function_name)

    def key_of(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Hashable:
        """The key of a call, or :data:`UNCACHEABLE` (counted) when there is none."""
        try:
            key = self.key(*args, **kwargs)
            if key is not UNCACHEABLE:
                hash(key)
                return key
        except Exception:
            pass
        with self._lock:
            self.uncacheable += 1
        return UNCACHEABLE

    def lookup(self, key: Hashable) -> tuple[bool, Any]:
        """``(True, value)`` on a hit, ``(False, None)`` on a miss (counted)."""
        with self._lock:
            try:
                value = self._data[key]
            except KeyError:
                self.misses += 1
                return False, None
            self.hits += 1
            return True, value

    def store(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value

    def clear(self) -> None:
        """Forget every entry (counts are kept)."""
        with self._lock:
            self._data.clear()

    def stats(self) -> CacheStats:
        """The counts now; expired entries are removed first, so ``size`` is exact."""
        stats = CacheStats()
        with self._lock:
            data = self._data
            if isinstance(data, _CountedTTL):
                data.expire()
            stats.hits, stats.misses, stats.uncacheable = self.hits, self.misses, self.uncacheable
            stats.evicted_size = data.evicted_size
            stats.evicted_expired = data.evicted_expired
            stats.size = len(data)
        return stats

    def __len__(self) -> int:
        return self.stats().size

    def __repr__(self) -> str:
        return f"Cache(maxsize={self.maxsize!r}, ttl={self.ttl!r}, name={self.name!r})"


def as_cache(cache: Cache | bool | None) -> Cache | None:
    """The cache that ``track(cache=...)`` means: ``True`` is ``Cache()``."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return Cache()
    if not isinstance(cache, Cache):
        raise ConfigError(
            f"track(cache=...) must be a Cache, True or None, got {cache!r}",
            field="cache",
            value=cache,
        )
    return cache


class CacheCollector:
    """The series of the caches of one monitor (registered on the first cached function)."""

    def __init__(self) -> None:
        self.caches: list[Cache] = []

    def collect(self) -> Iterable[FamilySnapshot]:
        labels = ("model", "version", "cache")
        requests = FamilySnapshot(
            "inferwatch_cache_requests_total",
            "Calls to a cached model function, by result (hit, miss, uncacheable).",
            "counter",
            (*labels, "result"),
        )
        evictions = FamilySnapshot(
            "inferwatch_cache_evictions_total",
            "Entries removed from a result cache, by reason (size, expired).",
            "counter",
            (*labels, "reason"),
        )
        size = FamilySnapshot(
            "inferwatch_cache_size", "Entries in a result cache.", "gauge", labels
        )
        max_size = FamilySnapshot(
            "inferwatch_cache_max_size", "Capacity of a result cache, in entries.", "gauge", labels
        )
        for cache in list(self.caches):
            lv = cache._labels
            if lv is None:
                continue
            stats = cache.stats()
            values = (
                (requests, (*lv, "hit"), stats.hits),
                (requests, (*lv, "miss"), stats.misses),
                (requests, (*lv, "uncacheable"), stats.uncacheable),
                (evictions, (*lv, "size"), stats.evicted_size),
                (evictions, (*lv, "expired"), stats.evicted_expired),
                (size, lv, stats.size),
                (max_size, lv, cache.maxsize),
            )
            for family, key, value in values:  # caches of the same name add up
                previous = family.samples.get(key, 0.0)
                assert isinstance(previous, float)
                family.samples[key] = previous + value
        return [f for f in (requests, evictions, size, max_size) if f.samples]
