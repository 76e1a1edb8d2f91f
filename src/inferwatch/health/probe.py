"""Synthetic probes of model endpoints: the blackbox exporter, for model APIs.

::

    runner = ProbeRunner([
        Probe(
            "digits-predict",
            "http://127.0.0.1:8000/predict",
            method="POST",
            body={"instances": [[0.0] * 64]},
            interval_s=15,
            timeout_s=5,
            checks=[PathExists("$.predictions[0]"), ValueInRange("$.predictions[0]", 0, 9)],
        )
    ])
    registry.register(runner)      # probe_success, probe_duration_seconds, ... per probe
    runner.start()                 # a background thread; runner.stop() ends it

Each probe sends its request every ``interval_s`` and succeeds when the answer arrives
within ``timeout_s`` with an expected status and, when it has ``checks``, a JSON body
that passes every check. Probes run as separate tasks on one event loop in one thread,
so a slow or dead endpoint delays nobody but its own probe. Every probe opens a fresh
connection (no keep-alive), as the blackbox exporter does, so the duration includes
connecting.

JSON paths use a small JSONPath subset: ``$`` is the document, ``.name`` a key,
``[3]`` an index (``[-1]`` the last item), ``["a key"]`` any key. Probe files (YAML, a
``probes:`` list; see :func:`load_probe_file`) are validated with errors naming the
file, line, field and offending value.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from inferwatch._duration import check_seconds
from inferwatch._errors import ConfigError
from inferwatch.rules.yamlpos import FileProblems, config_document
from inferwatch.sdk.family import FamilySnapshot
from inferwatch.sdk.logs import log_probe_result

if TYPE_CHECKING:
    import httpx
    from yaml.nodes import Node

__all__ = [
    "MAX_BODY_BYTES",
    "METHODS",
    "JSONCheck",
    "PathExists",
    "Probe",
    "ProbeResult",
    "ProbeRunner",
    "ValueInRange",
    "ValueMatches",
    "evaluate_response",
    "load_probe_file",
    "parse_json_path",
    "parse_probe_file",
]

logger = logging.getLogger(__name__)

#: HTTP methods a probe may use.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: A longer body fails the probe (reason ``body``) instead of being read into memory.
MAX_BODY_BYTES = 16 * 2**20
#: Why a probe failed: the ``reason`` label of ``inferwatch_probe_failures_total``.
FailureKind = Literal["", "timeout", "connection", "status", "body", "check"]

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RESERVED_LABELS = frozenset({"probe", "instance", "reason"})
_PATH_STEP = re.compile(
    r"""\.([A-Za-z_][A-Za-z0-9_\-]*)"""  # .name
    r"""|\[(-?\d+)\]"""  # [3]
    r"""|\[\s*"((?:[^"\\]|\\.)*)"\s*\]"""  # ["a key"]
    r"""|\[\s*'((?:[^'\\]|\\.)*)'\s*\]"""  # ['a key']
)
_MISSING = object()

# -- JSON paths and checks ------------------------------------------------------------


