"""Notification templates: Alertmanager's template data, functions and defaults.

A notifier's text fields (a Slack ``title``, an email ``html``, a DingTalk ``text``)
are Go templates executed with :class:`TemplateData`, the same data Alertmanager
gives its templates (``.Receiver``, ``.Status``, ``.Alerts`` with ``.Firing`` and
``.Resolved``, ``.GroupLabels``, ``.CommonLabels``, ``.CommonAnnotations``,
``.ExternalURL``; label sets with ``SortedPairs``, ``Names``, ``Values``, ``Remove``)
and Alertmanager's functions (``toUpper``, ``toLower``, ``title``, ``trimSpace``,
``join``, ``match``, ``safeHtml``, ``reReplaceAll``, ``stringSlice``, ``date``, ``tz``,
``since``).

:data:`DEFAULT_TEMPLATES` holds the named templates of Alertmanager 0.25's
``template/default.tmpl`` that these notifiers use (``__subject``,
``__text_alert_list``, ``slack.default.*``, ``email.default.subject``, a shorter
``email.default.html``) plus inferwatch's ``dingtalk.default.*``, ``wecom.default.*``
and ``feishu.default.*``. Files named in the config's ``templates:`` are parsed after
them, so a ``{{ define "slack.default.title" }}`` there replaces the default.
"""

from __future__ import annotations

import glob
import html
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from typing import Any, TypeVar
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from inferwatch._errors import AlertingConfigError, NotifyError, TemplateError
from inferwatch.alerting.alert import Notification
from inferwatch.gotemplate.gotime import RFC3339_NANO, go_time_format
from inferwatch.tsdb.labels import go_regex

T = TypeVar("T")

