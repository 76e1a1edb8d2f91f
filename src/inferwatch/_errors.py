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
     +-- TemplateError (ValueError)        a Go template does not parse or fails to execute
     +-- RuleFileError (ValueError)        a Prometheus rule file is invalid (file, line)
     +-- AlertingConfigError (ConfigError) an Alertmanager config is invalid (file, line)
     +-- NotifyError                       a notification could not be delivered

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


class TemplateError(InferwatchError, ValueError):
    """A Go template does not parse or fails to execute.

    ``str(error)`` reads like Go's ``text/template`` message
    (``template: name:1:5: function "foo" not defined``); ``line`` and ``column``
    (1-based, ``None`` when unknown) point into the template text.
    """

    def __init__(
        self, message: str, *, name: str = "", line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.name = name
        self.line = line
        self.column = column


class RuleFileError(InferwatchError, ValueError):
    """A Prometheus rule file is invalid. ``errors`` holds every problem found, each a
    :class:`RuleFileProblem` naming the file, line (1-based, 0 when unknown) and reason;
    ``str(error)`` lists them one per line as ``file:line: reason``.
    """

    def __init__(self, errors: list[RuleFileProblem]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class RuleFileProblem:
    """One problem in a rule file: ``file``, ``line`` (1-based, 0 when unknown), ``reason``."""

    __slots__ = ("file", "line", "reason")

    def __init__(self, file: str, line: int, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.reason}"
            if self.line
            else f"{self.file}: {self.reason}"
        )

    def __repr__(self) -> str:
        return f"RuleFileProblem({self.file!r}, {self.line}, {self.reason!r})"


class AlertingConfigError(ConfigError):
    """An Alertmanager configuration is invalid; the message names the file, line and
    field (``alertmanager.yml:12: route.routes[0].group_wait: ...``)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message, field=field, value=value)
        self.file = file
        self.line = line


class NotifyError(InferwatchError):
    """A notification could not be delivered. ``retryable`` says whether trying again
    later may succeed (network errors, HTTP 5xx and 429) or not (HTTP 4xx, a rejected
    payload); the outbox retries only the former. Messages never contain secrets.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
