"""Alertmanager's HTTP API v2 over the embedded :class:`Alertmanager`, as an ASGI app.

Served: ``POST/GET /api/v2/alerts``, ``GET /api/v2/alerts/groups``,
``GET/POST /api/v2/silences``, ``GET/DELETE /api/v2/silence/{id}``,
``GET /api/v2/status``, ``GET /api/v2/receivers``, ``/-/healthy`` and ``/-/ready``.
Bodies, parameters, validation and error payloads follow Alertmanager 0.25, so a real
Prometheus (``alerting.alertmanagers``) and ``amtool`` talk to it unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from inferwatch._version import __version__
from inferwatch.alerting.alert import Alert
from inferwatch.alerting.matchers import Matcher, parse_matcher
from inferwatch.alerting.silence import Silence, SilenceNotFound
from inferwatch.tsdb.labels import go_regex

if TYPE_CHECKING:
    from inferwatch.alerting.alertmanager import Alertmanager

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FRACTION = re.compile(r"(\.\d{6})\d+")


def format_time(t: float | None) -> str:
    """Go's ``strfmt.DateTime`` text: RFC 3339 with milliseconds, in UTC."""
    if t is None:
        return "0001-01-01T00:00:00.000Z"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: object, field: str) -> float | None:
    """An RFC 3339 time as Unix seconds; None for absent or Go's zero time."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise _BodyError(f"{field} in body must be of type date-time: {json.dumps(text)}")
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    except ValueError:
        raise _BodyError(f"{field} in body must be of type date-time: {json.dumps(text)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year == 1:
        return None
    return parsed.timestamp()


class _BodyError(ValueError):
    """A body that does not fit the API's schema (go-swagger's 422-style errors)."""


def _schema_error(message: str) -> Response:
    return JSONResponse({"code": 602, "message": message}, status_code=400)


def _error(message: str, status: int = 400) -> Response:
    return JSONResponse(message, status_code=status)


def _string_map(value: object, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _BodyError(f"{field} in body must be of type object of strings")
    return {str(k): v for k, v in value.items()}


def _validate_names(labels: Mapping[str, str]) -> str | None:
    for name in labels:
        if not _LABEL_NAME.fullmatch(name):
            return f"invalid name {json.dumps(name)}"
    return None


def _bool_param(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "true").lower()
    if value not in ("true", "false", "1", "0"):
        raise _BodyError(f"{name} in query must be of type boolean: {json.dumps(value)}")
    return value in ("true", "1")


def _filters(request: Request) -> list[Matcher]:
    return [parse_matcher(f) for f in request.query_params.getlist("filter")]


def matcher_json(m: Matcher) -> dict[str, Any]:
    return {
        "name": m.name,
        "value": m.value,
        "isRegex": m.op in ("=~", "!~"),
        "isEqual": m.op in ("=", "=~"),
    }


def silence_json(s: Silence, now: float) -> dict[str, Any]:
    return {
        "id": s.id,
        "status": {"state": s.state(now)},
        "updatedAt": format_time(s.updated_at),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": format_time(s.ends_at),
        "matchers": [matcher_json(m) for m in s.matchers],
        "startsAt": format_time(s.starts_at),
    }


def create_app(am: Alertmanager) -> Starlette:
    """The ASGI app serving ``am`` (see the module docs)."""

    def alert_json(alert: Alert, updated_at: float, now: float) -> dict[str, Any]:
        state, silenced, inhibited = am.alert_status(alert, now)
        return {
            "annotations": dict(alert.annotations),
            "endsAt": format_time(alert.ends_at),
            "fingerprint": alert.fingerprint,
            "receivers": [{"name": r} for r in am.alert_receivers(alert)],
            "startsAt": format_time(alert.starts_at),
            "status": {"inhibitedBy": inhibited, "silencedBy": silenced, "state": state},
            "updatedAt": format_time(updated_at),
            "generatorURL": alert.generator_url,
            "labels": dict(alert.labels),
        }

    def alert_filter(request: Request) -> Any:
        matchers = _filters(request)
        show = {
            "active": _bool_param(request, "active"),
            "silenced": _bool_param(request, "silenced"),
            "inhibited": _bool_param(request, "inhibited"),
        }
        receiver = request.query_params.get("receiver")
        try:
            receiver_re = re.compile(go_regex(receiver)) if receiver else None
        except re.error as exc:
            raise _BodyError(f"failed to parse receiver param: {exc}") from None

        def keep(alert: Alert, now: float, receivers: list[str]) -> dict[str, Any] | None:
            if receiver_re is not None and not any(receiver_re.fullmatch(r) for r in receivers):
                return None
            if not all(m.matches(alert.labels) for m in matchers):
                return None
            if alert.resolved(now):
                return None
            body = alert_json(alert, 0.0, now)
            status = body["status"]
            if not show["active"] and status["state"] == "active":
                return None
            if not show["silenced"] and status["silencedBy"]:
                return None
            if not show["inhibited"] and status["inhibitedBy"]:
                return None
            return body

        return keep

    async def get_alerts(request: Request) -> Response:
        try:
            keep = alert_filter(request)
        except ValueError as exc:
            return _error(str(exc))
        now = am._clock()
        out = []
        for item in am.store.alerts():
            body = keep(item.alert, now, am.alert_receivers(item.alert))
            if body is not None:
                body["updatedAt"] = format_time(item.updated_at)
                out.append(body)
        out.sort(key=lambda b: b["fingerprint"])
        return JSONResponse(out)

    async def post_alerts(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return _error(f"parsing alerts body failed: {exc}")
        if not isinstance(body, list):
            return _schema_error("alerts in body must be of type array")
        now = am._clock()
        valid: list[Alert] = []
        errors: list[str] = []
        for i, raw in enumerate(body):
            try:
                if not isinstance(raw, dict):
                    raise _BodyError(f"{i} in body must be of type object")
                if "labels" not in raw:
                    raise _BodyError(f"{i}.labels in body is required")
                labels = {k: v for k, v in _string_map(raw["labels"], f"{i}.labels").items() if v}
                annotations = _string_map(raw.get("annotations"), f"{i}.annotations")
                starts = parse_time(raw.get("startsAt"), f"{i}.startsAt")
                ends = parse_time(raw.get("endsAt"), f"{i}.endsAt")
                url = raw.get("generatorURL") or ""
                if not isinstance(url, str):
                    raise _BodyError(f"{i}.generatorURL in body must be of type string")
            except _BodyError as exc:
                return _schema_error(str(exc))
            start = starts if starts is not None else (ends if ends is not None else now)
            end = ends if ends is not None else now + am.store.resolve_timeout_s
            problem = None
            if ends is not None and end < start:
                problem = "start time must be before end time"
            elif (bad := _validate_names(labels)) is not None:
                problem = f"invalid label set: {bad}"
            elif not labels:
                problem = "at least one label pair required"
            elif (bad := _validate_names(annotations)) is not None:
                problem = f"invalid annotations: {bad}"
            if problem is not None:
                errors.append(problem)
                continue
            valid.append(Alert(labels, annotations, start, ends, url))
        if valid:
            am.receive(valid, now)
        if errors:
            return _error("; ".join(errors))
        return Response(status_code=200)

    async def get_groups(request: Request) -> Response:
        try:
            keep = alert_filter(request)
        except ValueError as exc:
            return _error(str(exc))
        now = am._clock()
        out: list[dict[str, Any]] = []
        for group in am.dispatcher.groups():
            alerts = []
            for item in group.sorted_alerts():
                body = keep(item.alert, now, [group.route.receiver])
                if body is not None:
                    body["updatedAt"] = format_time(item.updated_at)
                    alerts.append(body)
            if alerts:
                out.append(
                    {
                        "labels": dict(group.labels),
                        "receiver": {"name": group.route.receiver},
                        "alerts": alerts,
                    }
                )
        out.sort(key=lambda g: (sorted(g["labels"].items()), g["receiver"]["name"]))
        return JSONResponse(out)

    async def get_silences(request: Request) -> Response:
        try:
            matchers = _filters(request)
        except ValueError as exc:
            return _error(str(exc))
        now = am._clock()
        return JSONResponse([silence_json(s, now) for s in am.silences.list(matchers)])

    async def post_silences(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return _error(f"parsing silence body failed: {exc}")
        if not isinstance(body, dict):
            return _schema_error("silence in body must be of type object")
        for name in ("comment", "createdBy", "endsAt", "matchers", "startsAt"):
            if name not in body:
                return _schema_error(f"{name} in body is required")
        try:
            starts = parse_time(body["startsAt"], "startsAt") or 0.0
            ends = parse_time(body["endsAt"], "endsAt") or 0.0
            raw_matchers = body["matchers"]
            if not isinstance(raw_matchers, list):
                raise _BodyError("matchers in body must be of type array")
            matchers = []
            for i, m in enumerate(raw_matchers):
                if not isinstance(m, dict) or "name" not in m or "value" not in m:
                    raise _BodyError(f"matchers.{i}.name in body is required")
                regex = bool(m.get("isRegex", False))
                equal = bool(m.get("isEqual", True))
                op = ("=~" if equal else "!~") if regex else ("=" if equal else "!=")
                matchers.append((str(m["name"]), op, str(m["value"])))
        except _BodyError as exc:
            return _schema_error(str(exc))
        if starts >= ends:
            return _error("Failed to create silence: start time must be before end time")
        if ends < am._clock():
            return _error("Failed to create silence: end time can't be in the past")
        try:
            silence = Silence(
                matchers=tuple(Matcher(n, op, v) for n, op, v in matchers),  # type: ignore[arg-type]
                starts_at=starts,
                ends_at=ends,
                created_by=str(body["createdBy"]),
                comment=str(body["comment"]),
                id=str(body.get("id") or ""),
            )
            silence_id = am.silences.set(silence)
        except SilenceNotFound as exc:
            return _error(str(exc), 404)
        except ValueError as exc:
            return _error(str(exc))
        return JSONResponse({"silenceID": silence_id})

    async def get_silence(request: Request) -> Response:
        silence = am.silences.get(request.path_params["id"])
        if silence is None:
            return Response(status_code=404)
        return JSONResponse(silence_json(silence, am._clock()))

    async def delete_silence(request: Request) -> Response:
        try:
            am.silences.expire(request.path_params["id"])
        except SilenceNotFound:
            return Response(status_code=404)
        except ValueError as exc:
            return _error(str(exc), 500)
        return Response(status_code=200)

    async def get_status(request: Request) -> Response:
        return JSONResponse(
            {
                "cluster": {"name": "", "status": "disabled", "peers": []},
                "versionInfo": {
                    "branch": "",
                    "buildDate": "",
                    "buildUser": "",
                    "goVersion": "",
                    "revision": "",
                    "version": f"inferwatch-{__version__}",
                },
                "config": {"original": am.config.original},
                "uptime": format_time(am.started_at),
            }
        )

    async def get_receivers(request: Request) -> Response:
        return JSONResponse([{"name": name} for name in am.config.receivers])

    async def ok(request: Request) -> Response:
        return PlainTextResponse("OK")

    async def bad_params(request: Request, exc: Exception) -> Response:
        return _error(str(exc))

    app = Starlette(
        routes=[
            Route("/api/v2/alerts", get_alerts, methods=["GET"]),
            Route("/api/v2/alerts", post_alerts, methods=["POST"]),
            Route("/api/v2/alerts/groups", get_groups, methods=["GET"]),
            Route("/api/v2/silences", get_silences, methods=["GET"]),
            Route("/api/v2/silences", post_silences, methods=["POST"]),
            Route("/api/v2/silence/{id}", get_silence, methods=["GET"]),
            Route("/api/v2/silence/{id}", delete_silence, methods=["DELETE"]),
            Route("/api/v2/status", get_status, methods=["GET"]),
            Route("/api/v2/receivers", get_receivers, methods=["GET"]),
            Route("/-/healthy", ok, methods=["GET", "HEAD"]),
            Route("/-/ready", ok, methods=["GET", "HEAD"]),
        ],
        exception_handlers={_BodyError: bad_params},
    )
    return app


__all__ = ["create_app", "format_time", "parse_time"]
