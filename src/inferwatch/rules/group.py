"""Evaluating one rule group at one timestamp, as Prometheus's ``rules/group.go``.

:class:`Group` runs each rule of a :class:`~inferwatch.rules.model.RuleGroup` in order
through the PromQL engine (at the evaluation time less the query offset) and writes
what it produces to the store: a recording rule's result renamed to its ``record`` name
with its labels, an alerting rule's ``ALERTS`` and ``ALERTS_FOR_STATE`` series (see
:mod:`inferwatch.rules.alerting`). A later rule sees what earlier rules wrote in the
same evaluation. Series a rule produced last time but not this time get a staleness
marker. A failing rule is marked unhealthy with its error and the group goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import quote_plus

from inferwatch._errors import InferwatchError, QueryError
from inferwatch.alerting.alert import Alert, AlertSink
from inferwatch.promql import Engine, Sample
from inferwatch.promql.value import Queryable
from inferwatch.tsdb.labels import METRIC_NAME, STALE_NAN, Labels, make_labels
from inferwatch.tsdb.series import AppendResult

from .alerting import AlertStateMachine
from .model import AlertingRule, RecordingRule, Rule, RuleGroup

log = logging.getLogger("inferwatch.rules")

RuleHealth = Literal["unknown", "ok", "err"]


class RuleStorage(Queryable, Protocol):
    """What rules read from and write to: the store, or anything that acts like it."""

    def append(self, ts_ms: int, samples: Sequence[tuple[Labels, float]]) -> AppendResult: ...


@dataclass(slots=True)
class RuleStatus:
    """How a rule's last evaluation went (what ``/api/v1/rules`` shows)."""

    health: RuleHealth = "unknown"
    last_error: str = ""
    last_evaluation: float = 0.0
    evaluation_time_s: float = 0.0


def group_key(file: str, name: str) -> str:
    """Prometheus's key of a group: ``file;name``."""
    return f"{file};{name}"


def generator_url(external_url: str, expr: str) -> str:
    """The link Prometheus puts in an alert: the expression in the graph page's table."""
    return f"{external_url}/graph?g0.expr={quote_plus(expr, safe='')}&g0.tab=1"


def _rule_identity(rule: Rule) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    kind = "alert" if isinstance(rule, AlertingRule) else "record"
    return kind, rule.name, tuple(sorted(rule.labels.items()))


