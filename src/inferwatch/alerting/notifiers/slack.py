"""Alertmanager's Slack notifier: one message with one attachment, POSTed to an
incoming-webhook (or ``chat.postMessage``) URL.

Config (``slack_configs``) and defaults as Alertmanager 0.25's ``SlackConfig``:
``api_url``/``api_url_file`` (default ``global.slack_api_url``), ``channel``,
``username``, ``color`` (``danger`` firing / ``good`` resolved), ``title``,
``title_link``, ``pretext``, ``text``, ``fallback``, ``callback_id``, ``icon_emoji``,
``icon_url``, ``image_url``, ``thumb_url``, ``fields``, ``short_fields``, ``footer``,
``mrkdwn_in``, ``actions``, ``link_names``, ``send_resolved`` (default false),
``http_config``. Every text is a Go template. A 200 answer must be ``ok`` (text) or
``{"ok": true}`` (JSON), as Slack documents at
https://api.slack.com/messaging/webhooks#handling_errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inferwatch._errors import NotifyError
from inferwatch.alerting.alert import Notification
from inferwatch.alerting.notifiers.base import Secret
from inferwatch.alerting.notifiers.http import (
    ConfigReader,
    HTTPConfig,
    body_excerpt,
    global_value,
    go_json,
    http_config_for,
    post,
    read_secret_file,
    secret_parts,
)
from inferwatch.alerting.notifiers.templates import MessageTemplates, TemplateData, template_data

# The config's template fields and Alertmanager's default for each.
DEFAULTS: Mapping[str, str] = {
    "channel": "",
    "username": '{{ template "slack.default.username" . }}',
    "color": '{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}',
    "title": '{{ template "slack.default.title" . }}',
    "title_link": '{{ template "slack.default.titlelink" . }}',
    "pretext": '{{ template "slack.default.pretext" . }}',
    "text": '{{ template "slack.default.text" . }}',
    "fallback": '{{ template "slack.default.fallback" . }}',
    "callback_id": '{{ template "slack.default.callbackid" . }}',
    "icon_emoji": '{{ template "slack.default.iconemoji" . }}',
    "icon_url": '{{ template "slack.default.iconurl" . }}',
    "image_url": "",
    "thumb_url": "",
    "footer": '{{ template "slack.default.footer" . }}',
}
_OTHER = (
    "send_resolved",
    "api_url",
    "api_url_file",
    "http_config",
    "fields",
    "short_fields",
    "mrkdwn_in",
    "actions",
    "link_names",
)
_ACTION_KEYS = ("type", "text", "url", "style", "name", "value")
_CONFIRM_KEYS = ("title", "text", "ok_text", "dismiss_text")
_MAX_TITLE_RUNES = 1024


class SlackNotifier:
    """Sends Alertmanager's Slack message."""

    kind = "slack"

    def __init__(
        self,
        *,
        api_url: Secret | None,
        api_url_file: str,
        templates: MessageTemplates,
        send_resolved: bool,
        http_config: HTTPConfig,
        fields: Sequence[Mapping[str, Any]] = (),
        short_fields: bool = False,
        mrkdwn_in: Sequence[str] = (),
        actions: Sequence[Mapping[str, Any]] = (),
        link_names: bool = False,
    ) -> None:
        self.api_url = api_url
        self.api_url_file = api_url_file
        self.templates = templates
        self.send_resolved = send_resolved
        self.http_config = http_config
        self.fields = tuple(fields)
        self.short_fields = short_fields
        self.mrkdwn_in = tuple(mrkdwn_in)
        self.actions = tuple(actions)
        self.link_names = link_names

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], global_config: Any, templates: Sequence[str], field: str
    ) -> SlackNotifier:
        r = ConfigReader(raw, field, (*DEFAULTS, *_OTHER))
        r.one_of("api_url", "api_url_file", required=False)
        api_url = r.url("api_url")
        api_url_file = r.text("api_url_file")
        if api_url is None and not api_url_file:
            default = global_value(global_config, "slack_api_url")
            api_url = Secret(default.reveal() if isinstance(default, Secret) else default or "")
            api_url_file = str(global_value(global_config, "slack_api_url_file", ""))
            if not api_url and not api_url_file:
                raise r.error("api_url", "no global Slack API URL set")
            api_url = api_url or None
        tmpl = MessageTemplates(templates)
        for key, default_text in DEFAULTS.items():
            tmpl.add(key, r.text(key, default_text), field=r.path(key))
        fields = _list(r, "fields")
        for i, f in enumerate(fields):
            fr = ConfigReader(f, f"{r.path('fields')}[{i}]", ("title", "value", "short"))
            if not fr.text("title") or not fr.text("value"):
                raise fr.error("title", "missing title or value in Slack field configuration")
            tmpl.add(f"fields.{i}.title", fr.text("title"), field=fr.path("title"))
            tmpl.add(f"fields.{i}.value", fr.text("value"), field=fr.path("value"))
            if "short" in f:
                fr.flag("short", False)
        actions = _list(r, "actions")
        for i, a in enumerate(actions):
            ar = ConfigReader(a, f"{r.path('actions')}[{i}]", (*_ACTION_KEYS, "confirm"))
            if not ar.text("type") or not ar.text("text"):
                raise ar.error("type", "missing type or text in Slack action configuration")
            if not ar.text("url") and not (ar.text("name") and ar.text("value")):
                raise ar.error("url", "missing name and value in Slack action configuration")
            for key in _ACTION_KEYS:
                tmpl.add(f"actions.{i}.{key}", ar.text(key), field=ar.path(key))
            if "confirm" in a:
                cr = ConfigReader(ar.mapping("confirm"), ar.path("confirm"), _CONFIRM_KEYS)
                if not cr.text("text"):
                    raise cr.error("text", "missing text in Slack confirmation configuration")
                for key in _CONFIRM_KEYS:
                    tmpl.add(f"actions.{i}.confirm.{key}", cr.text(key), field=cr.path(key))
        return cls(
            api_url=api_url,
            api_url_file=api_url_file,
            templates=tmpl,
            send_resolved=r.flag("send_resolved", False),
            http_config=http_config_for(raw, global_config, field),
            fields=fields,
            short_fields=r.flag("short_fields", False),
            mrkdwn_in=r.strings("mrkdwn_in"),
            actions=actions,
            link_names=r.flag("link_names", False),
        )

    def __repr__(self) -> str:
        return f"SlackNotifier(api_url={self.api_url!r}, send_resolved={self.send_resolved})"

    def message(self, notification: Notification) -> dict[str, Any]:
        """The JSON body Alertmanager's SlackNotifier sends for ``notification``."""
        data = template_data(notification)

        def text(key: str) -> str:
            return self.templates.render(key, data)

        attachment: dict[str, Any] = {}
        _put(attachment, "title", text("title")[:_MAX_TITLE_RUNES])
        _put(attachment, "title_link", text("title_link"))
        _put(attachment, "pretext", text("pretext"))
        attachment["text"] = text("text")
        attachment["fallback"] = text("fallback")
        attachment["callback_id"] = text("callback_id")
        if self.fields:
            attachment["fields"] = [self._field(i, f, data) for i, f in enumerate(self.fields)]
        if self.actions:
            attachment["actions"] = [self._action(i, a, data) for i, a in enumerate(self.actions)]
        _put(attachment, "image_url", text("image_url"))
        _put(attachment, "thumb_url", text("thumb_url"))
        attachment["footer"] = text("footer")
        _put(attachment, "color", text("color"))
        attachment["mrkdwn_in"] = list(self.mrkdwn_in) or ["fallback", "pretext", "text"]
        body: dict[str, Any] = {}
        _put(body, "channel", text("channel"))
        _put(body, "username", text("username"))
        _put(body, "icon_emoji", text("icon_emoji"))
        _put(body, "icon_url", text("icon_url"))
        if self.link_names:
            body["link_names"] = True
        body["attachments"] = [attachment]
        return body

    def _field(self, i: int, f: Mapping[str, Any], data: TemplateData) -> dict[str, Any]:
        short = f.get("short")
        return {
            "title": self.templates.render(f"fields.{i}.title", data),
            "value": self.templates.render(f"fields.{i}.value", data),
            "short": self.short_fields if short is None else bool(short),
        }

    def _action(self, i: int, a: Mapping[str, Any], data: TemplateData) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in _ACTION_KEYS:
            value = self.templates.render(f"actions.{i}.{key}", data)
            if key in ("type", "text"):
                out[key] = value
            else:
                _put(out, key, value)
        if "confirm" in a:
            confirm: dict[str, Any] = {}
            for key in _CONFIRM_KEYS:
                value = self.templates.render(f"actions.{i}.confirm.{key}", data)
                if key == "text":
                    confirm[key] = value
                else:
                    _put(confirm, key, value)
            out["confirm"] = confirm
        return out

    def notify(self, notification: Notification) -> None:
        body = self.message(notification)
        url = self.api_url if self.api_url is not None else None
        if url is None:
            url = read_secret_file(self.api_url_file, "api_url")
        hidden = secret_parts(url.reveal())
        answer = post(
            url.reveal(), go_json(body), http_config=self.http_config, what="slack", secrets=hidden
        )
        channel = body.get("channel", "")
        if answer.headers.get("content-type", "").startswith("application/json"):
            try:
                ok = bool(answer.json().get("ok"))
            except (ValueError, AttributeError):
                raise NotifyError(
                    f"slack: channel {channel!r}: could not unmarshal JSON response "
                    f"{body_excerpt(answer, hidden)!r}",
                    retryable=True,
                ) from None
            if not ok:
                error = answer.json().get("error", "")
                raise NotifyError(
                    f"slack: channel {channel!r}: error response from Slack: {error}",
                    retryable=False,
                )
        elif answer.body.strip() != b"ok":
            raise NotifyError(
                f"slack: channel {channel!r}: received an error response from Slack: "
                f"{body_excerpt(answer, hidden)}",
                retryable=False,
            )


def _put(target: dict[str, Any], key: str, value: str) -> None:
    # Go's `omitempty`: empty strings are left out of the JSON.
    if value:
        target[key] = value


def _list(r: ConfigReader, key: str) -> list[Mapping[str, Any]]:
    value = r.raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise r.error(key, "expected a list of mappings")
    return value


__all__ = ["DEFAULTS", "SlackNotifier"]
