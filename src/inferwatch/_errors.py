"""The one exception hierarchy of inferwatch.

::

    InferwatchError
     +-- ConfigError (ValueError)          bad configuration given to a constructor or file
     +-- MetricError (ValueError)          a metric declared or used the wrong way
     |    +-- DuplicateMetricError          the same metric name registered twice
     +-- ScrapeError                       a scrape failed (timeout, error status, bad exposition)
     +-- Rejected                          raised by model code to mark a request as shed
     +-- QueryError                        a PromQL query failed (bad_data, execution, ...)
          +-- QuerySyntaxError              the query does not parse or type-check
          +-- QueryTimeout                  the query ran past its time limit
          +-- QueryLimitError               too many samples loaded or series returned

The SDK's hot path never raises these into the model service: errors inside the
recording machinery are counted in ``inferwatch_internal_errors_total`` and logged once.
They are raised only where the user calls a configuration API with a wrong argument.
"""

from __future__ import annotations


class InferwatchError(Exception):
    """Base class of every error raised by inferwatch."""


class ConfigError(InferwatchError, ValueError):
    """A configuration value is invalid; the message names the field and the value."""

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class MetricError(InferwatchError, ValueError):
    """A metric was declared or used the wrong way (bad name, wrong label count, ...)."""

    def __init__(self, message: str, *, metric: str | None = None) -> None:
        super().__init__(message)
        self.metric = metric


class DuplicateMetricError(MetricError):
    """A metric with the same name is already registered in this registry."""


class ScrapeError(InferwatchError):
    """A scrape failed: the target did not answer in time, answered with an error
    status, or sent an exposition that does not parse. ``str(error)`` is the reason
    shown on the targets page.
    """


class Rejected(InferwatchError):
    """Raise from tracked model code to record the request with outcome ``rejected``.

    Use it when the service sheds load (queue full, circuit open): the request is
    counted as rejected rather than as an error, and the exception still propagates
    to the caller so the web framework can answer 503.
    """

    def __init__(self, reason: str = "rejected", *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class QueryError(InferwatchError):
    """A PromQL query failed. ``error_type`` is the Prometheus API's error type:

    ``bad_data`` (the query does not parse or does not type-check, or a parameter is
    wrong), ``execution`` (evaluation failed: a vector with duplicate label sets, too many
    samples), ``timeout`` or ``canceled``. ``str(error)`` is Prometheus's message.
    """

    error_type = "execution"

    def __init__(self, message: str, *, error_type: str | None = None) -> None:
        super().__init__(message)
        if error_type is not None:
            self.error_type = error_type


class QuerySyntaxError(QueryError):
    """The query does not parse, or its types do not fit (``bad_data``)."""

    error_type = "bad_data"


class QueryTimeout(QueryError):
    """The query ran past its time limit (``timeout``)."""

    error_type = "timeout"


class QueryLimitError(QueryError):
    """The query would load more samples, or return more series, than allowed."""
