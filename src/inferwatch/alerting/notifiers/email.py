"""Alertmanager's email notifier, over SMTP with :mod:`smtplib`.

Config (``email_configs``) and defaults as Alertmanager 0.25's ``EmailConfig``: ``to``
(required), ``from``, ``smarthost`` (``host:port``), ``hello``, ``auth_username``,
``auth_password`` / ``auth_password_file``, ``auth_identity``, ``auth_secret``
(each defaulting to the ``global.smtp_*`` setting), ``require_tls`` (default
``global.smtp_require_tls``, true), ``tls_config``, ``headers``, ``html`` (default
``email.default.html``), ``text``, ``send_resolved`` (default false). See
https://prometheus.io/docs/alerting/latest/configuration/#email_config.

Port 465 means implicit TLS; otherwise the connection is upgraded with STARTTLS,
which is required unless ``require_tls: false``. Credentials are sent (AUTH
CRAM-MD5, PLAIN or LOGIN, in the order the server lists them) only over TLS, or over
plaintext when the config explicitly says ``require_tls: false``.
"""

from __future__ import annotations

import hmac
import logging
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from inferwatch._errors import NotifyError
from inferwatch.alerting.alert import Notification
from inferwatch.alerting.notifiers.base import Secret
from inferwatch.alerting.notifiers.http import (
    ConfigReader,
    global_value,
    read_secret_file,
    redact,
    reveal,
)
from inferwatch.alerting.notifiers.templates import MessageTemplates, template_data

logger = logging.getLogger("inferwatch.alerting.notifiers")

_FIELDS = (
    "send_resolved",
    "to",
    "from",
    "smarthost",
    "hello",
    "auth_username",
    "auth_password",
    "auth_password_file",
    "auth_secret",
    "auth_identity",
    "headers",
    "html",
    "text",
    "require_tls",
    "tls_config",
)
DEFAULT_TIMEOUT_S = 10.0


