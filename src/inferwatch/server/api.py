"""The Prometheus HTTP API (``/api/v1``) over the store, for Grafana and Prometheus clients.

::

    from inferwatch.server.api import PrometheusAPI

    app.mount("/api/v1", PrometheusAPI(store))      # any ASGI app: FastAPI, Starlette, ...

Grafana's Prometheus data source, ``prometheus-api-client`` and other tools written for
Prometheus use it unchanged. The endpoints (``query``, ``query_range``, ``series``,
``labels``, ``label/<name>/values``, ``metadata``, ``query_exemplars``, ``format_query``,
``status/buildinfo``, ``status/runtimeinfo``) take the same parameters as in Prometheus 3,
by GET or by form POST, with the same defaults. They answer with the same JSON envelope,
number formats, error types, HTTP status codes and error messages.

Queries run in worker threads, at most ``max_concurrency`` at a time (the rest wait in a
queue), so the event loop keeps serving while a query runs. Each query has a time limit:
the lower of its ``timeout`` parameter and the engine's own. A bad query or parameter
gets Prometheus's error, and no request can stop the server.

Where this differs from Prometheus: ``labels`` and ``label/<name>/values`` without
``match[]`` answer from the store's index. The index holds every series the store still
keeps, whatever ``start`` and ``end`` say (Prometheus filters these by time only as
coarsely as the data blocks it keeps). There are no exemplars (``query_exemplars``
answers ``[]``) and no native histograms.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread
import promql_parser as pp
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from inferwatch._duration import DURATION_UNITS, duration_ms
from inferwatch._errors import QueryError, QuerySyntaxError, QueryTimeout
from inferwatch._version import __version__
from inferwatch.promql import Engine, QueryResult, Sample, Scalar, String
from inferwatch.promql.engine import parse
from inferwatch.promql.goformat import go_format_float, go_quote
from inferwatch.promql.value import Queryable
from inferwatch.tsdb.labels import METRIC_NAME, Labels, Matcher, MatchOp

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from inferwatch.sdk.registry import Registry

log = logging.getLogger("inferwatch.server.api")

#: The Prometheus version whose API this one speaks (``/status/buildinfo``).
PROMETHEUS_API_VERSION = "3.0.0"
#: The most points a range query may return per series, as in Prometheus.
MAX_POINTS_PER_SERIES = 11_000
#: Prometheus's default start and end of ``series`` and ``labels`` (its MinTime/MaxTime).
MIN_TIME_MS = -9_223_309_901_257_974_000
MAX_TIME_MS = 9_223_309_901_257_974_999
_MIN_TIME_TEXT = "-292273086-05-16T16:47:06Z"
_MAX_TIME_TEXT = "292277025-08-18T07:12:54.999999999Z"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_FORM_BYTES = 10 << 20  # Go's limit on a form body
_MAX_ANNOTATIONS = 10
#: Extra seconds a query may run past its limit before the request stops waiting for it.
_GRACE_S = 1.0

#: ``{metric: [{"type": ..., "help": ..., "unit": ...}, ...]}``, as ``/metadata`` returns it.
MetadataSource: TypeAlias = Callable[[], Mapping[str, Sequence[Mapping[str, str]]]]
_T = TypeVar("_T")

_STATUS = {
    "bad_data": 400,
    "execution": 422,
    "canceled": 499,
    "timeout": 503,
    "internal": 500,
    "not_found": 404,
    "not_acceptable": 406,
    "unavailable": 503,
}


class SeriesStore(Queryable, Protocol):
    """What the API reads: :class:`~inferwatch.tsdb.store.Store`, or anything like it."""

    def label_names(self) -> list[str]: ...

    def label_values(self, name: str) -> list[str]: ...


def _bad(message: str) -> QueryError:
    return QueryError(message, error_type="bad_data")


def _invalid(parameter: str, message: str) -> QueryError:
    return _bad(f"invalid parameter {go_quote(parameter)}: {message}")


# -- parameters ------------------------------------------------------------------------

_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_HEX_FLOAT_RE = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+")
_SPECIAL_FLOATS = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan"}
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})"
)
_INT_RE = re.compile(r"[+-]?\d+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _go_float(text: str) -> float | None:
    """``text`` as Go's ``strconv.ParseFloat`` reads it, or None where it fails."""
    if _FLOAT_RE.fullmatch(text) or text.lower() in _SPECIAL_FLOATS:
        value = float(text)
        return None if math.isinf(value) and text.lower() not in _SPECIAL_FLOATS else value
    if _HEX_FLOAT_RE.fullmatch(text):
        sign = -1.0 if text.startswith("-") else 1.0
        return sign * float.fromhex(text.lstrip("+-"))
    return None


