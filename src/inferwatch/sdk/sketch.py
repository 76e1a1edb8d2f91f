"""A mergeable relative-error quantile sketch with Prometheus-histogram export.

Values are counted in logarithmic buckets: bucket ``k`` holds values in
``(2**((k-1)/70), 2**(k/70)]``, so every bucket is 0.995% wide relative to its lower
edge: any value inside a bucket is within 1% of any other value in it.

- A quantile read from the sketch is the bucket's relative midpoint, within 0.5% of
  the true sample quantile, for any distribution and any number of samples.
- Merging two sketches adds bucket counts: exact, associative and commutative, so
  replicas and time windows merge without losing the bound.
- Exported as a classic Prometheus histogram, only occupied buckets (and the empty
  bucket just below each run of occupied ones, so that ``histogram_quantile``
  interpolates inside the right 0.995%-wide range) become ``le`` series. Once a bucket
  is occupied it stays exported, so the bucket set only grows and ``rate()`` sees
  consistent series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

BUCKETS_PER_DOUBLING = 70
GAMMA = math.pow(2.0, 1.0 / BUCKETS_PER_DOUBLING)
#: Values at or below this (including zero and negatives) are counted in the zero bucket.
MIN_VALUE = 1e-9
#: Values above this are clamped into the top bucket (about 31 years in seconds).
MAX_VALUE = 1e9
_MIN_KEY = math.ceil(math.log2(MIN_VALUE) * BUCKETS_PER_DOUBLING)
_MAX_KEY = math.ceil(math.log2(MAX_VALUE) * BUCKETS_PER_DOUBLING)
# key(ns * 1e-9) = ceil(log2(ns) * 64 + _NS_OFFSET): folds integer nanoseconds directly.
_NS_OFFSET = math.log2(1e-9) * BUCKETS_PER_DOUBLING


_NUMPY_MIN = 256
_np_module: Any = None


def _numpy() -> Any:
    """numpy if it can be imported (it is optional), else None; imported once."""
    global _np_module
    if _np_module is None:
        try:
            import numpy

            _np_module = numpy
        except ImportError:
            _np_module = False
    return _np_module or None


def bucket_key(value: float) -> int:
    """The index of the bucket that holds ``value`` (only for ``value > MIN_VALUE``)."""
    if value >= MAX_VALUE:
        return _MAX_KEY
    key: int = math.ceil(math.log2(value) * BUCKETS_PER_DOUBLING)
    return key


def bucket_upper(key: int) -> float:
    """The inclusive upper bound of bucket ``key``."""
    return math.pow(2.0, key / BUCKETS_PER_DOUBLING)


class QuantileSketch:
    """Counts of values in log buckets, with count, sum, min and max.

    Use :meth:`add` for single values, :meth:`add_ns` to fold a batch of integer
    nanosecond durations (the SDK's hot-path buffers), :meth:`merge` to combine, and
    :meth:`quantile` or :meth:`cumulative_buckets` to read.
    """

    __slots__ = ("buckets", "count", "max", "min", "sum", "zero_count")

    def __init__(self) -> None:
        self.buckets: dict[int, float] = {}
        self.zero_count = 0.0
        self.count = 0.0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float, weight: float = 1.0) -> None:
        """Count ``value`` (``weight`` times). NaN is ignored."""
        if value != value:  # NaN
            return
        if value <= MIN_VALUE:
            self.zero_count += weight
        else:
            k = bucket_key(value)
            self.buckets[k] = self.buckets.get(k, 0.0) + weight
        self.count += weight
        self.sum += value * weight
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def add_ns(self, durations_ns: Iterable[int]) -> None:
        """Count a batch of durations given in integer nanoseconds, as seconds.

        Large lists are folded with numpy when it is installed (about 10x faster);
        the result is the same either way.
        """
        if isinstance(durations_ns, list) and len(durations_ns) >= _NUMPY_MIN:
            np = _numpy()
            if np is not None:
                self._add_ns_numpy(np, durations_ns)
                return
        buckets = self.buckets
        log2 = math.log2
        ceil = math.ceil
        off = _NS_OFFSET
        n = 0
        total = 0
        lo = math.inf
        hi = -math.inf
        zero = 0
        for ns in durations_ns:
            n += 1
            total += ns
            if ns < lo:
                lo = ns
            if ns > hi:
                hi = ns
            if ns <= 1:
                zero += 1
                continue
            k = ceil(log2(ns) * BUCKETS_PER_DOUBLING + off)
            if k > _MAX_KEY:
                k = _MAX_KEY
            buckets[k] = buckets.get(k, 0.0) + 1.0
        if n == 0:
            return
        self.zero_count += zero
        self.count += n
        self.sum += total * 1e-9
        self.min = min(self.min, lo * 1e-9)
        self.max = max(self.max, hi * 1e-9)

    def _add_ns_numpy(self, np: Any, durations_ns: list[int]) -> None:
        arr = np.asarray(durations_ns, dtype=np.int64)
        positive = arr[arr > 1]
        zero = arr.size - positive.size
        if positive.size:
            keys = np.ceil(np.log2(positive) * BUCKETS_PER_DOUBLING + _NS_OFFSET).astype(np.int64)
            np.minimum(keys, _MAX_KEY, out=keys)
            low = int(keys.min())
            counts = np.bincount(keys - low)
            buckets = self.buckets
            for offset in np.flatnonzero(counts).tolist():
                k = low + offset
                buckets[k] = buckets.get(k, 0.0) + float(counts[offset])
        self.zero_count += zero
        self.count += arr.size
        self.sum += int(arr.sum()) * 1e-9
        self.min = min(self.min, int(arr.min()) * 1e-9)
        self.max = max(self.max, int(arr.max()) * 1e-9)

    def merge(self, other: QuantileSketch) -> None:
        """Add every count of ``other`` into this sketch."""
        buckets = self.buckets
        for k, c in other.buckets.items():
            buckets[k] = buckets.get(k, 0.0) + c
        self.zero_count += other.zero_count
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def copy(self) -> QuantileSketch:
        new = QuantileSketch()
        new.merge(self)
        return new

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 <= q <= 1) within 0.5% relative error; NaN when empty."""
        if self.count <= 0 or not 0.0 <= q <= 1.0:
            return math.nan
        rank = q * (self.count - 1)
        if rank < self.zero_count:
            return max(self.min, 0.0) if self.min <= MIN_VALUE else 0.0
        cum = self.zero_count
        for k in sorted(self.buckets):
            cum += self.buckets[k]
            if cum > rank:
                estimate = 2.0 * bucket_upper(k) / (GAMMA + 1.0)
                return min(max(estimate, self.min), self.max)
        return float(self.max)

    def cumulative_buckets(self) -> list[tuple[float, float]]:
        """``(le, cumulative count)`` pairs for a Prometheus histogram, ending in +Inf.

        Holds every occupied bucket and the bucket just below each run of occupied
        ones, so that interpolation between neighbouring ``le`` bounds stays inside
        one 0.995%-wide bucket: ``histogram_quantile`` stays within 1% of the true sample.
        """
        out: list[tuple[float, float]] = []
        cum = self.zero_count
        if self.zero_count:
            out.append((MIN_VALUE, cum))
        prev: int | None = None
        for k in sorted(self.buckets):
            if prev != k - 1 and k - 1 > _MIN_KEY:
                out.append((bucket_upper(k - 1), cum))
            cum += self.buckets[k]
            out.append((bucket_upper(k), cum))
            prev = k
        out.append((math.inf, self.count))
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for shipping between worker processes."""
        return {
            "b": {str(k): c for k, c in self.buckets.items()},
            "z": self.zero_count,
            "n": self.count,
            "s": self.sum,
            "lo": self.min if self.count else None,
            "hi": self.max if self.count else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantileSketch:
        sk = cls()
        sk.buckets = {int(k): float(c) for k, c in data["b"].items()}
        sk.zero_count = float(data["z"])
        sk.count = float(data["n"])
        sk.sum = float(data["s"])
        sk.min = math.inf if data["lo"] is None else float(data["lo"])
        sk.max = -math.inf if data["hi"] is None else float(data["hi"])
        return sk

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return iter(sorted(self.buckets.items()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return (
            self.buckets == other.buckets
            and self.zero_count == other.zero_count
            and self.count == other.count
            and math.isclose(self.sum, other.sum, rel_tol=1e-9, abs_tol=1e-12)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"QuantileSketch(count={self.count:g}, buckets={len(self.buckets)})"