def _canonical_header(name: str) -> str:
    # Go's textproto.CanonicalMIMEHeaderKey: "content-type" -> "Content-Type".
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class EmailNotifier:
    """Sends Alertmanager's email (multipart/alternative: text, then HTML)."""

    kind = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        templates: MessageTemplates,
        headers: Sequence[str],
        has_text: bool,
        has_html: bool,
        hello: str = "localhost",
        auth_username: str = "",
        auth_password: Secret | None = None,
        auth_password_file: str = "",
        auth_secret: Secret | None = None,
        auth_identity: str = "",
        require_tls: bool = True,
        ca_file: str = "",
        insecure_skip_verify: bool = False,
        server_name: str = "",
        send_resolved: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        implicit_tls: bool | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.implicit_tls = port == 465 if implicit_tls is None else implicit_tls
        self.templates = templates
        self.headers = tuple(headers)
        self.has_text = has_text
        self.has_html = has_html
        self.hello = hello
        self.auth_username = auth_username
        self.auth_password = auth_password
        self.auth_password_file = auth_password_file
        self.auth_secret = auth_secret
        self.auth_identity = auth_identity
        self.require_tls = require_tls
        self.ca_file = ca_file
        self.insecure_skip_verify = insecure_skip_verify
        self.server_name = server_name or host
        self.send_resolved = send_resolved
        self.timeout_s = timeout_s
        self.clock = clock

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], global_config: Any, templates: Sequence[str], field: str
    ) -> EmailNotifier:
        r = ConfigReader(raw, field, _FIELDS)

        def setting(key: str, global_key: str) -> str:
            return r.text(key) or reveal(global_value(global_config, global_key, ""))

        to = r.text("to")
        if not to:
            raise r.error("to", "missing to address in email config")
        sender = setting("from", "smtp_from")
        if not sender:
            raise r.error("from", "no global SMTP from set")
        smarthost = setting("smarthost", "smtp_smarthost")
        if not smarthost:
            raise r.error("smarthost", "no global SMTP smarthost set")
        host, sep, port_text = smarthost.rpartition(":")
        if not sep or not host or not port_text.isdigit():
            raise r.error("smarthost", f"address {smarthost}: missing port in address", smarthost)
        password = r.secret("auth_password")
        if password is None and not r.text("auth_password_file"):
            default = global_value(global_config, "smtp_auth_password")
            password = Secret(reveal(default)) if default else None
        secret = r.secret("auth_secret")
        if secret is None:
            default = global_value(global_config, "smtp_auth_secret")
            secret = Secret(reveal(default)) if default else None
        require_tls = r.flag(
            "require_tls", bool(global_value(global_config, "smtp_require_tls", True))
        )
        tls = ConfigReader(
            r.mapping("tls_config"),
            r.path("tls_config"),
            ("ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"),
        )
        headers: dict[str, str] = {}
        hr = r.mapping("headers")
        for name, value in hr.items():
            key = _canonical_header(str(name))
            if key in headers:
                raise r.error("headers", f"duplicate header {key!r} in email config")
            if not isinstance(value, str):
                raise r.error("headers", f"header {key}: expected a string")
            headers[key] = value
        headers.setdefault("Subject", '{{ template "email.default.subject" . }}')
        headers.setdefault("To", to)
        headers.setdefault("From", sender)
        tmpl = MessageTemplates(templates)
        for key, value in headers.items():
            tmpl.add(f"header.{key}", value, field=f"{r.path('headers')}.{key}")
        tmpl.add("to", to, field=r.path("to"))
        tmpl.add("from", sender, field=r.path("from"))
        html = r.text("html", '{{ template "email.default.html" . }}')
        text = r.text("text")
        tmpl.add("html", html, field=r.path("html"))
        tmpl.add("text", text, field=r.path("text"))
        return cls(
            host=host.strip("[]"),
            port=int(port_text),
            templates=tmpl,
            headers=tuple(headers),
            has_text=bool(text),
            has_html=bool(html),
            hello=setting("hello", "smtp_hello") or "localhost",
            auth_username=setting("auth_username", "smtp_auth_username"),
            auth_password=password,
            auth_password_file=r.text("auth_password_file"),
            auth_secret=secret,
            auth_identity=setting("auth_identity", "smtp_auth_identity"),
            require_tls=require_tls,
            ca_file=tls.text("ca_file"),
            insecure_skip_verify=tls.flag("insecure_skip_verify", False),
            server_name=tls.text("server_name"),
            send_resolved=r.flag("send_resolved", False),
        )

    def __repr__(self) -> str:
        return (
            f"EmailNotifier(smarthost='{self.host}:{self.port}', "
            f"auth_username={self.auth_username!r}, auth_password={self.auth_password!r})"
        )

    def message(self, notification: Notification) -> EmailMessage:
        """The email sent for ``notification``."""
        data = template_data(notification)
        msg = EmailMessage()
        for key in self.headers:
            msg[key] = self.templates.render(f"header.{key}", data)
        if "Message-Id" not in self.headers:
            msg["Message-Id"] = f"<{uuid.uuid4().int}@{socket.gethostname()}>"
        if "Date" not in self.headers:
            msg["Date"] = formatdate(self.clock(), localtime=False, usegmt=True)
        text = self.templates.render("text", data) if self.has_text else ""
        html = self.templates.render("html", data) if self.has_html else ""
        if text:
            msg.set_content(text, cte="quoted-printable")
            if html:
                msg.add_alternative(html, subtype="html", cte="quoted-printable")
        else:
            msg.set_content(html, subtype="html", cte="quoted-printable")
            msg.make_alternative()
        return msg

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file or None)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _secrets(self) -> list[str]:
        return [reveal(s) for s in (self.auth_password, self.auth_secret) if s]

    def notify(self, notification: Notification) -> None:
        msg = self.message(notification)
        data = template_data(notification)
        sender = self.templates.render("from", data)
        recipients = [a.strip() for a in self.templates.render("to", data).split(",") if a.strip()]
        try:
            self._send(msg, sender, recipients)
        except NotifyError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise self._error(
                f"authentication failed: {exc.smtp_code} {_text(exc.smtp_error)}", retryable=False
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise self._error(
                f"recipients refused: {exc.recipients}", retryable=all(c < 500 for c in codes)
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise self._error(
                f"{exc.smtp_code} {_text(exc.smtp_error)}", retryable=exc.smtp_code < 500
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise self._error(f"{type(exc).__name__}: {exc}", retryable=True) from None

    def _error(self, reason: str, *, retryable: bool) -> NotifyError:
        message = redact(f"email: {self.host}:{self.port}: {reason}", self._secrets())
        logger.warning("%s", message)
        return NotifyError(message, retryable=retryable)

    def _send(self, msg: EmailMessage, sender: str, recipients: list[str]) -> None:
        smtp: smtplib.SMTP
        if self.implicit_tls:
            smtp = _ImplicitTLS(self.server_name, self._ssl_context(), self.timeout_s)
            smtp.connect(self.host, self.port)
            tls = True
        else:
            smtp = smtplib.SMTP(timeout=self.timeout_s)
            smtp.connect(self.host, self.port)
            tls = False
        with smtp:
            smtp.ehlo(self.hello)
            if not tls and smtp.has_extn("starttls"):
                smtp._host = self.server_name  # type: ignore[attr-defined]  # SNI and check
                smtp.starttls(context=self._ssl_context())
                smtp.ehlo(self.hello)
                tls = True
            elif not tls and self.require_tls:
                raise self._error(
                    f"'require_tls' is true (default) but \"{self.host}:{self.port}\" does not "
                    "advertise the STARTTLS extension",
                    retryable=False,
                )
            if self.auth_username and smtp.has_extn("auth"):
                if not tls and self.require_tls:  # pragma: no cover - unreachable, kept as a guard
                    raise self._error("refusing to authenticate without TLS", retryable=False)
                self._login(smtp)
            smtp.send_message(msg, from_addr=sender, to_addrs=recipients)

    def _login(self, smtp: smtplib.SMTP) -> None:
        password = reveal(self.auth_password)
        if self.auth_password_file:
            password = read_secret_file(self.auth_password_file, "auth_password").reveal()
        secret = reveal(self.auth_secret)
        user = self.auth_username
        for mech in smtp.esmtp_features.get("auth", "").upper().split():
            if mech == "CRAM-MD5" and secret:

                def cram(challenge: bytes | None = None) -> str:
                    digest = hmac.new(secret.encode(), challenge or b"", "md5").hexdigest()
                    return f"{user} {digest}"

                smtp.auth("CRAM-MD5", cram, initial_response_ok=False)
                return
            if mech == "PLAIN" and password:
                response = f"{self.auth_identity}\0{user}\0{password}"
                smtp.auth("PLAIN", lambda challenge=None, r=response: r)
                return
            if mech == "LOGIN" and password:
                smtp.user, smtp.password = user, password
                smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
                return
        raise self._error(
            "no supported authentication mechanism (server offers "
            f"{smtp.esmtp_features.get('auth', '').strip() or 'none'})",
            retryable=False,
        )


class _ImplicitTLS(smtplib.SMTP_SSL):
    """SMTP over TLS from the first byte (port 465), verifying ``server_name``."""

    def __init__(self, server_name: str, context: ssl.SSLContext, timeout: float) -> None:
        self._server_name = server_name
        super().__init__(context=context, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self._server_name)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


__all__ = ["EmailNotifier"]
