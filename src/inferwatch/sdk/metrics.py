"""User-defined counters, gauges and histograms that live in an inferwatch registry.

They behave like prometheus_client's (``labels(...)``, ``inc``, ``set``, ``observe``)
and are aggregated across worker processes the same way as the SDK's own metrics.
Create them through :meth:`inferwatch.Monitor.counter` and friends, or on a
:class:`~inferwatch.sdk.registry.Registry`.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from inferwatch._errors import MetricError
from inferwatch.sdk.family import (
    BucketCounts,
    FamilySnapshot,
    LabelValues,
    MergeMode,
    MetricType,
)
from inferwatch.sdk.sketch import QuantileSketch

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = {"le", "quantile", "worker"}


def validate_name(name: str, labelnames: Sequence[str]) -> tuple[str, ...]:
    """Check a metric name and label names; return the label names as a tuple."""
    if not _NAME_RE.match(name):
        raise MetricError(
            f"invalid metric name {name!r}: use letters, digits, '_' and ':', "
            "not starting with a digit",
            metric=name,
        )
    names = tuple(labelnames)
    for label in names:
        if not _LABEL_RE.match(label) or label.startswith("__"):
            raise MetricError(f"metric {name!r}: invalid label name {label!r}", metric=name)
        if label in _RESERVED_LABELS:
            raise MetricError(
                f"metric {name!r}: label name {label!r} is reserved by inferwatch", metric=name
            )
    if len(set(names)) != len(names):
        raise MetricError(f"metric {name!r}: duplicate label names {names}", metric=name)
    return names


C = TypeVar("C")


class _Metric(Generic[C]):
    """Shared label handling: children per label-value tuple."""

    type: MetricType
    merge: MergeMode

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = validate_name(name, labelnames)
        self._children: dict[LabelValues, C] = {}
        self._lock = threading.Lock()

    def _new_child(self) -> C:
        raise NotImplementedError

    def labels(self, *values: object, **kwvalues: object) -> C:
        """The child for these label values (positional, or by label name)."""
        if kwvalues:
            if values:
                raise MetricError(f"{self.name}: give label values by position or by name")
            try:
                values = tuple(kwvalues[n] for n in self.labelnames)
            except KeyError as exc:
                raise MetricError(f"{self.name}: missing label {exc.args[0]!r}") from None
            if len(kwvalues) != len(self.labelnames):
                raise MetricError(f"{self.name}: unknown labels in {sorted(kwvalues)}")
        if len(values) != len(self.labelnames):
            raise MetricError(
                f"{self.name}: expected {len(self.labelnames)} label values "
                f"{self.labelnames}, got {len(values)}",
                metric=self.name,
            )
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, self._new_child())
        return child

    def _default(self) -> C:
        if self.labelnames:
            raise MetricError(f"{self.name} has labels {self.labelnames}: call .labels() first")
        return self.labels()

    def _snapshot(self) -> FamilySnapshot:
        return FamilySnapshot(
            self.name, self.documentation, self.type, self.labelnames, merge=self.merge
        )


class CounterChild:
    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._value = 0.0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (must be >= 0)."""
        if amount < 0:
            raise MetricError("counters can only increase: use a Gauge for values that go down")
        with self._lock:
            self._value += amount

    def get(self) -> float:
        return self._value


class Counter(_Metric[CounterChild]):
    """A monotonically increasing count; the name must end in ``_total``."""

    type: MetricType = "counter"
    merge: MergeMode = "sum"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        if not name.endswith("_total"):
            raise MetricError(f"counter name {name!r} must end in '_total'", metric=name)
        super().__init__(name, documentation, labelnames)

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        self._default().inc(amount)

    def collect(self) -> Iterable[FamilySnapshot]:
        fam = self._snapshot()
        for key, child in list(self._children.items()):
            fam.samples[key] = child.get()
        yield fam


class GaugeChild:
    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._value = 0.0
        self._lock = threading.Lock()

    def set(self, value: float) -> None:
        self._value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value -= amount

    def get(self) -> float:
        return self._value


class Gauge(_Metric[GaugeChild]):
    """A value that goes up and down.

    ``multiprocess_mode`` says how several worker processes combine: ``all`` (one
    series per worker, the default), ``sum``, ``max`` or ``min``.
    """

    type: MetricType = "gauge"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        multiprocess_mode: MergeMode = "all",
    ) -> None:
        if multiprocess_mode not in ("all", "sum", "max", "min", "local"):
            raise MetricError(f"{name}: unknown multiprocess_mode {multiprocess_mode!r}")
        super().__init__(name, documentation, labelnames)
        self.merge = multiprocess_mode

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        self._default().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._default().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._default().dec(amount)

    def collect(self) -> Iterable[FamilySnapshot]:
        fam = self._snapshot()
        for key, child in list(self._children.items()):
            fam.samples[key] = child.get()
        yield fam


class HistogramChild:
    __slots__ = ("_bounds", "_buckets", "_lock", "_sketch")

    def __init__(self, bounds: tuple[float, ...] | None) -> None:
        self._lock = threading.Lock()
        self._bounds = bounds
        self._sketch = QuantileSketch() if bounds is None else None
        self._buckets = None if bounds is None else BucketCounts(bounds, [0.0] * (len(bounds) + 1))

    def observe(self, value: float) -> None:
        """Count one observation."""
        with self._lock:
            if self._sketch is not None:
                self._sketch.add(value)
            elif self._buckets is not None and self._bounds is not None:
                i = bisect.bisect_left(self._bounds, value)
                self._buckets.counts[i] += 1.0
                self._buckets.sum += value

    def snapshot(self) -> QuantileSketch | BucketCounts:
        with self._lock:
            if self._sketch is not None:
                return self._sketch.copy()
            assert self._buckets is not None
            return self._buckets.copy()


class Histogram(_Metric[HistogramChild]):
    """A distribution. Without ``buckets`` it uses the 1%-accurate log sketch
    (exported with fine ``le`` buckets); with ``buckets`` it is a classic histogram."""

    type: MetricType = "histogram"
    merge: MergeMode = "sum"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float] | None = None,
    ) -> None:
        super().__init__(name, documentation, labelnames)
        if buckets is not None:
            bounds = tuple(float(b) for b in buckets if not math.isinf(b))
            if not bounds or list(bounds) != sorted(set(bounds)):
                raise MetricError(f"{name}: buckets must be increasing and distinct", metric=name)
            self._bounds: tuple[float, ...] | None = bounds
        else:
            self._bounds = None

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self._bounds)

    def observe(self, value: float) -> None:
        self._default().observe(value)

    def collect(self) -> Iterable[FamilySnapshot]:
        fam = self._snapshot()
        for key, child in list(self._children.items()):
            fam.samples[key] = child.snapshot()
        yield fam
