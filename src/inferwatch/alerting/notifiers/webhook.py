"""Alertmanager's webhook notifier: the version 4 JSON payload, POSTed to a URL.

Config (``webhook_configs``): ``url`` or ``url_file`` (read at send time),
``send_resolved`` (default true), ``http_config``, ``max_alerts`` (0: all). The body
is Alertmanager's ``webhook.Message`` field for field; times are RFC 3339 as Go
writes them (``2024-01-02T03:04:05.123Z``, zero time ``0001-01-01T00:00:00Z``).
See https://prometheus.io/docs/alerting/latest/configuration/#webhook_config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inferwatch.alerting.alert import Notification
from inferwatch.alerting.notifiers.base import Secret
from inferwatch.alerting.notifiers.http import (
    ConfigReader,
    HTTPConfig,
    go_json,
    http_config_for,
    post,
    read_secret_file,
)
from inferwatch.alerting.notifiers.templates import GoTime

_FIELDS = ("send_resolved", "url", "url_file", "http_config", "max_alerts")


def webhook_payload(notification: Notification, *, max_alerts: int = 0) -> dict[str, Any]:
    """Alertmanager's webhook message (version 4) for ``notification``.

    With ``max_alerts`` > 0 only the first ``max_alerts`` alerts are sent and
    ``truncatedAlerts`` counts the rest.
    """
    alerts = notification.alerts
    truncated = notification.truncated_alerts
    if max_alerts and len(alerts) > max_alerts:
        truncated += len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    items = []
    for alert in alerts:
        resolved = alert.resolved(notification.now)
        items.append(
            {
                "status": "resolved" if resolved else "firing",
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "startsAt": GoTime(alert.starts_at).rfc3339(),
                "endsAt": GoTime(alert.ends_at if resolved else None).rfc3339(),
                "generatorURL": alert.generator_url,
                "fingerprint": alert.fingerprint,
            }
        )
    return {
        "receiver": notification.receiver,
        "status": notification.status,
        "alerts": items,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": dict(notification.common_labels),
        "commonAnnotations": dict(notification.common_annotations),
        "externalURL": notification.external_url,
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": truncated,
    }


class WebhookNotifier:
    """POSTs Alertmanager's webhook payload to ``url``."""

    kind = "webhook"

    def __init__(
        self,
        *,
        url: Secret | None = None,
        url_file: str = "",
        send_resolved: bool = True,
        http_config: HTTPConfig | None = None,
        max_alerts: int = 0,
    ) -> None:
        self.url = url
        self.url_file = url_file
        self.send_resolved = send_resolved
        self.http_config = http_config or HTTPConfig()
        self.max_alerts = max_alerts

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], global_config: Any, templates: Sequence[str], field: str
    ) -> WebhookNotifier:
        r = ConfigReader(raw, field, _FIELDS)
        r.one_of("url", "url_file")
        return cls(
            url=r.url("url"),
            url_file=r.text("url_file"),
            send_resolved=r.flag("send_resolved", True),
            http_config=http_config_for(raw, global_config, field),
            max_alerts=r.integer("max_alerts"),
        )

    def __repr__(self) -> str:
        return f"WebhookNotifier(url={self.url!r}, send_resolved={self.send_resolved})"

    def notify(self, notification: Notification) -> None:
        url = self.url if self.url is not None else read_secret_file(self.url_file, "url")
        body = go_json(webhook_payload(notification, max_alerts=self.max_alerts))
        post(url.reveal(), body, http_config=self.http_config, what="webhook")


__all__ = ["WebhookNotifier", "webhook_payload"]
