"""Bounded, mergeable profiles of feature values: what drift statistics are computed from.

A drift detector never keeps raw production rows. Each feature is summarised by a sketch
whose size is fixed when the reference is built, whatever the traffic:

- :class:`NumericSketch`: counts of values in ``bins`` fixed bins whose edges are the
  reference's own quantiles (``bins - 1`` edges at levels ``1/bins .. (bins-1)/bins``,
  taken as data points: ``sorted[ceil(k*n/bins) - 1]``, numpy's ``inverted_cdf``). Bin
  ``b`` holds the values ``x`` with ``edge[b-1] < x <= edge[b]`` (the first bin is open
  below, the last open above). With ties the edges repeat and the bins between equal
  edges stay empty, so a discrete feature gets one bin per distinct value. Size:
  ``8 * (2 * bins - 1)`` bytes (edges and counts).
- :class:`CategoricalSketch`: counts of the reference's ``top_k`` most frequent
  categories (ties broken by name), every other value counted under ``"__other__"``.
  Size: ``top_k + 1`` counters plus the category names.

Sketches over the same edges (or categories) merge by adding counts, exactly: the sketch
of a concatenation equals the merge of the sketches. A :class:`ReferenceProfile` holds
one sketch per feature (and one for the predictions, under :data:`PREDICTION`) and
round-trips through JSON, so a reference built at training time can be saved next to
the model and loaded in the service.

Value rules, shared by the reference and production data: ``None`` (or a missing key,
or pandas' ``NA``) is *missing*; a NaN is invalid with reason ``nan``; an infinite value
is invalid with reason ``inf``; for a numeric feature anything that is not a real
number (a string, a list) is invalid with reason ``type``. Booleans count as 0/1.
A categorical value is its ``str()`` (so ``1`` and ``"1"`` are the same category).
Missing and invalid values are counted, never fed into the sketches.
"""

from __future__ import annotations

import json
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from inferwatch._errors import ConfigError

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_TOP_K",
    "OTHER",
    "PREDICTION",
    "CategoricalSketch",
    "ColumnIssues",
    "FeatureKind",
    "NumericSketch",
    "ReferenceProfile",
    "Sketch",
    "categorical_column",
    "numeric_column",
]

FeatureKind = Literal["numeric", "categorical"]
FEATURE_KINDS: tuple[str, ...] = ("numeric", "categorical")
#: Fine bins of a numeric sketch (a multiple of 10, so PSI's deciles are unions of bins).
DEFAULT_BINS = 1000
#: Categories a categorical sketch keeps by name; the rest are counted under OTHER.
DEFAULT_TOP_K = 64
OTHER = "__other__"
#: The name under which a profile keeps the model's predictions.
PREDICTION = "__prediction__"
_FORMAT = "inferwatch.drift.reference/1"

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]


@dataclass(slots=True)
class ColumnIssues:
    """Values of one column left out of a sketch, by reason."""

    missing: int = 0
    nan: int = 0
    inf: int = 0
    type: int = 0

    def add(self, other: ColumnIssues) -> None:
        self.missing += other.missing
        self.nan += other.nan
        self.inf += other.inf
        self.type += other.type

    def invalid(self) -> dict[str, int]:
        """Invalid counts by reason (``nan``, ``inf``, ``type``), zeros left out."""
        found = {"nan": self.nan, "inf": self.inf, "type": self.type}
        return {reason: n for reason, n in found.items() if n}


# -- turning columns into clean values ------------------------------------------------

_FAST_NUMBERS = frozenset({float, int, bool, np.float64, np.float32, np.int64, np.int32})


def _is_na(value: object) -> bool:
    return value is None or type(value).__name__ == "NAType"  # pandas.NA without pandas


def _float_array(values: FloatArray, issues: ColumnIssues) -> FloatArray:
    finite = np.isfinite(values)
    if finite.all():
        return values
    nan = int(np.count_nonzero(np.isnan(values)))
    issues.nan += nan
    issues.inf += int(values.size - np.count_nonzero(finite)) - nan
    return values[finite]


