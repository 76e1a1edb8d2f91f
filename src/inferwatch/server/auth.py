"""Bearer token and basic auth for the server: an ASGI middleware.

::

    app = AuthMiddleware(app, bearer_token="s3cret", basic_auth=("admin", "pw"))

Every request needs ``Authorization: Bearer <token>`` or ``Authorization: Basic ...``
with the configured credentials, except the health endpoints (``/-/healthy`` and
``/-/ready``, which load balancers and Kubernetes probe without credentials). Others get
``401`` with ``WWW-Authenticate: Basic realm="inferwatch"`` when basic auth is configured
(so a browser asks for a password), else ``WWW-Authenticate: Bearer realm="inferwatch"``.
Credentials are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from inferwatch._errors import ConfigError

#: Paths served without credentials.
OPEN_PATHS = frozenset({"/-/healthy", "/-/ready"})
REALM = "inferwatch"


class AuthMiddleware:
    """Lets a request through only with the configured bearer token or basic auth."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        open_paths: Collection[str] = OPEN_PATHS,
    ) -> None:
        if not bearer_token and basic_auth is None:
            raise ConfigError("auth needs a bearer_token or basic_auth", field="auth", value=None)
        self.app = app
        self._token = bearer_token.encode() if bearer_token else None
        self._basic = (
            (basic_auth[0].encode(), basic_auth[1].encode()) if basic_auth is not None else None
        )
        self.open_paths = frozenset(open_paths)
        scheme = "Basic" if basic_auth is not None else "Bearer"
        self._challenge = f'{scheme} realm="{REALM}"'.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        header = b""
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                header = bytes(value)
                break
        if self.authorized(header):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = b"Unauthorized: this inferwatch server needs credentials\n"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", self._challenge),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def authorized(self, header: bytes) -> bool:
        """Whether an ``Authorization`` header value carries the configured credentials."""
        scheme, _, credentials = header.strip().partition(b" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == b"bearer" and self._token is not None:
            return hmac.compare_digest(credentials, self._token)
        if scheme == b"basic" and self._basic is not None:
            try:
                decoded = base64.b64decode(credentials, validate=True)
            except (binascii.Error, ValueError):
                return False
            user, sep, password = decoded.partition(b":")
            # Both compared every time, so the time taken does not tell which was wrong.
            user_ok = hmac.compare_digest(user, self._basic[0])
            password_ok = hmac.compare_digest(password, self._basic[1])
            return bool(sep) and user_ok and password_ok
        return False


__all__ = ["OPEN_PATHS", "AuthMiddleware"]
