"""A small threaded HTTP server for ``/metrics``, for scripts and batch workers."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from inferwatch.exposition import render
from inferwatch.sdk.registry import Registry


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = render(self.server.registry, self.headers.get("Accept"))
            self._reply(200, content_type, body)
        elif path in ("/", "/healthz"):
            self._reply(200, "text/plain; charset=utf-8", b"ok\n")
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found: try /metrics\n")

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: Registry


class MetricsServer:
    """Serves ``/metrics`` of ``registry`` on ``addr:port`` from a daemon thread."""

    def __init__(self, registry: Registry, *, port: int = 9108, addr: str = "127.0.0.1") -> None:
        self._server = _Server((addr, port), _Handler)
        self._server.registry = registry
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (useful with ``port=0``)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="inferwatch-metrics", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