def _numeric_slow(values: Iterable[object], issues: ColumnIssues) -> FloatArray:
    out: list[float] = []
    for v in values:
        if _is_na(v):
            issues.missing += 1
        elif isinstance(v, numbers.Real | np.bool_):
            try:
                out.append(float(v))
            except OverflowError:  # an int beyond the float range
                issues.inf += 1
        else:
            issues.type += 1
    return _float_array(np.array(out, dtype=np.float64), issues)


def numeric_column(column: object) -> tuple[FloatArray, ColumnIssues]:
    """The finite float values of ``column`` and what was left out of them.

    ``column`` is a list, a 1-D numpy array, a pandas Series or any iterable.
    Numeric numpy dtypes take a vectorised path; lists of floats and ints too.
    """
    issues = ColumnIssues()
    if isinstance(column, list):
        if set(map(type, column)) <= _FAST_NUMBERS:
            try:
                return _float_array(np.array(column, dtype=np.float64), issues), issues
            except OverflowError:
                pass
        return _numeric_slow(column, issues), issues
    arr = np.asarray(column)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind in "fiub":
        return _float_array(arr.astype(np.float64, copy=False), issues), issues
    if arr.dtype.kind == "O":
        return _numeric_slow(arr.tolist(), issues), issues
    issues.type += int(arr.size)  # strings, dates: not numbers
    return np.empty(0, dtype=np.float64), issues


def _category_slow(values: Iterable[object], issues: ColumnIssues) -> dict[str, int]:
    keys: list[str] = []
    for v in values:
        if _is_na(v):
            issues.missing += 1
        elif isinstance(v, str | numbers.Integral | np.bool_ | np.str_):
            keys.append(str(v))
        elif isinstance(v, numbers.Real):
            f = float(v)
            if math.isnan(f):
                issues.nan += 1
            elif math.isinf(f):
                issues.inf += 1
            else:
                keys.append(str(f))
        else:
            issues.type += 1
    return dict(Counter(keys))


def categorical_column(column: object) -> tuple[dict[str, int], ColumnIssues]:
    """Counts per category (``str()`` of each value) of ``column``, and what was left out."""
    issues = ColumnIssues()
    if isinstance(column, list):
        if set(map(type, column)) <= {str}:
            return dict(Counter(column)), issues
        return _category_slow(column, issues), issues
    arr = np.asarray(column)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    kind = arr.dtype.kind
    if kind == "f":
        values = _float_array(arr.astype(np.float64, copy=False), issues)
        uniq, counts = np.unique(values, return_counts=True)
        return {str(float(u)): int(c) for u, c in zip(uniq, counts, strict=True)}, issues
    if kind in "iubU":
        uniq, counts = np.unique(arr, return_counts=True)
        return {str(u.item()): int(c) for u, c in zip(uniq, counts, strict=True)}, issues
    return _category_slow(arr.tolist(), issues), issues


# -- sketches -----------------------------------------------------------------------------


def _int_array(values: object) -> IntArray:
    return np.asarray(values, dtype=np.int64)


