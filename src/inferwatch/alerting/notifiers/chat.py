"""What the chat-robot notifiers (DingTalk, Feishu, WeCom) share.

Each robot is a webhook URL (``webhook_url`` or ``webhook_url_file``), optionally a
signing secret (``secret`` or ``secret_file``), Go message templates, ``send_resolved``
(default true) and ``http_config``; each answers a JSON object whose error code must
be 0. :class:`ChatRobotNotifier` holds those settings, reads them from config and
delivers a body; the vendor modules add their own payload and signature.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from inferwatch.alerting.notifiers.base import Secret
from inferwatch.alerting.notifiers.http import (
    ConfigReader,
    HTTPConfig,
    check_vendor_reply,
    http_config_for,
    post,
    read_secret_file,
    secret_parts,
)
from inferwatch.alerting.notifiers.templates import MessageTemplates

#: The config keys every chat robot accepts (signed robots add ``SIGNED_FIELDS``).
CHAT_FIELDS = ("send_resolved", "webhook_url", "webhook_url_file", "http_config")
SIGNED_FIELDS = ("secret", "secret_file")


class ChatRobotNotifier:
    """A chat robot's webhook, signing secret, templates and delivery settings.

    Subclasses set ``kind``, ``signed`` (whether ``secret``/``secret_file`` exist) and
    how the vendor's JSON answer is read (``code_keys``, ``message_keys``,
    ``retryable_codes``).
    """

    kind: str
    signed: ClassVar[bool] = True
    code_keys: ClassVar[tuple[str, ...]] = ("errcode",)
    message_keys: ClassVar[tuple[str, ...]] = ("errmsg",)
    retryable_codes: ClassVar[frozenset[int]] = frozenset()

    def __init__(
        self,
        *,
        webhook_url: Secret | None,
        webhook_url_file: str,
        templates: MessageTemplates,
        send_resolved: bool,
        http_config: HTTPConfig | None,
        secret: Secret | None = None,
        secret_file: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_url_file = webhook_url_file
        self.secret = secret
        self.secret_file = secret_file
        self.templates = templates
        self.send_resolved = send_resolved
        self.http_config = http_config or HTTPConfig()
        self.clock = clock

    @classmethod
    def config_reader(
        cls, raw: Mapping[str, Any], field: str, fields: Sequence[str]
    ) -> ConfigReader:
        """A reader of ``raw`` accepting the shared keys plus ``fields``, having checked
        that exactly one of ``webhook_url``/``webhook_url_file`` (and at most one of
        ``secret``/``secret_file``) is set."""
        known = (*CHAT_FIELDS, *(SIGNED_FIELDS if cls.signed else ()), *fields)
        r = ConfigReader(raw, field, known)
        r.one_of("webhook_url", "webhook_url_file")
        if cls.signed:
            r.one_of("secret", "secret_file", required=False)
        return r

    @classmethod
    def shared_settings(
        cls,
        r: ConfigReader,
        global_config: Any,
        templates: Sequence[str],
        defaults: Mapping[str, str],
    ) -> dict[str, Any]:
        """The constructor arguments every robot takes, read from ``r``; ``defaults``
        maps each template key to its default template text."""
        tmpl = MessageTemplates(templates)
        for key, default in defaults.items():
            tmpl.add(key, r.text(key, default), field=r.path(key))
        settings: dict[str, Any] = {
            "webhook_url": r.url("webhook_url"),
            "webhook_url_file": r.text("webhook_url_file"),
        }
        if cls.signed:
            settings.update(secret=r.secret("secret"), secret_file=r.text("secret_file"))
        settings.update(
            templates=tmpl,
            send_resolved=r.flag("send_resolved", True),
            http_config=http_config_for(r.raw, global_config, r.field),
        )
        return settings

    def __repr__(self) -> str:
        secret = f", secret={self.secret!r}" if self.signed else ""
        return (
            f"{type(self).__name__}(webhook_url={self.webhook_url!r}{secret}, "
            f"send_resolved={self.send_resolved})"
        )

    def target(self) -> tuple[str, Secret | None, list[str]]:
        """The webhook URL, the signing secret (if any) and the values to redact."""
        url = self.webhook_url or read_secret_file(self.webhook_url_file, "webhook_url")
        secret = self.secret
        if secret is None and self.secret_file:
            secret = read_secret_file(self.secret_file, "secret")
        hidden = secret_parts(url.reveal())
        if secret is not None:
            hidden.append(secret.reveal())
        return url.reveal(), secret, hidden

    def deliver(self, url: str, body: bytes, hidden: Sequence[str]) -> None:
        """POST ``body`` and check the vendor's answer; raises :class:`NotifyError`."""
        answer = post(url, body, http_config=self.http_config, secrets=hidden, what=self.kind)
        check_vendor_reply(
            answer,
            what=self.kind,
            code_keys=self.code_keys,
            message_keys=self.message_keys,
            retryable_codes=self.retryable_codes,
            secrets=hidden,
        )


__all__ = ["CHAT_FIELDS", "SIGNED_FIELDS", "ChatRobotNotifier"]
