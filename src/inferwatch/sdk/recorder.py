"""Hot-path recorders: append-only buffers folded into aggregates at collection time.

Recording an inference appends one integer (or a small tuple) to a Python list: the
append is atomic under the GIL (and under the per-object lock of free-threaded
builds), needs no lock of ours, and allocates almost nothing. At collection time,
:meth:`InferenceRecorder.fold` takes the first ``n`` entries and deletes exactly them
(``del buf[:n]``), so appends racing with the fold land after ``n`` and are kept for
the next fold. Buffers are folded early when they grow past :data:`FOLD_THRESHOLD` so
memory stays bounded when nobody scrapes.
"""

from __future__ import annotations

import itertools
import threading
from typing import TypeVar

from inferwatch.sdk.family import BucketCounts, FamilySnapshot, LabelValues
from inferwatch.sdk.sketch import QuantileSketch

#: Entries in a buffer after which the recording thread folds it itself.
FOLD_THRESHOLD = 1 << 16
#: Distinct error types kept per recorder; further types are counted as ``other``.
MAX_ERROR_TYPES = 64
BATCH_BUCKETS: tuple[float, ...] = tuple(float(2**i) for i in range(13))

T = TypeVar("T")


def drain(buf: list[T]) -> list[T]:
    """Remove and return the entries present now, keeping any appended meanwhile."""
    n = len(buf)
    items = buf[:n]
    del buf[:n]
    return items


def started_count(counter: itertools.count[int]) -> int:
    """The next value an ``itertools.count()`` would return, without advancing it."""
    return int(repr(counter)[6:-1])


class InferenceRecorder:
    """Buffers and aggregates of one model version's inferences.

    The SDK writes the buffers and calls ``next(started)`` on entry; readers call
    :meth:`fold` then read the aggregates. Buffers hold plain ints where possible
    (ints are not tracked by the garbage collector, tuples are):

    - ``ok``: durations (ns) of successful calls without a batch size;
    - ``ok_batched`` and ``batches``: durations and batch sizes of successful batched
      calls, appended separately (the two aggregates are independent, so racing
      threads interleaving their appends change nothing);
    - ``errors``: ``(ns, exception type name)``; ``rejected``: durations;
    - ``queue`` and ``compute``: the two parts of explicit-form inferences.
    """

    __slots__ = (
        "_fold_lock",
        "_started_base",
        "batch_sizes",
        "batches",
        "compute",
        "compute_latency",
        "errors",
        "items",
        "labels",
        "latency",
        "ok",
        "ok_batched",
        "outcomes",
        "queue",
        "queue_latency",
        "rejected",
        "started",
    )

    def __init__(self, model: str, version: str) -> None:
        self.labels: LabelValues = (model, version)
        self.started = itertools.count()
        self._started_base = 0
        self.ok: list[int] = []
        self.ok_batched: list[int] = []
        self.batches: list[int] = []
        self.errors: list[tuple[int, str]] = []
        self.rejected: list[int] = []
        self.queue: list[int] = []
        self.compute: list[int] = []
        self._fold_lock = threading.Lock()
        self.latency = QuantileSketch()
        self.queue_latency = QuantileSketch()
        self.compute_latency = QuantileSketch()
        self.batch_sizes = BucketCounts(BATCH_BUCKETS, [0.0] * (len(BATCH_BUCKETS) + 1))
        self.outcomes: dict[tuple[str, str], float] = {}
        self.items = 0.0

    def fold(self) -> None:
        """Move everything buffered into the aggregates."""
        with self._fold_lock:
            ok = drain(self.ok)
            batched = drain(self.ok_batched)
            batches = drain(self.batches)
            errors = drain(self.errors)
            rejected = drain(self.rejected)
            queue = drain(self.queue)
            compute = drain(self.compute)
            outcomes = self.outcomes
            if ok or batched:
                self.latency.add_ns(ok)
                self.latency.add_ns(batched)
                n_ok = len(ok) + len(batched)
                outcomes["success", ""] = outcomes.get(("success", ""), 0.0) + n_ok
                self.items += len(ok)
            for size in batches:
                self.items += size
                self._count_batch(size)
            if errors:
                self.latency.add_ns(ns for ns, _ in errors)
                for _, etype in errors:
                    key = ("error", etype)
                    if key not in outcomes and len(outcomes) >= MAX_ERROR_TYPES:
                        key = ("error", "other")
                    outcomes[key] = outcomes.get(key, 0.0) + 1.0
            if rejected:
                outcomes["rejected", ""] = outcomes.get(("rejected", ""), 0.0) + len(rejected)
            if queue:
                self.queue_latency.add_ns(queue)
            if compute:
                self.compute_latency.add_ns(compute)

    def _count_batch(self, size: int) -> None:
        bounds = self.batch_sizes.bounds
        i = 0
        while i < len(bounds) and size > bounds[i]:
            i += 1
        self.batch_sizes.counts[i] += 1.0
        self.batch_sizes.sum += size

    def maybe_fold(self) -> None:
        """Fold when a buffer has grown past the threshold (called from the hot path)."""
        buffers = (self.ok, self.ok_batched, self.errors, self.rejected, self.queue)
        if any(len(buf) >= FOLD_THRESHOLD for buf in buffers):
            self.fold()

    def in_flight(self) -> float:
        """Inferences entered and not yet finished (call after :meth:`fold`)."""
        with self._fold_lock:
            finished = sum(self.outcomes.values())
            finished += len(self.ok) + len(self.ok_batched) + len(self.errors) + len(self.rejected)
        started = started_count(self.started) - self._started_base
        return float(max(started - finished, 0))

    def reset(self) -> None:
        """Forget everything (used in a forked child, whose parent keeps its own counts)."""
        self._fold_lock = threading.Lock()
        for buf in (self.ok, self.ok_batched, self.batches, self.rejected, self.queue):
            del buf[:]
        del self.compute[:]
        del self.errors[:]
        self._started_base = started_count(self.started)
        self.latency = QuantileSketch()
        self.queue_latency = QuantileSketch()
        self.compute_latency = QuantileSketch()
        self.batch_sizes = BucketCounts(BATCH_BUCKETS, [0.0] * (len(BATCH_BUCKETS) + 1))
        self.outcomes = {}
        self.items = 0.0


