"""What every notifier is: something that delivers a :class:`Notification`."""

from __future__ import annotations

from typing import Protocol

from inferwatch.alerting.alert import Notification


class Secret(str):
    """A string that never shows itself: ``str()``/``repr()``/f-strings give
    ``<secret>``; :meth:`reveal` gives the value, for the one place that sends it."""

    __slots__ = ()

    def reveal(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return "<secret>"

    def __repr__(self) -> str:
        return "Secret('<secret>')"

    def __format__(self, spec: str) -> str:
        return "<secret>"


class Notifier(Protocol):
    """One configured integration of a receiver (one entry of ``webhook_configs``, ...).

    ``kind`` is the config key without ``_configs`` (``"webhook"``, ``"slack"``,
    ``"email"``, ``"dingtalk"``, ``"wecom"``, ``"feishu"``); ``send_resolved`` is the
    entry's setting (with Alertmanager's default for the kind). :meth:`notify` delivers
    one notification or raises :class:`~inferwatch.NotifyError` (``retryable`` says
    whether the outbox should try again); it never logs a secret.
    """

    kind: str
    send_resolved: bool

    def notify(self, notification: Notification) -> None: ...


__all__ = ["Notifier", "Secret"]
