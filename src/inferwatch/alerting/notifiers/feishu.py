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
from inferwatch.alerting.notifiers.chat import ChatRobotNotifier
from inferwatch.alerting.notifiers.http import HTTPConfig, go_json
from inferwatch.alerting.notifiers.templates import MessageTemplates, template_data

_FIELDS = ("msg_type", "title", "text")
RATE_LIMITED = frozenset({9499, 11232})


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's custom-bot signature: HMAC-SHA256 keyed by ``"{timestamp}\\n{secret}"``
    over an empty message, base64-encoded."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuNotifier(ChatRobotNotifier):
    """Sends a card (or text) message to a Feishu custom bot."""

    kind = "feishu"
    code_keys = ("code", "StatusCode")
    message_keys = ("msg", "StatusMessage")
    retryable_codes = RATE_LIMITED

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
        super().__init__(
            webhook_url=webhook_url,
            webhook_url_file=webhook_url_file,
            secret=secret,
            secret_file=secret_file,
            templates=templates,
            send_resolved=send_resolved,
            http_config=http_config,
            clock=clock,
        )
        self.msg_type = msg_type

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], global_config: Any, templates: Sequence[str], field: str
    ) -> FeishuNotifier:
        r = cls.config_reader(raw, field, _FIELDS)
        msg_type = r.text("msg_type", "interactive")
        if msg_type not in ("interactive", "text"):
            raise r.error("msg_type", f"expected interactive or text, got {msg_type!r}", msg_type)
        defaults = {
            "title": '{{ template "feishu.default.title" . }}',
            "text": '{{ template "feishu.default.text" . }}',
        }
        return cls(**cls.shared_settings(r, global_config, templates, defaults), msg_type=msg_type)

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
        url, secret, hidden = self.target()
        body: dict[str, Any] = {}
        if secret is not None:
            timestamp = int(self.clock())
            body = {"timestamp": str(timestamp), "sign": feishu_sign(secret.reveal(), timestamp)}
        body.update(message)
        self.deliver(url, go_json(body), hidden)


__all__ = ["FeishuNotifier", "feishu_sign"]
