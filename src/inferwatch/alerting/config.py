"""Alertmanager configuration files (``alertmanager.yml``), read as Alertmanager 0.25 does.

:func:`load_config` / :func:`parse_config` check a file the way ``amtool check-config``
does (unknown fields are errors, the root route needs a receiver and no matchers, every
receiver a route names must exist, ...) and build the typed :class:`AlertmanagerConfig`:
global defaults, the resolved routing tree, receivers with their notifiers, inhibition
rules and template globs. Every error is an :class:`~inferwatch.AlertingConfigError`
naming the file, the line and the field (``route.routes[1].group_wait``), and never
shows a secret. Besides Alertmanager's receivers (webhook, slack, email), inferwatch
reads its native ``dingtalk_configs``, ``wecom_configs`` and ``feishu_configs``.

Not supported: Alertmanager's other integrations (PagerDuty, OpsGenie, ...), and
``time_intervals``/``mute_time_intervals``; both are rejected with a clear error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from inferwatch._duration import duration_ms
from inferwatch._errors import AlertingConfigError
from inferwatch.alerting.inhibit import InhibitRule
from inferwatch.alerting.matchers import LABEL_NAME, Matcher, parse_matchers, sort_key
from inferwatch.alerting.notifiers.base import Notifier, Secret
from inferwatch.alerting.route import (
    DEFAULT_GROUP_INTERVAL_S,
    DEFAULT_GROUP_WAIT_S,
    DEFAULT_REPEAT_INTERVAL_S,
    Route,
    go_quote,
)

#: Keys whose values are secrets anywhere in the file: masked in ``original``.
SECRET_KEYS = frozenset(
    {
        "smtp_auth_password",
        "smtp_auth_secret",
        "slack_api_url",
        "auth_password",
        "auth_secret",
        "api_url",
        "url",
        "webhook_url",
        "password",
        "bearer_token",
        "credentials",
        "client_secret",
        "secret",
        "token",
        "access_token",
        "api_key",
        "api_secret",
        "opsgenie_api_key",
        "victorops_api_key",
        "wechat_api_secret",
        "routing_key",
        "service_key",
        "bot_token",
    }
)

NATIVE_RECEIVER_KINDS = ("dingtalk", "wecom", "feishu")
ALERTMANAGER_RECEIVER_KINDS = ("webhook", "slack", "email")
_UNSUPPORTED_RECEIVER_KINDS = (
    "pagerduty",
    "opsgenie",
    "wechat",
    "pushover",
    "victorops",
    "sns",
    "telegram",
    "webex",
)

_TOP_KEYS = frozenset(
    {"global", "route", "inhibit_rules", "receivers", "templates"}
    | {"mute_time_intervals", "time_intervals"}
)
_GLOBAL_KEYS = frozenset(
    {
        "resolve_timeout",
        "http_config",
        "smtp_from",
        "smtp_hello",
        "smtp_smarthost",
        "smtp_auth_username",
        "smtp_auth_password",
        "smtp_auth_password_file",
        "smtp_auth_secret",
        "smtp_auth_identity",
        "smtp_require_tls",
        "slack_api_url",
        "slack_api_url_file",
        "pagerduty_url",
        "opsgenie_api_url",
        "opsgenie_api_key",
        "opsgenie_api_key_file",
        "wechat_api_url",
        "wechat_api_secret",
        "wechat_api_corp_id",
        "victorops_api_url",
        "victorops_api_key",
        "victorops_api_key_file",
        "telegram_api_url",
        "webex_api_url",
    }
)
_ROUTE_KEYS = frozenset(
    {
        "receiver",
        "group_by",
        "match",
        "match_re",
        "matchers",
        "mute_time_intervals",
        "active_time_intervals",
        "continue",
        "routes",
        "group_wait",
        "group_interval",
        "repeat_interval",
    }
)
_INHIBIT_KEYS = frozenset(
    {
        f"{side}_{kind}"
        for side in ("source", "target")
        for kind in ("match", "match_re", "matchers")
    }
    | {"equal"}
)
_RECEIVER_KEYS = frozenset(
    {"name"}
    | {
        f"{k}_configs"
        for k in ALERTMANAGER_RECEIVER_KINDS + NATIVE_RECEIVER_KINDS + _UNSUPPORTED_RECEIVER_KINDS
    }
)


@dataclass(frozen=True, slots=True)
class GlobalConfig:
    """The ``global:`` section with Alertmanager's defaults; ``raw`` is every key as
    written (secrets as :class:`Secret`), for settings not given a field here."""

    resolve_timeout_s: float = 300.0
    smtp_from: str = ""
    smtp_smarthost: str = ""
    smtp_hello: str = "localhost"
    smtp_auth_username: str = ""
    smtp_auth_password: Secret | None = None
    smtp_auth_identity: str = ""
    smtp_auth_secret: Secret | None = None
    smtp_require_tls: bool = True
    slack_api_url: Secret | None = None
    http_config: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Integration:
    """One entry of a receiver's ``<kind>_configs`` list, with its notifier."""

    kind: str
    index: int
    notifier: Notifier
    receiver: str = ""

    @property
    def key(self) -> str:
        """``receiver/kind/index``: identifies the integration in logs and the outbox."""
        return f"{self.receiver}/{self.kind}/{self.index}"


