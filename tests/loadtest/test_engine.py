"""Load runs against a real uvicorn endpoint on loopback."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from inferwatch.loadtest import LoadSpec, run_load
from tests.loadtest.conftest import Endpoint


def test_closed_loop_counts_every_answer_and_sees_the_server_delay(
    endpoint: Endpoint, url: str
) -> None:
    endpoint.delay = 0.02
    report = run_load(LoadSpec(url=f"{url}/predict", concurrency=4, duration=1.5, warmup=0.3))

    assert report.mode == "closed"
    assert report.errors == {}
    assert report.requests == report.responses == report.latency.count > 0
    # Four connections, each at most one request per 20 ms.
    assert report.requests <= 4 * 1.5 / 0.02 + 4
    assert report.latency.p50 >= 0.02
    assert report.latency.p50 <= report.latency.p90 <= report.latency.p99 <= report.latency.max
    assert report.latency.max >= report.latency.mean >= 0.02
    # Warm-up requests reached the server but are not in the report.
    assert endpoint.count > report.requests


def test_open_loop_sends_the_requested_number_of_requests(url: str) -> None:
    report = run_load(LoadSpec(url=url, rate=100, connections=8, duration=2, warmup=0.2))

    assert report.mode == "open"
    assert report.requests + report.unsent == 200
    assert report.requests >= 180
    assert report.errors == {}
    assert sum(row["requests"] for row in report.timeline) == report.requests
    assert len(report.timeline) == 2


def test_a_server_stall_shows_in_corrected_latency_not_in_service_time(
    endpoint: Endpoint, url: str
) -> None:
    # 200 requests/s over two connections; the 100th request blocks the server for 1 s.
    # Only the two requests in flight see the stall as service time; the ~200 that were
    # meant to start during it wait for a connection, which the corrected latency counts.
    endpoint.stall_at = 100
    report = run_load(LoadSpec(url=url, rate=200, connections=2, duration=3, warmup=0.2))

    assert report.errors == {}
    assert report.latency.max >= 0.9
    assert report.latency.p99 >= 0.5
    assert report.service.max >= 0.9
    assert report.service.p99 < report.latency.p99 / 5
    assert report.latency.p90 > report.service.p90


def test_error_statuses_are_counted_by_status(endpoint: Endpoint, url: str) -> None:
    endpoint.fail_every = 4
    report = run_load(LoadSpec(url=url, concurrency=2, duration=1))

    failed = report.errors["HTTP 500"]
    assert set(report.errors) == {"HTTP 500"}
    assert abs(failed - report.requests / 4) <= 2
    assert report.responses == report.requests
    assert sum(row["errors"] for row in report.timeline) == failed


def test_requests_past_the_timeout_are_counted_as_timeouts(endpoint: Endpoint, url: str) -> None:
    endpoint.slow = 0.8
    report = run_load(LoadSpec(url=f"{url}/slow", concurrency=1, duration=1, timeout=0.3))

    assert report.errors["timeout"] >= 2
    assert report.responses == 0


def test_chunked_answers_are_read_to_their_end(url: str) -> None:
    report = run_load(LoadSpec(url=f"{url}/chunked", concurrency=2, duration=0.5))

    assert report.requests > 10
    assert report.errors == {}


def test_connection_refused_is_counted_once_the_server_is_gone() -> None:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: the server closes the connection after each answer, and the body
        # runs to the close; so every request opens a new connection.
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    timer = threading.Timer(0.8, stop)
    timer.start()
    try:
        port = server.server_address[1]
        report = run_load(
            LoadSpec(url=f"http://127.0.0.1:{port}/", rate=50, connections=2, duration=1.6)
        )
    finally:
        timer.join()
        thread.join(5)

    assert report.errors.get("connection refused", 0) > 0
    assert report.responses > 10
    # A connection made just before the server closed may be reset instead.
    assert set(report.errors) <= {"connection refused", "connection reset"}


def test_workers_split_the_schedule_and_merge_their_counts(url: str) -> None:
    report = run_load(LoadSpec(url=url, rate=100, connections=4, duration=1, workers=2))

    assert report.workers == 2
    assert report.requests + report.unsent == 100
    assert report.requests >= 90
    assert report.latency.count == report.requests