def parse_time(text: str) -> int:
    """A Prometheus API time (Unix seconds, or RFC 3339) as milliseconds since the epoch.

    Raises ``ValueError`` with Prometheus's message when ``text`` is neither.
    """
    error = ValueError(f"cannot parse {go_quote(text)} to a valid timestamp")
    seconds = _go_float(text)
    if seconds is not None:
        if not math.isfinite(seconds):
            raise error
        # Prometheus's arithmetic, rounding included: whole seconds, then the fraction
        # rounded to milliseconds and carried in nanoseconds.
        frac, whole = math.modf(seconds)
        scaled = abs(frac) * 1000
        rounded = math.floor(scaled) + (1 if scaled - math.floor(scaled) >= 0.5 else 0)
        nanos = int(math.copysign(rounded, frac) / 1000 * 1e9)
        ms = (int(whole) * 1_000_000_000 + nanos) // 1_000_000
        if not _INT64_MIN <= ms <= _INT64_MAX:
            raise error
        return ms
    match = _RFC3339_RE.fullmatch(text)
    if match is not None:
        year, month, day, hour, minute, second, frac_text, zone = match.groups()
        try:
            offset = timedelta(0)
            if zone != "Z":
                sign = -1 if zone[0] == "-" else 1
                offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            moment = datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                tzinfo=timezone(offset),
            )
        except ValueError:
            raise error from None
        delta = moment - _EPOCH
        ms = (delta.days * 86_400 + delta.seconds) * 1000
        return ms + (int(frac_text[:3].ljust(3, "0")) if frac_text else 0)
    if text == _MIN_TIME_TEXT:
        return MIN_TIME_MS
    if text == _MAX_TIME_TEXT:
        return MAX_TIME_MS
    raise error


def parse_duration(text: str) -> int:
    """A Prometheus API duration (``5m``, ``1h30m``, or float seconds) in nanoseconds.

    Raises ``ValueError`` with Prometheus's message when ``text`` is neither.
    """
    seconds = _go_float(text)
    if seconds is not None and not math.isnan(seconds):
        ns = seconds * 1e9
        if ns > _INT64_MAX or ns < _INT64_MIN:
            raise ValueError(
                f"cannot parse {go_quote(text)} to a valid duration. It overflows int64"
            )
        return int(ns)
    ms = duration_ms(text)
    if ms is not None and ms * 1_000_000 <= _INT64_MAX:
        return ms * 1_000_000
    raise ValueError(f"cannot parse {go_quote(text)} to a valid duration")


