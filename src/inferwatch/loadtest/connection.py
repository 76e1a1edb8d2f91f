"""One keep-alive HTTP/1.1 client connection, as a bare :class:`asyncio.Protocol`.

A general HTTP client spends most of a small request's time in its own machinery; a
load generator must not, or it measures itself. A :class:`Connection` writes a request
that was built once into bytes and reads just enough of the answer to know where it
ends: the status line, ``Content-Length``, ``Transfer-Encoding: chunked`` or a body
that runs to the end of the connection, and ``Connection: close``. One request is in
flight per connection at a time (no pipelining). Everything runs in callbacks: no
coroutine, future or task per request.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from typing import Protocol, cast

_HEAD, _LENGTH, _CHUNKED, _TRAILER, _UNTIL_CLOSE = range(5)
_MAX_HEAD = 65536


class Owner(Protocol):
    """What a connection reports to: the engine that schedules requests."""

    def on_response(self, conn: Connection, status: int) -> None:
        """A whole response arrived; ``conn`` is idle again."""

    def on_failure(self, conn: Connection, kind: str) -> None:
        """The request in flight failed (``kind`` says how); ``conn`` is disconnected."""


def error_kind(exc: BaseException | None) -> str:
    """A short, stable name for a connection failure, used as a key in the report."""
    if exc is None:
        return "connection closed"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return "name resolution failed"
    if isinstance(exc, ssl.SSLError):
        return "TLS error"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"connection error ({errno.errorcode.get(exc.errno, exc.errno)})"
    return f"connection error ({type(exc).__name__})"


class Connection(asyncio.Protocol):
    """A client connection that sends ``request`` when told to and parses the answer.

    ``send(intended_ns)`` is called by the owner only when the connection is free
    (``busy`` is False); it connects first when needed. The owner learns the outcome
    through :meth:`Owner.on_response` or :meth:`Owner.on_failure`, and reads
    ``intended_ns`` and ``sent_ns`` of the finished request from the connection.
    """

    def __init__(
        self,
        owner: Owner,
        request: bytes,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        head_request: bool = False,
    ) -> None:
        self.owner = owner
        self.request = request
        self.host = host
        self.port = port
        self.tls = tls
        self.server_hostname = server_hostname
        self.head_request = head_request
        self.transport: asyncio.Transport | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.busy = False
        self.intended_ns = 0
        self.sent_ns = 0
        self._buf = bytearray()
        self._phase = _HEAD
        self._left = 0
        self._status = 0
        self._close_after = False

    # -- driven by the owner ------------------------------------------------------------

    def send(self, intended_ns: int) -> None:
        """Send the request now, on behalf of a request meant to start at ``intended_ns``."""
        self.busy = True
        self.intended_ns = intended_ns
        self.sent_ns = time.monotonic_ns()
        self._phase = _HEAD
        if self.transport is not None:
            self.transport.write(self.request)
        elif self.connecting is None:
            self.connecting = asyncio.get_running_loop().create_task(self._connect())

    async def connect(self) -> None:
        """Open the connection without sending (raises the connection's OSError)."""
        loop = asyncio.get_running_loop()
        await loop.create_connection(
            lambda: self,
            self.host,
            self.port,
            ssl=self.tls,
            server_hostname=self.server_hostname if self.tls else None,
        )

    def abort(self, kind: str) -> None:
        """Give up on the request in flight (a timeout): count it as ``kind``, drop the
        connection, and let a later :meth:`send` reconnect."""
        if not self.busy:
            return
        self._drop()
        self._fail(kind)

    def close(self) -> None:
        """Close the connection (at the end of the run)."""
        self._drop()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self._buf.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return  # dropped on purpose
        self.transport = None
        if not self.busy:
            return
        if self._phase == _UNTIL_CLOSE and exc is None:
            self._finish()
        else:
            self._fail(error_kind(exc))

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            self._drop()  # bytes nobody asked for: the stream is out of step
            return
        buf = self._buf
        if not buf and self._phase == _HEAD and self._whole(data):
            return
        buf += data
        if self._phase == _HEAD and not self._read_head():
            return
        phase = self._phase
        if phase == _LENGTH:
            if len(buf) >= self._left:
                self._finish()
        elif phase == _UNTIL_CLOSE:
            buf.clear()
        elif self._read_chunks():
            self._finish()

    # -- parsing ------------------------------------------------------------------------

    def _whole(self, data: bytes) -> bool:
        """The fast path: ``data`` is exactly one final response with a
        ``Content-Length`` (the usual case); finish it without buffering."""
        end = data.find(b"\r\n\r\n")
        if end < 0 or self.head_request:
            return False
        head = data[:end].lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0 or not head.startswith(b"http/1.1 ") or b"\r\ntransfer-encoding:" in head:
            return False
        line_end = head.find(b"\r\n", at + 17)
        length = head[at + 17 : line_end if line_end >= 0 else end]
        status = head[9:12]
        if not status.isdigit() or status[0] == 49 or not length.strip().isdigit():  # 49: "1"
            return False
        if len(data) - end - 4 != int(length):
            return False
        self._status = int(status)
        self._close_after = b"\r\nconnection: close" in head
        self._phase = _LENGTH
        self._finish()
        return True

    def _read_head(self) -> bool:
        """Parse the status line and headers; False while they are incomplete (or bad)."""
        buf = self._buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    self._bad()
                return False
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            if not head.startswith(b"http/1.") or not head[9:12].isdigit():
                self._bad()
                return False
            status = int(head[9:12])
            if status >= 200:
                break
        self._status = status
        keep_alive_10 = head.startswith(b"http/1.0") and b"\r\nconnection: keep-alive" not in head
        self._close_after = keep_alive_10 or b"\r\nconnection: close" in head
        if self.head_request or status in (204, 304):
            self._phase, self._left = _LENGTH, 0
        elif b"\r\ntransfer-encoding:" in head and b"chunked" in head:
            self._phase, self._left = _CHUNKED, -1
        else:
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._phase = _UNTIL_CLOSE
                buf.clear()
                return False
            line_end = head.find(b"\r\n", at + 17)
            try:
                self._left = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
            except ValueError:
                self._bad()
                return False
            self._phase = _LENGTH
        return True

    def _read_chunks(self) -> bool:
        """Consume chunked body bytes; True once the last chunk and trailers are in."""
        buf = self._buf
        pos = 0
        while self._phase == _CHUNKED:
            if self._left < 0:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                try:
                    size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
                except ValueError:
                    self._bad()
                    return False
                pos = eol + 2
                if size == 0:
                    self._phase = _TRAILER
                else:
                    self._left = size + 2  # the data and its CRLF
            else:
                take = min(self._left, len(buf) - pos)
                pos += take
                self._left -= take
                if self._left:
                    break
                self._left = -1
        del buf[:pos]
        if self._phase != _TRAILER:
            return False
        if buf.startswith(b"\r\n"):
            return True
        return buf.find(b"\r\n\r\n") >= 0

    def _finish(self) -> None:
        self._buf.clear()
        self.busy = False
        if self._close_after or self._phase == _UNTIL_CLOSE:
            self._drop()
        self.owner.on_response(self, self._status)

    def _bad(self) -> None:
        self._drop()
        self._fail("bad response")

    def _fail(self, kind: str) -> None:
        self.busy = False
        self.owner.on_failure(self, kind)

    def _drop(self) -> None:
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.abort()
        task, self.connecting = self.connecting, None
        if task is not None and not task.done():
            task.cancel()
        self._buf.clear()

    async def _connect(self) -> None:
        try:
            await self.connect()
        except asyncio.CancelledError:
            return
        except OSError as exc:
            self.connecting = None
            if self.busy:
                self._fail(error_kind(exc))
            return
        self.connecting = None
        if self.busy and self.transport is not None:
            self.transport.write(self.request)
