"""Drift of features and predictions against a reference profile, exported as series.

A :class:`DriftDetector` compares a sliding window of production data with a
:class:`~inferwatch.analyze.profile.ReferenceProfile` (built from training data, or from
the first ``reference_rows`` production rows, after which it freezes). Neither side keeps
raw rows: both are bounded sketches (see :mod:`inferwatch.analyze.profile`), so memory
stays the same whatever the traffic. The statistics, computed at collection time:

- numeric features: the two-sample Kolmogorov-Smirnov statistic and p-value
  (:func:`ks_test`) and the population stability index over the reference's deciles
  (:func:`psi`);
- categorical features: Pearson's chi-squared goodness-of-fit test of the window's
  counts against the reference's proportions (:func:`chi2_test`, the test Evidently's
  ``chisquare`` runs) and the Jensen-Shannon distance (:func:`js_distance`).

Each is a gauge labelled ``model``, ``version`` and ``feature`` (predictions use
``feature="__prediction__"``), so a drift alert is an ordinary rule such as
``inferwatch_drift_psi > 0.2`` or ``inferwatch_drift_detected == 1``.

Statistics functions here are pure: they take sketches and return numbers.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from inferwatch._errors import ConfigError
from inferwatch.analyze.profile import (
    DEFAULT_BINS,
    DEFAULT_TOP_K,
    PREDICTION,
    CategoricalSketch,
    ColumnIssues,
    FeatureKind,
    NumericSketch,
    ReferenceProfile,
    Sketch,
    build_sketch,
    categorical_column,
    check_bins,
    check_kinds,
    check_top_k,
    numeric_column,
)
from inferwatch.sdk.family import FamilySnapshot
from inferwatch.sdk.recorder import drain

if TYPE_CHECKING:
    from inferwatch.sdk.registry import Registry

__all__ = [
    "DriftDetector",
    "FeatureDrift",
    "KSResult",
    "chi2_test",
    "js_distance",
    "ks_pvalue",
    "ks_test",
    "psi",
]

log = logging.getLogger("inferwatch")

#: Proportion put in place of an empty PSI bin (on either side) so the log stays finite.
PSI_EPSILON = 1e-4
#: Pseudo-count added to every reference bin when the window has a category the
#: reference never saw (its expected count would be 0 and the statistic infinite).
CHI2_SMOOTHING = 0.5

#: Effective sample size up to which KS p-values come from scipy's exact ``kstwo``.
KS_KSTWO_MAX_N = 5000

NumericTest = Literal["ks", "psi"]
CategoricalTest = Literal["chi2", "js"]

# -- statistics ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KSResult:
    """A two-sample Kolmogorov-Smirnov test computed from two sketches.

    ``statistic`` is the largest CDF difference at the bin edges: a lower bound of the
    exact statistic of the raw data, equal to it when every value lies on an edge
    (discrete features). ``upper_bound`` is an upper bound of the exact statistic (the
    most the CDFs can differ inside a bin), so the exact one lies in
    ``[statistic, upper_bound]``; with reference-quantile edges the gap is about the
    largest share of either sample in one bin (~``1/bins`` when nothing drifted).
    ``pvalue`` is the two-sided p-value of ``statistic`` (see :func:`ks_pvalue`): the one
    ``scipy.stats.ks_2samp(method="asymp")`` gives, ``kstwo.sf(d, round(n*m/(n+m)))``,
    for effective sizes up to :data:`KS_KSTWO_MAX_N`.
    """

    statistic: float
    pvalue: float
    upper_bound: float


def ks_test(reference: NumericSketch, current: NumericSketch) -> KSResult:
    """KS test of ``current`` against ``reference`` (sketches over the same edges)."""
    n, m = reference.count, current.count
    if n == 0 or m == 0:
        raise ValueError("a KS test needs values on both sides")
    fr = np.cumsum(reference.counts) / n
    fc = np.cumsum(current.counts) / m
    d = float(np.max(np.abs(fr[:-1] - fc[:-1]))) if fr.size > 1 else 0.0
    lo_r = np.concatenate(([0.0], fr[:-1]))
    lo_c = np.concatenate(([0.0], fc[:-1]))
    upper = max(d, float(np.max(fr - lo_c)), float(np.max(fc - lo_r)))
    return KSResult(d, ks_pvalue(d, n, m), min(upper, 1.0))


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Two-sided p-value of a two-sample KS statistic for sample sizes ``n`` and ``m``.

    With ``en = round(n*m/(n+m))``: scipy's ``kstwo.sf(d, en)`` (what
    ``ks_2samp(method="asymp")`` returns) while ``en <= KS_KSTWO_MAX_N``; above, where
    ``kstwo.sf`` takes up to a second per call, the Kolmogorov limit with Stephens'
    correction, ``kolmogorov((sqrt(en) + 0.12 + 0.11/sqrt(en)) * d)``, which is within
    about 1% (relative) of ``kstwo.sf`` there for p-values down to 1e-4.
    """
    en = round(n * m / (n + m)) if n and m else 0
    if en <= 0:
        return 1.0
    if en <= KS_KSTWO_MAX_N:
        from scipy.stats import kstwo  # type: ignore[import-untyped]

        return float(np.clip(kstwo.sf(statistic, en), 0.0, 1.0))
    from scipy.special import kolmogorov  # type: ignore[import-untyped]

    root = math.sqrt(en)
    return float(np.clip(kolmogorov((root + 0.12 + 0.11 / root) * statistic), 0.0, 1.0))