class NumericSketch:
    """Counts of numeric values in fixed bins whose edges are reference quantiles.

    Build the reference one with :meth:`from_values`; production sketches over the same
    edges with :meth:`empty_like`, then :meth:`add` finite values and :meth:`merge`.
    """

    __slots__ = ("counts", "edges")

    def __init__(self, edges: FloatArray, counts: IntArray | None = None) -> None:
        self.edges = edges
        self.counts: IntArray = (
            np.zeros(edges.size + 1, dtype=np.int64) if counts is None else counts
        )

    @classmethod
    def from_values(cls, values: FloatArray, *, bins: int = DEFAULT_BINS) -> NumericSketch:
        """The reference sketch of ``values`` (finite floats, at least one)."""
        data = np.sort(np.asarray(values, dtype=np.float64))
        n = int(data.size)
        if n == 0:
            raise ValueError("a numeric sketch needs at least one value")
        k = np.arange(1, bins, dtype=np.int64)
        edges = data[(k * n + bins - 1) // bins - 1]  # sorted[ceil(k*n/bins) - 1]
        at_or_below = np.searchsorted(data, edges, side="right")
        counts = np.diff(at_or_below, prepend=0, append=n).astype(np.int64)
        return cls(edges, counts)

    @property
    def bins(self) -> int:
        return int(self.counts.size)

    @property
    def count(self) -> int:
        """Values counted."""
        return int(self.counts.sum())

    @property
    def nbytes(self) -> int:
        """Bytes held by the sketch's arrays (fixed at construction)."""
        return int(self.edges.nbytes + self.counts.nbytes)

    def empty_like(self) -> NumericSketch:
        """A sketch over the same edges with no values yet (shares the edges array)."""
        return NumericSketch(self.edges)

    def add(self, values: FloatArray) -> None:
        """Count ``values`` (finite floats; the caller filters NaN and inf)."""
        if values.size:
            idx = np.searchsorted(self.edges, values, side="left")
            self.counts += np.bincount(idx, minlength=self.counts.size)

    def merge(self, other: NumericSketch) -> None:
        """Add ``other``'s counts (it must have the same edges)."""
        if other.edges is not self.edges and not np.array_equal(other.edges, self.edges):
            raise ValueError("cannot merge numeric sketches with different edges")
        self.counts += other.counts

    def copy(self) -> NumericSketch:
        return NumericSketch(self.edges, self.counts.copy())

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "numeric", "edges": self.edges.tolist(), "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str = "") -> NumericSketch:
        field = f"reference.features.{name}"
        edges = np.asarray(data.get("edges"), dtype=np.float64)
        counts = _int_array(data.get("counts"))
        if edges.ndim != 1 or counts.shape != (edges.size + 1,):
            raise ConfigError(
                f"{field}: a numeric sketch needs 'edges' and one more 'counts' than edges",
                field=field,
                value=data,
            )
        if not np.isfinite(edges).all() or np.any(np.diff(edges) < 0) or np.any(counts < 0):
            raise ConfigError(
                f"{field}: edges must be finite and non-decreasing, counts non-negative",
                field=field,
                value=data,
            )
        return cls(edges, counts)


class CategoricalSketch:
    """Counts per category: the reference's top-K categories, the rest under ``__other__``.

    ``categories`` are the names kept; ``counts`` has one more entry, the last being the
    ``__other__`` bucket.
    """

    __slots__ = ("_index", "categories", "counts")

    def __init__(self, categories: Sequence[str], counts: IntArray | None = None) -> None:
        self.categories = tuple(categories)
        self._index = {c: i for i, c in enumerate(self.categories)}
        self.counts: IntArray = (
            np.zeros(len(self.categories) + 1, dtype=np.int64) if counts is None else counts
        )

    @classmethod
    def from_counts(
        cls, counts: Mapping[str, int], *, top_k: int = DEFAULT_TOP_K
    ) -> CategoricalSketch:
        """The reference sketch: the ``top_k`` most frequent categories kept by name."""
        if not counts:
            raise ValueError("a categorical sketch needs at least one value")
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [name for name, _ in ranked[:top_k]]
        sketch = cls(kept)
        sketch.add_counts(counts)
        return sketch

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    @property
    def nbytes(self) -> int:
        """Bytes of the counts plus the category names (UTF-8)."""
        names = sum(len(c.encode()) for c in self.categories)
        return int(self.counts.nbytes + names)

    def empty_like(self) -> CategoricalSketch:
        return CategoricalSketch(self.categories)

    def add_counts(self, counts: Mapping[str, int]) -> None:
        """Count ``counts[category]`` values of each category."""
        other = len(self.categories)
        index = self._index
        for name, n in counts.items():
            self.counts[index.get(name, other)] += n

    def merge(self, other: CategoricalSketch) -> None:
        if other.categories != self.categories:
            raise ValueError("cannot merge categorical sketches with different categories")
        self.counts += other.counts

    def copy(self) -> CategoricalSketch:
        return CategoricalSketch(self.categories, self.counts.copy())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "categories": list(self.categories),
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str = "") -> CategoricalSketch:
        field = f"reference.features.{name}"
        categories = data.get("categories")
        counts = _int_array(data.get("counts"))
        if (
            not isinstance(categories, list)
            or not all(isinstance(c, str) for c in categories)
            or len(set(categories)) != len(categories)
            or counts.shape != (len(categories) + 1,)
            or np.any(counts < 0)
        ):
            raise ConfigError(
                f"{field}: a categorical sketch needs distinct string 'categories' and "
                "one more non-negative 'counts' (the last is __other__)",
                field=field,
                value=data,
            )
        return cls(categories, counts)


