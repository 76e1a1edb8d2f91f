"""Model quality from delayed labels: log predictions, join labels, export counters.

::

    tracker = QualityTracker("fraud", "3", log="predictions.db", task="classification",
                             registry=registry)
    tracker.log_prediction(request_id, "fraud", score=0.93)  # hot path: a deque append
    ...
    tracker.feedback(request_id, "legit")                     # minutes or days later
    tracker.import_feedback_csv("labels.csv")                 # or in bulk

:meth:`QualityTracker.log_prediction` appends a tuple to an in-memory buffer and returns
(no lock, no I/O, never raises). A daemon writer thread, started on first use, drains the
buffer into the :mod:`prediction log <inferwatch.analyze.predlog>` in one transaction per
batch. Labels are joined to predictions by request id in the log, so a label may be
given to any replica sharing the log; the process that joins a label counts it, so the
exported counters sum correctly across replicas.

Exported series (labels ``model`` and ``version`` on each), from which PromQL computes
quality over any window (see ``examples/rules/model-quality.yml``):

- ``inferwatch_predictions_logged_total``; ``inferwatch_predictions_dropped_total{reason}``
  (``buffer_full``, ``invalid``, ``duplicate``, ``write_error``, ``closed``);
- without labels: ``inferwatch_prediction_class_total{class}`` (classification) and the
  histogram ``inferwatch_prediction_score`` (confidence: the score, or the largest of
  per-class scores);
- ``inferwatch_labels_total{correct}`` (``true``/``false`` for classification, empty for
  regression) and ``inferwatch_confusion_total{actual,predicted}``;
- regression: ``inferwatch_regression_abs_error_total``,
  ``inferwatch_regression_squared_error_total``,
  ``inferwatch_regression_abs_relative_error_total`` (``|error| / |actual|`` as a ratio;
  rows whose actual is 0 are left out and counted in
  ``inferwatch_regression_zero_actual_total``);
- ``inferwatch_label_delay_seconds`` (histogram: label time minus prediction time);
- ``inferwatch_feedback_unmatched_total{reason}``: ``duplicate`` (the request id already
  had a label; the first label wins, because its counts cannot be taken back),
  ``expired`` (the prediction is older than the retention), ``unknown`` (no prediction
  with that id arrived within ``pending_ttl_s`` of the label: labels that arrive before
  their prediction, as out-of-order pipelines deliver them, wait that long) and
  ``invalid`` (CSV rows that were rejected).

Class names are strings: ``1``, ``1.0`` and ``"1"`` are the same class; at most
``max_classes`` distinct classes are kept per tracker, later ones count as ``__other__``.

The pure functions :func:`classification_metrics` and :func:`regression_metrics` compute
the same figures as scikit-learn (``zero_division=0``) from the counters or from rows.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import csv
import dataclasses
import itertools
import json
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from inferwatch._errors import ConfigError
from inferwatch.analyze.predlog import (
    JoinedLabel,
    LabelRow,
    LabelStatus,
    PredictionLog,
    PredictionRow,
    open_prediction_log,
)
from inferwatch.sdk.family import BucketCounts, FamilySnapshot

if TYPE_CHECKING:
    from inferwatch.sdk.registry import Registry

__all__ = [
    "ClassMetrics",
    "ClassificationMetrics",
    "FeedbackImport",
    "FeedbackOutcome",
    "QualityTracker",
    "RegressionMetrics",
    "RegressionSums",
    "Task",
    "classification_metrics",
    "confusion_matrix",
    "metrics_from_rows",
    "regression_metrics",
]

log = logging.getLogger("inferwatch.quality")

Task = Literal["classification", "regression"]
#: What :meth:`QualityTracker.feedback` did with a label: ``joined`` (counted, here or by
#: the replica that joined it), ``pending`` (no prediction yet; joined when it arrives),
#: ``duplicate`` or ``expired`` (counted as unmatched).
FeedbackOutcome = Literal["joined", "pending", "duplicate", "expired"]

OTHER_CLASS = "__other__"
DEFAULT_SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
DELAY_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0, 259200.0, 604800.0)
_LABELS = ("model", "version")
_BATCH = 5000
_MAX_WRITE_FAILURES = 3
#: How often the writer joins labels that other processes stored (seconds).
_CLAIM_INTERVAL_S = 2.0

# -- values ------------------------------------------------------------------------------


def class_key(value: object, field: str = "label") -> str:
    """The class name of a label or prediction: a string; integral numbers as integers.

    Raises :class:`ConfigError` naming ``field`` for anything that is not a string,
    bool, integer or finite float (numpy scalars included).
    """
    if isinstance(value, str):
        return value
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy scalar
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{field}: expected a class, got {value!r}", field=field, value=value)
        return str(int(value)) if value.is_integer() else repr(value)
    raise ConfigError(
        f"{field}: expected a class (str, int, bool or float), got {type(value).__name__} "
        f"{value!r}",
        field=field,
        value=value,
    )


def number(value: object, field: str = "label") -> float:
    """A finite real number, or :class:`ConfigError` naming ``field``."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
        if math.isfinite(result):
            return result
    raise ConfigError(f"{field}: expected a finite number, got {value!r}", field=field, value=value)