# --- time -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoTime:
    """A point in time as Go's ``time.Time`` shows it to templates.

    ``seconds`` is Unix seconds; ``None`` is Go's zero time (``0001-01-01T00:00:00Z``).
    """

    seconds: float | None
    tz: timezone | ZoneInfo = UTC

    def _dt(self) -> datetime:
        if self.seconds is None:
            return datetime(1, 1, 1, tzinfo=UTC)
        # As every other writer of alert times here, so one time prints one way.
        return datetime.fromtimestamp(self.seconds, UTC)

    def datetime(self) -> datetime:
        return self._dt().astimezone(self.tz) if self.seconds is not None else self._dt()

    def IsZero(self) -> bool:
        return self.seconds is None

    def Unix(self) -> int:
        return int(self.seconds // 1) if self.seconds is not None else -62135596800

    def UTC(self) -> GoTime:
        return GoTime(self.seconds)

    def In(self, tz: timezone | ZoneInfo) -> GoTime:
        return GoTime(self.seconds, tz)

    def Format(self, layout: str) -> str:
        return go_time_format(self.datetime(), layout)

    def rfc3339(self) -> str:
        """RFC 3339 with nanoseconds trimmed, as Go's JSON encoding writes times."""
        return go_time_format(self.datetime(), RFC3339_NANO)

    def __str__(self) -> str:
        return go_time_format(self.datetime(), "2006-01-02 15:04:05.999999999 -0700 MST")


# --- label sets -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pair:
    """One label: ``.Name`` and ``.Value``."""

    Name: str
    Value: str


class GoSlice(Mapping[int, T]):
    """A Go named slice type with methods (``template.Pairs``, ``template.Alerts``).

    It is a read-only mapping from index to item: ``range``, ``len`` and ``index`` in
    templates see the items in order, and methods such as ``.Firing`` resolve (the
    template engine reads no fields of plain lists). Python code iterates
    :meth:`values`.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items = tuple(items)

    def __getitem__(self, index: int) -> T:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(self):
            raise KeyError(index)
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._items)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._items)!r})"


class Pairs(GoSlice[Pair]):
    """Sorted label pairs, with ``Names`` and ``Values``."""

    def Names(self) -> list[str]:
        return [p.Name for p in self.values()]

    def Values(self) -> list[str]:
        return [p.Value for p in self.values()]


class KV(dict[str, str]):
    """A label or annotation set as templates see it (Alertmanager's ``template.KV``)."""

    def SortedPairs(self) -> Pairs:
        # Alertmanager puts alertname first, then the rest by name.
        names = sorted(self, key=lambda k: (k != "alertname", k))
        return Pairs(Pair(k, self[k]) for k in names)

    def Names(self) -> list[str]:
        return self.SortedPairs().Names()

    def Values(self) -> list[str]:
        return self.SortedPairs().Values()

    def Remove(self, keys: Iterable[str]) -> KV:
        drop = set(keys)
        return KV({k: v for k, v in self.items() if k not in drop})


# --- alerts -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertData:
    """One alert as templates see it (Alertmanager's ``template.Alert``)."""

    Status: str
    Labels: KV
    Annotations: KV
    StartsAt: GoTime
    EndsAt: GoTime
    GeneratorURL: str
    Fingerprint: str


class Alerts(GoSlice[AlertData]):
    """The alerts of a notification, with ``Firing`` and ``Resolved``."""

    def Firing(self) -> Alerts:
        return Alerts(a for a in self.values() if a.Status == "firing")

    def Resolved(self) -> Alerts:
        return Alerts(a for a in self.values() if a.Status == "resolved")


@dataclass(frozen=True, slots=True)
class TemplateData:
    """The data of one notification as templates see it (``template.Data``)."""

    Receiver: str
    Status: str
    Alerts: Alerts
    GroupLabels: KV
    CommonLabels: KV
    CommonAnnotations: KV
    ExternalURL: str


_GO_QUOTE_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def template_data(notification: Notification) -> TemplateData:
    """Build the template data of ``notification``.

    As in Alertmanager, a firing alert's ``EndsAt`` is the zero time (its end is not
    exposed until reached), and ``Receiver`` is the receiver name with regexp
    metacharacters escaped (Go's ``regexp.QuoteMeta``).
    """
    items = []
    for alert in notification.alerts:
        resolved = alert.resolved(notification.now)
        items.append(
            AlertData(
                Status="resolved" if resolved else "firing",
                Labels=KV(alert.labels),
                Annotations=KV(alert.annotations),
                StartsAt=GoTime(alert.starts_at),
                EndsAt=GoTime(alert.ends_at if resolved else None),
                GeneratorURL=alert.generator_url,
                Fingerprint=alert.fingerprint,
            )
        )
    return TemplateData(
        Receiver=_GO_QUOTE_META.sub(r"\\\1", notification.receiver),
        Status=notification.status,
        Alerts=Alerts(items),
        GroupLabels=KV(notification.group_labels),
        CommonLabels=KV(notification.common_labels),
        CommonAnnotations=KV(notification.common_annotations),
        ExternalURL=notification.external_url,
    )


# --- functions --------------------------------------------------------------------


def _go_title(text: str) -> str:
    # strings.Title: upper-case the first letter of each word, leave the rest.
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), text)


def _go_replacement(repl: str) -> str:
    """Go's ``Regexp.ReplaceAllString`` template (``$1``, ``${name}``) in Python's form."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(2)
        return f"\\g<{name}>"

    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", sub, repl.replace("\\", "\\\\"))


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    return re.sub(go_regex(pattern), _go_replacement(repl), text)


def _match(pattern: str, text: str) -> bool:
    return re.search(go_regex(pattern), text) is not None


def _tz(name: str, t: GoTime) -> GoTime:
    try:
        return t.In(ZoneInfo(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name}") from exc


def _since(t: GoTime) -> str:
    seconds = time.time() - (t.seconds or 0.0)
    return f"{seconds:.0f}s"


FUNCS: Mapping[str, Callable[..., Any]] = {
    "toUpper": str.upper,
    "toLower": str.lower,
    "title": _go_title,
    "trimSpace": str.strip,
    "join": lambda sep, items: sep.join(items),
    "match": _match,
    "safeHtml": str,
    "reReplaceAll": _re_replace_all,
    "stringSlice": lambda *items: list(items),
    "date": lambda layout, t: t.Format(layout),
    "tz": _tz,
    "since": _since,
    "urlquery": lambda *args: quote_plus("".join(str(a) for a in args)),
    "html": lambda *args: html.escape("".join(str(a) for a in args)),
}
"""Alertmanager's template functions (``template.DefaultFuncs``)."""