def parse_json_path(path: str) -> tuple[str | int, ...]:
    """The steps of a JSON path (``$.predictions[0].label`` -> ``("predictions", 0,
    "label")``). Raises :class:`ConfigError` naming the position of a syntax error."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ConfigError(
            f"JSON path must start with '$' (the document), e.g. '$.predictions[0]'; got {path!r}",
            field="path",
            value=path,
        )
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        match = _PATH_STEP.match(path, pos)
        if match is None:
            raise ConfigError(
                f"invalid JSON path {path!r} at character {pos + 1}: expected '.key', "
                f"'[index]' or '[\"key\"]'",
                field="path",
                value=path,
            )
        name, index, dq, sq = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            raw = name if name is not None else dq if dq is not None else sq
            steps.append(re.sub(r"\\(.)", r"\1", raw) if name is None else raw)
        pos = match.end()
    return tuple(steps)


def _lookup(document: Any, steps: tuple[str | int, ...]) -> tuple[Any, str]:
    """The value at ``steps``, or ``(_MISSING, why)``."""
    value = document
    for depth, step in enumerate(steps):
        if isinstance(step, int):
            if not isinstance(value, list):
                return _MISSING, f"step {depth + 1} indexes [{step}] into a {_kind(value)}"
            if not -len(value) <= step < len(value):
                return _MISSING, f"index [{step}] is out of range (length {len(value)})"
            value = value[step]
        else:
            if not isinstance(value, dict):
                return _MISSING, f"step {depth + 1} looks up {step!r} in a {_kind(value)}"
            if step not in value:
                return _MISSING, f"no key {step!r}"
            value = value[step]
    return value, ""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number"
    )


@dataclass(frozen=True, slots=True)
class PathExists:
    """Passes when the JSON body has a value at ``path`` (``null`` counts)."""

    path: str
    _steps: tuple[str | int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_steps", parse_json_path(self.path))

    def check(self, document: Any) -> str | None:
        """None when the check passes, else the reason it fails."""
        _, why = _lookup(document, self._steps)
        return f"{self.path} not found: {why}" if why else None


@dataclass(frozen=True, slots=True)
class ValueInRange:
    """Passes when the value at ``path`` is a number within ``[min, max]`` (inclusive;
    either bound may be None)."""

    path: str
    min: float | None = None
    max: float | None = None
    _steps: tuple[str | int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_steps", parse_json_path(self.path))
        for name in ("min", "max"):
            bound = getattr(self, name)
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int | float) or math.isnan(bound)
            ):
                raise ConfigError(
                    f"range {name} must be a number, got {bound!r}", field=name, value=bound
                )
        if self.min is None and self.max is None:
            raise ConfigError("a range check needs min, max or both", field="min", value=None)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigError(
                f"range min {self.min!r} is above max {self.max!r}", field="min", value=self.min
            )

    def check(self, document: Any) -> str | None:
        value, why = _lookup(document, self._steps)
        if why:
            return f"{self.path} not found: {why}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{self.path} is {_short_json(value)}, not a number"
        low = -math.inf if self.min is None else self.min
        high = math.inf if self.max is None else self.max
        if not low <= value <= high:
            return f"{self.path} is {value!r}, outside [{_bound(self.min)}, {_bound(self.max)}]"
        return None


@dataclass(frozen=True, slots=True)
class ValueMatches:
    """Passes when the value at ``path`` matches ``regex`` (``re.search``: anchor it with
    ``^...$`` for a whole match). A non-string value is matched as its JSON text."""

    path: str
    regex: str
    _steps: tuple[str | int, ...] = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_steps", parse_json_path(self.path))
        try:
            object.__setattr__(self, "_pattern", re.compile(self.regex))
        except (re.error, TypeError) as exc:
            raise ConfigError(
                f"invalid regex {self.regex!r}: {exc}", field="regex", value=self.regex
            ) from None

    def check(self, document: Any) -> str | None:
        value, why = _lookup(document, self._steps)
        if why:
            return f"{self.path} not found: {why}"
        text = value if isinstance(value, str) else json.dumps(value)
        if self._pattern.search(text) is None:
            return f"{self.path} is {_short_json(value)}, which does not match /{self.regex}/"
        return None


JSONCheck = PathExists | ValueInRange | ValueMatches
_CHECK_TYPES = (PathExists, ValueInRange, ValueMatches)


def _bound(value: float | None) -> str:
    return "-inf" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _short_json(value: Any, limit: int = 80) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- probes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Probe:
    """One synthetic probe: what to send, how often, and what counts as success.

    ``body`` is bytes or text sent as is, or a dict/list sent as JSON (with
    ``Content-Type: application/json`` unless ``headers`` set one). ``labels`` are
    added to the probe's series (``model``, ``version``, ``env``, ...). Invalid values
    raise :class:`ConfigError` naming the field.
    """

    name: str
    url: str
    method: str = "GET"
    body: bytes | str | Mapping[str, Any] | Sequence[Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    interval_s: float = 15.0
    timeout_s: float = 5.0
    expected_status: Sequence[int] = (200,)
    checks: Sequence[JSONCheck] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(
                f"probe name must be a non-empty string, got {self.name!r}",
                field="name",
                value=self.name,
            )
        _check_url(self.url)
        method = self.method.upper() if isinstance(self.method, str) else self.method
        if method not in METHODS:
            raise ConfigError(
                f"unknown HTTP method {self.method!r}; use one of {', '.join(sorted(METHODS))}",
                field="method",
                value=self.method,
            )
        object.__setattr__(self, "method", method)
        for name in ("interval_s", "timeout_s"):
            check_seconds(name, getattr(self, name))
        if self.timeout_s > self.interval_s:
            raise ConfigError(
                f"timeout {self.timeout_s:g}s is longer than the interval {self.interval_s:g}s; "
                "make the timeout at most the interval",
                field="timeout_s",
                value=self.timeout_s,
            )
        statuses = (
            (self.expected_status,)
            if isinstance(self.expected_status, int)
            else self.expected_status
        )
        if not statuses or not all(
            isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses
        ):
            raise ConfigError(
                f"expected_status must be HTTP status codes (100-599), got "
                f"{self.expected_status!r}",
                field="expected_status",
                value=self.expected_status,
            )
        object.__setattr__(self, "expected_status", tuple(statuses))
        headers = _string_map("headers", self.headers)
        body = self.body
        if isinstance(body, Mapping | list | tuple):
            body = json.dumps(body).encode()
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode()
        elif body is not None and not isinstance(body, bytes):
            raise ConfigError(
                f"body must be bytes, text, a dict or a list, got {type(body).__name__}",
                field="body",
                value=body,
            )
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "headers", headers)
        checks = tuple(self.checks)
        for i, check in enumerate(checks):
            if not isinstance(check, _CHECK_TYPES):
                raise ConfigError(
                    f"checks[{i}] must be PathExists, ValueInRange or ValueMatches, got {check!r}",
                    field=f"checks[{i}]",
                    value=check,
                )
        object.__setattr__(self, "checks", checks)
        labels = _string_map("labels", self.labels)
        for key in labels:
            if not _LABEL_NAME.fullmatch(key) or key in _RESERVED_LABELS:
                raise ConfigError(
                    f"invalid label name {key!r} in labels (a Prometheus label name, not "
                    f"{', '.join(sorted(_RESERVED_LABELS))})",
                    field="labels",
                    value=key,
                )
        object.__setattr__(self, "labels", labels)

    def __repr__(self) -> str:
        return f"Probe({self.name!r}, {self.method} {self.url!r})"


def _check_url(url: object) -> None:
    problem = ""
    if not isinstance(url, str):
        problem = "must be a string"
    else:
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError on a bad port
        except ValueError as exc:
            problem = str(exc)
        else:
            if parts.scheme not in ("http", "https"):
                problem = "must start with http:// or https://"
            elif not parts.hostname:
                problem = "has no host"
    if problem:
        raise ConfigError(f"invalid URL {url!r}: {problem}", field="url", value=url)


def _string_map(name: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(
            f"{name} must map strings to strings, got {value!r}", field=name, value=value
        )
    return dict(value)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one run of a probe.

    ``status_code`` is 0 when no response arrived. ``failure`` is ``""`` on success, or
    ``timeout``, ``connection``, ``status``, ``body`` (unreadable, not JSON, too large)
    or ``check`` (a JSON check failed); ``reason`` says it in words.
    """

    probe: str
    success: bool
    duration_seconds: float
    status_code: int = 0
    failure: FailureKind = ""
    reason: str = ""
    failed_checks: int = 0


