"""What a PromQL query returns: the four Prometheus value types, and the query result.

Timestamps are integer milliseconds since the Unix epoch, as in the store. An instant
query returns a :class:`Scalar`, a :class:`String`, a vector (``list[Sample]``) or, for
a range selector such as ``foo[5m]``, a matrix; a range query returns a matrix
(``list[RangeSeries]``, one entry per series with its values at the steps where it had
one) or, for a scalar expression, a matrix with one unlabelled series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias

from inferwatch.tsdb.labels import Labels, Matcher

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import numpy.typing as npt

    from inferwatch.tsdb.series import Series


@dataclass(slots=True)
class Scalar:
    t: int
    v: float


@dataclass(slots=True)
class String:
    t: int
    v: str


@dataclass(slots=True)
class Sample:
    """One element of an instant vector."""

    labels: Labels
    t: int
    v: float


@dataclass(slots=True)
class RangeSeries:
    """One element of a matrix: a series with its timestamps (ms) and values."""

    labels: Labels
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


Vector: TypeAlias = list[Sample]
Matrix: TypeAlias = list[RangeSeries]
ResultType = Literal["scalar", "string", "vector", "matrix"]


@dataclass(slots=True)
class QueryResult:
    """The value of a query, its Prometheus ``resultType``, and any annotations.

    ``warnings`` and ``infos`` are Prometheus's annotations (for example "metric might
    not be a counter, name does not end in _total/_sum/_count/_bucket" is an info).
    """

    result_type: ResultType
    value: Scalar | String | Vector | Matrix
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    samples_loaded: int = 0


class Queryable(Protocol):
    """Where the engine reads series: the store, or anything that selects like it.

    ``select`` returns every series matching all matchers that has samples in
    ``[mint_ms, maxt_ms]`` (both ends inclusive), with only those samples, staleness
    markers included, timestamps increasing.
    """

    def select(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> list[Series]: ...