def _parse_limit(text: str) -> int:
    """``limit`` as Prometheus reads it: 0 (none) when empty; errors as Go's ``Atoi``."""
    if text == "":
        return 0
    if not _INT_RE.fullmatch(text):
        raise _invalid("limit", f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _invalid("limit", f"strconv.Atoi: parsing {go_quote(text)}: value out of range")
    if value < 0:
        raise _invalid("limit", "limit must be non-negative")
    return value


@dataclass(frozen=True, slots=True)
class _Params:
    """A request's parameters: a form body's first, then the URL's, as Go's ``r.Form``."""

    pairs: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str:
        for key, value in self.pairs:
            if key == name:
                return value
        return ""

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def time(self, name: str, default: int) -> int:
        """An optional time parameter; errors worded as Prometheus's ``parseTimeParam``."""
        text = self.get(name)
        if text == "":
            return default
        try:
            return parse_time(text)
        except ValueError as exc:
            raise _invalid(name, f"Invalid time value for '{name}': {exc}") from None


async def _read_params(request: Request) -> _Params:
    pairs: list[tuple[str, str]] = []
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in ("POST", "PUT", "PATCH") and (
        content_type == "application/x-www-form-urlencoded"
    ):
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FORM_BYTES:
                raise _bad("error parsing form values: http: POST too large")
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    pairs += parse_qsl(request.url.query, keep_blank_values=True)
    return _Params(tuple(pairs))


def unescape_label_name(name: str) -> str:
    """Undo Prometheus's ``U__`` escaping of a label name in a URL (``U__a_2e_b``: ``a.b``).

    A name that is not validly escaped is returned as it is, as Prometheus does.
    """
    if not name.startswith("U__"):
        return name
    escaped, out, i = name[3:], [], 0
    while i < len(escaped):
        if escaped[i] != "_":
            out.append(escaped[i])
            i += 1
            continue
        i += 1
        if i >= len(escaped):
            return name
        if escaped[i] == "_":
            out.append("_")
            i += 1
            continue
        end = escaped.find("_", i)
        code = escaped[i:end]
        if end < 0 or not 0 < len(code) <= 6 or not re.fullmatch(r"[0-9a-fA-F]+", code):
            return name
        point = int(code, 16)
        if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
            return name
        out.append(chr(point))
        i = end + 1
    return "".join(out)


_MATCH_OPS: tuple[tuple[pp.MatchOp, MatchOp], ...] = (
    (pp.MatchOp.Equal, "="),
    (pp.MatchOp.NotEqual, "!="),
    (pp.MatchOp.Re, "=~"),
    (pp.MatchOp.NotRe, "!~"),
)


def _match_op(op: pp.MatchOp) -> MatchOp:
    return next(text for parsed, text in _MATCH_OPS if parsed == op)


def _selector_matchers(selector: pp.VectorSelector) -> list[list[Matcher]]:
    """The matcher sets of a selector: one, or one per branch of ``{a="1" or b="2"}``."""
    named = [Matcher(METRIC_NAME, "=", selector.name)] if selector.name else []
    groups = selector.matchers.or_matchers or [selector.matchers.matchers]
    return [named + [Matcher(m.name, _match_op(m.op), m.value) for m in g] for g in groups]


def _matcher_sets(texts: Iterable[str]) -> list[list[Matcher]]:
    """The ``match[]`` selectors as matcher sets (one per selector, or per ``or`` branch).

    Errors are worded as Prometheus's ``parseMatchersParam``, without the parameter name.
    """
    non_empty = "match[] must contain at least one non-empty matcher"
    sets: list[list[Matcher]] = []
    for text in texts:
        try:
            expr = parse(text)
        except QuerySyntaxError as exc:
            message = str(exc)
            empty = "at least one non-empty matcher" in message
            raise _bad(non_empty if empty else message) from None
        if not isinstance(expr, pp.VectorSelector) or expr.offset or expr.at:
            got = type(expr).__name__
            raise _bad(
                f'1:1: parse error: expected a metric selector such as up{{job="x"}}, got {got}'
            )
        try:
            sets.extend(_selector_matchers(expr))
        except ValueError as exc:
            raise _bad(f"1:1: parse error: {exc}") from None
    for matchers in sets:
        if all(m.matches_empty for m in matchers):
            raise _bad(non_empty)
    return sets


# -- JSON --------------------------------------------------------------------------------


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it in API responses (without the quotes).

    Shortest round-trip digits, positional between 1e-6 and 1e21 (``0.1``, ``100``),
    exponent form outside (``1e-07``, ``1.5e+21``), and ``NaN``, ``+Inf``, ``-Inf``.
    """
    magnitude = abs(value)
    if 1e-4 <= magnitude < 1e16:  # where repr() is already positional
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return go_format_float(value, "e")
    return go_format_float(value, "f")


def format_timestamp(t_ms: int) -> str:
    """A sample timestamp as Prometheus writes it: seconds, with ``.mmm`` unless whole."""
    sign = "-" if t_ms < 0 else ""
    seconds, ms = divmod(abs(t_ms), 1000)
    return f"{sign}{seconds}" if ms == 0 else f"{sign}{seconds}.{ms:03d}"


def _json_number(value: float) -> str:
    """A float as Go's ``encoding/json`` writes a number (scalar and string timestamps)."""
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", go_format_float(value, "e"))
    return go_format_float(value, "f")


def _labels_json(labels: Labels) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in labels) + "}"