def evaluate_response(probe: Probe, status_code: int, body: bytes) -> tuple[FailureKind, str, int]:
    """Judge a response: ``(failure kind, reason, failed checks)``; ``("", "", 0)`` is a
    pass. Pure: no I/O, so checks are tested without a server."""
    if status_code not in probe.expected_status:
        expected = ", ".join(str(s) for s in probe.expected_status)
        return "status", f"status {status_code}, expected {expected}", 0
    if not probe.checks:
        return "", "", 0
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return "body", f"body is not JSON ({exc}): {_short_text(body)}", 0
    reasons = [r for r in (check.check(document) for check in probe.checks) if r is not None]
    if reasons:
        return "check", "; ".join(reasons), len(reasons)
    return "", "", 0


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _short_text(body: bytes, limit: int = 80) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return repr(text + ("..." if len(body) > limit else ""))


async def run_probe(client: httpx.AsyncClient, probe: Probe) -> ProbeResult:
    """Run ``probe`` once with ``client``; never raises (a failure is a result)."""
    import httpx

    t0 = time.perf_counter()
    status = 0
    failure: FailureKind = ""
    reason = ""
    failed = 0
    try:
        async with asyncio.timeout(probe.timeout_s):
            async with client.stream(
                probe.method,
                probe.url,
                content=probe.body,  # type: ignore[arg-type]
                headers=probe.headers,
                timeout=probe.timeout_s,
            ) as response:
                status = response.status_code
                body = await _read(response)
        if body is None:
            failure, reason = "body", f"body is longer than {MAX_BODY_BYTES} bytes"
        else:
            failure, reason, failed = evaluate_response(probe, status, body)
    except (TimeoutError, httpx.TimeoutException):
        failure, reason = "timeout", f"no complete answer within {probe.timeout_s:g}s"
    except Exception as exc:  # httpx.ConnectError, a bad header value, ...
        failure, reason = "connection", _describe(exc)
    return ProbeResult(
        probe.name, not failure, time.perf_counter() - t0, status, failure, reason, failed
    )