Sketch: TypeAlias = NumericSketch | CategoricalSketch


def kind_of(sketch: Sketch) -> FeatureKind:
    return "numeric" if isinstance(sketch, NumericSketch) else "categorical"


# -- the reference -------------------------------------------------------------------------


def _columns_of(data: object, names: Sequence[str] | None) -> dict[str, object]:
    """Columns by name from a mapping, a DataFrame, a 2-D array or a list of rows."""
    if isinstance(data, Mapping):
        return dict(data)
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):  # a pandas DataFrame
        return {str(c): data[c] for c in data.columns}
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise ConfigError(
                f"reference data: expected a 2-D array, got {data.ndim} dimensions",
                field="data",
                value=data.shape,
            )
        if names is None or len(names) != data.shape[1]:
            raise ConfigError(
                "reference data: a 2-D array needs feature_names, one per column "
                f"({data.shape[1]} columns)",
                field="feature_names",
                value=names,
            )
        return {name: data[:, i] for i, name in enumerate(names)}
    if isinstance(data, Sequence) and all(isinstance(r, Mapping) for r in data):
        keys: dict[str, None] = {}
        for row in data:
            keys.update(dict.fromkeys(str(k) for k in row))
        return {k: [row.get(k) for row in data] for k in keys}
    raise ConfigError(
        "reference data must be a mapping of columns, a pandas DataFrame, a 2-D numpy "
        f"array or a list of row mappings, not {type(data).__name__}",
        field="data",
        value=type(data).__name__,
    )


def _infer_kind(column: object) -> FeatureKind:
    if isinstance(column, list):
        present = [v for v in column if not _is_na(v)]
        ok = all(isinstance(v, numbers.Real | np.bool_) for v in present)
        return "numeric" if present and ok else "categorical"
    kind = np.asarray(column).dtype.kind
    return "numeric" if kind in "fiub" else "categorical"


