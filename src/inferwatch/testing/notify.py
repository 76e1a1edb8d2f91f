"""Notifiers and receivers for tests of alert routing.

- :class:`CapturingNotifier`: a :class:`~inferwatch.alerting.notifiers.base.Notifier`
  that records what it is given, and can be told to fail (N times, or until told to
  stop), retryably or not.
- :class:`WebhookReceiver`: a real HTTP server on loopback that records the JSON bodies
  POSTed to it (an Alertmanager webhook target), and can be switched to answer errors.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from inferwatch._errors import NotifyError
from inferwatch.alerting.alert import Notification


class CapturingNotifier:
    """Records each notification delivered to it in :attr:`notifications`.

    ``fail_times(n)`` makes the next ``n`` calls raise; ``failing = True`` makes every
    call raise until it is set back to False. ``retryable`` is the raised
    :class:`~inferwatch.NotifyError`'s flag. Failed calls are counted in
    :attr:`attempts` but not recorded.
    """

    def __init__(self, kind: str = "webhook", *, send_resolved: bool = True) -> None:
        self.kind = kind
        self.send_resolved = send_resolved
        self.notifications: list[Notification] = []
        self.attempts = 0
        self.failing = False
        self.retryable = True
        self._fail_next = 0
        self._lock = threading.Lock()
        self._delivered = threading.Condition(self._lock)

    def fail_times(self, n: int, *, retryable: bool = True) -> None:
        """Make the next ``n`` calls fail."""
        with self._lock:
            self._fail_next = n
            self.retryable = retryable

    def notify(self, notification: Notification) -> None:
        with self._lock:
            self.attempts += 1
            if self.failing or self._fail_next > 0:
                self._fail_next = max(0, self._fail_next - 1)
                raise NotifyError("receiver unavailable (test)", retryable=self.retryable)
            self.notifications.append(notification)
            self._delivered.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Notification]:
        """Block until ``count`` notifications were recorded (AssertionError on timeout)."""
        with self._lock:
            if not self._delivered.wait_for(lambda: len(self.notifications) >= count, timeout):
                raise AssertionError(
                    f"{len(self.notifications)} notifications after {timeout}s, wanted {count}"
                )
            return list(self.notifications)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        receiver = self.server.receiver
        status = receiver.status
        if status < 300:
            receiver._record(self.path, json.loads(body or b"null"))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 recording JSON POST bodies in :attr:`requests`.

    Use as a context manager; :attr:`url` is its base URL. Set :attr:`status` to answer
    something else than 200 (e.g. 503) and record nothing.
    """

    def __init__(self, port: int = 0) -> None:
        self.status = 200
        self.requests: list[tuple[str, Any]] = []
        self._cond = threading.Condition()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def _record(self, path: str, body: Any) -> None:
        with self._cond:
            self.requests.append((path, body))
            self._cond.notify_all()

    @property
    def bodies(self) -> list[Any]:
        with self._cond:
            return [body for _, body in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Block until ``count`` bodies were recorded (AssertionError on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(
                    f"{len(self.requests)} requests after {timeout}s, wanted {count}"
                )
            return [body for _, body in self.requests]


__all__ = ["CapturingNotifier", "WebhookReceiver"]
