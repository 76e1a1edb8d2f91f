"""Rule files as values: groups of recording and alerting rules.

Made by :func:`inferwatch.rules.file.load_rule_files` from Prometheus rule files (the
format is unchanged); evaluated by :mod:`inferwatch.rules.group`. Durations are in
seconds; ``line`` is the 1-based line in ``file`` where the rule or group starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RecordingRule:
    """``record: NAME`` with ``expr`` and optional ``labels``."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)
    file: str = ""
    line: int = 0

    @property
    def name(self) -> str:
        return self.record


@dataclass(frozen=True, slots=True)
class AlertingRule:
    """``alert: NAME`` with ``expr``, ``for``, ``keep_firing_for``, ``labels`` and
    ``annotations`` (both may hold Go templates)."""

    alert: str
    expr: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    file: str = ""
    line: int = 0

    @property
    def name(self) -> str:
        return self.alert


Rule = RecordingRule | AlertingRule


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """A group: rules evaluated in order, every ``interval_s`` (``None``: the global
    evaluation interval). ``limit`` (0 = none) caps the series an alerting rule may
    produce or a recording rule may write; ``query_offset_s`` (``None``: the global
    one) shifts every evaluation into the past."""

    name: str
    file: str
    rules: tuple[Rule, ...]
    interval_s: float | None = None
    limit: int = 0
    query_offset_s: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    line: int = 0


__all__ = ["AlertingRule", "RecordingRule", "Rule", "RuleGroup"]
