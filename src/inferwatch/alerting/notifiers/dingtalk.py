"""DingTalk (钉钉) custom group robot: a markdown message, optionally signed.

Config (``dingtalk_configs``, inferwatch's own): ``webhook_url`` or
``webhook_url_file`` (``https://oapi.dingtalk.com/robot/send?access_token=...``),
``secret`` or ``secret_file`` (the robot's ``SEC...`` signing key), ``title`` and
``text`` (Go templates; defaults ``dingtalk.default.title`` / ``dingtalk.default.text``),
``at_mobiles``, ``at_user_ids``, ``at_all``, ``send_resolved`` (default true),
``http_config``.

Signing, as DingTalk documents it ("自定义机器人安全设置 / 加签",
https://open.dingtalk.com/document/robots/customize-robot-security-settings):
``sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp_ms}\\n{secret}")))``,
appended to the URL as ``&timestamp=<ms>&sign=<sign>``. The message body is the
``markdown`` type of https://open.dingtalk.com/document/robots/custom-robot-access.
DingTalk answers 200 with ``{"errcode": 0, "errmsg": "ok"}``; any other ``errcode``
is an error (``130101``, "send too fast", is retryable).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote_plus

from inferwatch.alerting.alert import Notification
from inferwatch.alerting.notifiers.base import Secret
from inferwatch.alerting.notifiers.chat import ChatRobotNotifier
from inferwatch.alerting.notifiers.http import HTTPConfig, go_json, secret_parts
from inferwatch.alerting.notifiers.templates import MessageTemplates, template_data

_FIELDS = ("title", "text", "at_mobiles", "at_user_ids", "at_all")
RATE_LIMITED = frozenset({130101})


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature (base64, not yet URL-encoded)."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """``url`` with DingTalk's ``timestamp`` and ``sign`` query parameters appended."""
    sign = quote_plus(dingtalk_sign(secret, timestamp_ms))
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={sign}"


class DingTalkNotifier(ChatRobotNotifier):
    """Sends a markdown message to a DingTalk group robot."""

    kind = "dingtalk"
    retryable_codes = RATE_LIMITED

    def __init__(
        self,
        *,
        webhook_url: Secret | None,
        webhook_url_file: str = "",
        secret: Secret | None = None,
        secret_file: str = "",
        templates: MessageTemplates,
        at_mobiles: Sequence[str] = (),
        at_user_ids: Sequence[str] = (),
        at_all: bool = False,
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
        self.at_mobiles = tuple(at_mobiles)
        self.at_user_ids = tuple(at_user_ids)
        self.at_all = at_all

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], global_config: Any, templates: Sequence[str], field: str
    ) -> DingTalkNotifier:
        r = cls.config_reader(raw, field, _FIELDS)
        defaults = {
            "title": '{{ template "dingtalk.default.title" . }}',
            "text": '{{ template "dingtalk.default.text" . }}',
        }
        return cls(
            **cls.shared_settings(r, global_config, templates, defaults),
            at_mobiles=r.strings("at_mobiles"),
            at_user_ids=r.strings("at_user_ids"),
            at_all=r.flag("at_all", False),
        )

    def message(self, notification: Notification) -> dict[str, Any]:
        """The JSON body sent for ``notification``."""
        data = template_data(notification)
        body: dict[str, Any] = {
            "msgtype": "markdown",
            "markdown": {
                "title": self.templates.render("title", data),
                "text": self.templates.render("text", data),
            },
        }
        if self.at_mobiles or self.at_user_ids or self.at_all:
            body["at"] = {
                "atMobiles": list(self.at_mobiles),
                "atUserIds": list(self.at_user_ids),
                "isAtAll": self.at_all,
            }
        return body

    def notify(self, notification: Notification) -> None:
        body = go_json(self.message(notification))
        url, secret, hidden = self.target()
        if secret is not None:
            url = signed_url(url, secret.reveal(), int(self.clock() * 1000))
            hidden += secret_parts(url)
        self.deliver(url, body, hidden)


__all__ = ["DingTalkNotifier", "dingtalk_sign", "signed_url"]