def psi(reference: NumericSketch, current: NumericSketch, *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index over the reference's 10 decile bins.

    ``sum((c - r) * ln(c / r))`` over the bins ``(-inf, q10], (q10, q20], ...,
    (q90, inf)`` where ``q`` are the reference's quantiles (``inverted_cdf``) and
    ``r``, ``c`` the two proportions; an empty bin's proportion is replaced by
    ``epsilon`` (1e-4). Usual reading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major.
    """
    r = _deciles(reference)
    c = _deciles(current)
    r = np.where(r == 0, epsilon, r)
    c = np.where(c == 0, epsilon, c)
    return float(np.sum((c - r) * np.log(c / r)))


def _deciles(sketch: NumericSketch) -> np.ndarray:
    bins = sketch.counts.size
    starts = np.arange(10) * bins // 10
    counts = np.add.reduceat(sketch.counts, starts)
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def chi2_test(reference: CategoricalSketch, current: CategoricalSketch) -> tuple[float, float]:
    """Pearson's chi-squared goodness-of-fit test: ``(statistic, p-value)``.

    Observed: the window's count per category (the reference's top-K and
    ``__other__``); expected: the reference's proportions times the window's total,
    the test ``scipy.stats.chisquare(observed, expected)`` and Evidently's
    ``chisquare`` stattest run. Categories empty on both sides are left out (they add
    nothing and no degree of freedom); when the window holds a category the reference
    never had, :data:`CHI2_SMOOTHING` is added to every reference count first.
    """
    ref = reference.counts.astype(np.float64)
    cur = current.counts.astype(np.float64)
    keep = (ref > 0) | (cur > 0)
    ref, cur = ref[keep], cur[keep]
    if ref.size < 2 or cur.sum() == 0:
        return 0.0, 1.0
    if np.any(ref == 0):
        ref = ref + CHI2_SMOOTHING
    expected = ref / ref.sum() * cur.sum()
    statistic = float(np.sum((cur - expected) ** 2 / expected))
    from scipy.stats import chi2

    return statistic, float(chi2.sf(statistic, ref.size - 1))


def js_distance(reference: CategoricalSketch, current: CategoricalSketch) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between the two category distributions.

    The square root of the Jensen-Shannon divergence, as
    ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
    """
    p = reference.counts / max(reference.count, 1)
    q = current.counts / max(current.count, 1)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log2(p / m), 0.0)
        right = np.where(q > 0, q * np.log2(q / m), 0.0)
    divergence = max(float(np.sum(left + right)) / 2, 0.0)
    return min(math.sqrt(divergence), 1.0)


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """The drift statistics of one feature (or of the predictions) at one moment.

    Statistics the feature's kind does not have, or that are not computed yet (fewer
    than ``min_rows`` values in the window), are ``None``; so is ``drifted`` then.
    """

    feature: str
    kind: FeatureKind
    reference_rows: int
    window_rows: int
    psi: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    ks_upper_bound: float | None = None
    chi2_statistic: float | None = None
    chi2_pvalue: float | None = None
    js_distance: float | None = None
    drifted: bool | None = None


