"""HTTP delivery shared by the HTTP notifiers, and reading their config entries.

:class:`HTTPConfig` is Prometheus's common ``http_config`` block as Alertmanager reads
it (``basic_auth``, ``authorization``, ``bearer_token``, ``proxy_url``, ``tls_config``,
``follow_redirects``). :func:`post` sends one request and classifies failures the way
Alertmanager's ``notify.Retrier`` does: network errors, 5xx and 429 are retryable,
any other non-2xx status is not. Error messages carry an excerpt of the response body
with every secret (and every query value of a secret URL) replaced by ``<secret>``.

:class:`ConfigReader` walks one config entry, checks its fields and names the field path
(``receivers[0].slack_configs[1].channel``) in every :class:`AlertingConfigError`.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from inferwatch._errors import AlertingConfigError, NotifyError
from inferwatch._version import __version__
from inferwatch.alerting.notifiers.base import Secret

logger = logging.getLogger("inferwatch.alerting.notifiers")

USER_AGENT = f"inferwatch/{__version__}"


class _RedactingFilter(logging.Filter):
    """Redacts the secrets of the sends running on this thread from httpx's own log
    records (httpx logs each request's full URL, tokens included, at INFO)."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        secrets: list[str] = getattr(self.local, "secrets", [])
        if secrets:
            record.msg = redact(record.getMessage(), secrets)
            record.args = None
        return True


_HTTPX_FILTER = _RedactingFilter()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_HTTPX_FILTER)
DEFAULT_TIMEOUT_S = 10.0
_EXCERPT = 512


def reveal(value: str | None) -> str:
    """The real text of a possibly-:class:`Secret` value ('' for None)."""
    if value is None:
        return ""
    return value.reveal() if isinstance(value, Secret) else str(value)


def read_secret_file(path: str, what: str) -> Secret:
    """Read a ``*_file`` setting at send time (trimmed, as Alertmanager does)."""
    try:
        with open(path, encoding="utf-8") as f:
            return Secret(f.read().strip())
    except OSError as exc:
        raise NotifyError(
            f"cannot read {what} file {path!r}: {exc.strerror}", retryable=True
        ) from exc


def global_value(global_config: Any, name: str, default: Any = None) -> Any:
    """A setting of the ``global:`` section, from a GlobalConfig object or a mapping."""
    if global_config is None:
        return default
    if isinstance(global_config, Mapping):
        value = global_config.get(name, default)
    else:
        value = getattr(global_config, name, None)
        if value is None:
            raw = getattr(global_config, "raw", None)
            if isinstance(raw, Mapping):
                value = raw.get(name, default)
    return default if value is None else value


class ConfigReader:
    """Typed access to one config mapping; every error names ``field`` and the key."""

    def __init__(self, raw: Mapping[str, Any], field: str, allowed: Iterable[str]) -> None:
        if not isinstance(raw, Mapping):
            raise AlertingConfigError(
                f"{field}: expected a mapping, got {type(raw).__name__}", field=field
            )
        self.raw = raw
        self.field = field
        known = set(allowed)
        for key in raw:
            if key not in known:
                raise AlertingConfigError(
                    f"{field}.{key}: field {key} not found in type {field.rsplit('.', 1)[-1]}"
                    f" (known fields: {', '.join(sorted(known))})",
                    field=f"{field}.{key}",
                    value=key,
                )

    def path(self, key: str) -> str:
        return f"{self.field}.{key}"

    def error(self, key: str, message: str, value: object = None) -> AlertingConfigError:
        return AlertingConfigError(
            f"{self.path(key)}: {message}", field=self.path(key), value=value
        )

    def text(self, key: str, default: str = "") -> str:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f"expected a string, got {type(value).__name__}")
        return str(value)

    def secret(self, key: str) -> Secret | None:
        value = self.raw.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {type(value).__name__}")
        return Secret(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}", value)
        return value

    def integer(self, key: str, default: int = 0, *, minimum: int = 0) -> int:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value!r}", value)
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "expected a list of strings", value)
        return tuple(value)

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping, got {type(value).__name__}")
        return value

    def url(self, key: str, *, secret: bool = True) -> Secret | None:
        """A URL setting (``http``/``https`` with a host); kept as a :class:`Secret`."""
        value = self.secret(key)
        if value is None:
            return None
        parts = urlsplit(value.reveal())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            shown = "<secret>" if secret else value.reveal()
            raise self.error(key, f"unsupported URL {shown}: expected http:// or https://")
        return value

    def one_of(self, url_key: str, file_key: str, *, required: bool = True) -> None:
        has_url = self.raw.get(url_key) not in (None, "")
        has_file = self.raw.get(file_key) not in (None, "")
        if has_url and has_file:
            raise self.error(url_key, f"at most one of {url_key} & {file_key} must be configured")
        if required and not has_url and not has_file:
            raise self.error(url_key, f"one of {url_key} or {file_key} must be configured")


