"""The alert state machine of one alerting rule, as Prometheus's ``rules/alerting.go``.

An :class:`AlertStateMachine` holds the active alerts of one
:class:`~inferwatch.rules.model.AlertingRule`, keyed by their label set: the result
labels without ``__name__``, the rule's (templated) labels, and ``alertname``. Each
:meth:`AlertStateMachine.eval` takes the vector the rule's expression returned at one
evaluation and moves every alert along::

    inactive --(expression returns the series)--> pending --(after `for`)--> firing
    pending  --(series gone)--> dropped (a later return starts a new `for`)
    firing   --(series gone, past keep_firing_for)--> inactive ("resolved"), kept 15 m
                                                      so the resolution is sent

It returns the ``ALERTS`` and ``ALERTS_FOR_STATE`` samples to write. The module does no
I/O: time is passed in, and templates are expanded through :mod:`inferwatch.rules.template`.
Times are Unix seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from inferwatch._errors import QueryError
from inferwatch.alerting.alert import Alert
from inferwatch.promql.value import Sample
from inferwatch.sdk.logs import log_alert_change
from inferwatch.tsdb.labels import METRIC_NAME, Labels, make_labels

from .model import AlertingRule

AlertState = Literal["inactive", "pending", "firing"]
TemplateQuery = Callable[[str, float], list[tuple[dict[str, str], float]]]

ALERT_METRIC_NAME = "ALERTS"
ALERT_FOR_STATE_METRIC_NAME = "ALERTS_FOR_STATE"
ALERT_NAME_LABEL = "alertname"
ALERT_STATE_LABEL = "alertstate"
#: How long a resolved alert is kept (and re-sent) after it resolved, as in Prometheus.
RESOLVED_RETENTION_S = 15 * 60.0


@dataclass(slots=True)
class ActiveAlert:
    """One alert of a rule and its state. Times are Unix seconds; None means "never"."""

    labels: Labels
    annotations: dict[str, str]
    state: AlertState
    value: float
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    last_sent_at: float | None = None
    valid_until: float = 0.0
    keep_firing_since: float | None = None

    def needs_sending(self, ts: float, resend_delay_s: float) -> bool:
        """Whether the alert should go to Alertmanager at ``ts`` (Prometheus's rule)."""
        if self.state == "pending":
            return False
        if self.last_sent_at is None:
            return True
        if self.resolved_at is not None and self.resolved_at > self.last_sent_at:
            return True
        return self.last_sent_at + resend_delay_s < ts

    def to_alert(self, generator_url: str, external_labels: Mapping[str, str]) -> Alert:
        """The alert as sent: external labels added where the alert lacks them,
        ``starts_at`` the time it started firing, ``ends_at`` its resolution or the
        time it stays valid without a resend."""
        labels = dict(self.labels)
        for name, value in external_labels.items():
            if not labels.get(name):
                labels[name] = value
        ends_at = self.resolved_at if self.resolved_at is not None else self.valid_until
        return Alert(
            labels={k: v for k, v in labels.items() if v},
            annotations=dict(self.annotations),
            starts_at=self.fired_at if self.fired_at is not None else self.active_at,
            ends_at=ends_at,
            generator_url=generator_url,
        )


@dataclass(slots=True)
class AlertStateMachine:
    """The alerts of one alerting rule across evaluations.

    ``restored`` is False until the ``for`` state was restored after a restart (see
    :meth:`restore`); until then no ``ALERTS``/``ALERTS_FOR_STATE`` samples are
    produced, as in Prometheus, so a restart does not overwrite the saved state.
    """

    rule: AlertingRule
    external_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    restored: bool = True
    active: dict[Labels, ActiveAlert] = field(default_factory=dict)

    def eval(
        self,
        vector: Sequence[Sample],
        ts: float,
        *,
        sample_ts_ms: int | None = None,
        limit: int = 0,
        query: TemplateQuery | None = None,
    ) -> list[tuple[Labels, float]]:
        """Advance the alerts with the expression's result at evaluation time ``ts``.

        Returns the ``ALERTS`` and ``ALERTS_FOR_STATE`` samples (label set, value) to
        write at ``sample_ts_ms`` (default: ``ts``). Raises :class:`QueryError` when two
        results share a label set after the rule's labels are applied, or when more
        than ``limit`` alerts are active (all of the rule's alerts are then dropped).
        """
        rule = self.rule
        seen: dict[Labels, ActiveAlert] = {}
        for sample in vector:
            data = dict(sample.labels)

            def expand(text: str, _data: dict[str, str] = data, _v: float = sample.v) -> str:
                return self._expand(text, _data, _v, ts, query)

            lb = {k: v for k, v in sample.labels if k != METRIC_NAME}
            for name, text in rule.labels.items():
                lb[name] = expand(text)
            lb[ALERT_NAME_LABEL] = rule.alert
            labels = make_labels(lb)
            if labels in seen:
                raise QueryError(
                    "vector contains metrics with the same labelset after applying alert labels"
                )
            annotations = {name: expand(text) for name, text in rule.annotations.items()}
            seen[labels] = ActiveAlert(labels, annotations, "pending", sample.v, active_at=ts)

        for labels, new in seen.items():
            old = self.active.get(labels)
            if old is not None and old.state != "inactive":
                old.value = new.value
                old.annotations = new.annotations
                continue
            self.active[labels] = new
            self._log(new, "inactive")

        out: list[tuple[Labels, float]] = []
        active_count = 0
        for labels, alert in list(self.active.items()):
            if labels not in seen:
                keep_firing = False
                if alert.state == "firing" and rule.keep_firing_for_s > 0:
                    if alert.keep_firing_since is None:
                        alert.keep_firing_since = ts
                    keep_firing = ts - alert.keep_firing_since < rule.keep_firing_for_s
                if alert.state == "pending" or (
                    alert.resolved_at is not None and ts - alert.resolved_at > RESOLVED_RETENTION_S
                ):
                    del self.active[labels]
                if alert.state != "inactive" and not keep_firing:
                    previous, alert.state = alert.state, "inactive"
                    alert.resolved_at = ts
                    self._log(alert, previous)
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since = None
            active_count += 1
            if alert.state == "pending" and ts - alert.active_at >= rule.for_s:
                alert.state = "firing"
                alert.fired_at = ts
                self._log(alert, "pending")
            if self.restored:
                out.append((self._series(alert, ALERT_METRIC_NAME, state=alert.state), 1.0))
                out.append(
                    (
                        self._series(alert, ALERT_FOR_STATE_METRIC_NAME),
                        float(math.floor(alert.active_at)),
                    )
                )
        if limit > 0 and active_count > limit:
            self.active = {}
            raise QueryError(f"exceeded limit of {limit} with {active_count} alerts")
        return out

    def _expand(
        self,
        text: str,
        labels: dict[str, str],
        value: float,
        ts: float,
        query: TemplateQuery | None,
    ) -> str:
        if "{{" not in text:
            return text
        from inferwatch.rules import template

        try:
            return template.expand_or_error(
                text,
                labels=labels,
                value=value,
                external_labels=self.external_labels,
                external_url=self.external_url,
                name=f"__alert_{self.rule.alert}",
                timestamp_s=ts,
                query=query,
            )
        except NotImplementedError:  # the template engine is not there yet
            return text

    def _log(self, alert: ActiveAlert, previous: str) -> None:
        """One structured log line per state change (``inferwatch.alerts``; see
        :func:`~inferwatch.sdk.logs.log_alert_change`); nothing unless that logger is on."""
        log_alert_change(
            alertname=self.rule.alert,
            state=alert.state,
            previous_state=previous,
            labels=dict(alert.labels),
            annotations=alert.annotations,
            value=alert.value,
            active_at=alert.active_at,
        )

    def _series(self, alert: ActiveAlert, name: str, *, state: str = "") -> Labels:
        lb = dict(self.rule.labels)
        lb.update(alert.labels)
        lb[METRIC_NAME] = name
        lb[ALERT_NAME_LABEL] = self.rule.alert
        if state:
            lb[ALERT_STATE_LABEL] = state
        return make_labels(lb)

    def for_state_series(self, alert: ActiveAlert) -> Labels:
        """The ``ALERTS_FOR_STATE`` label set of ``alert`` (what a restore looks up)."""
        return self._series(alert, ALERT_FOR_STATE_METRIC_NAME)

    def alerts(self) -> list[ActiveAlert]:
        """The pending and firing alerts (resolved ones are left out), by label set."""
        return [a for _, a in sorted(self.active.items()) if a.state != "inactive"]

    def state(self) -> AlertState:
        """The rule's state: firing if any alert fires, else pending if any is pending."""
        states = {a.state for a in self.active.values()}
        if "firing" in states:
            return "firing"
        return "pending" if "pending" in states else "inactive"

    def restore(
        self,
        ts: float,
        last_for_state: Callable[[Labels], tuple[float, float] | None],
        *,
        grace_period_s: float,
    ) -> None:
        """Restore ``active_at`` of the active alerts after a restart (``RestoreForState``).

        ``last_for_state(labels)`` gives the last ``(timestamp_s, value)`` of an
        ``ALERTS_FOR_STATE`` series within the outage tolerance, or None. Rules whose
        ``for`` is shorter than ``grace_period_s`` wait their whole ``for`` again. An
        alert that was still pending keeps the time it spent pending before the outage
        (its ``active_at`` moves forward by the downtime), but fires no earlier than
        ``grace_period_s`` after ``ts``; one that was firing fires again at once.
        """
        hold = self.rule.for_s
        if hold >= grace_period_s:
            for alert in self.active.values():
                found = last_for_state(self.for_state_series(alert))
                if found is None or math.isnan(found[1]):
                    continue
                down_at = math.floor(found[0])
                restored_active_at = found[1]
                remaining = hold - (down_at - restored_active_at)
                if remaining <= 0:
                    pass
                elif remaining < grace_period_s:
                    restored_active_at = ts + grace_period_s - hold
                else:
                    restored_active_at += ts - down_at
                alert.active_at = restored_active_at
        self.restored = True

    def copy_state_from(self, other: AlertStateMachine) -> None:
        """Take over the alerts of the same rule from before a reload."""
        self.active = other.active
        self.restored = other.restored or self.restored


__all__ = [
    "ALERT_FOR_STATE_METRIC_NAME",
    "ALERT_METRIC_NAME",
    "RESOLVED_RETENTION_S",
    "ActiveAlert",
    "AlertState",
    "AlertStateMachine",
]