# --- default templates ------------------------------------------------------------

DEFAULT_TEMPLATES = """\
{{ define "__alertmanager" }}Alertmanager{{ end }}
{{ define "__alertmanagerURL" }}{{ .ExternalURL }}/#/alerts?receiver=\
{{ .Receiver | urlquery }}{{ end }}

{{ define "__subject" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:\
{{ .Alerts.Firing | len }}{{ end }}] {{ .GroupLabels.SortedPairs.Values | join " " }} \
{{ if gt (len .CommonLabels) (len .GroupLabels) }}(\
{{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join " " }}{{ end }})\
{{ end }}{{ end }}
{{ define "__description" }}{{ end }}

{{ define "__text_alert_list" }}{{ range . }}Labels:
{{ range .Labels.SortedPairs }} - {{ .Name }} = {{ .Value }}
{{ end }}Annotations:
{{ range .Annotations.SortedPairs }} - {{ .Name }} = {{ .Value }}
{{ end }}Source: {{ .GeneratorURL }}
{{ end }}{{ end }}

{{ define "__text_alert_list_markdown" }}{{ range . }}
**Labels**
{{ range .Labels.SortedPairs }}- {{ .Name }}: {{ .Value }}
{{ end }}**Annotations**
{{ range .Annotations.SortedPairs }}- {{ .Name }}: {{ .Value }}
{{ end }}[Source]({{ .GeneratorURL }})
{{ end }}{{ end }}

{{ define "__markdown_text" }}{{ if gt (len .Alerts.Firing) 0 }}#### Alerts Firing
{{ template "__text_alert_list_markdown" .Alerts.Firing }}{{ end }}\
{{ if gt (len .Alerts.Resolved) 0 }}#### Alerts Resolved
{{ template "__text_alert_list_markdown" .Alerts.Resolved }}{{ end }}\
[View in {{ template "__alertmanager" . }}]({{ template "__alertmanagerURL" . }}){{ end }}

{{ define "slack.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "slack.default.username" }}{{ template "__alertmanager" . }}{{ end }}
{{ define "slack.default.fallback" }}{{ template "slack.default.title" . }} | \
{{ template "slack.default.titlelink" . }}{{ end }}
{{ define "slack.default.callbackid" }}{{ end }}
{{ define "slack.default.pretext" }}{{ end }}
{{ define "slack.default.titlelink" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "slack.default.iconemoji" }}{{ end }}
{{ define "slack.default.iconurl" }}{{ end }}
{{ define "slack.default.text" }}{{ end }}
{{ define "slack.default.footer" }}{{ end }}

{{ define "email.default.subject" }}{{ template "__subject" . }}{{ end }}
{{ define "__email_alert_list" }}{{ range . }}<tr><td>
<strong>Labels</strong><br />
{{ range .Labels.SortedPairs }}{{ .Name }} = {{ .Value }}<br />{{ end }}
{{ if gt (len .Annotations) 0 }}<strong>Annotations</strong><br />{{ end }}
{{ range .Annotations.SortedPairs }}{{ .Name }} = {{ .Value }}<br />{{ end }}
<a href="{{ .GeneratorURL }}">Source</a><br />
</td></tr>
{{ end }}{{ end }}
{{ define "email.default.html" }}<!DOCTYPE html>
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<title>{{ template "__subject" . }}</title>
</head>
<body style="font-family: 'Helvetica Neue', Helvetica, Arial, sans-serif; font-size: 14px;">
<table width="100%" cellpadding="0" cellspacing="0">
<tr><td style="background-color: #E6522C; color: #fff; padding: 20px; text-align: center;">
{{ .Alerts | len }} alert{{ if gt (len .Alerts) 1 }}s{{ end }} for \
{{ range .GroupLabels.SortedPairs }}{{ .Name }}={{ .Value }} {{ end }}
</td></tr>
<tr><td style="padding: 10px 0;"><a href="{{ template "__alertmanagerURL" . }}">\
View in {{ template "__alertmanager" . }}</a></td></tr>
{{ if gt (len .Alerts.Firing) 0 }}\
<tr><td><strong>[{{ .Alerts.Firing | len }}] Firing</strong></td></tr>
{{ template "__email_alert_list" .Alerts.Firing }}{{ end }}
{{ if gt (len .Alerts.Resolved) 0 }}\
<tr><td><strong>[{{ .Alerts.Resolved | len }}] Resolved</strong></td></tr>
{{ template "__email_alert_list" .Alerts.Resolved }}{{ end }}
</table>
<p style="color: #999; font-size: 12px; text-align: center;">\
<a href="{{ .ExternalURL }}">Sent by {{ template "__alertmanager" . }}</a></p>
</body>
</html>
{{ end }}

{{ define "dingtalk.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "dingtalk.default.text" }}### {{ template "__subject" . }}
{{ template "__markdown_text" . }}{{ end }}

{{ define "wecom.default.content" }}### {{ template "__subject" . }}
{{ template "__markdown_text" . }}{{ end }}

{{ define "feishu.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "feishu.default.text" }}{{ template "__markdown_text" . }}{{ end }}
"""
"""The default named templates (Alertmanager 0.25's ``default.tmpl``, plus inferwatch's)."""


