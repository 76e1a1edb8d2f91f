"""What a load test sends, where, and how: :class:`LoadSpec`, checked at construction.

The request is built once into raw HTTP/1.1 bytes (:meth:`LoadSpec.request_bytes`), so
the load loop only writes a ready buffer.
"""

from __future__ import annotations

import math
import urllib.parse
from dataclasses import dataclass, field

from inferwatch._errors import ConfigError, InferwatchError
from inferwatch._version import __version__

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class TargetUnreachable(InferwatchError, ConnectionError):
    """The load test's URL cannot be reached at the start: the message names the
    address and the reason (name resolution failed, connection refused, ...)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed ``http://`` or ``https://`` URL: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    host_header: str

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def address(self) -> str:
        """``host:port`` as shown in error messages."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_url(url: str) -> Target:
    """Parse ``url``; raise :class:`~inferwatch.ConfigError` naming it when it is not
    an absolute ``http://`` or ``https://`` URL with a host."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad URL {url!r}: {exc}", field="url", value=url) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"bad URL {url!r}: expected http://HOST[:PORT]/PATH or https://...",
            field="url",
            value=url,
        )
    if any(c in url for c in " \r\n\t"):
        raise ConfigError(f"bad URL {url!r}: it contains whitespace", field="url", value=url)
    default_port = 443 if parts.scheme == "https" else 80
    host = parts.hostname
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if port in (None, default_port) else f"{shown_host}:{port}"
    return Target(parts.scheme, host, port or default_port, path, host_header)


def parse_header(text: str) -> tuple[str, str]:
    """Split ``'Name: value'`` into its parts; raise :class:`~inferwatch.ConfigError`
    naming the header when it is not one."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or not set(name) <= _TOKEN_CHARS or any(c in value for c in "\r\n"):
        raise ConfigError(
            f"bad header {text!r}: expected 'Name: value'", field="header", value=text
        )
    return name, value.strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadSpec:
    """One load test.

    Give ``rate`` (requests per second, open loop: requests start on a fixed schedule
    whatever the server does, over ``connections`` keep-alive connections) or
    ``concurrency`` (closed loop: that many connections, each sending its next request
    as soon as the previous answer arrives), not both. ``warmup`` seconds run first and
    are not counted; then ``duration`` seconds are measured. ``timeout`` is the longest
    a request may wait for its answer. ``workers`` splits the load over that many
    processes (each with its share of the rate or of the connections).
    """

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    content_type: str | None = None
    rate: float | None = None
    concurrency: int | None = None
    connections: int = 64
    duration: float = 10.0
    warmup: float = 0.0
    timeout: float = 10.0
    workers: int = 1
    target: Target = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", parse_url(self.url))
        if not self.method or not set(self.method) <= _TOKEN_CHARS:
            raise ConfigError(f"bad method {self.method!r}", field="method", value=self.method)
        if (self.rate is None) == (self.concurrency is None):
            raise ConfigError(
                "give either a rate (open loop) or a concurrency (closed loop), not "
                + ("both" if self.rate is not None else "neither"),
                field="rate",
            )
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError(f"rate must be above 0, got {self.rate!r}", field="rate")
        for name in ("concurrency", "connections", "workers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be at least 1, got {value!r}", field=name)
        for name in ("duration", "timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be above 0 seconds, got {value!r}", field=name)
        if not (math.isfinite(self.warmup) and self.warmup >= 0):
            raise ConfigError(f"warmup must be 0 or more, got {self.warmup!r}", field="warmup")
        if self.workers > self.parallelism:
            raise ConfigError(
                f"workers ({self.workers}) must not exceed the connections "
                f"({self.parallelism}): each worker needs at least one",
                field="workers",
            )

    @property
    def open_loop(self) -> bool:
        """True for a fixed-rate run (``rate`` given), False for fixed concurrency."""
        return self.rate is not None

    @property
    def parallelism(self) -> int:
        """The number of connections in all: ``concurrency`` or ``connections``."""
        return self.concurrency if self.concurrency is not None else self.connections

    def request_bytes(self) -> bytes:
        """The whole request as it goes on the wire (HTTP/1.1, keep-alive)."""
        t = self.target
        names = {name.lower() for name, _ in self.headers}
        lines = [f"{self.method} {t.path} HTTP/1.1"]
        if "host" not in names:
            lines.append(f"Host: {t.host_header}")
        if "user-agent" not in names:
            lines.append(f"User-Agent: inferwatch-loadtest/{__version__}")
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        body = self.body or b""
        if self.body is not None or self.method in ("POST", "PUT", "PATCH"):
            if "content-length" not in names:
                lines.append(f"Content-Length: {len(body)}")
            content_type = self.content_type
            if content_type is None and self.body is not None:
                content_type = "application/json"
            if content_type and "content-type" not in names:
                lines.append(f"Content-Type: {content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