@dataclass(frozen=True, slots=True)
class HTTPConfig:
    """Prometheus's ``http_config`` block, as used to send one notification."""

    basic_auth_username: str = ""
    basic_auth_password: Secret | None = None
    basic_auth_password_file: str = ""
    authorization_type: str = "Bearer"
    credentials: Secret | None = None
    credentials_file: str = ""
    proxy_url: Secret | None = None
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False
    follow_redirects: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, field: str) -> HTTPConfig:
        """Read an ``http_config`` mapping (``None``: the defaults)."""
        if raw is None:
            return cls()
        r = ConfigReader(
            raw,
            field,
            (
                "basic_auth",
                "authorization",
                "bearer_token",
                "bearer_token_file",
                "proxy_url",
                "tls_config",
                "follow_redirects",
                "enable_http2",
            ),
        )
        kwargs: dict[str, Any] = {"follow_redirects": r.flag("follow_redirects", True)}
        r.flag("enable_http2", True)
        if "basic_auth" in raw:
            b = ConfigReader(
                r.mapping("basic_auth"),
                r.path("basic_auth"),
                ("username", "password", "password_file"),
            )
            if b.raw.get("password") and b.raw.get("password_file"):
                raise b.error(
                    "password", "at most one of password & password_file must be configured"
                )
            kwargs.update(
                basic_auth_username=b.text("username"),
                basic_auth_password=b.secret("password"),
                basic_auth_password_file=b.text("password_file"),
            )
        auth_count = sum(
            k in raw for k in ("basic_auth", "authorization", "bearer_token", "bearer_token_file")
        )
        if auth_count > 1:
            raise r.error(
                "authorization",
                "at most one of basic_auth, authorization, bearer_token & bearer_token_file "
                "must be configured",
            )
        if "authorization" in raw:
            a = ConfigReader(
                r.mapping("authorization"),
                r.path("authorization"),
                ("type", "credentials", "credentials_file"),
            )
            kind = a.text("type", "Bearer") or "Bearer"
            if kind.lower() == "basic":
                raise a.error(
                    "type", 'authorization type cannot be set to "basic", use "basic_auth" instead'
                )
            kwargs.update(
                authorization_type=kind,
                credentials=a.secret("credentials"),
                credentials_file=a.text("credentials_file"),
            )
        kwargs.update(credentials=kwargs.get("credentials") or r.secret("bearer_token"))
        if "bearer_token_file" in raw:
            kwargs["credentials_file"] = r.text("bearer_token_file")
        kwargs["proxy_url"] = r.url("proxy_url")
        if "tls_config" in raw:
            t = ConfigReader(
                r.mapping("tls_config"),
                r.path("tls_config"),
                (
                    "ca_file",
                    "cert_file",
                    "key_file",
                    "server_name",
                    "insecure_skip_verify",
                    "min_version",
                ),
            )
            kwargs.update(
                ca_file=t.text("ca_file"),
                cert_file=t.text("cert_file"),
                key_file=t.text("key_file"),
                server_name=t.text("server_name"),
                insecure_skip_verify=t.flag("insecure_skip_verify", False),
            )
            if bool(kwargs["cert_file"]) != bool(kwargs["key_file"]):
                raise t.error("cert_file", "cert_file and key_file must both be set")
        return cls(**kwargs)

    def secrets(self) -> list[str]:
        """Every secret value this config holds (for redaction)."""
        return [
            reveal(s) for s in (self.basic_auth_password, self.credentials, self.proxy_url) if s
        ]

    def auth_headers(self) -> dict[str, str]:
        if self.basic_auth_username or self.basic_auth_password or self.basic_auth_password_file:
            password = reveal(self.basic_auth_password)
            if self.basic_auth_password_file:
                password = read_secret_file(self.basic_auth_password_file, "password").reveal()
            auth = httpx.BasicAuth(self.basic_auth_username, password)
            request = next(auth.auth_flow(httpx.Request("POST", "http://localhost")))
            return {"Authorization": request.headers["Authorization"]}
        credentials = reveal(self.credentials)
        if self.credentials_file:
            credentials = read_secret_file(self.credentials_file, "credentials").reveal()
        if credentials:
            return {"Authorization": f"{self.authorization_type} {credentials}"}
        return {}

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not (self.ca_file or self.cert_file or self.insecure_skip_verify):
            return True
        ctx = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def http_config_for(raw: Mapping[str, Any], global_config: Any, field: str) -> HTTPConfig:
    """The entry's ``http_config``, else the ``global:`` one, else the defaults."""
    if raw.get("http_config") is not None:
        return HTTPConfig.parse(raw["http_config"], f"{field}.http_config")
    fallback = global_value(global_config, "http_config")
    if isinstance(fallback, HTTPConfig):
        return fallback
    if isinstance(fallback, Mapping):
        return HTTPConfig.parse(fallback, "global.http_config")
    return HTTPConfig()