def expand_globs(patterns: Sequence[str]) -> list[str]:
    """The files named by template globs, in order (each glob's matches sorted)."""
    files: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        files += [m for m in matches if m not in files]
    return files


# --- rendering --------------------------------------------------------------------


class MessageTemplates:
    """The templates one notifier executes: the defaults, the user's files, and the
    notifier's own text fields (each compiled once with :meth:`add`)."""

    def __init__(self, files: Sequence[str] = (), *, field: str = "templates") -> None:
        from inferwatch import gotemplate

        self._set = gotemplate.parse(DEFAULT_TEMPLATES, name="default.tmpl", funcs=FUNCS)
        for path in expand_globs(files):
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError as exc:
                raise AlertingConfigError(
                    f"{field}: cannot read template file {path!r}: {exc.strerror}", field=field
                ) from exc
            try:
                self._set.define(text, name=path)
            except TemplateError as exc:
                raise AlertingConfigError(f"{field}: {path}: {exc}", field=field) from exc

    def add(self, key: str, text: str, *, field: str) -> None:
        """Compile ``text`` (a config field) as the template ``key``."""
        try:
            self._set.define(f'{{{{ define "{key}" }}}}{text}{{{{ end }}}}', name=key)
        except TemplateError as exc:
            raise AlertingConfigError(f"{field}: {exc}", field=field, value=text) from exc

    def render(self, key: str, data: TemplateData) -> str:
        """Execute the field template ``key``; a failure is a non-retryable error."""
        try:
            result: str = self._set.execute_template(key, data)
        except TemplateError as exc:
            raise NotifyError(f"template {key}: {exc}", retryable=False) from exc
        return result


__all__ = [
    "DEFAULT_TEMPLATES",
    "FUNCS",
    "KV",
    "AlertData",
    "Alerts",
    "GoSlice",
    "GoTime",
    "MessageTemplates",
    "Pair",
    "Pairs",
    "TemplateData",
    "expand_globs",
    "go_time_format",
    "template_data",
]
