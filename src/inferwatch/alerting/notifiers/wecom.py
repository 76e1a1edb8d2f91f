"""WeCom (企业微信) group robot: a markdown message to the robot's webhook.

Config (``wecom_configs``, inferwatch's own): ``webhook_url`` or ``webhook_url_file``
(``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``), ``content`` (a Go
template; default ``wecom.default.content``), ``mentioned_list`` (user ids,
sent as ``<@userid>`` mentions at the start of the markdown),
``send_resolved`` (default true), ``http_config``.

The body is the ``markdown`` message of WeCom's group robot API
(https://developer.work.weixin.qq.com/document/path/91770): ``content`` at most
4096 bytes of UTF-8, so longer text is cut at a character boundary. WeCom answers
200 with ``{"errcode": 0, "errmsg": "ok"}``; any other ``errcode`` is an error
(``45009``, "api freq out of limit", is retryable).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inferwatch.alerting.alert import Notification
from inferwatch.alerting.notifiers.base import Secret
from inferwatch.alerting.notifiers.chat import ChatRobotNotifier
from inferwatch.alerting.notifiers.http import HTTPConfig, go_json
from inferwatch.alerting.notifiers.templates import MessageTemplates, template_data

_FIELDS = ("content", "mentioned_list")
MAX_CONTENT_BYTES = 4096
RATE_LIMITED = frozenset({45009})
_ELLIPSIS = "\n..."


def truncate_utf8(text: str, limit: int = MAX_CONTENT_BYTES) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character,
    ending in ``...`` when cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    room = limit - len(_ELLIPSIS.encode())
    return data[:room].decode("utf-8", "ignore") + _ELLIPSIS


class WeComNotifier(ChatRobotNotifier):
    """Sends a markdown message to a WeCom group robot."""

    kind = "wecom"
    signed = False
    retryable_codes = RATE_LIMITED

    def __init__(
        self,
        *,
        webhook_url: Secret | None,
        webhook_url_file: str = "",
        templates: MessageTemplates,
        mentioned_list: Sequence[str] = (),
        send_resolved: bool = True,
        http_config: HTTPConfig | None = None,
    ) -> None:
        super().__init__(
            webhook_url=webhook_url,
            webhook_url_file=webhook_url_file,
            templates=templates,
            send_resolved=send_resolved,
            http_config=http_config,
        )
        self.mentioned_list = tuple(mentioned_list)

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], global_config: Any, templates: Sequence[str], field: str
    ) -> WeComNotifier:
        r = cls.config_reader(raw, field, _FIELDS)
        defaults = {"content": '{{ template "wecom.default.content" . }}'}
        return cls(
            **cls.shared_settings(r, global_config, templates, defaults),
            mentioned_list=r.strings("mentioned_list"),
        )

    def message(self, notification: Notification) -> dict[str, Any]:
        """The JSON body sent for ``notification``."""
        content = self.templates.render("content", template_data(notification))
        # The markdown type has no mention lists; WeCom documents <@userid> in the text.
        mentions = " ".join(f"<@{who}>" for who in self.mentioned_list)
        if mentions:
            content = f"{mentions}\n{content}"
        return {"msgtype": "markdown", "markdown": {"content": truncate_utf8(content)}}

    def notify(self, notification: Notification) -> None:
        body = go_json(self.message(notification))
        url, _, hidden = self.target()
        self.deliver(url, body, hidden)


__all__ = ["MAX_CONTENT_BYTES", "WeComNotifier", "truncate_utf8"]