def _points_json(timestamps: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> str:
    return ",".join(
        [
            f'[{format_timestamp(t)},"{format_value(v)}"]'
            for t, v in zip(timestamps.tolist(), values.tolist(), strict=True)
        ]
    )


def _result_json(result: QueryResult) -> str:
    value = result.value
    if isinstance(value, Scalar):
        return f'[{_json_number(value.t / 1000)},"{go_format_float(value.v, "f")}"]'
    if isinstance(value, String):
        return f"[{_json_number(value.t / 1000)},{json.dumps(value.v)}]"
    parts = []
    for item in value:
        if isinstance(item, Sample):
            point = f'[{format_timestamp(item.t)},"{format_value(item.v)}"]'
            parts.append(f'{{"metric":{_labels_json(item.labels)},"value":{point}}}')
        else:
            points = _points_json(item.timestamps, item.values)
            parts.append(f'{{"metric":{_labels_json(item.labels)},"values":[{points}]}}')
    return "[" + ",".join(parts) + "]"


def _capped(notes: Sequence[str], kind: str) -> list[str]:
    """At most 10 annotations, and how many more were left out, as Prometheus does."""
    if len(notes) <= _MAX_ANNOTATIONS:
        return list(notes)
    more = len(notes) - _MAX_ANNOTATIONS
    return [*notes[:_MAX_ANNOTATIONS], f"{more} more {kind} annotations omitted"]


def _success(data_json: str, warnings: Sequence[str] = (), infos: Sequence[str] = ()) -> Response:
    body = '{"status":"success","data":' + data_json
    if warnings:
        body += ',"warnings":' + json.dumps(_capped(warnings, "warning"))
    if infos:
        body += ',"infos":' + json.dumps(_capped(infos, "info"))
    return Response(body + "}", media_type="application/json")


def _error(error_type: str, message: str) -> Response:
    body = json.dumps({"status": "error", "errorType": error_type, "error": message})
    return Response(body, status_code=_STATUS.get(error_type, 500), media_type="application/json")


# -- metadata --------------------------------------------------------------------------

_EXPOSED_TYPES = {
    "counter": ("_total", "counter"),
    "info": ("_info", "gauge"),
    "stateset": ("", "gauge"),
    "gaugehistogram": ("", "histogram"),
    "unknown": ("", "unknown"),
}


def registry_metadata(registry: Registry) -> MetadataSource:
    """A metadata source for the families of an in-process registry.

    Names and types are those of the Prometheus text format that ``/metrics`` serves
    (``requests_total`` for a counter, its histograms by their base name), which are
    the names the series have in the store.
    """

    def metadata() -> dict[str, list[dict[str, str]]]:
        out: dict[str, list[dict[str, str]]] = {}
        for family in registry.collect():
            suffix, kind = _EXPOSED_TYPES.get(family.type, ("", family.type))
            name = family.name if family.name.endswith(suffix) else family.name + suffix
            entry = {"type": kind, "help": family.documentation, "unit": family.unit}
            entries = out.setdefault(name, [])
            if entry not in entries:
                entries.append(entry)
        return out

    return metadata


def _retention_text(storage: object) -> str:
    """The store's retention as Prometheus prints it (``15d``, ``15d or 1GiB``)."""
    parts = []
    seconds = getattr(storage, "retention_seconds", None)
    if isinstance(seconds, int | float) and seconds > 0:
        parts.append(_duration_text(int(seconds * 1000)))
    size = getattr(storage, "retention_bytes", None)
    if isinstance(size, int) and size > 0:
        unit, scale = next((u, s) for u, s in _SIZE_UNITS if size % s == 0)
        parts.append(f"{size // scale}{unit}")
    return " or ".join(parts)


_SIZE_UNITS = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1))


def _duration_text(ms: int) -> str:
    """Milliseconds as Prometheus prints a duration (``1h30m``, ``15d``, ``2w``, ``0s``)."""
    if ms == 0:
        return "0s"
    parts = []
    for name, unit in DURATION_UNITS:
        if name in ("y", "w") and ms % unit:
            continue  # years and weeks only when exact: 90d reads better than 12w6d
        count, ms = divmod(ms, unit)
        if count:
            parts.append(f"{count}{name}")
    return "".join(parts)


