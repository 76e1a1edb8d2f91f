"""Notifiers: the integrations of an Alertmanager receiver.

:func:`build_notifier` turns one entry of a receiver's ``<kind>_configs`` list into a
:class:`~inferwatch.alerting.notifiers.base.Notifier`:

- ``webhook``, ``slack``, ``email``: Alertmanager's own, with its fields, defaults and
  payloads;
- ``dingtalk``, ``wecom``, ``feishu``: inferwatch's native chat-robot integrations (keys
  ``dingtalk_configs``, ``wecom_configs``, ``feishu_configs``), signing requests the way
  each vendor documents.

Message text comes from Go templates (Alertmanager's defaults, overridable with the
config's ``templates:`` files); see :mod:`inferwatch.alerting.notifiers.templates`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inferwatch._errors import AlertingConfigError
from inferwatch.alerting.notifiers.base import Notifier, Secret

NOTIFIER_KINDS: frozenset[str] = frozenset(
    {"webhook", "slack", "email", "dingtalk", "wecom", "feishu"}
)


def build_notifier(
    kind: str,
    config: Mapping[str, Any],
    *,
    global_config: Any,
    templates: Sequence[str] = (),
    field: str = "receivers[0].webhook_configs[0]",
) -> Notifier:
    """Build the notifier for one ``<kind>_configs`` entry.

    ``global_config`` is the config's :class:`GlobalConfig` (or a plain mapping of the
    ``global:`` section) that supplies defaults such as ``slack_api_url`` and the
    ``smtp_*`` settings; ``templates`` are template file paths (globs already relative to
    the working directory) whose ``define`` blocks override the default templates.
    Raises :class:`~inferwatch.AlertingConfigError` naming ``field`` (for example
    ``receivers[0].slack_configs[1].channel``) for an unknown or invalid field.
    """
    if not isinstance(config, Mapping):
        raise AlertingConfigError(
            f"{field}: expected a mapping, got {type(config).__name__}", field=field
        )
    if kind == "webhook":
        from inferwatch.alerting.notifiers.webhook import WebhookNotifier

        return WebhookNotifier.from_config(config, global_config, templates, field)
    if kind == "slack":
        from inferwatch.alerting.notifiers.slack import SlackNotifier

        return SlackNotifier.from_config(config, global_config, templates, field)
    if kind == "email":
        from inferwatch.alerting.notifiers.email import EmailNotifier

        return EmailNotifier.from_config(config, global_config, templates, field)
    if kind == "dingtalk":
        from inferwatch.alerting.notifiers.dingtalk import DingTalkNotifier

        return DingTalkNotifier.from_config(config, global_config, templates, field)
    if kind == "wecom":
        from inferwatch.alerting.notifiers.wecom import WeComNotifier

        return WeComNotifier.from_config(config, global_config, templates, field)
    if kind == "feishu":
        from inferwatch.alerting.notifiers.feishu import FeishuNotifier

        return FeishuNotifier.from_config(config, global_config, templates, field)
    raise AlertingConfigError(
        f"{field}: unknown notifier kind {kind!r} (expected one of "
        f"{', '.join(sorted(NOTIFIER_KINDS))})",
        field=field,
        value=kind,
    )


__all__ = ["NOTIFIER_KINDS", "Notifier", "Secret", "build_notifier"]
