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
    "content",
    "mentioned_list",
    "http_config",
)
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


class WeComNotifier:
    """Sends a markdown message to a WeCom group robot."""

    kind = "wecom"

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
        self.webhook_url = webhook_url
        self.webhook_url_file = webhook_url_file
        self.templates = templates
        self.mentioned_list = tuple(mentioned_list)
        self.send_resolved = send_resolved
        self.http_config = http_config or HTTPConfig()

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], global_config: Any, templates: Sequence[str], field: str
    ) -> WeComNotifier:
        r = ConfigReader(raw, field, _FIELDS)
        r.one_of("webhook_url", "webhook_url_file")
        tmpl = MessageTemplates(templates)
        default = '{{ template "wecom.default.content" . }}'
        tmpl.add("content", r.text("content", default), field=r.path("content"))
        return cls(
            webhook_url=r.url("webhook_url"),
            webhook_url_file=r.text("webhook_url_file"),
            templates=tmpl,
            mentioned_list=r.strings("mentioned_list"),
            send_resolved=r.flag("send_resolved", True),
            http_config=http_config_for(raw, global_config, field),
        )

    def __repr__(self) -> str:
        return (
            f"WeComNotifier(webhook_url={self.webhook_url!r}, send_resolved={self.send_resolved})"
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
        url = self.webhook_url or read_secret_file(self.webhook_url_file, "webhook_url")
        hidden = secret_parts(url.reveal())
        answer = post(
            url.reveal(), body, http_config=self.http_config, secrets=hidden, what="wecom"
        )
        check_vendor_reply(
            answer,
            what="wecom",
            code_keys=("errcode",),
            message_keys=("errmsg",),
            retryable_codes=RATE_LIMITED,
            secrets=hidden,
        )


__all__ = ["MAX_CONTENT_BYTES", "WeComNotifier", "truncate_utf8"]
