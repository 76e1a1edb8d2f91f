"""Inhibition: a firing alert mutes others (Alertmanager's ``inhibit`` package).

A rule mutes a *target* alert while some firing *source* alert exists with the same
values for the ``equal`` labels (a label missing on both sides counts as equal). As in
Alertmanager 0.25, when the target also matches the source matchers, sources that
themselves match the target matchers are ignored, so an alert never mutes itself and
two alerts matching both sides do not mute each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from inferwatch.alerting.alert import Alert
from inferwatch.alerting.matchers import Matcher, matches_all


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """One ``inhibit_rules`` entry, with ``source_match``/``source_match_re`` already
    turned into matchers (likewise for the target side)."""

    source_matchers: tuple[Matcher, ...] = ()
    target_matchers: tuple[Matcher, ...] = ()
    equal: tuple[str, ...] = ()

    def inhibited_by(
        self, labels: Mapping[str, str], firing: Iterable[Alert], now: float
    ) -> Alert | None:
        """The source alert that mutes ``labels`` under this rule, or None."""
        if not matches_all(self.target_matchers, labels):
            return None
        exclude_two_sided = matches_all(self.source_matchers, labels)
        for source in firing:
            if source.resolved(now) or not matches_all(self.source_matchers, source.labels):
                continue
            if any(source.labels.get(n, "") != labels.get(n, "") for n in self.equal):
                continue
            if exclude_two_sided and matches_all(self.target_matchers, source.labels):
                continue
            return source
        return None


class Inhibitor:
    """Applies a list of rules. Stateless: the caller passes the alerts it knows of
    (the alert store's current alerts) on each call."""

    def __init__(self, rules: Iterable[InhibitRule]) -> None:
        self.rules: tuple[InhibitRule, ...] = tuple(rules)

    def inhibited_by(
        self, labels: Mapping[str, str], firing: Iterable[Alert], now: float
    ) -> str | None:
        """The fingerprint of the first alert that mutes ``labels``, or None."""
        alerts = list(firing)
        for rule in self.rules:
            source = rule.inhibited_by(labels, alerts, now)
            if source is not None:
                return source.fingerprint
        return None

    def mutes(self, labels: Mapping[str, str], firing: Iterable[Alert], now: float) -> bool:
        """Whether some rule mutes an alert with ``labels``, given the alerts in
        ``firing`` (resolved ones among them are ignored)."""
        return self.inhibited_by(labels, firing, now) is not None


__all__ = ["InhibitRule", "Inhibitor"]