# -- the API -----------------------------------------------------------------------------


class PrometheusAPI:
    """The Prometheus HTTP API over ``storage``, as an ASGI app to mount at ``/api/v1``.

    ``engine`` evaluates queries (default: ``Engine(storage)`` with Prometheus's
    limits). ``metadata`` gives ``/metadata`` its answer (see :func:`registry_metadata`);
    without it the answer is ``{}``. ``clock`` (Unix seconds) sets the default ``time``
    of an instant query. ``max_concurrency`` queries run at once; more wait their turn.
    ``build_info`` replaces fields of ``/status/buildinfo``. ``routes`` are more
    endpoints under the same prefix (the server adds ``/rules`` and ``/alerts``).
    """

    def __init__(
        self,
        storage: SeriesStore,
        *,
        engine: Engine | None = None,
        metadata: MetadataSource | None = None,
        clock: Callable[[], float] = time.time,
        max_concurrency: int = 20,
        build_info: Mapping[str, str] | None = None,
        routes: Sequence[Route] = (),
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.storage = storage
        self.engine = engine if engine is not None else Engine(storage)
        self.metadata = metadata
        self.clock = clock
        self.started = datetime.now(UTC)
        self.build_info = {
            "version": PROMETHEUS_API_VERSION,
            "revision": f"inferwatch {__version__}",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": f"python{platform.python_version()}",
            **(build_info or {}),
        }
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        own = [
            Route("/query", self._endpoint(self._query), methods=["GET", "POST"]),
            Route("/query_range", self._endpoint(self._query_range), methods=["GET", "POST"]),
            Route(
                "/query_exemplars", self._endpoint(self._query_exemplars), methods=["GET", "POST"]
            ),
            Route("/format_query", self._endpoint(self._format_query), methods=["GET", "POST"]),
            Route("/series", self._endpoint(self._series), methods=["GET", "POST"]),
            Route("/labels", self._endpoint(self._labels), methods=["GET", "POST"]),
            Route("/label/{name}/values", self._endpoint(self._label_values), methods=["GET"]),
            Route("/metadata", self._endpoint(self._metadata), methods=["GET"]),
            Route("/status/buildinfo", self._endpoint(self._buildinfo), methods=["GET"]),
            Route("/status/runtimeinfo", self._endpoint(self._runtimeinfo), methods=["GET"]),
        ]
        self.app = Starlette(routes=[*own, *routes], middleware=[Middleware(GZipMiddleware)])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # -- plumbing ------------------------------------------------------------------------

    def _endpoint(
        self, handler: Callable[[Request, _Params], Coroutine[Any, Any, Response]]
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request, await _read_params(request))
            except QueryError as exc:
                return _error(exc.error_type, str(exc))
            except Exception as exc:
                log.exception("%s %s failed", request.method, request.url.path)
                return _error("internal", f"unexpected error: {exc}")

        return endpoint

    async def _in_thread(self, work: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)

    async def _evaluate(
        self, run: Callable[[Engine, float], QueryResult], params: _Params
    ) -> tuple[QueryResult, float, float]:
        """Run a query in a worker thread under its time limit: ``(result, queued_s, eval_s)``.

        ``run(engine, timeout_s)`` evaluates it; ``timeout`` and ``lookback_delta`` come
        from ``params``.
        """
        timeout = self.engine.timeout_s
        if (text := params.get("timeout")) != "":
            try:
                timeout = min(timeout, parse_duration(text) / 1e9)
            except ValueError as exc:
                raise _invalid("timeout", str(exc)) from None
        engine = self.engine
        if (text := params.get("lookback_delta")) != "":
            try:
                lookback_ms = parse_duration(text) // 1_000_000
            except ValueError as exc:
                raise _bad(f"error parsing lookback delta duration: {exc}") from None
            if lookback_ms > 0:
                engine = copy.copy(self.engine)
                engine.lookback_delta_ms = lookback_ms
        began = time.monotonic()
        deadline = began + max(timeout, 0.0)
        queued: float | None = None
        with anyio.move_on_after(max(timeout, 0.0) + _GRACE_S):
            async with self._limiter:
                queued = time.monotonic() - began
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueryTimeout("query timed out in query queue")
                try:
                    result = await self._in_thread(lambda: run(engine, remaining))
                except QuerySyntaxError as exc:
                    raise _invalid("query", str(exc)) from None
                return result, queued, time.monotonic() - began - queued
        if queued is None:
            raise QueryTimeout("query timed out in query queue")
        raise QueryTimeout("query timed out in expression evaluation")

    def _query_response(
        self, result: QueryResult, params: _Params, limit: int, queued: float, took: float
    ) -> Response:
        warnings = list(result.warnings)
        if limit > 0 and isinstance(result.value, list) and len(result.value) > limit:
            result.value = result.value[:limit]
            warnings.append("results truncated due to limit")
        data = f'{{"resultType":"{result.result_type}","result":{_result_json(result)}'
        if params.get("stats") != "":
            samples = result.samples_loaded
            stats = {
                "timings": {
                    "evalTotalTime": took,
                    "resultSortTime": 0,
                    "queryPreparationTime": 0,
                    "innerEvalTime": took,
                    "execQueueTime": queued,
                    "execTotalTime": queued + took,
                },
                "samples": {"totalQueryableSamples": samples, "peakSamples": samples},
            }
            data += ',"stats":' + json.dumps(stats)
        return _success(data + "}", warnings, result.infos)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _select_labels(self, sets: list[list[Matcher]], start: int, end: int) -> list[Labels]:
        found: set[Labels] = set()
        for matchers in sets:
            found.update(series.labels for series in self.storage.select(matchers, start, end))
        return sorted(found)

    # -- endpoints -------------------------------------------------------------------------

    async def _query(self, request: Request, params: _Params) -> Response:
        limit = _parse_limit(params.get("limit"))
        time_ms = params.time("time", self._now_ms())
        query = params.get("query")
        result, queued, took = await self._evaluate(
            lambda engine, timeout: engine.instant_query(query, time_ms, timeout_s=timeout), params
        )
        return self._query_response(result, params, limit, queued, took)

    async def _query_range(self, request: Request, params: _Params) -> Response:
        limit = _parse_limit(params.get("limit"))
        bounds = []
        for name in ("start", "end"):
            try:
                bounds.append(parse_time(params.get(name)))
            except ValueError as exc:
                raise _invalid(name, str(exc)) from None
        start, end = bounds
        if end < start:
            raise _invalid("end", "end timestamp must not be before start time")
        try:
            step_ns = parse_duration(params.get("step"))
        except ValueError as exc:
            raise _invalid("step", str(exc)) from None
        step_ms = step_ns // 1_000_000
        if step_ms <= 0:  # below 1ms too: the engine steps in whole milliseconds
            raise _invalid(
                "step",
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer",
            )
        span_ns = min((end - start) * 1_000_000, _INT64_MAX)  # Go's Sub saturates
        if span_ns // step_ns > MAX_POINTS_PER_SERIES:
            raise _bad(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        query = params.get("query")
        result, queued, took = await self._evaluate(
            lambda engine, timeout: engine.range_query(
                query, start, end, step_ms, timeout_s=timeout
            ),
            params,
        )
        return self._query_response(result, params, limit, queued, took)

    async def _query_exemplars(self, request: Request, params: _Params) -> Response:
        start = params.time("start", MIN_TIME_MS)
        end = params.time("end", MAX_TIME_MS)
        if end < start:
            raise _bad("end timestamp must not be before start timestamp")
        try:
            expr = parse(params.get("query"))
        except QuerySyntaxError as exc:
            raise _bad(str(exc)) from None
        if not _has_selector(expr):
            return Response(status_code=204)
        return _success("[]")  # no exemplars are stored

    async def _format_query(self, request: Request, params: _Params) -> Response:
        try:
            expr = parse(params.get("query"))
        except QuerySyntaxError as exc:
            raise _invalid("query", str(exc)) from None
        return _success(json.dumps(expr.prettify()))

    async def _series(self, request: Request, params: _Params) -> Response:
        texts = params.getlist("match[]")
        if not texts:
            raise _bad("no match[] parameter provided")
        limit = _parse_limit(params.get("limit"))
        start = params.time("start", MIN_TIME_MS)
        end = params.time("end", MAX_TIME_MS)
        try:
            sets = _matcher_sets(texts)
        except QueryError as exc:
            raise _invalid("match[]", str(exc)) from None
        found = await self._in_thread(lambda: self._select_labels(sets, start, end))
        warnings = []
        if limit > 0 and len(found) > limit:
            found = found[:limit]
            warnings.append("results truncated due to limit")
        return _success("[" + ",".join(_labels_json(labels) for labels in found) + "]", warnings)

    async def _labels(self, request: Request, params: _Params) -> Response:
        limit = _parse_limit(params.get("limit"))
        start = params.time("start", MIN_TIME_MS)
        end = params.time("end", MAX_TIME_MS)
        sets = _matcher_sets(params.getlist("match[]"))

        def names() -> list[str]:
            if not sets:
                return sorted(self.storage.label_names())
            found = self._select_labels(sets, start, end)
            return sorted({name for labels in found for name, _ in labels})

        return self._string_list(await self._in_thread(names), limit)

    async def _label_values(self, request: Request, params: _Params) -> Response:
        name = unescape_label_name(request.path_params["name"])
        if not name:
            raise _bad(f"invalid label name: {go_quote(name)}")
        limit = _parse_limit(params.get("limit"))
        start = params.time("start", MIN_TIME_MS)
        end = params.time("end", MAX_TIME_MS)
        sets = _matcher_sets(params.getlist("match[]"))

        def values() -> list[str]:
            if not sets:
                return sorted(v for v in self.storage.label_values(name) if v)
            found = self._select_labels(sets, start, end)
            return sorted({v for labels in found for k, v in labels if k == name and v})

        return self._string_list(await self._in_thread(values), limit)

    @staticmethod
    def _string_list(items: list[str], limit: int) -> Response:
        warnings = []
        if limit > 0 and len(items) > limit:
            items = items[:limit]
            warnings.append("results truncated due to limit")
        return _success(json.dumps(items), warnings)

    async def _metadata(self, request: Request, params: _Params) -> Response:
        limits = []
        for name in ("limit", "limit_per_metric"):
            text = params.get(name)
            if text != "" and not _INT_RE.fullmatch(text):
                raise _bad(f"{name} must be a number")
            limits.append(int(text) if text else -1)
        limit, per_metric = limits
        metric = params.get("metric")
        source = self.metadata
        everything = await self._in_thread(source) if source is not None else {}
        out: dict[str, list[dict[str, str]]] = {}
        for name, entries in everything.items():
            if metric and name != metric:
                continue
            if limit >= 0 and len(out) >= limit:
                break
            kept = [dict(entry) for entry in entries]
            out[name] = kept[:per_metric] if per_metric > 0 else kept
        return _success(json.dumps(out))

    async def _buildinfo(self, request: Request, params: _Params) -> Response:
        return _success(json.dumps(self.build_info))

    async def _runtimeinfo(self, request: Request, params: _Params) -> Response:
        started = self.started.isoformat().replace("+00:00", "Z")
        info = {
            "startTime": started,
            "CWD": os.getcwd(),
            "hostname": platform.node(),
            "serverTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "reloadConfigSuccess": True,
            "lastConfigTime": started,
            "corruptionCount": 0,
            "goroutineCount": threading.active_count(),
            "GOMAXPROCS": os.cpu_count() or 1,
            "GOMEMLIMIT": 0,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": _retention_text(self.storage),
        }
        return _success(json.dumps(info))


def _has_selector(node: Any) -> bool:
    """Whether an expression reads any series (Prometheus's ``ExtractSelectors``)."""
    if isinstance(node, pp.VectorSelector):
        return True
    children: list[Any] = []
    if isinstance(node, pp.MatrixSelector):
        children = [node.vector_selector]
    elif isinstance(node, pp.BinaryExpr):
        children = [node.lhs, node.rhs]
    elif isinstance(node, pp.Call):
        children = list(node.args)
    elif isinstance(node, pp.AggregateExpr):
        children = [node.expr, node.param]
    elif isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        children = [node.expr]
    return any(_has_selector(child) for child in children if child is not None)