@dataclass(frozen=True, slots=True)
class Receiver:
    """A named receiver and its integrations (none: notifications go nowhere)."""

    name: str
    integrations: tuple[Integration, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertmanagerConfig:
    """A checked Alertmanager configuration. ``original`` is the file's text with
    secret values replaced by ``<secret>`` (what ``/api/v2/status`` shows)."""

    global_: GlobalConfig
    route: Route
    receivers: dict[str, Receiver]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    templates: tuple[str, ...] = ()
    original: str = ""
    file: str = "<string>"


def load_config(
    path: str, *, default_group_wait_s: float = DEFAULT_GROUP_WAIT_S
) -> AlertmanagerConfig:
    """Read and check an Alertmanager config file (raises AlertingConfigError).

    ``default_group_wait_s`` is the root route's ``group_wait`` when the file sets none
    (Alertmanager's 30 s; ``inferwatch server`` uses 0 s, so that a new group's first
    notification goes out at once)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AlertingConfigError(f"{path}: cannot read: {exc.strerror}", file=path) from None
    return parse_config(text, file=path, default_group_wait_s=default_group_wait_s)


def parse_config(
    text: str, *, file: str = "<string>", default_group_wait_s: float = DEFAULT_GROUP_WAIT_S
) -> AlertmanagerConfig:
    """Check and build a config from YAML text; ``file`` names it in errors and is the
    base directory of relative ``templates`` globs. See :func:`load_config` for
    ``default_group_wait_s``."""
    return _Reader(text, file, default_group_wait_s).read()


class _Reader:
    def __init__(self, text: str, file: str, default_group_wait_s: float) -> None:
        self.text = text
        self.file = file
        self.default_group_wait_s = default_group_wait_s

    # -- errors and node helpers -------------------------------------------------------

    def fail(self, node: Node | None, path: str, reason: str, *, value: object = None) -> NoReturn:
        line = node.start_mark.line + 1 if node is not None else None
        where = f"{self.file}:{line}" if line else self.file
        prefix = f"{where}: {path}: " if path else f"{where}: "
        raise AlertingConfigError(
            prefix + reason, file=self.file, line=line, field=path or None, value=value
        )

    def mapping(
        self, node: Node, path: str, allowed: frozenset[str]
    ) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            self.fail(node, path, f"cannot unmarshal {_tag(node)} into a mapping")
        out: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else ""
            if name not in allowed:
                self.fail(key, path, f"field {name} not found in type config.plain")
            if name in out:
                self.fail(key, path, f"mapping key {go_quote(name)} already defined")
            out[name] = (key, value)
        return {k: v for k, v in out.items() if not _is_null(v[1])}

    def string(self, node: Node, path: str) -> str:
        if not isinstance(node, ScalarNode):
            self.fail(node, path, f"cannot unmarshal {_tag(node)} into string")
        return str(node.value)

    def boolean(self, node: Node, path: str) -> bool:
        value = _construct(node)
        if not isinstance(value, bool):
            self.fail(node, path, f"cannot unmarshal {_tag(node)} into bool")
        return value

    def strings(self, node: Node, path: str) -> list[tuple[Node, str]]:
        if not isinstance(node, SequenceNode):
            self.fail(node, path, f"cannot unmarshal {_tag(node)} into []string")
        return [(item, self.string(item, f"{path}[{i}]")) for i, item in enumerate(node.value)]

    def sequence(self, node: Node, path: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            self.fail(node, path, f"cannot unmarshal {_tag(node)} into a list")
        return list(node.value)

    def duration(self, node: Node, path: str) -> float:
        text = self.string(node, path)
        ms = duration_ms(text)
        if ms is None:
            self.fail(node, path, f"not a valid duration string: {go_quote(text)}")
        return ms / 1000.0

    def url(self, node: Node, path: str) -> Secret:
        text = self.string(node, path)
        scheme, sep, rest = text.partition("://")
        if not sep:
            self.fail(node, path, 'unsupported scheme "" for URL')
        if scheme not in ("http", "https"):
            self.fail(node, path, f"unsupported scheme {go_quote(scheme)} for URL")
        if not rest.split("/", 1)[0]:
            self.fail(node, path, "missing host for URL")
        return Secret(text)

    # -- sections ------------------------------------------------------------------------

    def read(self) -> AlertmanagerConfig:
        try:
            root = yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            where = f"{self.file}:{line}" if line else self.file
            raise AlertingConfigError(
                f"{where}: invalid YAML: {problem}", file=self.file, line=line
            ) from None
        if root is None or _is_null(root):
            self.fail(None, "", "no routes provided (the file is empty)")
        top = self.mapping(root, "", _TOP_KEYS)
        for key in ("time_intervals", "mute_time_intervals"):
            if key in top:
                self.fail(
                    top[key][0],
                    key,
                    "time intervals are not supported by inferwatch yet; "
                    "remove them (or use silences)",
                )
        global_ = self.read_global(top["global"][1] if "global" in top else None)
        templates = self.read_templates(top["templates"][1] if "templates" in top else None)
        receivers = self.read_receivers(
            top["receivers"][1] if "receivers" in top else None, global_, templates
        )
        if "route" not in top:
            self.fail(root, "route", "no routes provided")
        route = self.read_root_route(*top["route"], receivers)
        inhibit = tuple(
            self.read_inhibit_rule(node, f"inhibit_rules[{i}]")
            for i, node in enumerate(
                self.sequence(top["inhibit_rules"][1], "inhibit_rules")
                if "inhibit_rules" in top
                else []
            )
        )
        return AlertmanagerConfig(
            global_=global_,
            route=route,
            receivers=receivers,
            inhibit_rules=inhibit,
            templates=templates,
            original=_mask_secrets(self.text, root),
            file=self.file,
        )

    def read_global(self, node: Node | None) -> GlobalConfig:
        if node is None:
            return GlobalConfig()
        fields = self.mapping(node, "global", _GLOBAL_KEYS)
        raw: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for name, (_, value) in fields.items():
            path = f"global.{name}"
            if name == "resolve_timeout":
                values["resolve_timeout_s"] = self.duration(value, path)
                raw[name] = self.string(value, path)
            elif name == "smtp_require_tls":
                values[name] = raw[name] = self.boolean(value, path)
            elif name == "http_config":
                if not isinstance(value, MappingNode):
                    self.fail(value, path, f"cannot unmarshal {_tag(value)} into config.plain")
                values[name] = raw[name] = _construct(value)
            elif name.endswith("_url"):
                url = self.url(value, path)
                raw[name] = url
                if name == "slack_api_url":
                    values[name] = url
            elif name == "smtp_smarthost":
                host = self.string(value, path)
                if host and (":" not in host or not host.rsplit(":", 1)[1]):
                    reason = (
                        "missing port in address" if ":" not in host else "port cannot be empty"
                    )
                    self.fail(value, path, f"address {host}: {reason}")
                values[name] = raw[name] = host
            elif name in SECRET_KEYS:
                values[name] = raw[name] = Secret(self.string(value, path))
                if name not in GlobalConfig.__dataclass_fields__:
                    del values[name]
            else:
                raw[name] = self.string(value, path)
                if name in GlobalConfig.__dataclass_fields__:
                    values[name] = raw[name]
        return GlobalConfig(**values, raw=raw)

    def read_templates(self, node: Node | None) -> tuple[str, ...]:
        if node is None:
            return ()
        base = os.path.dirname(self.file) if self.file != "<string>" else ""
        out = []
        for _, text in self.strings(node, "templates"):
            out.append(text if not base or os.path.isabs(text) else os.path.join(base, text))
        return tuple(out)

    def read_receivers(
        self, node: Node | None, global_: GlobalConfig, templates: tuple[str, ...]
    ) -> dict[str, Receiver]:
        receivers: dict[str, Receiver] = {}
        for i, item in enumerate(self.sequence(node, "receivers") if node is not None else []):
            path = f"receivers[{i}]"
            fields = self.mapping(item, path, _RECEIVER_KEYS)
            name = self.string(fields["name"][1], f"{path}.name") if "name" in fields else ""
            if not name:
                self.fail(item, path, "missing name in receiver")
            if name in receivers:
                self.fail(
                    fields["name"][1],
                    f"{path}.name",
                    f"notification config name {go_quote(name)} is not unique",
                )
            integrations: list[Integration] = []
            for key, (key_node, value) in fields.items():
                if key == "name":
                    continue
                kind = key.removesuffix("_configs")
                if kind in _UNSUPPORTED_RECEIVER_KINDS:
                    self.fail(
                        key_node,
                        f"{path}.{key}",
                        f"{key} are not supported by inferwatch (supported: "
                        + ", ".join(
                            f"{k}_configs"
                            for k in ALERTMANAGER_RECEIVER_KINDS + NATIVE_RECEIVER_KINDS
                        )
                        + ")",
                    )
                for j, entry in enumerate(self.sequence(value, f"{path}.{key}")):
                    entry_path = f"{path}.{key}[{j}]"
                    notifier = self.build(kind, entry, entry_path, global_, templates)
                    integrations.append(Integration(kind, j, notifier, receiver=name))
            receivers[name] = Receiver(name, tuple(integrations))
        return receivers

    def build(
        self, kind: str, entry: Node, path: str, global_: GlobalConfig, templates: tuple[str, ...]
    ) -> Notifier:
        if not isinstance(entry, MappingNode):
            self.fail(entry, path, f"cannot unmarshal {_tag(entry)} into config.plain")
        try:
            return _build_notifier(
                kind, _construct(entry), global_config=global_, templates=templates, field=path
            )
        except AlertingConfigError as exc:
            message = str(exc)
            where: Node = entry
            sub = (exc.field or "").removeprefix(path + ".")
            if exc.field and sub != exc.field:
                top_key = re.split(r"[.\[]", sub, maxsplit=1)[0]
                for key, _ in entry.value:
                    if isinstance(key, ScalarNode) and key.value == top_key:
                        where = key
            line = where.start_mark.line + 1
            if not message.startswith(path):
                message = f"{path}: {message}"
            raise AlertingConfigError(
                f"{self.file}:{line}: {message}", file=self.file, line=line, field=exc.field or path
            ) from None

    def read_matchers(
        self, fields: dict[str, tuple[Node, Node]], path: str, prefix: str
    ) -> tuple[Matcher, ...]:
        out: list[Matcher] = []
        if f"{prefix}match" in fields:
            node = fields[f"{prefix}match"][1]
            for name, value in self.string_map(
                node, f"{path}.{prefix}match", "invalid label name {}"
            ):
                out.append(Matcher(name, "=", value))
        if f"{prefix}match_re" in fields:
            key = f"{prefix}match_re"
            node = fields[key][1]
            for name, value in self.string_map(
                node, f"{path}.{key}", "{} is not a valid label name"
            ):
                try:
                    Matcher(name, "=~", value)
                    out.append(Matcher(name, "=~", f"^(?:{value})$"))
                except ValueError as exc:
                    self.fail(node, f"{path}.{key}.{name}", str(exc))
        if f"{prefix}matchers" in fields:
            key = f"{prefix}matchers"
            for item, text in self.strings(fields[key][1], f"{path}.{key}"):
                try:
                    out.extend(parse_matchers(text))
                except ValueError as exc:
                    self.fail(item, f"{path}.{key}", str(exc))
        return tuple(sorted(out, key=sort_key))

    def string_map(self, node: Node, path: str, bad_name: str) -> list[tuple[str, str]]:
        if not isinstance(node, MappingNode):
            self.fail(node, path, f"cannot unmarshal {_tag(node)} into map[string]string")
        out = []
        for key, value in node.value:
            name = self.string(key, path)
            if LABEL_NAME.fullmatch(name) is None:
                self.fail(key, path, bad_name.format(go_quote(name)))
            out.append((name, "" if _is_null(value) else self.string(value, f"{path}.{name}")))
        return out

    def read_root_route(self, at: Node, node: Node, receivers: dict[str, Receiver]) -> Route:
        fields = self.mapping(node, "route", _ROUTE_KEYS)
        if not fields.get("receiver") or not self.string(fields["receiver"][1], "route.receiver"):
            self.fail(at, "route", "root route must specify a default receiver")
        for key in ("match", "match_re", "matchers"):
            if key in fields:
                self.fail(fields[key][0], f"route.{key}", "root route must not have any matchers")
        for key, what in (("mute_time_intervals", "mute"), ("active_time_intervals", "active")):
            if key in fields:
                self.fail(
                    fields[key][0],
                    f"route.{key}",
                    f"root route must not have any {what} time intervals",
                )
        if "continue" in fields and self.boolean(fields["continue"][1], "route.continue"):
            self.fail(fields["continue"][0], "route.continue", "cannot have continue in root route")
        return self.read_route(node, "route", None, receivers)

    def read_route(
        self, node: Node, path: str, parent: Route | None, receivers: dict[str, Receiver]
    ) -> Route:
        fields = self.mapping(node, path, _ROUTE_KEYS)
        receiver = parent.receiver if parent else ""
        if "receiver" in fields:
            value = fields["receiver"][1]
            name = self.string(value, f"{path}.receiver")
            if name:
                if name not in receivers:
                    self.fail(
                        value,
                        f"{path}.receiver",
                        f"undefined receiver {go_quote(name)} used in route",
                    )
                receiver = name
        group_by = parent.group_by if parent else ()
        group_by_all = parent.group_by_all if parent else False
        if "group_by" in fields:
            items = self.strings(fields["group_by"][1], f"{path}.group_by")
            labels: list[str] = []
            wildcard = False
            for item, label in items:
                if label == "...":
                    wildcard = True
                    continue
                if LABEL_NAME.fullmatch(label) is None:
                    self.fail(
                        item,
                        f"{path}.group_by",
                        f"invalid label name {go_quote(label)} in group_by list",
                    )
                labels.append(label)
            if labels and wildcard:
                self.fail(
                    fields["group_by"][1],
                    f"{path}.group_by",
                    "cannot have wildcard group_by (`...`) and other other labels at the same time",
                )
            seen: set[str] = set()
            for item, label in items:
                if label in seen:
                    self.fail(
                        item, f"{path}.group_by", f"duplicated label {go_quote(label)} in group_by"
                    )
                seen.add(label)
            if labels:
                group_by, group_by_all = tuple(labels), False
            elif wildcard:
                group_by, group_by_all = (), True
        timers = {
            "group_wait": parent.group_wait_s if parent else self.default_group_wait_s,
            "group_interval": parent.group_interval_s if parent else DEFAULT_GROUP_INTERVAL_S,
            "repeat_interval": parent.repeat_interval_s if parent else DEFAULT_REPEAT_INTERVAL_S,
        }
        for key in timers:
            if key in fields:
                seconds = self.duration(fields[key][1], f"{path}.{key}")
                if seconds == 0 and key != "group_wait":
                    self.fail(fields[key][1], f"{path}.{key}", f"{key} cannot be zero")
                timers[key] = seconds
        for key in ("mute_time_intervals", "active_time_intervals"):
            if key in fields:
                for item, name in self.strings(fields[key][1], f"{path}.{key}"):
                    self.fail(
                        item,
                        f"{path}.{key}",
                        f"undefined time interval {go_quote(name)} used in route",
                    )
        continue_ = (
            self.boolean(fields["continue"][1], f"{path}.continue")
            if "continue" in fields
            else False
        )
        matchers = self.read_matchers(fields, path, "")
        # Children inherit from this node's options, so build a stand-in parent first.
        options = Route(
            receiver=receiver,
            group_by=group_by,
            group_by_all=group_by_all,
            group_wait_s=timers["group_wait"],
            group_interval_s=timers["group_interval"],
            repeat_interval_s=timers["repeat_interval"],
        )
        children = tuple(
            self.read_route(child, f"{path}.routes[{i}]", options, receivers)
            for i, child in enumerate(
                self.sequence(fields["routes"][1], f"{path}.routes") if "routes" in fields else []
            )
        )
        return Route(
            receiver=receiver,
            group_by=group_by,
            group_by_all=group_by_all,
            matchers=matchers,
            continue_=continue_,
            group_wait_s=timers["group_wait"],
            group_interval_s=timers["group_interval"],
            repeat_interval_s=timers["repeat_interval"],
            routes=children,
        )

    def read_inhibit_rule(self, node: Node, path: str) -> InhibitRule:
        fields = self.mapping(node, path, _INHIBIT_KEYS)
        equal: list[str] = []
        if "equal" in fields:
            for item, label in self.strings(fields["equal"][1], f"{path}.equal"):
                if LABEL_NAME.fullmatch(label) is None:
                    self.fail(item, f"{path}.equal", f"{go_quote(label)} is not a valid label name")
                equal.append(label)
        return InhibitRule(
            source_matchers=self.read_matchers(fields, path, "source_"),
            target_matchers=self.read_matchers(fields, path, "target_"),
            equal=tuple(equal),
        )


def _build_notifier(
    kind: str, config: Any, *, global_config: GlobalConfig, templates: tuple[str, ...], field: str
) -> Notifier:
    from inferwatch.alerting import notifiers

    return notifiers.build_notifier(
        kind, config, global_config=global_config, templates=templates, field=field
    )


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _tag(node: Node) -> str:
    tag = node.tag.rsplit(":", 1)[-1] if node.tag else "?"
    shown = f" `{node.value}`" if isinstance(node, ScalarNode) and len(str(node.value)) < 40 else ""
    return f"!!{tag}{shown}"


def _construct(node: Node) -> Any:
    return SafeConstructor().construct_document(node)


def _mask_secrets(text: str, root: Node) -> str:
    spans: list[tuple[int, int]] = []

    def visit(node: Node) -> None:
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if (
                    isinstance(key, ScalarNode)
                    and key.value in SECRET_KEYS
                    and isinstance(value, ScalarNode)
                    and not _is_null(value)
                ):
                    spans.append((value.start_mark.index, value.end_mark.index))
                else:
                    visit(value)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                visit(item)

    visit(root)
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + "<secret>" + text[end:]
    return text


__all__ = [
    "ALERTMANAGER_RECEIVER_KINDS",
    "NATIVE_RECEIVER_KINDS",
    "SECRET_KEYS",
    "AlertmanagerConfig",
    "GlobalConfig",
    "Integration",
    "Receiver",
    "load_config",
    "parse_config",
]