#: HTTP buffers hold ``duration_ns * STATUS_BASE + status`` as one int.
STATUS_BASE = 1000


class HTTPRecorder:
    """Buffers and aggregates of one ``(method, route template)`` of an HTTP app.

    ``done`` holds one int per answered request: ``duration_ns * STATUS_BASE + status``.
    """

    __slots__ = ("_fold_lock", "done", "labels", "latency", "statuses")

    def __init__(self, method: str, route: str) -> None:
        self.labels: LabelValues = (method, route)
        self.done: list[int] = []
        self._fold_lock = threading.Lock()
        self.latency = QuantileSketch()
        self.statuses: dict[str, float] = {}

    def record(self, duration_ns: int, status: int) -> None:
        """Buffer one answered request (folding early past the threshold)."""
        done = self.done
        done.append(duration_ns * STATUS_BASE + status)
        if len(done) >= FOLD_THRESHOLD:
            self.fold()

    def fold(self) -> None:
        with self._fold_lock:
            done = drain(self.done)
            if not done:
                return
            self.latency.add_ns([v // STATUS_BASE for v in done])
            counts: dict[int, int] = {}
            for v in done:
                status = v % STATUS_BASE
                counts[status] = counts.get(status, 0) + 1
            statuses = self.statuses
            for status, n in counts.items():
                key = str(status)
                statuses[key] = statuses.get(key, 0.0) + n

    def reset(self) -> None:
        self._fold_lock = threading.Lock()
        del self.done[:]
        self.latency = QuantileSketch()
        self.statuses = {}


INFERENCE_LABELS = ("model", "version")
HTTP_LABELS = ("method", "route")


def inference_families(recorders: list[InferenceRecorder]) -> list[FamilySnapshot]:
    """The SDK's inference metric families for the given recorders (folded first)."""
    total = FamilySnapshot(
        "inferwatch_inferences_total",
        "Inferences finished, by outcome (success, error with its exception type, rejected).",
        "counter",
        (*INFERENCE_LABELS, "outcome", "error_type"),
    )
    latency = FamilySnapshot(
        "inferwatch_inference_duration_seconds",
        "Wall time of an inference from entry to return (success and error).",
        "histogram",
        INFERENCE_LABELS,
    )
    queue = FamilySnapshot(
        "inferwatch_inference_queue_duration_seconds",
        "Time an inference waited before compute started (explicit form, mark_queued_done).",
        "histogram",
        INFERENCE_LABELS,
    )
    compute = FamilySnapshot(
        "inferwatch_inference_compute_duration_seconds",
        "Time from mark_queued_done to the end of an inference.",
        "histogram",
        INFERENCE_LABELS,
    )
    in_flight = FamilySnapshot(
        "inferwatch_inferences_in_flight",
        "Inferences started and not yet finished.",
        "gauge",
        INFERENCE_LABELS,
    )
    batch = FamilySnapshot(
        "inferwatch_inference_batch_size",
        "Items per inference call, where a batch size is given.",
        "histogram",
        INFERENCE_LABELS,
    )
    items = FamilySnapshot(
        "inferwatch_inference_items_total",
        "Items processed by successful inferences (1 per call without a batch size).",
        "counter",
        INFERENCE_LABELS,
    )
    for rec in recorders:
        rec.fold()
        lv = rec.labels
        for (outcome, etype), count in rec.outcomes.items():
            total.samples[(*lv, outcome, etype)] = count
        if not rec.outcomes:
            total.samples[(*lv, "success", "")] = 0.0
        latency.samples[lv] = rec.latency.copy()
        if rec.queue_latency.count:
            queue.samples[lv] = rec.queue_latency.copy()
        if rec.compute_latency.count:
            compute.samples[lv] = rec.compute_latency.copy()
        in_flight.samples[lv] = rec.in_flight()
        if rec.batch_sizes.count:
            batch.samples[lv] = rec.batch_sizes.copy()
        items.samples[lv] = rec.items
    return [f for f in (total, latency, queue, compute, in_flight, batch, items) if f.samples]


def http_families(recorders: list[HTTPRecorder]) -> list[FamilySnapshot]:
    """The per-route HTTP metric families for the given recorders (folded first)."""
    total = FamilySnapshot(
        "inferwatch_http_requests_total",
        "HTTP requests answered, by method, route template and status code.",
        "counter",
        (*HTTP_LABELS, "status"),
    )
    latency = FamilySnapshot(
        "inferwatch_http_request_duration_seconds",
        "Time from receiving an HTTP request to the end of its response body.",
        "histogram",
        HTTP_LABELS,
    )
    for rec in recorders:
        rec.fold()
        if not rec.statuses:
            continue
        for status, count in rec.statuses.items():
            total.samples[(*rec.labels, status)] = count
        latency.samples[rec.labels] = rec.latency.copy()
    return [f for f in (total, latency) if f.samples]