# -- the detector --------------------------------------------------------------------------


def _positive(name: str, value: object, *, integer: bool = False) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or not (math.isfinite(value) and value > 0):  # type: ignore[arg-type, operator]
        kind = "an int" if integer else "a number"
        raise ConfigError(f"{name} must be {kind} > 0 (got {value!r})", field=name, value=value)


def _probability(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < 1:
        raise ConfigError(f"{name} must be in (0, 1) (got {value!r})", field=name, value=value)


def _column(obj: object) -> list[object] | np.ndarray:
    if isinstance(obj, list | np.ndarray):
        return obj
    if hasattr(obj, "to_numpy"):  # a pandas Series
        arr: np.ndarray = obj.to_numpy()
        return arr
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        return list(obj)
    raise TypeError(f"a column must be a sequence of values, not {type(obj).__name__}")


class DriftDetector:
    """Drift of one model version's features and predictions, as series per feature.

    Give either ``reference`` (a :class:`ReferenceProfile` built from training data) or
    ``features`` (name -> ``"numeric"`` / ``"categorical"``), in which case the first
    ``reference_rows`` production rows become the reference and it then freezes (those
    rows are not part of the window). ``prediction``: the kind of the predictions to
    watch (default: watched when the reference profiles them).

    The window is ``window`` seconds made of ``slices`` slices: rows go into the slice
    of the clock's current time, and the window is the last ``slices`` slices, so it
    covers between ``window * (1 - 1/slices)`` and ``window`` seconds of data.
    Statistics are computed at collection time, at most once per ``cache_seconds``,
    and only for features with at least ``min_rows`` values in the window.
    ``drifted`` (exported as ``inferwatch_drift_detected``) is decided by
    ``numeric_test`` (``"ks"``: p-value < ``alpha``; ``"psi"``: PSI >= ``psi_threshold``)
    and ``categorical_test`` (``"chi2"``: p-value < ``alpha``; ``"js"``: distance >=
    ``js_threshold``).

    :meth:`observe` and :meth:`observe_batch` are safe to call from any thread and
    never raise: an internal failure is counted in ``registry`` (as
    ``inferwatch_internal_errors_total{component="drift"}``) and passed to
    ``on_error``. Passing ``registry`` also registers the detector in it.
    Bad configuration raises :class:`~inferwatch.ConfigError` naming the field.
    """

    def __init__(
        self,
        model: str,
        version: str = "",
        *,
        reference: ReferenceProfile | None = None,
        features: Mapping[str, FeatureKind] | None = None,
        prediction: FeatureKind | None = None,
        reference_rows: int = 10_000,
        bins: int = DEFAULT_BINS,
        top_k: int = DEFAULT_TOP_K,
        window: float = 3600.0,
        slices: int = 12,
        min_rows: int = 100,
        numeric_test: NumericTest = "ks",
        categorical_test: CategoricalTest = "chi2",
        alpha: float = 0.01,
        psi_threshold: float = 0.2,
        js_threshold: float = 0.1,
        cache_seconds: float = 1.0,
        buffer_rows: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        registry: Registry | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        _positive("window", window)
        _positive("slices", slices, integer=True)
        _positive("min_rows", min_rows, integer=True)
        _positive("reference_rows", reference_rows, integer=True)
        _positive("buffer_rows", buffer_rows, integer=True)
        _positive("psi_threshold", psi_threshold)
        _probability("alpha", alpha)
        _probability("js_threshold", js_threshold)
        if not isinstance(cache_seconds, int | float) or cache_seconds < 0:
            raise ConfigError(
                f"cache_seconds must be >= 0 (got {cache_seconds!r})",
                field="cache_seconds",
                value=cache_seconds,
            )
        if numeric_test not in ("ks", "psi"):
            raise ConfigError(
                f"numeric_test must be 'ks' or 'psi' (got {numeric_test!r})",
                field="numeric_test",
                value=numeric_test,
            )
        if categorical_test not in ("chi2", "js"):
            raise ConfigError(
                f"categorical_test must be 'chi2' or 'js' (got {categorical_test!r})",
                field="categorical_test",
                value=categorical_test,
            )
        check_bins(bins)
        check_top_k(top_k)
        self.kinds = self._resolve_kinds(reference, features, prediction)
        self.feature_names: tuple[str, ...] = tuple(n for n in self.kinds if n != PREDICTION)
        self.model = model
        self.version = version
        self.window = float(window)
        self.slices = slices
        self.min_rows = min_rows
        self.numeric_test = numeric_test
        self.categorical_test = categorical_test
        self.alpha = float(alpha)
        self.psi_threshold = float(psi_threshold)
        self.js_threshold = float(js_threshold)
        self.cache_seconds = float(cache_seconds)
        self._bins = bins
        self._top_k = top_k
        self._reference_rows = reference_rows
        self._buffer_rows = buffer_rows
        self._clock = clock
        self._registry = registry
        self._on_error = on_error
        self._lock = threading.RLock()
        self._buf: list[tuple[dict[str, object], object]] = []
        self._slice_seconds = self.window / slices
        self._slice_id = math.floor(clock() / self._slice_seconds)
        self._slice_end = (self._slice_id + 1) * self._slice_seconds
        self._slices: dict[int, dict[str, Sketch]] = {}
        self._reference: ReferenceProfile | None = None
        self._pending: dict[str, list[np.ndarray] | dict[str, int]] = {}
        self._pending_rows = 0
        self._missing: dict[str, int] = dict.fromkeys(self.kinds, 0)
        self._invalid: dict[tuple[str, str], int] = {}
        self._rows_total = 0
        self._stats: dict[str, FeatureDrift] | None = None
        self._stats_at = -math.inf
        self._errors = 0
        self._logged: set[str] = set()
        if reference is not None:
            self._reference = ReferenceProfile(
                {name: reference.sketches[name] for name in self.kinds}
            )
        else:
            self._reset_pending()
        if registry is not None:
            registry.register(self)

    @staticmethod
    def _resolve_kinds(
        reference: ReferenceProfile | None,
        features: Mapping[str, FeatureKind] | None,
        prediction: FeatureKind | None,
    ) -> dict[str, FeatureKind]:
        if features is not None:
            if not isinstance(features, Mapping):
                raise ConfigError(
                    "features must map each feature name to 'numeric' or 'categorical'",
                    field="features",
                    value=features,
                )
            check_kinds(features, field="features")
            if PREDICTION in features:
                raise ConfigError(
                    f"features: {PREDICTION!r} is reserved for the predictions; use prediction=",
                    field="features",
                    value=PREDICTION,
                )
        if prediction is not None and prediction not in ("numeric", "categorical"):
            raise ConfigError(
                f"prediction: unknown kind {prediction!r} (expected 'numeric' or 'categorical')",
                field="prediction",
                value=prediction,
            )
        if reference is None:
            if features is None:
                raise ConfigError(
                    "give a reference profile or the features to watch (then the first "
                    "reference_rows rows become the reference)",
                    field="features",
                    value=None,
                )
            kinds = dict(features)
            if prediction is not None:
                kinds[PREDICTION] = prediction
            return kinds
        if not isinstance(reference, ReferenceProfile):
            raise ConfigError(
                f"reference must be a ReferenceProfile, not {type(reference).__name__}",
                field="reference",
                value=type(reference).__name__,
            )
        have = reference.kinds()
        wanted = (
            dict(features)
            if features is not None
            else {n: k for n, k in have.items() if n != PREDICTION}
        )
        if prediction is not None:
            wanted[PREDICTION] = prediction
        elif PREDICTION in have:
            wanted[PREDICTION] = have[PREDICTION]
        for name, kind in wanted.items():
            if name not in have:
                raise ConfigError(
                    f"reference has no profile of {name!r} (it profiles {sorted(have)})",
                    field=f"reference.{name}",
                    value=name,
                )
            if have[name] != kind:
                raise ConfigError(
                    f"reference profiles {name!r} as {have[name]}, not {kind}",
                    field=f"reference.{name}",
                    value=kind,
                )
        return wanted

    # -- hot path ------------------------------------------------------------------------

    def observe(self, features: Mapping[str, object], prediction: object = None) -> None:
        """Record one request's features (and prediction). Cheap; never raises."""
        try:
            if self._clock() >= self._slice_end:
                self._roll()
            buf = self._buf
            buf.append((dict(features), prediction))
            if len(buf) >= self._buffer_rows:
                self.fold()
        except Exception as exc:
            self._error(exc)

    def observe_batch(self, rows: object, predictions: object = None) -> None:
        """Record many rows at once, folded straight into the window. Never raises.

        ``rows``: a list of feature mappings, a mapping of column name to values, a
        pandas DataFrame, or a 2-D array whose columns are :attr:`feature_names` in
        order. ``predictions``: one per row (or ``None``).
        """
        try:
            columns, n = self._batch_columns(rows)
            if predictions is not None and PREDICTION in self.kinds:
                pred = _column(predictions)
                if len(pred) != n:
                    raise ValueError(f"{len(pred)} predictions for {n} rows")
                columns[PREDICTION] = pred
            elif PREDICTION in self.kinds:
                columns[PREDICTION] = [None] * n
            with self._lock:
                self._roll_locked(self._clock())
                self._fold_locked()
                self._ingest(columns, n)
        except Exception as exc:
            self._error(exc)

    def _batch_columns(self, rows: object) -> tuple[dict[str, object], int]:
        columns: dict[str, object]
        names = self.feature_names
        if isinstance(rows, np.ndarray):
            if rows.ndim != 2 or rows.shape[1] != len(names):
                raise ValueError(
                    f"a 2-D array of rows needs {len(names)} columns ({', '.join(names)}); "
                    f"got shape {rows.shape}"
                )
            columns = {name: rows[:, i] for i, name in enumerate(names)}
            return columns, int(rows.shape[0])
        source: Mapping[str, object]
        if isinstance(rows, Mapping):
            source = rows
        elif hasattr(rows, "columns") and hasattr(rows, "__getitem__"):  # a DataFrame
            present = {str(c): c for c in rows.columns}
            source = {n: rows[present[n]] for n in names if n in present}
        elif isinstance(rows, Sequence):
            data = [dict(r) for r in rows]
            columns = {n: [r.get(n) for r in data] for n in names}
            return columns, len(data)
        else:
            raise TypeError(f"cannot read rows from {type(rows).__name__}")
        cols = {n: _column(source[n]) for n in names if n in source}
        lengths = {len(c) for c in cols.values()}
        columns = dict(cols)
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        return columns, lengths.pop() if lengths else 0

    # -- folding ---------------------------------------------------------------------------

    def fold(self) -> None:
        """Move buffered rows into the current slice (done at every collection too)."""
        with self._lock:
            self._fold_locked()

    def _roll(self) -> None:
        with self._lock:
            self._roll_locked(self._clock())

    def _roll_locked(self, now: float) -> None:
        sid = math.floor(now / self._slice_seconds)
        if sid <= self._slice_id:
            return
        self._fold_locked()  # rows buffered so far belong to the slice that ended
        self._slice_id = sid
        self._slice_end = (sid + 1) * self._slice_seconds
        oldest = sid - self.slices
        for old in [k for k in self._slices if k <= oldest]:
            del self._slices[old]

    def _fold_locked(self) -> None:
        rows = drain(self._buf)
        if not rows:
            return
        columns: dict[str, object] = {n: [f.get(n) for f, _ in rows] for n in self.feature_names}
        if PREDICTION in self.kinds:
            columns[PREDICTION] = [p for _, p in rows]
        self._ingest(columns, len(rows))

    def _ingest(self, columns: dict[str, object], n: int) -> None:
        self._rows_total += n
        if self._reference is None:
            take = min(n, self._reference_rows - self._pending_rows)
            head = columns if take == n else {k: c[:take] for k, c in columns.items()}  # type: ignore[index]
            self._add_pending(head, take)
            if self._pending_rows >= self._reference_rows:
                self._freeze()
            if take == n:
                return
            columns = {k: c[take:] for k, c in columns.items()}  # type: ignore[index]
            n -= take
        sketches = self._slices.get(self._slice_id)
        if sketches is None:
            assert self._reference is not None
            sketches = {k: s.empty_like() for k, s in self._reference.sketches.items()}
            self._slices[self._slice_id] = sketches
        for name, sketch in sketches.items():
            column = columns.get(name)
            if column is None:
                self._missing[name] += n
            elif isinstance(sketch, NumericSketch):
                values, issues = numeric_column(column)
                sketch.add(values)
                self._count(name, issues)
            else:
                counts, issues = categorical_column(column)
                sketch.add_counts(counts)
                self._count(name, issues)

    def _count(self, name: str, issues: ColumnIssues) -> None:
        if issues.missing:
            self._missing[name] += issues.missing
        for reason, k in issues.invalid().items():
            key = (name, reason)
            self._invalid[key] = self._invalid.get(key, 0) + k

    # -- reference from the first rows -------------------------------------------------------

    def _reset_pending(self) -> None:
        self._pending = {
            name: ([] if kind == "numeric" else {}) for name, kind in self.kinds.items()
        }
        self._pending_rows = 0

    def _add_pending(self, columns: dict[str, object], n: int) -> None:
        self._pending_rows += n
        for name, kind in self.kinds.items():
            column = columns.get(name)
            if column is None:
                self._missing[name] += n
                continue
            store = self._pending[name]
            if kind == "numeric":
                values, issues = numeric_column(column)
                assert isinstance(store, list)
                store.append(values)
            else:
                counts, issues = categorical_column(column)
                assert isinstance(store, dict)
                for key, k in counts.items():
                    store[key] = store.get(key, 0) + k
            self._count(name, issues)

    def _freeze(self) -> None:
        sketches: dict[str, Sketch] = {}
        for name, kind in self.kinds.items():
            store = self._pending[name]
            if isinstance(store, list):
                column: np.ndarray | dict[str, int] = (
                    np.concatenate(store) if store else np.empty(0, dtype=np.float64)
                )
            else:
                column = store
            try:
                if isinstance(column, dict):
                    if not column:
                        raise ConfigError(
                            f"no valid value of {name!r} in the first rows",
                            field=f"features.{name}",
                        )
                    sketches[name] = CategoricalSketch.from_counts(column, top_k=self._top_k)
                else:
                    sketches[name], _ = build_sketch(name, kind, column, self._bins, self._top_k)
            except ConfigError as exc:  # not watched: counted as an internal error
                self._error(exc)
        self._pending = {}
        if not sketches:  # nothing usable: start over with the next rows
            self._reset_pending()
            return
        self._reference = ReferenceProfile(sketches)
        self._stats = None
        self.kinds = {n: k for n, k in self.kinds.items() if n in sketches}
        self.feature_names = tuple(n for n in self.kinds if n != PREDICTION)

    # -- reading ---------------------------------------------------------------------------

    @property
    def reference(self) -> ReferenceProfile | None:
        """The reference profile (``None`` while the first rows are still being taken)."""
        return self._reference

    @property
    def sketch_nbytes(self) -> int:
        """Bytes of every sketch held: the reference and each slice of the window."""
        with self._lock:
            total = self._reference.nbytes if self._reference is not None else 0
            for sketches in self._slices.values():
                total += sum(s.nbytes for s in sketches.values())
            return total

    def window_sketches(self) -> dict[str, Sketch]:
        """The window's sketch of each feature: its slices merged (folds first)."""
        with self._lock:
            self._roll_locked(self._clock())
            self._fold_locked()
            if self._reference is None:
                return {}
            merged = {k: s.empty_like() for k, s in self._reference.sketches.items()}
            oldest = self._slice_id - self.slices
            for sid, sketches in self._slices.items():
                if sid > oldest:
                    for name, sketch in sketches.items():
                        merged[name].merge(sketch)  # type: ignore[arg-type]
            return merged

    def statistics(self) -> dict[str, FeatureDrift]:
        """Drift of every watched feature now (recomputed at most every cache_seconds)."""
        with self._lock:
            now = self._clock()
            if self._stats is not None and now - self._stats_at < self.cache_seconds:
                self._fold_locked()
                return self._stats
            window = self.window_sketches()
            stats: dict[str, FeatureDrift] = {}
            if self._reference is not None:
                for name, ref in self._reference.sketches.items():
                    stats[name] = self._feature_drift(name, ref, window[name])
            self._stats, self._stats_at = stats, now
            return stats

    def _feature_drift(self, name: str, ref: Sketch, cur: Sketch) -> FeatureDrift:
        rows = cur.count
        if isinstance(ref, NumericSketch):
            assert isinstance(cur, NumericSketch)
            if rows < self.min_rows:
                return FeatureDrift(name, "numeric", ref.count, rows)
            ks = ks_test(ref, cur)
            p = psi(ref, cur)
            drifted = (
                ks.pvalue < self.alpha if self.numeric_test == "ks" else p >= self.psi_threshold
            )
            return FeatureDrift(
                name,
                "numeric",
                ref.count,
                rows,
                psi=p,
                ks_statistic=ks.statistic,
                ks_pvalue=ks.pvalue,
                ks_upper_bound=ks.upper_bound,
                drifted=drifted,
            )
        assert isinstance(cur, CategoricalSketch)
        if rows < self.min_rows:
            return FeatureDrift(name, "categorical", ref.count, rows)
        stat, pvalue = chi2_test(ref, cur)
        js = js_distance(ref, cur)
        drifted = (
            pvalue < self.alpha if self.categorical_test == "chi2" else js >= self.js_threshold
        )
        return FeatureDrift(
            name,
            "categorical",
            ref.count,
            rows,
            chi2_statistic=stat,
            chi2_pvalue=pvalue,
            js_distance=js,
            drifted=drifted,
        )

    def missing_counts(self) -> dict[str, int]:
        """Values missing per feature so far (``None`` or absent), after a fold."""
        with self._lock:
            self._fold_locked()
            return dict(self._missing)

    def invalid_counts(self) -> dict[tuple[str, str], int]:
        """Invalid values per ``(feature, reason)`` so far (nan, inf, type), after a fold."""
        with self._lock:
            self._fold_locked()
            return dict(self._invalid)

    def collect(self) -> list[FamilySnapshot]:
        """The detector's series (the Collector protocol); never raises."""
        try:
            return self._families()
        except Exception as exc:
            self._error(exc)
            return []

    def _families(self) -> list[FamilySnapshot]:
        stats = self.statistics()
        with self._lock:
            missing = dict(self._missing)
            invalid = dict(self._invalid)
            rows_total = self._rows_total
            pending = self._pending_rows if self._reference is None else None
        base = (self.model, self.version)
        labels = ("model", "version", "feature")

        def gauge(name: str, doc: str) -> FamilySnapshot:
            return FamilySnapshot(name, doc, "gauge", labels, merge="all")

        fams = {
            "psi": gauge(
                "inferwatch_drift_psi",
                "Population stability index of the window against the reference, over the "
                "reference's 10 decile bins (numeric features).",
            ),
            "ks_statistic": gauge(
                "inferwatch_drift_ks_statistic",
                "Two-sample Kolmogorov-Smirnov statistic, window against reference.",
            ),
            "ks_pvalue": gauge(
                "inferwatch_drift_ks_pvalue",
                "p-value of the Kolmogorov-Smirnov test; small means drift.",
            ),
            "chi2_statistic": gauge(
                "inferwatch_drift_chi2_statistic",
                "Chi-squared goodness-of-fit statistic of the window's categories against "
                "the reference proportions.",
            ),
            "chi2_pvalue": gauge(
                "inferwatch_drift_chi2_pvalue",
                "p-value of the chi-squared test; small means drift.",
            ),
            "js_distance": gauge(
                "inferwatch_drift_js_distance",
                "Jensen-Shannon distance (base 2, 0..1) of the window's categories from "
                "the reference's.",
            ),
        }
        detected = gauge(
            "inferwatch_drift_detected",
            "1 when the configured drift test fires for the feature, else 0.",
        )
        window_rows = gauge(
            "inferwatch_drift_window_rows",
            "Valid values of the feature in the sliding window.",
        )
        reference_rows = gauge(
            "inferwatch_drift_reference_rows",
            "Valid values of the feature in the reference profile.",
        )
        for name, st in stats.items():
            key = (*base, name)
            window_rows.samples[key] = float(st.window_rows)
            reference_rows.samples[key] = float(st.reference_rows)
            for attr, fam in fams.items():
                value = getattr(st, attr)
                if value is not None:
                    fam.samples[key] = float(value)
            if st.drifted is not None:
                detected.samples[key] = 1.0 if st.drifted else 0.0
        if pending is not None:
            for name in self.kinds:
                reference_rows.samples[(*base, name)] = float(pending)
        missing_fam = FamilySnapshot(
            "inferwatch_feature_missing_total",
            "Requests in which the feature was absent or None.",
            "counter",
            labels,
        )
        for name, k in missing.items():
            missing_fam.samples[(*base, name)] = float(k)
        invalid_fam = FamilySnapshot(
            "inferwatch_feature_invalid_total",
            "Feature values left out of drift statistics, by reason (nan, inf, type).",
            "counter",
            (*labels, "reason"),
        )
        for (name, reason), k in invalid.items():
            invalid_fam.samples[(*base, name, reason)] = float(k)
        rows_fam = FamilySnapshot(
            "inferwatch_drift_rows_total",
            "Rows (requests) observed by the drift detector.",
            "counter",
            ("model", "version"),
        )
        rows_fam.samples[base] = float(rows_total)
        return [
            *fams.values(),
            detected,
            window_rows,
            reference_rows,
            missing_fam,
            invalid_fam,
            rows_fam,
        ]

    # -- errors ------------------------------------------------------------------------------

    def _error(self, exc: BaseException) -> None:
        try:
            self._errors += 1
            if self._registry is not None:
                self._registry.internal_error("drift", exc)
            elif type(exc).__name__ not in self._logged:
                self._logged.add(type(exc).__name__)
                log.warning("inferwatch drift detector error (logged once): %r", exc)
            if self._on_error is not None:
                self._on_error(exc)
        except Exception:  # pragma: no cover - the last line of defence
            pass

    @property
    def internal_errors(self) -> int:
        """Failures inside the detector so far (each also counted in the registry)."""
        return self._errors