def go_json(value: Any) -> bytes:
    """JSON as Go's ``json.Encoder`` writes it: compact, ``<>&`` and U+2028/9 escaped,
    a trailing newline."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return (text + "\n").encode()


def secret_parts(url: str) -> list[str]:
    """The URL and each of its query values and path segments that could be a token."""
    parts = urlsplit(url)
    found = [url]
    found += [v for _, v in parse_qsl(parts.query) if len(v) >= 4]
    found += [seg for seg in parts.path.split("/") if len(seg) >= 16]
    return found


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``<secret>``, longest first."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, "<secret>")
    return text


def shown_url(url: str) -> str:
    """What an error may say about a secret URL: its scheme and host only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/<redacted>"


@dataclass(frozen=True, slots=True)
class Response:
    """The status, headers and body of a delivered request."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def post(
    url: str,
    body: bytes,
    *,
    http_config: HTTPConfig | None = None,
    headers: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    what: str = "webhook",
) -> Response:
    """POST ``body`` to ``url`` and return the 2xx :class:`Response`.

    Raises :class:`NotifyError`: retryable for network errors, 5xx and 429; not
    retryable for other statuses. ``secrets`` (plus the URL and the config's own
    secrets) are redacted from every message.
    """
    config = http_config or HTTPConfig()
    hidden = [*secret_parts(url), *secrets, *config.secrets()]
    send_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    send_headers.update(headers or {})
    send_headers.update(config.auth_headers())
    hidden += [v for k, v in send_headers.items() if k.lower() == "authorization"]
    _HTTPX_FILTER.local.secrets = hidden
    try:
        with httpx.Client(
            verify=config.ssl_context(),
            proxy=reveal(config.proxy_url) or None,
            follow_redirects=config.follow_redirects,
            timeout=config.timeout_s,
            trust_env=False,
        ) as client:
            answer = client.post(url, content=body, headers=send_headers)
    except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
        message = redact(f"{what}: POST {shown_url(url)}: {type(exc).__name__}: {exc}", hidden)
        logger.warning("%s", message)
        raise NotifyError(message, retryable=True) from None
    finally:
        _HTTPX_FILTER.local.secrets = []
    result = Response(answer.status_code, dict(answer.headers), answer.content)
    if 200 <= answer.status_code < 300:
        logger.debug("%s: POST %s: %d", what, shown_url(url), answer.status_code)
        return result
    excerpt = redact(answer.content[:_EXCERPT].decode("utf-8", "replace"), hidden)
    retryable = answer.status_code >= 500 or answer.status_code == 429
    message = f"{what}: unexpected status code {answer.status_code}: {excerpt}"
    logger.warning("%s", message)
    raise NotifyError(message, retryable=retryable)


def check_vendor_reply(
    answer: Response,
    *,
    what: str,
    code_keys: Sequence[str],
    message_keys: Sequence[str],
    retryable_codes: Iterable[int],
    secrets: Sequence[str],
) -> None:
    """Check a chat robot's JSON answer: the first of ``code_keys`` present must be 0.

    A non-zero code raises :class:`NotifyError`, retryable for ``retryable_codes``
    (the vendor's rate limits); a body that is not JSON is retryable too.
    """
    try:
        reply = answer.json()
        if not isinstance(reply, Mapping):
            raise ValueError("not an object")
        code = next((int(reply[k]) for k in code_keys if reply.get(k) is not None), 0)
        reason = next((str(reply[k]) for k in message_keys if reply.get(k)), "")
    except (ValueError, TypeError):
        raise NotifyError(
            f"{what}: unexpected response: {body_excerpt(answer, secrets)}", retryable=True
        ) from None
    if code != 0:
        message = redact(f"{what}: error code {code}: {reason[:_EXCERPT]}", secrets)
        logger.warning("%s", message)
        raise NotifyError(message, retryable=code in set(retryable_codes))


def body_excerpt(response: Response, secrets: Sequence[str]) -> str:
    """The start of a response body, redacted, for an error message."""
    return redact(response.body[:_EXCERPT].decode("utf-8", "replace"), secrets)


__all__ = [
    "USER_AGENT",
    "ConfigReader",
    "HTTPConfig",
    "Response",
    "body_excerpt",
    "check_vendor_reply",
    "global_value",
    "go_json",
    "http_config_for",
    "post",
    "read_secret_file",
    "redact",
    "reveal",
    "secret_parts",
    "shown_url",
]