class Group:
    """One rule group being evaluated: rule states, alerts and series written last time.

    ``interval_s`` and ``query_offset_s`` are the group's own or else the global ones.
    ``restored`` says whether alerting rules may write ``ALERTS`` series at once (False
    on a first start, until the manager has restored the ``for`` state).
    """

    def __init__(
        self,
        group: RuleGroup,
        *,
        storage: RuleStorage,
        engine: Engine,
        interval_s: float,
        query_offset_s: float = 0.0,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        restored: bool = True,
        logger: logging.Logger = log,
    ) -> None:
        self.spec = group
        self.storage = storage
        self.engine = engine
        self.interval_s = interval_s
        self.query_offset_s = query_offset_s
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.logger = logger
        self.machines: dict[int, AlertStateMachine] = {
            i: AlertStateMachine(
                rule,
                external_labels=self.external_labels,
                external_url=external_url,
                restored=restored,
            )
            for i, rule in enumerate(group.rules)
            if isinstance(rule, AlertingRule)
        }
        self.statuses = [RuleStatus() for _ in group.rules]
        self.last_evaluation = 0.0
        self.evaluation_time_s = 0.0
        self._previous: list[set[Labels]] = [set() for _ in group.rules]
        self._stale: set[Labels] = set()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def file(self) -> str:
        return self.spec.file

    @property
    def key(self) -> str:
        return group_key(self.spec.file, self.spec.name)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.spec.rules

    # -- evaluation ----------------------------------------------------------------------

    def eval(
        self, ts: float, *, sink: AlertSink | None = None, resend_delay_s: float = 60.0
    ) -> None:
        """Evaluate every rule at ``ts`` (Unix seconds); send due alerts to ``sink``."""
        started = time.perf_counter()
        query_ms = round((ts - self.query_offset_s) * 1000)
        for i, rule in enumerate(self.spec.rules):
            status = self.statuses[i]
            rule_started = time.perf_counter()
            status.last_evaluation = ts
            try:
                samples = self._eval_rule(i, rule, ts, query_ms)
            except Exception as exc:  # a failing rule never stops the group
                status.health, status.last_error = "err", str(exc)
                self.logger.warning(
                    "Evaluating rule failed: group=%s rule=%s index=%d err=%s",
                    self.spec.name,
                    rule.name,
                    i,
                    exc,
                )
                status.evaluation_time_s = time.perf_counter() - rule_started
                continue
            status.health, status.last_error = "ok", ""
            if sink is not None and i in self.machines:
                self._send(self.machines[i], rule.expr, ts, sink, resend_delay_s)
            self._write(i, status, samples, query_ms)
            status.evaluation_time_s = time.perf_counter() - rule_started
        if self._stale:
            self._append(query_ms, [(lb, STALE_NAN) for lb in sorted(self._stale)])
            self._stale = set()
        self.last_evaluation = ts
        self.evaluation_time_s = time.perf_counter() - started

    def _query(self, expr: str, query_ms: int) -> list[Sample]:
        result = self.engine.instant_query(expr, query_ms)
        if result.result_type == "vector":
            assert isinstance(result.value, list)
            return [s for s in result.value if isinstance(s, Sample)]
        if result.result_type == "scalar":
            value = result.value
            return [Sample((), query_ms, float(value.v))]  # type: ignore[union-attr]
        raise QueryError("rule result is not a vector or scalar")

    def _template_query(self, expr: str, t: float) -> list[tuple[dict[str, str], float]]:
        return [(dict(s.labels), s.v) for s in self._query(expr, round(t * 1000))]

    def _eval_rule(
        self, i: int, rule: Rule, ts: float, query_ms: int
    ) -> list[tuple[Labels, float]]:
        vector = self._query(rule.expr, query_ms)
        if isinstance(rule, RecordingRule):
            return _record(rule, vector, self.spec.limit)
        return self.machines[i].eval(vector, ts, limit=self.spec.limit, query=self._template_query)

    def _write(
        self, i: int, status: RuleStatus, samples: list[tuple[Labels, float]], query_ms: int
    ) -> None:
        returned = {labels for labels, _ in samples}
        if samples:
            result = self._append(query_ms, samples)
            if result is not None and result.out_of_order:
                status.health, status.last_error = "err", "out of order sample"
            elif result is not None and result.duplicate:
                status.health, status.last_error = "err", "duplicate sample for timestamp"
        gone = self._previous[i] - returned
        if gone:
            self._append(query_ms, [(lb, STALE_NAN) for lb in sorted(gone)])
        self._previous[i] = returned

    def _append(self, ts_ms: int, samples: list[tuple[Labels, float]]) -> AppendResult | None:
        try:
            return self.storage.append(ts_ms, samples)
        except InferwatchError as exc:
            self.logger.warning("Rule sample appending failed: group=%s err=%s", self.name, exc)
            return None

    def _send(
        self,
        machine: AlertStateMachine,
        expr: str,
        ts: float,
        sink: AlertSink,
        resend_delay_s: float,
    ) -> None:
        delta = max(resend_delay_s, self.interval_s)
        url = generator_url(self.external_url, expr)
        out: list[Alert] = []
        for alert in machine.active.values():
            if alert.needs_sending(ts, resend_delay_s):
                alert.last_sent_at = ts
                alert.valid_until = ts + 4 * delta
                out.append(alert.to_alert(url, self.external_labels))
        if out:
            try:
                sink.send_alerts(out)
            except Exception:  # a sink must not raise; if one does, evaluation goes on
                self.logger.exception("Sending alerts failed: group=%s", self.name)

    # -- restart, reload and removal -----------------------------------------------------

    def restore_for_state(
        self,
        ts: float,
        *,
        outage_tolerance_s: float,
        grace_period_s: float,
    ) -> None:
        """Restore the ``for`` state of alerting rules from ``ALERTS_FOR_STATE``."""
        from inferwatch.tsdb.labels import Matcher

        mint_ms = int((ts - outage_tolerance_s) * 1000)
        maxt_ms = int(ts * 1000)

        def last_for_state(labels: Labels) -> tuple[float, float] | None:
            matchers = [Matcher(name, "=", value) for name, value in labels]
            for series in self.storage.select(matchers, mint_ms, maxt_ms):
                if len(series.labels) == len(labels) and len(series.timestamps):
                    return float(series.timestamps[-1]) / 1000, float(series.values[-1])
            return None

        for machine in self.machines.values():
            machine.restore(ts, last_for_state, grace_period_s=grace_period_s)

    def copy_state(self, old: Group) -> None:
        """Take over the state of the group this one replaces in a reload: alerts,
        last series written and health of rules that are still there (matched by kind,
        name and labels, in order); series of rules gone get staleness markers."""
        self.last_evaluation = old.last_evaluation
        self.evaluation_time_s = old.evaluation_time_s
        by_identity: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[int]] = {}
        for i, rule in enumerate(old.rules):
            by_identity.setdefault(_rule_identity(rule), []).append(i)
        for i, rule in enumerate(self.rules):
            candidates = by_identity.get(_rule_identity(rule))
            if not candidates:
                continue
            j = candidates.pop(0)
            self._previous[i] = old._previous[j]
            self.statuses[i] = old.statuses[j]
            if i in self.machines and j in old.machines:
                self.machines[i].copy_state_from(old.machines[j])
        for remaining in by_identity.values():
            for j in remaining:
                self._stale |= old._previous[j]
        self._stale |= old._stale

    def mark_all_stale(self, ts: float) -> None:
        """Write staleness markers for everything the group wrote last (it is removed)."""
        ts_ms = round((ts - self.query_offset_s) * 1000)
        series = set().union(*self._previous, self._stale) if self._previous else self._stale
        if series:
            self._append(ts_ms, [(lb, STALE_NAN) for lb in sorted(series)])
        self._previous = [set() for _ in self.rules]
        self._stale = set()


def _record(rule: RecordingRule, vector: list[Sample], limit: int) -> list[tuple[Labels, float]]:
    out: dict[Labels, float] = {}
    for sample in vector:
        lb = dict(sample.labels)
        lb[METRIC_NAME] = rule.record
        lb.update(rule.labels)
        labels = make_labels(lb)
        if labels in out:
            raise QueryError(
                "vector contains metrics with the same labelset after applying rule labels"
            )
        out[labels] = sample.v
    if limit > 0 and len(out) > limit:
        raise QueryError(f"exceeded limit of {limit} with {len(out)} series")
    return list(out.items())


__all__ = [
    "Group",
    "RuleHealth",
    "RuleStatus",
    "RuleStorage",
    "generator_url",
    "group_key",
]
