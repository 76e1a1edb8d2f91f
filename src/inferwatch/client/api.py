"""A client of the inferwatch server's HTTP APIs (also a real Prometheus and Alertmanager).

::

    with APIClient("http://127.0.0.1:9090", token="s3cret") as client:
        data = client.query('sum by (model) (rate(inference_requests_total[5m]))')
        alerts = client.alerts()
        silence_id = client.add_silence(
            parse_matchers("alertname=HighErrorRatio"), ends_at=time.time() + 7200,
            created_by="me", comment="deploying a fix",
        )

``/api/v1`` is the Prometheus HTTP API (queries, alerts); ``/api/v2`` is Alertmanager's
(silences). Every method raises :class:`APIError` with a message for the user: the
API's own error text (a PromQL parse error, say), an HTTP status with a hint (401: give
credentials), or :class:`ServerUnreachable` naming the URL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

from inferwatch._errors import InferwatchError
from inferwatch.alerting.matchers import Matcher, MatchOp

#: The server the commands talk to without --server or $INFERWATCH_URL.
DEFAULT_URL = "http://127.0.0.1:9090"


class APIError(InferwatchError):
    """A request to the server failed. ``str(error)`` is the message for the user;
    ``status`` is the HTTP status (None when no answer came) and ``error_type`` the
    Prometheus API's ``errorType`` (``bad_data``, ``execution``, ...) when it gave one.
    """

    def __init__(
        self, message: str, *, url: str, status: int | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.error_type = error_type


class ServerUnreachable(APIError):
    """No HTTP answer came: nothing listens at the URL, the name does not resolve, a
    timeout. The message names the URL."""


def rfc3339(t: float) -> str:
    """Unix seconds as RFC 3339 in UTC with milliseconds (what both APIs accept)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def matcher_json(matcher: Matcher) -> dict[str, Any]:
    """A matcher as Alertmanager's API v2 takes it in a silence."""
    return {
        "name": matcher.name,
        "value": matcher.value,
        "isRegex": matcher.op in ("=~", "!~"),
        "isEqual": matcher.op in ("=", "=~"),
    }


def matcher_from_json(item: Mapping[str, Any]) -> Matcher:
    """The :class:`Matcher` of one API v2 matcher object (``isEqual`` defaults to true)."""
    regex = bool(item.get("isRegex", False))
    equal = bool(item.get("isEqual", True))
    op: MatchOp = ("=~" if equal else "!~") if regex else ("=" if equal else "!=")
    return Matcher(str(item["name"]), op, str(item["value"]))


