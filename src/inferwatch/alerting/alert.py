"""Alerts as Alertmanager sees them, and what a notifier is given to send.

An :class:`Alert` is what a rule evaluator (inferwatch's own, or a real Prometheus
posting to ``/api/v2/alerts``) hands to the dispatcher: labels that identify it,
annotations that describe it, when it started and when it ends (a firing alert's
``ends_at`` lies in the future and is pushed forward by each resend; a resolved one's
is in the past). A :class:`Notification` is one message for one receiver about one
group of alerts: the data of Alertmanager's webhook payload (version 4).

Times are Unix seconds (floats) throughout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

AlertStatus = Literal["firing", "resolved"]

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-1a 64 over the sorted names and
    values, each followed by the byte 0xff, as 16 hex digits (``model.LabelSet``)."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert. ``ends_at`` is ``None`` when the sender gave no end (Alertmanager then
    treats it as firing until ``resolve_timeout`` after its last update)."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: float = 0.0
    ends_at: float | None = None
    generator_url: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def resolved(self, now: float) -> bool:
        """Whether the alert has ended by ``now``."""
        return self.ends_at is not None and self.ends_at <= now

    def status(self, now: float) -> AlertStatus:
        return "resolved" if self.resolved(now) else "firing"


class AlertSink(Protocol):
    """Where a rule evaluator sends its alerts: the dispatcher, or a client of a real
    Alertmanager's ``/api/v2/alerts``. Must not block for long and never raises."""

    def send_alerts(self, alerts: Sequence[Alert]) -> None: ...


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one receiver about one group of alerts (webhook payload v4 data).

    ``status`` is ``"firing"`` if any alert in ``alerts`` is firing at ``now``.
    ``alerts`` are in the order the payload lists them (Alertmanager sorts by labels).
    ``group_key`` identifies the aggregation group (``{}/{...}:{alertname="x"}``).
    """

    receiver: str
    status: AlertStatus
    alerts: tuple[Alert, ...]
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    group_key: str
    now: float
    truncated_alerts: int = 0

    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if not a.resolved(self.now))

    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.resolved(self.now))


__all__ = ["Alert", "AlertSink", "AlertStatus", "Notification", "fingerprint"]
