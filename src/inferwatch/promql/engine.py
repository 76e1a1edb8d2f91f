"""The PromQL engine: parse with promql-parser, evaluate with numpy over a Queryable."""

from __future__ import annotations

from inferwatch.promql.value import Queryable, QueryResult


class Engine:
    """Evaluates PromQL over ``storage`` with Prometheus 3 semantics."""

    def __init__(
        self,
        storage: Queryable,
        *,
        lookback_delta_ms: int = 300_000,
        timeout_s: float = 120.0,
        max_samples: int = 50_000_000,
        max_series: int | None = None,
    ) -> None:
        self.storage = storage
        self.lookback_delta_ms = lookback_delta_ms
        self.timeout_s = timeout_s
        self.max_samples = max_samples
        self.max_series = max_series

    def instant_query(self, query: str, time_ms: int) -> QueryResult:
        raise NotImplementedError

    def range_query(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        raise NotImplementedError