class APIClient:
    """Synchronous calls to one server. ``url`` is its base URL (``http://host:9090``,
    optionally with a path prefix); ``token`` sends ``Authorization: Bearer``, and
    ``user``/``password`` basic auth. ``transport`` is for tests and special
    connections (an ``httpx`` transport). Close it, or use it as a context manager.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = url.strip()
        if "://" not in url:
            url = "http://" + url
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        auth = httpx.BasicAuth(user, password or "") if user is not None else None
        self._http = httpx.Client(
            base_url=self.url, headers=headers, auth=auth, timeout=timeout, transport=transport
        )
        #: Warnings the last Prometheus API call returned (``warnings`` and ``infos``).
        self.warnings: list[str] = []

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> APIClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- /api/v1: Prometheus -------------------------------------------------------------

    def query(self, expr: str, *, time: float | None = None) -> dict[str, Any]:
        """An instant query; the ``data`` of the answer (``resultType``, ``result``)."""
        params = {"query": expr}
        if time is not None:
            params["time"] = _number(time)
        return self._prometheus("/api/v1/query", params)

    def query_range(self, expr: str, *, start: float, end: float, step: float) -> dict[str, Any]:
        """A range query from ``start`` to ``end`` every ``step`` seconds; its ``data``."""
        params = {
            "query": expr,
            "start": _number(start),
            "end": _number(end),
            "step": _number(step),
        }
        return self._prometheus("/api/v1/query_range", params)

    def alerts(self) -> list[dict[str, Any]]:
        """The pending and firing alerts of the server's alerting rules
        (``labels``, ``annotations``, ``state``, ``activeAt``, ``value``)."""
        data = self._prometheus("/api/v1/alerts", {})
        alerts = data.get("alerts")
        if not isinstance(alerts, list):
            raise APIError(
                f"{self.url}/api/v1/alerts answered without an alerts list", url=self.url
            )
        return alerts

    def _prometheus(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        # POST with a form, as Prometheus's own UI does: long queries do not hit URL limits.
        response = self._send("POST" if params else "GET", path, data=dict(params) or None)
        body = _json(response)
        if isinstance(body, dict) and body.get("status") == "error":
            error_type = str(body.get("errorType") or "error")
            raise APIError(
                f"{error_type}: {body.get('error', '')}",
                url=self.url,
                status=response.status_code,
                error_type=error_type,
            )
        data = body.get("data") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(data, dict):
            raise self._status_error(response, path)
        self.warnings = [str(w) for w in [*body.get("warnings", ()), *body.get("infos", ())]]
        return data

    # -- /api/v2: Alertmanager -----------------------------------------------------------

    def silences(self, matchers: Iterable[Matcher] = ()) -> list[dict[str, Any]]:
        """Every silence (active, pending and expired) whose matchers include ``matchers``,
        as Alertmanager's API v2 gives them."""
        params = [("filter", str(m)) for m in matchers]
        response = self._send("GET", "/api/v2/silences", params=params)
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, list):
            raise self._alertmanager_error(response, "/api/v2/silences")
        return body

    def add_silence(
        self,
        matchers: Iterable[Matcher],
        *,
        ends_at: float,
        created_by: str,
        comment: str,
        starts_at: float | None = None,
    ) -> str:
        """Create a silence from ``starts_at`` (default: now) to ``ends_at``; its id."""
        body = {
            "matchers": [matcher_json(m) for m in matchers],
            "startsAt": rfc3339(starts_at) if starts_at is not None else rfc3339(_now()),
            "endsAt": rfc3339(ends_at),
            "createdBy": created_by,
            "comment": comment,
        }
        response = self._send("POST", "/api/v2/silences", json=body)
        answer = _json(response)
        if response.status_code != 200 or not isinstance(answer, dict) or "silenceID" not in answer:
            raise self._alertmanager_error(response, "/api/v2/silences")
        return str(answer["silenceID"])

    def expire_silence(self, silence_id: str) -> None:
        """Expire a silence now (it stays listed as expired)."""
        path = f"/api/v2/silence/{silence_id}"
        response = self._send("DELETE", path)
        if response.status_code != 200:
            raise self._alertmanager_error(response, path, what=f"silence {silence_id}")

    # -- plumbing ------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(
                f"the server at {self.url} did not answer in time ({type(exc).__name__})",
                url=self.url,
            ) from None
        except httpx.HTTPError as exc:
            raise ServerUnreachable(
                f"cannot reach the server at {self.url}: {exc or type(exc).__name__} "
                "(give its URL with --server or $INFERWATCH_URL)",
                url=self.url,
            ) from None
        if response.status_code in (401, 403):
            raise APIError(
                f"{self.url}{path}: {response.status_code} {response.reason_phrase}: "
                + (
                    "the credentials were refused"
                    if "Authorization" in response.request.headers
                    else "the server wants credentials: give --token or --user and --password "
                    "($INFERWATCH_TOKEN, $INFERWATCH_USER, $INFERWATCH_PASSWORD)"
                ),
                url=self.url,
                status=response.status_code,
            )
        return response

    def _status_error(self, response: httpx.Response, path: str) -> APIError:
        text = response.text.strip().replace("\n", " ")
        if len(text) > 200:
            text = text[:200] + "..."
        return APIError(
            f"{self.url}{path} answered {response.status_code} {response.reason_phrase}"
            + (f": {text}" if text else ""),
            url=self.url,
            status=response.status_code,
        )

    def _alertmanager_error(self, response: httpx.Response, path: str, what: str = "") -> APIError:
        if response.status_code == 404 and what:
            return APIError(f"no {what} on {self.url}", url=self.url, status=404)
        if response.status_code == 404:
            return APIError(
                f"{self.url} has no Alertmanager API ({path} answered 404): point --server at "
                "an Alertmanager, or start inferwatch server with --alertmanager-config",
                url=self.url,
                status=404,
            )
        body = _json(response)
        # Alertmanager answers a JSON string, or go-swagger's {"code": ..., "message": ...}.
        if isinstance(body, dict) and "message" in body:
            body = body["message"]
        if isinstance(body, str) and body:
            message = f"{what}: {body.strip()}" if what else body.strip()
            return APIError(message, url=self.url, status=response.status_code)
        return self._status_error(response, path)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _number(t: float) -> str:
    """Seconds for a query parameter: no exponent, at most millisecond precision."""
    if not math.isfinite(t):
        raise ValueError(f"not a finite time: {t}")
    return f"{t:.3f}".rstrip("0").rstrip(".")


def _now() -> float:
    import time

    return time.time()


__all__ = [
    "DEFAULT_URL",
    "APIClient",
    "APIError",
    "ServerUnreachable",
    "matcher_from_json",
    "matcher_json",
    "rfc3339",
]