async def _read(response: httpx.Response) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# -- the runner ----------------------------------------------------------------------------


class ProbeRunner:
    """Runs probes at their intervals on a background thread and exports their results.

    Register it in a registry (it is a collector) to expose, per probe (labels
    ``probe``, ``instance`` = the URL, plus the probe's ``labels``): ``probe_success``,
    ``probe_duration_seconds``, ``probe_http_status_code``, ``probe_failed_checks``,
    ``inferwatch_probe_runs_total`` and ``inferwatch_probe_failures_total{reason}``.
    ``transport`` (an ``httpx.AsyncBaseTransport``) and ``verify`` go to the HTTP client.
    :meth:`run_once` runs every probe once without the thread.
    """

    def __init__(
        self,
        probes: Iterable[Probe] = (),
        *,
        transport: Any | None = None,
        verify: bool | str = True,
    ) -> None:
        self._lock = threading.Lock()
        self._probes: dict[str, Probe] = {}
        self._results: dict[str, ProbeResult] = {}
        self._runs: dict[str, float] = {}
        self._failures: dict[tuple[str, str], float] = {}
        self._transport = transport
        self._verify = verify
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        for probe in probes:
            self.add(probe)

    @property
    def probes(self) -> list[Probe]:
        """The probes, in the order added."""
        with self._lock:
            return list(self._probes.values())

    @property
    def running(self) -> bool:
        """Whether the background thread is probing."""
        with self._lock:
            return self._thread is not None

    def results(self) -> dict[str, ProbeResult]:
        """The latest result of each probe that has run, by name."""
        with self._lock:
            return dict(self._results)

    def add(self, probe: Probe) -> None:
        """Add a probe (it starts at once when the runner is running)."""
        if not isinstance(probe, Probe):
            raise ConfigError(f"expected a Probe, got {probe!r}", field="probe", value=probe)
        with self._lock:
            if probe.name in self._probes:
                raise ConfigError(
                    f"a probe named {probe.name!r} is already registered; names must be unique",
                    field="name",
                    value=probe.name,
                )
            self._probes[probe.name] = probe
            loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._spawn, probe)

    # -- running -------------------------------------------------------------------------

    def start(self) -> ProbeRunner:
        """Start the background thread (once; later calls do nothing). Returns self."""
        with self._lock:
            if self._thread is not None:
                return self
            started = threading.Event()
            self._thread = threading.Thread(
                target=lambda: asyncio.run(self._main(started)),
                name="inferwatch-probes",
                daemon=True,
            )
            self._thread.start()
        started.wait()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop probing and wait up to ``timeout`` seconds for the thread to end."""
        with self._lock:
            thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        with self._lock:
            self._thread = None

    def __enter__(self) -> ProbeRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_once(self) -> dict[str, ProbeResult]:
        """Run every probe once, concurrently, and return the results by name.

        Records them like the background runs. Not from inside a running event loop:
        use :meth:`run_once_async` there.
        """
        return asyncio.run(self.run_once_async())

    async def run_once_async(self) -> dict[str, ProbeResult]:
        """:meth:`run_once` for async callers."""
        async with self._new_client() as client:
            results = await asyncio.gather(*(run_probe(client, p) for p in self.probes))
        for result in results:
            self._record(result)
        return {r.probe: r for r in results}

    def _new_client(self) -> httpx.AsyncClient:
        import httpx

        return httpx.AsyncClient(
            transport=self._transport,
            verify=self._verify,
            follow_redirects=False,
            # A fresh connection per probe (as the blackbox exporter) and no pool limit,
            # so one hung endpoint cannot hold connections another probe needs.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        )

    async def _main(self, started: threading.Event) -> None:
        self._stop = asyncio.Event()
        try:
            async with self._new_client() as client:
                self._client = client
                with self._lock:
                    self._loop = asyncio.get_running_loop()
                    probes = list(self._probes.values())
                for probe in probes:
                    self._spawn(probe)
                started.set()
                await self._stop.wait()
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            with self._lock:
                self._loop = None
                self._client = None
            started.set()

    def _spawn(self, probe: Probe) -> None:
        task = asyncio.get_running_loop().create_task(self._every(probe))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _every(self, probe: Probe) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            client = self._client
            if client is None:
                return
            try:
                self._record(await run_probe(client, probe))
            except Exception as exc:  # pragma: no cover - run_probe does not raise
                logger.warning("probe %s failed unexpectedly: %r", probe.name, exc)
            next_at += probe.interval_s
            now = loop.time()
            if next_at < now:  # fell behind (a suspended host): skip the missed runs
                next_at = now
            await asyncio.sleep(next_at - now)

    def _record(self, result: ProbeResult) -> None:
        with self._lock:
            probe = self._probes.get(result.probe)
            self._results[result.probe] = result
            self._runs[result.probe] = self._runs.get(result.probe, 0.0) + 1.0
            if result.failure:
                key = (result.probe, result.failure)
                self._failures[key] = self._failures.get(key, 0.0) + 1.0
        if result.failure:
            logger.debug("probe %s failed (%s): %s", result.probe, result.failure, result.reason)
        log_probe_result(
            probe=result.probe,
            url=probe.url if probe is not None else "",
            success=result.success,
            duration_seconds=result.duration_seconds,
            status_code=result.status_code,
            failure=result.failure or None,
            reason=result.reason or None,
            labels=probe.labels if probe is not None else None,
        )

    # -- metrics -------------------------------------------------------------------------

    def collect(self) -> list[FamilySnapshot]:
        """The families of every probe that has run at least once."""
        with self._lock:
            probes = dict(self._probes)
            results = dict(self._results)
            runs = dict(self._runs)
            failures = dict(self._failures)
        extra = tuple(sorted({k for p in probes.values() for k in p.labels}))
        names = ("probe", "instance", *extra)

        def family(
            name: str, doc: str, type_: Literal["gauge", "counter"], unit: str = ""
        ) -> FamilySnapshot:
            return FamilySnapshot(name, doc, type_, names, unit=unit, merge="local")

        success = family("probe_success", "1 if the last probe run succeeded, else 0.", "gauge")
        duration = family(
            "probe_duration_seconds",
            "Duration of the last probe run (connect to last byte), in seconds.",
            "gauge",
            "seconds",
        )
        status = family(
            "probe_http_status_code",
            "HTTP status of the last probe response; 0 when none arrived.",
            "gauge",
        )
        failed_checks = family(
            "probe_failed_checks", "JSON checks that failed on the last probe run.", "gauge"
        )
        total = family(
            "inferwatch_probe_runs_total", "Probe runs since the runner started.", "counter"
        )
        failed = FamilySnapshot(
            "inferwatch_probe_failures_total",
            "Failed probe runs, by reason: timeout, connection, status, body or check.",
            "counter",
            (*names, "reason"),
            merge="local",
        )
        for name, result in results.items():
            probe = probes.get(name)
            if probe is None:
                continue
            key = (name, probe.url, *(probe.labels.get(k, "") for k in extra))
            success.samples[key] = 1.0 if result.success else 0.0
            duration.samples[key] = result.duration_seconds
            status.samples[key] = float(result.status_code)
            failed_checks.samples[key] = float(result.failed_checks)
            total.samples[key] = runs.get(name, 0.0)
        for (name, reason), count in failures.items():
            probe = probes.get(name)
            if probe is not None:
                key = (name, probe.url, *(probe.labels.get(k, "") for k in extra))
                failed.samples[(*key, reason)] = count
        return [success, duration, status, failed_checks, total, failed]


# -- probe files -----------------------------------------------------------------------------

_FILE_FIELDS = ("probes",)
_PROBE_FIELDS = (
    "name",
    "url",
    "method",
    "headers",
    "body",
    "interval",
    "timeout",
    "expected_status",
    "labels",
    "checks",
)
_CHECK_FIELDS = ("type", "path", "min", "max", "regex")
_CHECK_KINDS = ("exists", "range", "regex")
# Probe's Python field -> the key in the file.
_FILE_NAMES = {"interval_s": "interval", "timeout_s": "timeout"}


def load_probe_file(path: str | os.PathLike[str]) -> list[Probe]:
    """Read and validate a probe file; see :func:`parse_probe_file`."""
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{file}: cannot read probe file: {reason}", value=file) from None
    return parse_probe_file(text, file=file)


def parse_probe_file(text: str, *, file: str = "<string>") -> list[Probe]:
    """Parse a probe file::

        probes:
          - name: digits-predict
            url: http://127.0.0.1:8000/predict
            method: POST                          # default GET
            headers: {Authorization: Bearer x}
            body: {instances: [[0, 0, 0]]}        # text, or a map/list sent as JSON
            interval: 15s                         # Prometheus durations; default 15s
            timeout: 5s                           # default 5s, at most the interval
            expected_status: [200]                # or one code; default 200
            labels: {model: digits, version: "1"}
            checks:
              - {type: exists, path: "$.predictions[0]"}
              - {type: range, path: "$.predictions[0]", min: 0, max: 9}
              - {type: regex, path: "$.model", regex: "^digits$"}

    Raises :class:`ConfigError` listing every problem, one per line, as
    ``file:line: field: reason``; its ``field`` and ``value`` are the first problem's.
    """
    root = config_document(text, file)
    reader = _FileReader(file)
    probes = reader.read(root) if root is not None else []
    reader.raise_if_any()
    return probes


class _FileReader(FileProblems):
    def read(self, root: Node) -> list[Probe]:
        return self.named_list(root, _FILE_FIELDS, "probe", self._probe, lambda p: p.name)

    def _probe(self, where: str, node: Node) -> Probe | None:
        from yaml.nodes import ScalarNode

        fields = self.decoder.fields(node, "probe", _PROBE_FIELDS)
        if fields is None:
            return None
        kwargs: dict[str, Any] = {}
        nodes: dict[str, Node] = {}
        ok = True
        for key in ("name", "url"):
            if key not in fields:
                self.problem(node, f"{where}.{key}", f"a probe needs a {key}", None)
                ok = False
        for key, (_, value) in fields.items():
            nodes[key] = value
            name = f"{where}.{key}"
            if key in ("name", "url", "method"):
                text = self.decoder.string(value)
                ok = ok and text is not None
                kwargs[key] = text
            elif key in ("headers", "labels"):
                mapping = self.decoder.string_map(value)
                ok = ok and mapping is not None
                kwargs[key] = {k: v for k, (v, _) in (mapping or {}).items()}
            elif key == "body":
                if self.decoder.is_null(value):
                    kwargs["body"] = None
                elif isinstance(value, ScalarNode):
                    kwargs["body"] = self.decoder.string(value)
                else:
                    kwargs["body"] = _python(value)
            elif key in ("interval", "timeout"):
                seconds = self._duration(name, value)
                ok = ok and seconds is not None
                kwargs[f"{key}_s"] = seconds
            elif key == "expected_status":
                codes = self._statuses(name, value)
                ok = ok and codes is not None
                kwargs[key] = codes
            elif key == "checks":
                checks = self._checks(name, value)
                ok = ok and checks is not None
                kwargs[key] = checks
        if not ok:
            return None
        try:
            return Probe(**kwargs)
        except ConfigError as exc:
            key = _FILE_NAMES.get(exc.field or "", exc.field or "")
            at = nodes.get(key, node)
            shown = _text(at) if key in nodes else exc.value
            self.problem(at, f"{where}.{key}", str(exc), shown)
            return None

    def _duration(self, name: str, node: Node) -> float | None:
        from inferwatch._duration import duration_ms

        text = self.decoder.string(node)
        if text is None:
            return None
        ms = duration_ms(text)
        if ms is None or ms == 0:
            self.problem(
                node,
                name,
                f"invalid duration {text!r}: use Prometheus units above zero, e.g. '15s', "
                "'1m30s', '500ms'",
                text,
            )
            return None
        return ms / 1000

    def _statuses(self, name: str, node: Node) -> list[int] | None:
        from yaml.nodes import SequenceNode

        items = self.decoder.sequence(node, "[]int") if isinstance(node, SequenceNode) else [node]
        codes: list[int] = []
        for item in items:
            code = self.decoder.integer(item)
            if code is None:
                return None
            if not 100 <= code <= 599:
                self.problem(item, name, f"{code} is not an HTTP status code (100-599)", code)
                return None
            codes.append(code)
        if not codes:
            self.problem(node, name, "expected_status needs at least one status code", None)
            return None
        return codes

    def _checks(self, name: str, node: Node) -> list[JSONCheck] | None:
        checks: list[JSONCheck] = []
        ok = True
        for i, item in enumerate(self.decoder.sequence(node, "[]check")):
            check = self._check(f"{name}[{i}]", item)
            ok = ok and check is not None
            if check is not None:
                checks.append(check)
        return checks if ok else None

    def _check(self, where: str, node: Node) -> JSONCheck | None:
        fields = self.decoder.fields(node, "check", _CHECK_FIELDS)
        if fields is None:
            return None
        values: dict[str, Node] = {k: v for k, (_, v) in fields.items()}
        keys: dict[str, Node] = {k: key for k, (key, _) in fields.items()}
        if "type" not in values:
            self.problem(
                node,
                f"{where}.type",
                f"a check needs a type: one of {', '.join(_CHECK_KINDS)}",
                None,
            )
            return None
        kind = self.decoder.string(values["type"])
        if kind not in _CHECK_KINDS:
            self.problem(
                values["type"],
                f"{where}.type",
                f"unknown check type {kind!r}; use one of {', '.join(_CHECK_KINDS)}",
                kind,
            )
            return None
        allowed = {"exists": {"type", "path"}, "range": {"type", "path", "min", "max"}}.get(
            kind, {"type", "path", "regex"}
        )
        for key in values:
            if key not in allowed:
                self.problem(
                    keys[key],
                    f"{where}.{key}",
                    f"a {kind} check takes no {key!r}",
                    _text(values[key]),
                )
                return None
        if "path" not in values:
            self.problem(node, f"{where}.path", f"a {kind} check needs a path", None)
            return None
        path = self.decoder.string(values["path"])
        if path is None:
            return None
        args: dict[str, Any] = {"path": path}
        if kind == "range":
            for bound in ("min", "max"):
                if bound in values:
                    number = self._number(f"{where}.{bound}", values[bound])
                    if number is None:
                        return None
                    args[bound] = number
        elif kind == "regex":
            if "regex" not in values:
                self.problem(node, f"{where}.regex", "a regex check needs a regex", None)
                return None
            args["regex"] = self.decoder.string(values["regex"])
            if args["regex"] is None:
                return None
        cls: type[JSONCheck] = {"exists": PathExists, "range": ValueInRange}.get(kind, ValueMatches)
        try:
            return cls(**args)
        except ConfigError as exc:
            at = values.get(exc.field or "", node)
            self.problem(at, f"{where}.{exc.field}", str(exc), exc.value)
            return None

    def _number(self, name: str, node: Node) -> float | None:
        from inferwatch.rules.yamlpos import short_tag

        tag = short_tag(node)
        if tag in ("!!int", "!!float"):
            try:
                return float(str(node.value).replace("_", ""))
            except ValueError:
                pass
        self.problem(node, name, f"must be a number, got {_text(node)!r}", _text(node))
        return None


def _text(node: Node) -> object:
    from yaml.nodes import ScalarNode

    return str(node.value) if isinstance(node, ScalarNode) else _python(node)


def _python(node: Node) -> Any:
    """A YAML node as plain Python data (for JSON bodies)."""
    import yaml

    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()
