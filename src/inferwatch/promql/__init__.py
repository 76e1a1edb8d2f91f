"""PromQL: the one query path over the store (see :class:`Engine`)."""

from inferwatch.promql.engine import Engine
from inferwatch.promql.value import (
    Matrix,
    Queryable,
    QueryResult,
    RangeSeries,
    Sample,
    Scalar,
    String,
    Vector,
)

__all__ = [
    "Engine",
    "Matrix",
    "QueryResult",
    "Queryable",
    "RangeSeries",
    "Sample",
    "Scalar",
    "String",
    "Vector",
]
