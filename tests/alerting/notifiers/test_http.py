"""Tests for notifiers/http.py, and the loopback HTTP server the notifier tests share.

:class:`Receiver` is a real threaded HTTP server on 127.0.0.1 that records every
request and answers with whatever its ``respond`` callable returns.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from inferwatch._errors import AlertingConfigError, NotifyError
from inferwatch.alerting.alert import Alert, Notification
from inferwatch.alerting.notifiers.http import USER_AGENT, HTTPConfig, go_json, post, redact
from tests.support import free_port


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, dict[str, str], bytes]


def json_answer(value: Any, status: int = 200) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(value).encode()


@dataclass
class Receiver:
    """A loopback HTTP server recording requests; ``respond(request)`` gives the answer."""

    respond: Callable[[Request], Answer]
    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Request("POST", self.path, dict(self.headers), self.rfile.read(length))
                receiver.requests.append(request)
                status, headers, body = receiver.respond(request)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def start_receivers() -> Iterator[Callable[..., Receiver]]:
    """The body of a ``receiver`` fixture: ``receiver(respond)`` starts a server."""
    started: list[Receiver] = []

    def start(respond: Callable[[Request], Answer] = lambda r: (200, {}, b"ok")) -> Receiver:
        started.append(Receiver(respond).start())
        return started[-1]

    yield start
    for r in started:
        r.stop()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    yield from start_receivers()


NOW = 1_704_164_645.123  # 2024-01-02T03:04:05.123Z


def sample_notification(*, resolved: bool = False, receiver: str = "team-x") -> Notification:
    """Two alerts of one group; the second resolved when ``resolved``."""
    a1 = Alert(
        labels={"alertname": "HighLatency", "severity": "page", "model": "resnet"},
        annotations={"summary": "p99 latency above 1s"},
        starts_at=NOW - 600,
        ends_at=NOW + 300,
        generator_url="http://prom/graph?g0.expr=x",
    )
    a2 = Alert(
        labels={"alertname": "HighLatency", "severity": "page", "model": "bert"},
        annotations={"summary": "p99 latency above 1s"},
        starts_at=NOW - 1200.5,
        ends_at=NOW - 60 if resolved else None,
    )
    return Notification(
        receiver=receiver,
        status="firing",
        alerts=(a1, a2),
        group_labels={"alertname": "HighLatency"},
        common_labels={"alertname": "HighLatency", "severity": "page"},
        common_annotations={"summary": "p99 latency above 1s"},
        external_url="http://am.example:9093",
        group_key='{}:{alertname="HighLatency"}',
        now=NOW,
    )


# --- tests of http.py ------------------------------------------------------------


def test_post_sends_json_with_user_agent(receiver: Callable[..., Receiver]) -> None:
    r = receiver()
    post(r.url + "/hook", b'{"a":1}')
    (req,) = r.requests
    assert req.path == "/hook"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("inferwatch/")
    assert req.body == b'{"a":1}'


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
def test_status_classification(
    receiver: Callable[..., Receiver], status: int, retryable: bool
) -> None:
    r = receiver(lambda req: (status, {}, b"nope"))
    with pytest.raises(NotifyError) as info:
        post(r.url, b"{}")
    assert info.value.retryable is retryable
    assert f"unexpected status code {status}: nope" in str(info.value)


def test_network_error_is_retryable_and_hides_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook?token=supersecret-token"
    with pytest.raises(NotifyError) as info:
        post(url, b"{}")
    assert info.value.retryable
    assert "supersecret-token" not in str(info.value)


def test_error_body_is_redacted(
    receiver: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    r = receiver(lambda req: (400, {}, b"bad key=tok-abcdef123 and password hunter22"))
    config = HTTPConfig.parse({"basic_auth": {"username": "u", "password": "hunter22"}}, "f")
    with caplog.at_level(logging.DEBUG), pytest.raises(NotifyError) as info:
        post(r.url + "/send?key=tok-abcdef123", b"{}", http_config=config)
    assert "tok-abcdef123" not in str(info.value)
    assert "hunter22" not in str(info.value)
    assert "<secret>" in str(info.value)
    assert "hunter22" not in caplog.text and "tok-abcdef123" not in caplog.text


def test_basic_auth_and_bearer(receiver: Callable[..., Receiver]) -> None:
    r = receiver()
    post(
        r.url,
        b"{}",
        http_config=HTTPConfig.parse({"basic_auth": {"username": "alice", "password": "pw"}}, "f"),
    )
    post(r.url, b"{}", http_config=HTTPConfig.parse({"authorization": {"credentials": "tok"}}, "f"))
    post(r.url, b"{}", http_config=HTTPConfig.parse({"bearer_token": "tok2"}, "f"))
    assert [q.headers["Authorization"] for q in r.requests] == [
        "Basic YWxpY2U6cHc=",
        "Bearer tok",
        "Bearer tok2",
    ]


def test_http_config_credentials_file_read_at_send_time(
    receiver: Callable[..., Receiver], tmp_path: Any
) -> None:
    path = tmp_path / "token"
    config = HTTPConfig.parse({"authorization": {"credentials_file": str(path)}}, "f")
    path.write_text("first\n")
    r = receiver()
    post(r.url, b"{}", http_config=config)
    path.write_text("second\n")
    post(r.url, b"{}", http_config=config)
    assert [q.headers["Authorization"] for q in r.requests] == ["Bearer first", "Bearer second"]


def test_http_config_unknown_field_names_the_field() -> None:
    with pytest.raises(AlertingConfigError) as info:
        HTTPConfig.parse({"basic_auht": {}}, "receivers[0].webhook_configs[0].http_config")
    assert info.value.field == "receivers[0].webhook_configs[0].http_config.basic_auht"


def test_http_config_repr_hides_secrets() -> None:
    config = HTTPConfig.parse({"basic_auth": {"username": "u", "password": "hunter22"}}, "f")
    assert "hunter22" not in repr(config)


def test_go_json_escapes_like_go() -> None:
    assert go_json({"a": "<b>&"}) == b'{"a":"\\u003cb\\u003e\\u0026"}\n'


def test_redact_replaces_longest_first() -> None:
    assert redact("abc abcdef", ["abc", "abcdef"]) == "<secret> <secret>"