class ReferenceProfile:
    """What "no drift" looks like: one sketch per feature, plus the predictions.

    Build it from training data with :meth:`from_data`, save it with :meth:`to_json`
    next to the model and load it in the service with :meth:`from_json`. ``sketches``
    maps each feature name (and :data:`PREDICTION` when predictions were given) to its
    sketch; ``issues`` counts the reference values left out (missing, NaN, ...).
    """

    __slots__ = ("issues", "sketches")

    def __init__(
        self, sketches: Mapping[str, Sketch], issues: Mapping[str, ColumnIssues] | None = None
    ) -> None:
        self.sketches: dict[str, Sketch] = dict(sketches)
        self.issues: dict[str, ColumnIssues] = dict(issues or {})

    @classmethod
    def from_data(
        cls,
        data: object,
        *,
        kinds: Mapping[str, FeatureKind] | None = None,
        feature_names: Sequence[str] | None = None,
        predictions: object = None,
        prediction_kind: FeatureKind | None = None,
        bins: int = DEFAULT_BINS,
        top_k: int = DEFAULT_TOP_K,
    ) -> ReferenceProfile:
        """Profile training data.

        ``data``: a mapping of column name to values, a pandas DataFrame, a 2-D numpy
        array (with ``feature_names``, one per column) or a list of row mappings.
        ``kinds``: the features to profile and their kind (``"numeric"`` or
        ``"categorical"``); by default every column, numeric when its dtype is numeric.
        ``predictions``: the model's outputs on the same rows (kind inferred unless
        ``prediction_kind``). Raises :class:`~inferwatch.ConfigError` naming the field
        for an unknown kind, a declared feature absent from the data, or a feature with
        no valid value.
        """
        check_bins(bins)
        check_top_k(top_k)
        columns = _columns_of(data, feature_names)
        if kinds is None:
            kinds = {name: _infer_kind(col) for name, col in columns.items()}
        check_kinds(kinds, field="kinds")
        wanted: dict[str, tuple[FeatureKind, object]] = {}
        for name, kind in kinds.items():
            if name not in columns:
                raise ConfigError(
                    f"reference data has no column {name!r} (columns: {sorted(columns)})",
                    field=f"kinds.{name}",
                    value=name,
                )
            wanted[name] = (kind, columns[name])
        if predictions is not None:
            if prediction_kind is None:
                prediction_kind = _infer_kind(
                    predictions if isinstance(predictions, list) else np.asarray(predictions)
                )
            check_kinds({PREDICTION: prediction_kind}, field="prediction_kind")
            wanted[PREDICTION] = (prediction_kind, predictions)
        sketches: dict[str, Sketch] = {}
        issues: dict[str, ColumnIssues] = {}
        for name, (kind, column) in wanted.items():
            sketches[name], issues[name] = build_sketch(name, kind, column, bins, top_k)
        return cls(sketches, issues)

    def kinds(self) -> dict[str, FeatureKind]:
        """Each profiled name (features and :data:`PREDICTION`) and its kind."""
        return {name: kind_of(s) for name, s in self.sketches.items()}

    def rows(self, name: str) -> int:
        """Valid reference values of feature ``name``."""
        return self.sketches[name].count

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.sketches.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "features": {name: s.to_dict() for name, s in self.sketches.items()},
        }

    def to_json(self) -> str:
        """The profile as JSON text (floats written exactly; :meth:`from_json` reads it)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ConfigError(
                f"not an inferwatch reference profile (expected format {_FORMAT!r})",
                field="reference.format",
                value=data.get("format") if isinstance(data, Mapping) else type(data).__name__,
            )
        features = data.get("features")
        if not isinstance(features, Mapping) or not features:
            raise ConfigError(
                "reference profile has no features",
                field="reference.features",
                value=features,
            )
        sketches: dict[str, Sketch] = {}
        for name, item in features.items():
            kind = item.get("kind") if isinstance(item, Mapping) else None
            if kind == "numeric":
                sketches[name] = NumericSketch.from_dict(item, name=name)
            elif kind == "categorical":
                sketches[name] = CategoricalSketch.from_dict(item, name=name)
            else:
                raise ConfigError(
                    f"reference.features.{name}.kind: unknown kind {kind!r} "
                    "(expected 'numeric' or 'categorical')",
                    field=f"reference.features.{name}.kind",
                    value=kind,
                )
        return cls(sketches)

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        """Read a profile written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(
                f"reference profile is not valid JSON: {exc}", field="reference", value=None
            ) from exc
        return cls.from_dict(data)


def build_sketch(
    name: str, kind: FeatureKind, column: object, bins: int, top_k: int
) -> tuple[Sketch, ColumnIssues]:
    """The reference sketch of one column (ConfigError when it has no valid value)."""
    sketch: Sketch
    if kind == "numeric":
        values, issues = numeric_column(column)
        if values.size == 0:
            raise _no_values(name, issues)
        sketch = NumericSketch.from_values(values, bins=bins)
    else:
        counts, issues = categorical_column(column)
        if not counts:
            raise _no_values(name, issues)
        sketch = CategoricalSketch.from_counts(counts, top_k=top_k)
    return sketch, issues


def _no_values(name: str, issues: ColumnIssues) -> ConfigError:
    return ConfigError(
        f"reference column {name!r} has no valid value (missing {issues.missing}, "
        f"invalid {issues.invalid()})",
        field=f"reference.{name}",
        value=name,
    )


def check_kinds(kinds: Mapping[str, object], *, field: str) -> None:
    """Raise ConfigError for a kind other than ``numeric`` / ``categorical``."""
    if not kinds:
        raise ConfigError(f"{field}: no feature declared", field=field, value=dict(kinds))
    for name, kind in kinds.items():
        if kind not in FEATURE_KINDS:
            raise ConfigError(
                f"{field}.{name}: unknown feature kind {kind!r} "
                "(expected 'numeric' or 'categorical')",
                field=f"{field}.{name}",
                value=kind,
            )


def check_bins(bins: object) -> None:
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 10 or bins % 10:
        raise ConfigError(
            f"bins must be a multiple of 10, at least 10 (got {bins!r})", field="bins", value=bins
        )


def check_top_k(top_k: object) -> None:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ConfigError(f"top_k must be an int >= 1 (got {top_k!r})", field="top_k", value=top_k)