def _request_id(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise ConfigError(
        f"request_id: expected a non-empty string or an integer, got {value!r}",
        field="request_id",
        value=value,
    )


def _confidence(score: object) -> float | None:
    if score is None:
        return None
    if isinstance(score, Mapping):
        score = list(score.values())
    if hasattr(score, "tolist"):
        score = score.tolist()
    if isinstance(score, list | tuple):
        if not score:
            return None
        return max(number(s, "score") for s in score)
    return number(score, "score")


def _json_default(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _timestamp(value: object, field: str) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return number(value, field)


# -- metrics from counts ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """Precision, recall, F1 and support (labelled rows whose actual is this class)."""

    precision: float
    recall: float
    f1: float
    support: float


@dataclass(frozen=True, slots=True)
class ClassificationMetrics:
    """Classification quality; per class and averaged as scikit-learn's
    ``precision_recall_fscore_support`` (``zero_division=0``) computes it."""

    count: float
    accuracy: float
    per_class: dict[str, ClassMetrics]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    micro_precision: float
    micro_recall: float
    micro_f1: float


def confusion_matrix(
    actual: Iterable[object], predicted: Iterable[object]
) -> dict[tuple[str, str], float]:
    """Counts of ``(actual, predicted)`` class pairs (class names as :func:`class_key`)."""
    out: dict[tuple[str, str], float] = {}
    for a, p in zip(actual, predicted, strict=True):
        key = (class_key(a, "actual"), class_key(p, "predicted"))
        out[key] = out.get(key, 0.0) + 1.0
    return out


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def classification_metrics(confusion: Mapping[tuple[str, str], float]) -> ClassificationMetrics:
    """Accuracy, per-class and macro/micro precision, recall and F1 from a confusion
    matrix ``{(actual, predicted): count}``.

    As scikit-learn with ``zero_division=0``: the classes are those that occur as an
    actual or a predicted value (cells with count 0 add none); a ratio whose
    denominator is 0 is 0. Micro averages equal the accuracy (single-label data).
    """
    tp: dict[str, float] = {}
    actual: dict[str, float] = {}
    predicted: dict[str, float] = {}
    total = 0.0
    correct = 0.0
    for (a, p), count in confusion.items():
        if count <= 0:
            continue
        total += count
        actual[a] = actual.get(a, 0.0) + count
        predicted[p] = predicted.get(p, 0.0) + count
        if a == p:
            tp[a] = tp.get(a, 0.0) + count
            correct += count
    per_class: dict[str, ClassMetrics] = {}
    for c in sorted(set(actual) | set(predicted)):
        t, n_act, n_pred = tp.get(c, 0.0), actual.get(c, 0.0), predicted.get(c, 0.0)
        per_class[c] = ClassMetrics(
            precision=_ratio(t, n_pred),
            recall=_ratio(t, n_act),
            f1=_ratio(2 * t, n_act + n_pred),
            support=n_act,
        )
    n = len(per_class)
    accuracy = _ratio(correct, total)
    return ClassificationMetrics(
        count=total,
        accuracy=accuracy,
        per_class=per_class,
        macro_precision=_ratio(sum(m.precision for m in per_class.values()), n),
        macro_recall=_ratio(sum(m.recall for m in per_class.values()), n),
        macro_f1=_ratio(sum(m.f1 for m in per_class.values()), n),
        micro_precision=accuracy,
        micro_recall=accuracy,
        micro_f1=accuracy,
    )


@dataclass(slots=True)
class RegressionSums:
    """The running sums that regression metrics are computed from (what is exported)."""

    count: float = 0.0
    abs_error: float = 0.0
    squared_error: float = 0.0
    abs_relative_error: float = 0.0
    zero_actual: float = 0.0

    def add(self, actual: float, predicted: float) -> None:
        """Count one labelled prediction."""
        error = abs(actual - predicted)
        self.count += 1.0
        self.abs_error += error
        self.squared_error += error * error
        if actual == 0:
            self.zero_actual += 1.0
        else:
            self.abs_relative_error += error / abs(actual)


@dataclass(frozen=True, slots=True)
class RegressionMetrics:
    """MAE and RMSE over ``count`` rows; MAPE (a ratio: 0.05 is 5%) over the
    ``mape_count`` rows whose actual is not 0."""

    count: float
    mae: float
    rmse: float
    mape: float
    mape_count: float


def regression_metrics(sums: RegressionSums) -> RegressionMetrics:
    """MAE, RMSE and MAPE from the sums, as scikit-learn's ``mean_absolute_error``,
    ``root_mean_squared_error`` and ``mean_absolute_percentage_error`` compute them,
    except that rows with an actual of 0 are left out of MAPE (scikit-learn divides by
    machine epsilon there, which swamps the mean). With no rows, every figure is 0."""
    mape_count = sums.count - sums.zero_actual
    return RegressionMetrics(
        count=sums.count,
        mae=_ratio(sums.abs_error, sums.count),
        rmse=math.sqrt(_ratio(sums.squared_error, sums.count)),
        mape=_ratio(sums.abs_relative_error, mape_count),
        mape_count=mape_count,
    )


def metrics_from_rows(
    rows: Iterable[JoinedLabel], task: Task
) -> ClassificationMetrics | RegressionMetrics:
    """Quality over joined rows (for example ``log.labelled(model, version, since=...)``,
    which covers every replica sharing the log)."""
    if task == "classification":
        confusion: dict[tuple[str, str], float] = {}
        for row in rows:
            key = (class_key(row.label), class_key(row.prediction, "prediction"))
            confusion[key] = confusion.get(key, 0.0) + 1.0
        return classification_metrics(confusion)
    sums = RegressionSums()
    for row in rows:
        sums.add(number(row.label), number(row.prediction, "prediction"))
    return regression_metrics(sums)


# -- CSV import result --------------------------------------------------------------------


@dataclass(slots=True)
class FeedbackImport:
    """What :meth:`QualityTracker.import_feedback_csv` did: counts per outcome, and one
    message per rejected row (``labels.csv:17: label: expected a number, got 'abc'``)."""

    file: str
    rows: int = 0
    joined: int = 0
    pending: int = 0
    duplicate: int = 0
    expired: int = 0
    invalid: int = 0
    #: Labels stored for the service to join (``join=False``).
    stored: int = 0
    errors: list[str] = field(default_factory=list)


# -- the tracker --------------------------------------------------------------------------

_TRACKERS: weakref.WeakSet[QualityTracker] = weakref.WeakSet()
_Item = tuple[Any, Any, Any, Any, float]


class QualityTracker:
    """Prediction logging, label joining and quality counters for one model version.

    ``log``: a file path (SQLite), a ``postgresql://`` URL, or a
    :class:`~inferwatch.analyze.predlog.PredictionLog` (not closed by :meth:`close`).
    ``task``: ``classification`` or ``regression``. ``classes``: the known classes,
    exported at 0 from the start (so PromQL sees every confusion cell). ``retention_s``:
    predictions older than this are purged and their labels refused as ``expired``
    (default 7 days). ``pending_ttl_s``: how long a label that arrived before its
    prediction waits for it (default 1 hour). ``registry``: where internal errors are
    counted and where the tracker exposes its series (None: call :meth:`collect`
    yourself). ``clock``: wall-clock seconds since the epoch (``time.time``).
    ``max_buffer``: predictions held in memory before the writer stores them; more are
    dropped and counted. ``flush_interval_s``, ``purge_interval_s``: how often the writer
    thread writes and applies the retention. ``background=False``: no writer thread;
    predictions are written when :meth:`flush` (or :meth:`feedback`) is called, for batch
    jobs and tests.
    """

    def __init__(
        self,
        model: str,
        version: str = "",
        *,
        log: str | os.PathLike[str] | PredictionLog = "inferwatch-predictions.db",
        task: Task = "classification",
        classes: Sequence[object] = (),
        retention_s: float = 7 * 86400.0,
        pending_ttl_s: float = 3600.0,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.time,
        max_buffer: int = 100_000,
        max_classes: int = 100,
        flush_interval_s: float = 0.5,
        purge_interval_s: float = 300.0,
        score_buckets: Sequence[float] = DEFAULT_SCORE_BUCKETS,
        background: bool = True,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model: expected a non-empty string, got {model!r}", field="model")
        if not isinstance(version, str):
            raise ConfigError(f"version: expected a string, got {version!r}", field="version")
        if task not in ("classification", "regression"):
            raise ConfigError(
                f"task: expected 'classification' or 'regression', got {task!r}",
                field="task",
                value=task,
            )
        for name, value, least in (
            ("retention_s", retention_s, 1e-9),
            ("pending_ttl_s", pending_ttl_s, 0.0),
            ("max_buffer", max_buffer, 1),
            ("max_classes", max_classes, 1),
            ("flush_interval_s", flush_interval_s, 1e-9),
            ("purge_interval_s", purge_interval_s, 1e-9),
        ):
            if number(value, name) < least:
                raise ConfigError(f"{name}: must be at least {least}, got {value!r}", field=name)
        bounds = tuple(number(b, "score_buckets") for b in score_buckets)
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ConfigError(
                f"score_buckets: must be increasing and distinct, got {score_buckets!r}",
                field="score_buckets",
            )
        self.model = model
        self.version = version
        self.task: Task = task
        self.retention_s = float(retention_s)
        self.pending_ttl_s = float(pending_ttl_s)
        self.registry = registry
        self._clock = clock
        self._max_buffer = int(max_buffer)
        self._high_water = max(1, self._max_buffer // 2)
        self._max_classes = int(max_classes)
        self._flush_interval_s = float(flush_interval_s)
        self._purge_interval_s = float(purge_interval_s)
        self._owns_log = not isinstance(log, PredictionLog)
        self.log = open_prediction_log(log)

        self._buffer: deque[_Item] = deque()
        self._drain_lock = threading.Lock()  # one writer of the log at a time
        self._lock = threading.Lock()  # the counters
        self._wake = threading.Event()
        self._background = background
        self._writer: threading.Thread | None = None
        self._started = not background  # whether the hot path need not start a writer
        self._stopping = False
        self._closed = False
        self._write_failures = 0
        self._next_purge = clock() + self._purge_interval_s
        self._next_claim = clock()
        self._score_bounds = bounds
        self._reset_counters()
        for c in classes:
            self._class(class_key(c, "classes"))
        _TRACKERS.add(self)
        if registry is not None:
            _families_for(registry).add(self)

    def _reset_counters(self) -> None:
        self._logged = 0.0
        self._dropped: dict[str, float] = {}
        self._classes: dict[str, None] = {}
        self._class_counts: dict[str, float] = {}
        self._score = BucketCounts(self._score_bounds, [0.0] * (len(self._score_bounds) + 1))
        self._labels: dict[str, float] = (
            {"true": 0.0, "false": 0.0} if self.task == "classification" else {"": 0.0}
        )
        self._confusion: dict[tuple[str, str], float] = {}
        self._sums = RegressionSums()
        self._delay = BucketCounts(DELAY_BUCKETS, [0.0] * (len(DELAY_BUCKETS) + 1))
        self._unmatched: dict[str, float] = {}
        # Hot-path drop counters: next() on an itertools.count is atomic, no lock needed.
        self._full_drops = itertools.count()
        self._closed_drops = itertools.count()
        self._overflow = self._closed_drops if self._closed else self._full_drops

    # -- the hot path ---------------------------------------------------------------------

    def log_prediction(
        self, request_id: object, prediction: object, score: object = None, features: object = None
    ) -> None:
        """Record a prediction for joining with its label later. Never raises.

        ``request_id``: a string or integer the label will carry. ``prediction``: the
        class (classification) or the number (regression). ``score``: the confidence, or
        per-class scores as a dict or list (the largest is the confidence). ``features``:
        anything JSON can hold (numpy arrays become lists), stored with the prediction.
        Invalid values are found by the writer, counted as dropped ``invalid`` and as
        internal errors.
        """
        try:
            buffer = self._buffer
            n = len(buffer)
            if n < self._max_buffer:
                buffer.append((request_id, prediction, score, features, self._clock()))
                if not self._started:
                    self._start_writer()
                elif n == self._high_water:
                    self._wake.set()
            else:
                next(self._overflow)
        except Exception as exc:
            self._internal_error(exc)

    def _start_writer(self) -> None:
        with self._drain_lock:
            if self._started or self._closed:
                return
            self._writer = threading.Thread(
                target=self._run, name=f"inferwatch-quality-{self.model}", daemon=True
            )
            self._writer.start()
            self._started = True

    def _internal_error(self, exc: BaseException) -> None:
        if self.registry is not None:
            self.registry.internal_error("quality", exc)
        else:
            log.warning("quality tracker %s %s: %r", self.model, self.version, exc)

    # -- the writer -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            if self._stopping:
                break
            try:
                self.flush()
                now = self._clock()
                if now >= self._next_claim:
                    # Labels other processes wrote (``inferwatch feedback import``, a
                    # replica's feedback before this one's prediction) are counted here.
                    self._next_claim = now + _CLAIM_INTERVAL_S
                    with self._drain_lock:
                        self._claim()
                if now >= self._next_purge:
                    self.purge()
            except Exception as exc:
                self._internal_error(exc)

    def flush(self) -> None:
        """Write every buffered prediction to the log now, join the labels waiting for
        them, and update the counters. The writer thread calls it; call it yourself
        before reading the log (tests, shutdown)."""
        with self._drain_lock:
            wrote = False
            while self._buffer:
                if not self._write_batch():
                    break
                wrote = True
            if wrote:
                self._claim()

    def _write_batch(self) -> bool:
        pop = self._buffer.popleft
        items: list[_Item] = []
        try:
            while len(items) < _BATCH:
                items.append(pop())
        except IndexError:
            pass
        rows: list[PredictionRow] = []
        invalid = 0
        for rid, prediction, score, features, at in items:
            try:
                rows.append(self._row(rid, prediction, score, features, at))
            except Exception as exc:
                invalid += 1
                self._internal_error(exc)
        try:
            stored = self.log.write_predictions(self.model, self.version, rows)
        except Exception as exc:
            self._internal_error(exc)
            self._write_failures += 1
            if self._write_failures < _MAX_WRITE_FAILURES:
                self._buffer.extendleft(reversed(items))  # retry at the next flush
                return False
            self._write_failures = 0
            with self._lock:
                self._add(self._dropped, "write_error", float(len(rows)))
                self._add(self._dropped, "invalid", float(invalid))
            return True
        self._write_failures = 0
        with self._lock:
            self._logged += stored
            self._add(self._dropped, "invalid", float(invalid))
            self._add(self._dropped, "duplicate", float(len(rows) - stored))
            for row in rows:
                if self.task == "classification":
                    assert isinstance(row.prediction, str)
                    self._add(self._class_counts, self._class(row.prediction), 1.0)
                if row.score is not None:
                    self._score.counts[bisect.bisect_left(self._score_bounds, row.score)] += 1.0
                    self._score.sum += row.score
        return True

    def _row(
        self, rid: object, prediction: object, score: object, features: object, at: float
    ) -> PredictionRow:
        pred: str | float = (
            class_key(prediction, "prediction")
            if self.task == "classification"
            else number(prediction, "prediction")
        )
        try:
            confidence = _confidence(score)
        except ConfigError as exc:
            self._internal_error(exc)
            confidence = None
        features_json = None
        if features is not None:
            try:
                features_json = json.dumps(features, default=_json_default, allow_nan=False)
            except (TypeError, ValueError) as exc:
                self._internal_error(exc)
        return PredictionRow(_request_id(rid), at, pred, confidence, features_json)

    def _class(self, name: str) -> str:
        """The exported class name: ``name``, or ``__other__`` past ``max_classes``."""
        if name in self._classes:
            return name
        if len(self._classes) >= self._max_classes:
            return OTHER_CLASS
        self._classes[name] = None
        return name

    @staticmethod
    def _add(into: dict[Any, float], key: object, amount: float) -> None:
        if amount:
            into[key] = into.get(key, 0.0) + amount

    def _claim(self) -> None:
        joined = self.log.claim(self.model, self.version)
        if joined:
            self._count_joined(joined)

    def _count_joined(self, joined: Sequence[JoinedLabel]) -> None:
        with self._lock:
            for row in joined:
                delay = max(0.0, row.labelled_at - row.predicted_at)
                self._delay.counts[bisect.bisect_left(DELAY_BUCKETS, delay)] += 1.0
                self._delay.sum += delay
                if self.task == "classification":
                    actual = self._class(class_key(row.label))
                    predicted = self._class(class_key(row.prediction, "prediction"))
                    correct = class_key(row.label) == class_key(row.prediction, "prediction")
                    self._add(self._labels, "true" if correct else "false", 1.0)
                    self._add(self._confusion, (actual, predicted), 1.0)
                else:
                    self._labels[""] += 1.0
                    self._sums.add(float(row.label), float(row.prediction))

    # -- labels ---------------------------------------------------------------------------

    def _label(self, label: object) -> str | float:
        if self.task == "classification":
            return class_key(label, "label")
        return number(label, "label")

    def feedback(self, request_id: object, label: object, *, at: object = None) -> FeedbackOutcome:
        """Give the true label of an earlier prediction; return what became of it.

        ``at``: when the label became known (seconds since the epoch or a datetime;
        default now), for ``inferwatch_label_delay_seconds``. May be called from any
        replica sharing the log. A label of the wrong type for the task (a string for a
        regression model, a list, NaN) raises :class:`~inferwatch.ConfigError` naming
        the field; an unknown, expired or repeated request id does not raise.
        """
        rid = _request_id(request_id)
        value = self._label(label)
        when = self._clock() if at is None else _timestamp(at, "at")
        self.flush()
        [status] = self._write_labels([LabelRow(rid, value, when)])
        return _outcome(status)

    def _write_labels(self, rows: Sequence[LabelRow], *, join: bool = True) -> list[LabelStatus]:
        now = self._clock()
        with self._drain_lock:
            statuses = self.log.write_labels(
                self.model, self.version, rows, now=now, cutoff=now - self.retention_s
            )
            with self._lock:
                for status in statuses:
                    if status in ("duplicate", "expired"):
                        self._add(self._unmatched, status, 1.0)
            if join:
                self._claim()
        return statuses

    def import_feedback_csv(
        self, path: str | os.PathLike[str], *, batch_size: int = 1000, join: bool = True
    ) -> FeedbackImport:
        """Import labels from a CSV file with a header row ``request_id,label[,timestamp]``
        (other columns are ignored; ``timestamp`` is seconds since the epoch or ISO 8601,
        UTC when it has no offset). Bad rows are reported in ``errors`` (file, line,
        field) and counted as unmatched ``invalid``; good rows are imported, each one
        whole or not at all, in transactions of ``batch_size`` rows.

        ``join=False`` only stores the labels (counted in ``stored``): the service that
        logs the predictions joins and counts them within a few seconds, so the quality
        series appear on its ``/metrics`` (what ``inferwatch feedback import`` does).
        """
        name = Path(path).name
        result = FeedbackImport(file=str(path))
        self.flush()
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing = [c for c in ("request_id", "label") if c not in header]
            if missing:
                raise ConfigError(
                    f"{name}:1: the header must name request_id and label "
                    f"(and optionally timestamp); missing {', '.join(missing)}",
                    field=missing[0],
                    value=header,
                )
            batch: list[LabelRow] = []
            for record in reader:
                result.rows += 1
                try:
                    batch.append(self._csv_row(record))
                except ConfigError as exc:
                    result.invalid += 1
                    result.errors.append(f"{name}:{reader.line_num}: {exc}")
                if len(batch) >= batch_size:
                    self._import_batch(batch, result, join)
                    batch = []
            self._import_batch(batch, result, join)
        if result.invalid:
            with self._lock:
                self._add(self._unmatched, "invalid", float(result.invalid))
        return result

    def _csv_row(self, record: Mapping[str, str | None]) -> LabelRow:
        rid = (record.get("request_id") or "").strip()
        if not rid:
            raise ConfigError("request_id: empty", field="request_id", value=rid)
        text = (record.get("label") or "").strip()
        if self.task == "regression":
            try:
                value: str | float = number(float(text), "label")
            except (ValueError, ConfigError):
                raise ConfigError(
                    f"label: expected a number, got {text!r}", field="label", value=text
                ) from None
        else:
            if not text:
                raise ConfigError("label: empty", field="label", value=text)
            value = text
        stamp = (record.get("timestamp") or "").strip()
        return LabelRow(rid, value, _parse_time(stamp) if stamp else self._clock())

    def _import_batch(self, batch: list[LabelRow], result: FeedbackImport, join: bool) -> None:
        if not batch:
            return
        for status in self._write_labels(batch, join=join):
            if status == "stored":
                if join:
                    result.joined += 1
                else:
                    result.stored += 1
            else:
                setattr(result, status, getattr(result, status) + 1)

    # -- retention ------------------------------------------------------------------------

    def purge(self) -> int:
        """Apply the retention now (the writer does every ``purge_interval_s``): turn
        predictions older than it into tombstones, delete tombstones a retention later,
        and drop labels that waited ``pending_ttl_s`` for their prediction, counting them
        as unmatched ``unknown``. Returns the number of labels dropped."""
        now = self._clock()
        self._next_purge = now + self._purge_interval_s
        with self._drain_lock:
            dropped = self.log.purge(
                self.model,
                self.version,
                cutoff=now - self.retention_s,
                tombstone_cutoff=now - 2 * self.retention_s,
                pending_cutoff=now - self.pending_ttl_s,
            )
        with self._lock:
            self._add(self._unmatched, "unknown", float(dropped))
        return dropped

    # -- reading --------------------------------------------------------------------------

    def metrics(self) -> ClassificationMetrics | RegressionMetrics:
        """Quality over every label this process has joined since it started."""
        with self._lock:
            if self.task == "classification":
                return classification_metrics(dict(self._confusion))
            return regression_metrics(dataclasses.replace(self._sums))

    def collect(self) -> list[FamilySnapshot]:
        """This tracker's series (the :class:`~inferwatch.collectors.Collector` protocol)."""
        key = (self.model, self.version)

        def family(
            name: str, doc: str, type_: Literal["counter", "histogram"], *extra: str
        ) -> FamilySnapshot:
            return FamilySnapshot(name, doc, type_, (*_LABELS, *extra))

        with self._lock:
            logged = family(
                "inferwatch_predictions_logged_total",
                "Predictions stored in the prediction log for joining with delayed labels.",
                "counter",
            )
            logged.samples[key] = self._logged
            dropped = family(
                "inferwatch_predictions_dropped_total",
                "Predictions not stored: buffer_full, invalid, duplicate request id, "
                "write_error, or logged after close.",
                "counter",
                "reason",
            )
            drops = dict(self._dropped)
            drops["buffer_full"] = drops.get("buffer_full", 0.0) + _peek(self._full_drops)
            drops["closed"] = drops.get("closed", 0.0) + _peek(self._closed_drops)
            for reason, value in sorted(drops.items()):
                if value or reason == "buffer_full":
                    dropped.samples[(*key, reason)] = value
            labels = family(
                "inferwatch_labels_total",
                "Predictions joined with their label, by whether the prediction was correct "
                "(empty for regression).",
                "counter",
                "correct",
            )
            for correct, value in self._labels.items():
                labels.samples[(*key, correct)] = value
            delay = family(
                "inferwatch_label_delay_seconds",
                "Time from a prediction to its label becoming known.",
                "histogram",
            )
            delay.samples[key] = self._delay.copy()
            unmatched = family(
                "inferwatch_feedback_unmatched_total",
                "Labels not joined: duplicate, expired, unknown request id (after waiting "
                "for it), invalid CSV row.",
                "counter",
                "reason",
            )
            for reason in ("duplicate", "expired", "unknown", "invalid"):
                unmatched.samples[(*key, reason)] = self._unmatched.get(reason, 0.0)
            out = [logged, dropped, labels, delay, unmatched]
            if self._score.count:
                score = family(
                    "inferwatch_prediction_score",
                    "Confidence of predictions (the score, or the largest per-class score).",
                    "histogram",
                )
                score.samples[key] = self._score.copy()
                out.append(score)
            if self.task == "classification":
                out.extend(self._classification_families(family, key))
            else:
                out.extend(self._regression_families(family, key))
        return out

    def _classification_families(
        self, family: Callable[..., FamilySnapshot], key: tuple[str, str]
    ) -> list[FamilySnapshot]:
        classes = family(
            "inferwatch_prediction_class_total",
            "Predictions logged, by predicted class (labelled or not).",
            "counter",
            "class",
        )
        for name in self._classes:
            classes.samples[(*key, name)] = self._class_counts.get(name, 0.0)
        for name, value in self._class_counts.items():
            classes.samples[(*key, name)] = value
        confusion = family(
            "inferwatch_confusion_total",
            "Labelled predictions by actual and predicted class.",
            "counter",
            "actual",
            "predicted",
        )
        for a in self._classes:
            for p in self._classes:
                confusion.samples[(*key, a, p)] = self._confusion.get((a, p), 0.0)
        for (a, p), value in self._confusion.items():
            confusion.samples[(*key, a, p)] = value
        return [classes, confusion]

    def _regression_families(
        self, family: Callable[..., FamilySnapshot], key: tuple[str, str]
    ) -> list[FamilySnapshot]:
        out = []
        for name, doc, value in (
            ("inferwatch_regression_abs_error_total", "Sum of |actual - predicted|.",
             self._sums.abs_error),
            ("inferwatch_regression_squared_error_total", "Sum of (actual - predicted)^2.",
             self._sums.squared_error),
            ("inferwatch_regression_abs_relative_error_total",
             "Sum of |actual - predicted| / |actual| over rows whose actual is not 0.",
             self._sums.abs_relative_error),
            ("inferwatch_regression_zero_actual_total",
             "Labelled predictions whose actual is 0 (left out of the relative error).",
             self._sums.zero_actual),
        ):  # fmt: skip
            fam = family(name, doc, "counter")
            fam.samples[key] = value
            out.append(fam)
        return out

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the writer, write what is buffered, and close the log if this tracker
        opened it. Later predictions are dropped (counted as ``closed``)."""
        if self._closed:
            return
        self._closed = True
        self._overflow = self._closed_drops
        self._max_buffer = 0
        self._stopping = True
        self._wake.set()
        writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout=30)
        try:
            self.flush()
        except Exception as exc:
            self._internal_error(exc)
        if self._owns_log:
            self.log.close()
        if self.registry is not None:
            _families_for(self.registry).discard(self)
        _TRACKERS.discard(self)

    def __enter__(self) -> QualityTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _after_fork(self) -> None:
        self._buffer = deque()
        self._writer = None
        self._started = not self._background
        self._drain_lock = threading.Lock()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._reset_counters()
        self.log.reset_after_fork()

    def __repr__(self) -> str:
        return (
            f"QualityTracker(model={self.model!r}, version={self.version!r}, "
            f"task={self.task!r}, log={self.log!r})"
        )


def _peek(counter: itertools.count[int]) -> float:
    """The next value of an ``itertools.count`` without consuming it."""
    text = repr(counter)  # "count(5)"
    return float(text[text.index("(") + 1 : -1])


def _outcome(status: LabelStatus) -> FeedbackOutcome:
    return "joined" if status == "stored" else status


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return _timestamp(datetime.fromisoformat(text), "timestamp")
    except ValueError:
        raise ConfigError(
            f"timestamp: expected seconds since the epoch or ISO 8601, got {text!r}",
            field="timestamp",
            value=text,
        ) from None


class _QualityFamilies:
    """The one collector a registry holds for all its trackers: families merged by name
    (several models in one process would otherwise repeat a family)."""

    def __init__(self) -> None:
        self._trackers: weakref.WeakSet[QualityTracker] = weakref.WeakSet()

    def add(self, tracker: QualityTracker) -> None:
        self._trackers.add(tracker)

    def discard(self, tracker: QualityTracker) -> None:
        self._trackers.discard(tracker)

    def collect(self) -> list[FamilySnapshot]:
        merged: dict[str, FamilySnapshot] = {}
        for tracker in sorted(self._trackers, key=lambda t: (t.model, t.version)):
            for fam in tracker.collect():
                into = merged.get(fam.name)
                if into is None:
                    merged[fam.name] = fam
                    continue
                for key, value in fam.samples.items():
                    old = into.samples.get(key)
                    if isinstance(old, BucketCounts) and isinstance(value, BucketCounts):
                        old.merge(value)
                    elif isinstance(old, float) and isinstance(value, float):
                        into.samples[key] = old + value
                    else:
                        into.samples[key] = value
        return list(merged.values())


_FAMILIES: weakref.WeakKeyDictionary[Registry, _QualityFamilies] = weakref.WeakKeyDictionary()
_FAMILIES_LOCK = threading.Lock()


def _families_for(registry: Registry) -> _QualityFamilies:
    with _FAMILIES_LOCK:
        families = _FAMILIES.get(registry)
        if families is None:
            families = _FAMILIES[registry] = _QualityFamilies()
            registry.register(families)
        return families


def _after_fork_in_child() -> None:
    for tracker in list(_TRACKERS):
        tracker._after_fork()


def _close_all() -> None:
    for tracker in list(_TRACKERS):
        with contextlib.suppress(Exception):  # at exit, there is no one left to tell
            tracker.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all)
