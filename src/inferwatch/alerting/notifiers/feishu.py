"""Feishu / Lark (飞书) custom bot: an interactive card (or plain text), optionally signed.

Config (``feishu_configs``, inferwatch's own): ``webhook_url`` or ``webhook_url_file``
(``https://open.feishu.cn/open-apis/bot/v2/hook/...``), ``secret`` or ``secret_file``
(the bot's signature key), ``msg_type`` (``interactive``, the default, or ``text``),
``title`` and ``text`` (Go templates; defaults ``feishu.default.title`` /
``feishu.default.text``), ``send_resolved`` (default true), ``http_config``.

Signing, as Feishu documents it for custom bots ("自定义机器人使用指南 / 签名校验",
https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot):
``string_to_sign = f"{timestamp_s}\\n{secret}"``,
``sign = base64(HMAC-SHA256(key=string_to_sign, msg=b""))``, sent in the body as
``"timestamp"`` (a string of seconds) and ``"sign"``. Feishu answers with
``{"code": 0, ...}`` (older deployments ``{"StatusCode": 0, ...}``); a non-zero code is
an error (``9499`` and ``11232``, its rate limits, are retryable; ``19021`` is a bad
signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inferwatch.alerting.alert import Notification
from inferwatch.alerting.notifiers.base import Secret
from inferwatch.alerting.notifiers.http import (
    ConfigReader,
    HTTPConfig,
    check_vendor_reply,
    go_json,
    http_config_for,
    post,
    read_secret_file,
    secret_parts,
)
from inferwatch.alerting.notifiers.templates import MessageTemplates, template_data

_FIELDS = (
    "send_resolved",
    "webhook_url",
    "webhook_url_file",
    "secret",
    "secret_file",
    "msg_type",
    "title",
    "text",
    "http_config",
)
RATE_LIMITED = frozenset({9499, 11232})


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's custom-bot signature: HMAC-SHA256 keyed by ``"{timestamp}\\n{secret}"``
    over an empty message, base64-encoded."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuNotifier:
    """Sends a card (or text) message to a Feishu custom bot."""

    kind = "feishu"

    def __init__(
        self,
        *,
        webhook_url: Secret | None,
        webhook_url_file: str = "",
        secret: Secret | None = None,
        secret_file: str = "",
        templates: MessageTemplates,
        msg_type: str = "interactive",
        send_resolved: bool = True,
        http_config: HTTPConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_url_file = webhook_url_file
        self.secret = secret
        self.secret_file = secret_file
        self.templates = templates
        self.msg_type = msg_type
        self.send_resolved = send_resolved
        self.http_config = http_config or HTTPConfig()
        self.clock = clock

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], global_config: Any, templates: Sequence[str], field: str
    ) -> FeishuNotifier:
        r = ConfigReader(raw, field, _FIELDS)
        r.one_of("webhook_url", "webhook_url_file")
        r.one_of("secret", "secret_file", required=False)
        msg_type = r.text("msg_type", "interactive")
        if msg_type not in ("interactive", "text"):
            raise r.error("msg_type", f"expected interactive or text, got {msg_type!r}", msg_type)
        tmpl = MessageTemplates(templates)
        title = r.text("title", '{{ template "feishu.default.title" . }}')
        tmpl.add("title", title, field=r.path("title"))
        tmpl.add(
            "text", r.text("text", '{{ template "feishu.default.text" . }}'), field=r.path("text")
        )
        return cls(
            webhook_url=r.url("webhook_url"),
            webhook_url_file=r.text("webhook_url_file"),
            secret=r.secret("secret"),
            secret_file=r.text("secret_file"),
            templates=tmpl,
            msg_type=msg_type,
            send_resolved=r.flag("send_resolved", True),
            http_config=http_config_for(raw, global_config, field),
        )

    def __repr__(self) -> str:
        return (
            f"FeishuNotifier(webhook_url={self.webhook_url!r}, secret={self.secret!r}, "
            f"send_resolved={self.send_resolved})"
        )

    def message(self, notification: Notification) -> dict[str, Any]:
        """The JSON body (without signature) sent for ``notification``."""
        data = template_data(notification)
        title = self.templates.render("title", data)
        text = self.templates.render("text", data)
        if self.msg_type == "text":
            return {"msg_type": "text", "content": {"text": f"{title}\n{text}"}}
        return {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {
                    "title": {"tag": "plain_text", "content": title},
                    "template": "red" if notification.status == "firing" else "green",
                },
                "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": text}}],
            },
        }

    def notify(self, notification: Notification) -> None:
        message = self.message(notification)
        url = self.webhook_url or read_secret_file(self.webhook_url_file, "webhook_url")
        secret = self.secret
        if secret is None and self.secret_file:
            secret = read_secret_file(self.secret_file, "secret")
        hidden = secret_parts(url.reveal())
        body: dict[str, Any] = {}
        if secret is not None:
            timestamp = int(self.clock())
            hidden.append(secret.reveal())
            body = {"timestamp": str(timestamp), "sign": feishu_sign(secret.reveal(), timestamp)}
        body.update(message)
        answer = post(
            url.reveal(), go_json(body), http_config=self.http_config, secrets=hidden, what="feishu"
        )
        check_vendor_reply(
            answer,
            what="feishu",
            code_keys=("code", "StatusCode"),
            message_keys=("msg", "StatusMessage"),
            retryable_codes=RATE_LIMITED,
            secrets=hidden,
        )


__all__ = ["FeishuNotifier", "feishu_sign"]
