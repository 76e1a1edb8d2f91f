"""Tests for the email notifier against a real aiosmtpd server on loopback."""

from __future__ import annotations

import email
import email.policy
import logging
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from inferwatch._errors import AlertingConfigError, NotifyError
from inferwatch.alerting.notifiers import build_notifier
from tests.alerting.notifiers.test_http import sample_notification
from tests.support import free_port

PASSWORD = "hunter2-smtp-pass"
AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"


@dataclass
class Mailbox:
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def smtp_server(ca: trustme.CA) -> Iterator[Callable[..., tuple[Mailbox, int]]]:
    """``smtp_server(starttls=False, implicit=False)`` -> (mailbox, port)."""
    controllers: list[Controller] = []

    def start(*, starttls: bool = False, implicit: bool = False) -> tuple[Mailbox, int]:
        box = Mailbox()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)

        def authenticator(server: Any, session: Any, envelope: Any, mech: str, data: Any) -> Any:
            ok = isinstance(data, LoginPassword) and data.password.decode() == PASSWORD
            if ok:
                box.logins.append(f"{mech}:{data.login.decode()}")
            if ok:
                return AuthResult(success=True)
            return AuthResult(success=False, handled=False, message=AUTH_FAILED)

        port = free_port()
        # aiosmtpd does not count implicit TLS as TLS for AUTH; only STARTTLS.
        kwargs: dict[str, Any] = {"authenticator": authenticator, "auth_require_tls": not implicit}
        if starttls:
            kwargs["tls_context"] = ctx
        if implicit:
            kwargs["ssl_context"] = ctx
            kwargs["server_hostname"] = "localhost"
        controller = Controller(box, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return box, port

    yield start
    for c in controllers:
        c.stop()


def build(config: dict[str, Any], global_config: dict[str, Any] | None = None) -> Any:
    """The notifier for ``config``, with a fixed subject and HTML unless given (the
    default templates are tested in test_templates.py)."""
    config = {"headers": {"Subject": "s"}, "html": "<p>x</p>", **config}
    return build_notifier(
        "email", config, global_config=global_config or {}, field="receivers[0].email_configs[0]"
    )


def parts(msg: EmailMessage) -> dict[str, str]:
    return {
        p.get_content_type(): p.get_content().replace("\r\n", "\n")
        for p in msg.walk()
        if not p.is_multipart()
    }


def to_local(port: int, to: str = "oncall@example.com", **extra: Any) -> dict[str, Any]:
    """A config sending from am@example.com to ``to`` through the server on ``port``."""
    return {"to": to, "from": "am@example.com", "smarthost": f"127.0.0.1:{port}", **extra}


def test_plain_delivery_when_tls_not_required(
    smtp_server: Callable[..., tuple[Mailbox, int]],
) -> None:
    box, port = smtp_server()
    n = build(
        to_local(
            port,
            "oncall@example.com, boss@example.com",
            require_tls=False,
            text="plain body",
            html="<b>html body</b>",
            headers={"subject": "Custom subject", "X-Team": "ml"},
        )
    )
    assert n.send_resolved is False
    n.notify(sample_notification())
    ((sender, rcpts, msg),) = box.messages
    assert sender == "am@example.com"
    assert rcpts == ["oncall@example.com", "boss@example.com"]
    assert msg["Subject"] == "Custom subject"
    assert msg["X-Team"] == "ml"
    assert msg["To"] == "oncall@example.com, boss@example.com"
    assert msg["From"] == "am@example.com"
    assert msg["Message-Id"] and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    assert parts(msg) == {"text/plain": "plain body\n", "text/html": "<b>html body</b>\n"}


def test_starttls_with_auth(
    smtp_server: Callable[..., tuple[Mailbox, int]],
    ca_file: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    box, port = smtp_server(starttls=True)
    n = build(
        {"to": "oncall@example.com", "tls_config": {"ca_file": ca_file}, "html": "<p>hi</p>"},
        {
            "smtp_from": "am@example.com",
            "smtp_smarthost": f"127.0.0.1:{port}",
            "smtp_auth_username": "am",
            "smtp_auth_password": PASSWORD,
        },
    )
    assert PASSWORD not in repr(n)
    with caplog.at_level(logging.DEBUG):
        n.notify(sample_notification())
    # Alertmanager picks the first mechanism the server lists (aiosmtpd: LOGIN PLAIN).
    assert box.logins == ["LOGIN:am"]
    ((_, _, msg),) = box.messages
    assert parts(msg) == {"text/html": "<p>hi</p>\n"}
    assert PASSWORD not in caplog.text


def test_implicit_tls(smtp_server: Callable[..., tuple[Mailbox, int]], ca_file: str) -> None:
    box, port = smtp_server(implicit=True)
    n = build(
        to_local(
            port,
            auth_username="am",
            auth_password=PASSWORD,
            tls_config={"ca_file": ca_file},
            text="t",
        )
    )
    assert n.implicit_tls is False  # only port 465 means implicit TLS
    n.implicit_tls = True
    n.notify(sample_notification())
    assert box.logins == ["LOGIN:am"]
    assert len(box.messages) == 1


def test_auth_failure_is_not_retryable(
    smtp_server: Callable[..., tuple[Mailbox, int]],
    ca_file: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    box, port = smtp_server(starttls=True)
    n = build(
        to_local(
            port,
            auth_username="am",
            auth_password="wrong-password-xyz",
            tls_config={"ca_file": ca_file},
        )
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(NotifyError) as info:
        n.notify(sample_notification())
    assert not info.value.retryable
    assert "authentication failed: 535" in str(info.value)
    assert "wrong-password-xyz" not in str(info.value) + caplog.text
    assert box.messages == []


def test_require_tls_refuses_a_server_without_starttls(
    smtp_server: Callable[..., tuple[Mailbox, int]],
) -> None:
    box, port = smtp_server()
    n = build(to_local(port, "a@example.com", auth_username="am", auth_password=PASSWORD))
    with pytest.raises(NotifyError, match="does not advertise the STARTTLS extension"):
        n.notify(sample_notification())
    assert box.logins == [] and box.messages == []


def test_untrusted_certificate_fails(smtp_server: Callable[..., tuple[Mailbox, int]]) -> None:
    _, port = smtp_server(starttls=True)
    n = build({"to": "a@example.com", "from": "f@example.com", "smarthost": f"127.0.0.1:{port}"})
    with pytest.raises(NotifyError) as info:
        n.notify(sample_notification())
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_connection_refused_is_retryable() -> None:
    n = build(
        {"to": "a@example.com", "from": "f@example.com", "smarthost": f"127.0.0.1:{free_port()}"}
    )
    with pytest.raises(NotifyError) as info:
        n.notify(sample_notification())
    assert info.value.retryable


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"from": "f@x", "smarthost": "h:25"}, "to"),
        ({"to": "a@x", "smarthost": "h:25"}, "from"),
        ({"to": "a@x", "from": "f@x"}, "smarthost"),
        ({"to": "a@x", "from": "f@x", "smarthost": "nohost"}, "smarthost"),
        ({"to": "a@x", "from": "f@x", "smarthost": "h:25", "tls": {}}, "tls"),
    ],
)
def test_bad_config_names_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(AlertingConfigError) as info:
        build(config)
    assert info.value.field == f"receivers[0].email_configs[0].{field}"


def test_default_subject_and_html(smtp_server: Callable[..., tuple[Mailbox, int]]) -> None:
    box, port = smtp_server()
    n = build_notifier(
        "email",
        {"to": "a@example.com", "require_tls": False},
        global_config={"smtp_from": "am@example.com", "smtp_smarthost": f"127.0.0.1:{port}"},
    )
    n.notify(sample_notification())
    ((_, _, msg),) = box.messages
    assert msg["Subject"] == "[FIRING:2] HighLatency (page)"
    html = parts(msg)["text/html"]
    assert "<title>[FIRING:2] HighLatency (page)</title>" in html
    assert "[2] Firing" in html and "model = resnet" in html
    assert 'href="http://am.example:9093/#/alerts?receiver=team-x"' in html
