"""``GET /api/v1/rules`` and ``GET /api/v1/alerts`` over a :class:`RuleManager`.

The answers are Prometheus's JSON, field for field, so Grafana's alert list and
Prometheus clients read them unchanged::

    routes = rules_routes(manager)          # paths "/rules" and "/alerts"
    app = Starlette(routes=[Mount("/api/v1", routes=routes)])

``/rules`` takes ``type=alert|record`` and the ``rule_name[]``, ``rule_group[]`` and
``file[]`` filters; groups left without rules by a filter are left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import promql_parser as pp
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferwatch.gotemplate.gotime import go_rfc3339
from inferwatch.rules.alerting import ActiveAlert
from inferwatch.rules.group import Group
from inferwatch.rules.manager import RuleManager
from inferwatch.rules.model import AlertingRule, RecordingRule


def go_time(ts: float | None) -> str:
    """Unix seconds as Go's JSON time (RFC 3339, nanoseconds, zeros trimmed), UTC;
    ``None`` or 0 is Go's zero time."""
    return go_rfc3339(ts or None)


def format_e(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'e', -1, 64)``: ``1e+00``, ``2.5e-01``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0e+00" if math.copysign(1, value) < 0 else "0e+00"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    exp = exponent + len(digits) - 1
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _query_text(expr: str) -> str:
    """The expression as Prometheus prints its parsed form (one line); as written when
    that cannot be had."""
    try:
        text = pp.parse(expr).prettify()
        return expr if "\n" in text else text
    except BaseException as exc:  # promql-parser may panic on odd input
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return expr


def _labels(mapping: Mapping[str, str]) -> dict[str, str]:
    return dict(sorted(mapping.items()))


def _alert_json(alert: ActiveAlert) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": _labels(alert.annotations),
        "state": alert.state,
        "activeAt": go_time(alert.active_at),
    }
    if alert.keep_firing_since is not None:
        out["keepFiringSince"] = go_time(alert.keep_firing_since)
    out["value"] = format_e(alert.value)
    return out


def _rule_json(group: Group, i: int) -> dict[str, Any]:
    rule = group.rules[i]
    status = group.statuses[i]
    if isinstance(rule, AlertingRule):
        machine = group.machines[i]
        out: dict[str, Any] = {
            "state": machine.state(),
            "name": rule.alert,
            "query": _query_text(rule.expr),
            "duration": rule.for_s,
            "keepFiringFor": rule.keep_firing_for_s,
            "labels": _labels(rule.labels),
            "annotations": _labels(rule.annotations),
            "alerts": [_alert_json(a) for a in machine.alerts()],
            "health": status.health,
        }
    else:
        out = {"name": rule.record, "query": _query_text(rule.expr)}
        if rule.labels:
            out["labels"] = _labels(rule.labels)
        out["health"] = status.health
    if status.last_error:
        out["lastError"] = status.last_error
    out["evaluationTime"] = status.evaluation_time_s
    out["lastEvaluation"] = go_time(status.last_evaluation)
    out["type"] = "alerting" if isinstance(rule, AlertingRule) else "recording"
    return out


def _success(data: object) -> Response:
    body = json.dumps({"status": "success", "data": data}, separators=(",", ":"))
    return Response(body, media_type="application/json")


def _bad_data(message: str) -> Response:
    body = json.dumps({"status": "error", "errorType": "bad_data", "error": message})
    return Response(body, status_code=400, media_type="application/json")


def rules_json(
    manager: RuleManager,
    *,
    kind: str = "",
    rule_names: frozenset[str] = frozenset(),
    group_names: frozenset[str] = frozenset(),
    files: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The ``data`` of ``/api/v1/rules``; ``kind`` is ``""``, ``"alert"`` or ``"record"``."""
    filtered = bool(kind or rule_names or group_names or files)
    groups = []
    for group in manager.groups():
        if group_names and group.name not in group_names:
            continue
        if files and group.file not in files:
            continue
        rules = []
        for i, rule in enumerate(group.rules):
            if rule_names and rule.name not in rule_names:
                continue
            if kind == "alert" and not isinstance(rule, AlertingRule):
                continue
            if kind == "record" and not isinstance(rule, RecordingRule):
                continue
            rules.append(_rule_json(group, i))
        if filtered and not rules:
            continue
        groups.append(
            {
                "name": group.name,
                "file": group.file,
                "rules": rules,
                "interval": group.interval_s,
                "limit": group.spec.limit,
                "evaluationTime": group.evaluation_time_s,
                "lastEvaluation": go_time(group.last_evaluation),
            }
        )
    return {"groups": groups}


def alerts_json(manager: RuleManager) -> dict[str, Any]:
    """The ``data`` of ``/api/v1/alerts``: every pending and firing alert."""
    return {"alerts": [_alert_json(alert) for _, alert in manager.alerts()]}


def rules_routes(manager: RuleManager) -> list[Route]:
    """Starlette routes ``/rules`` and ``/alerts`` answering from ``manager``."""

    async def rules(request: Request) -> Response:
        kind = request.query_params.get("type", "").lower()
        if kind not in ("", "alert", "record"):
            return _bad_data(f'not supported value "{kind}"')
        params = request.query_params
        return _success(
            rules_json(
                manager,
                kind=kind,
                rule_names=frozenset(params.getlist("rule_name[]")),
                group_names=frozenset(params.getlist("rule_group[]")),
                files=frozenset(params.getlist("file[]")),
            )
        )

    async def alerts(request: Request) -> Response:
        return _success(alerts_json(manager))

    return [Route("/rules", rules, methods=["GET"]), Route("/alerts", alerts, methods=["GET"])]


__all__ = ["alerts_json", "format_e", "go_time", "rules_json", "rules_routes"]
