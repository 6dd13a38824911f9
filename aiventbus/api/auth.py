"""Local API token and the Host/Origin/token guard applied to every HTTP and WebSocket request."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "localhost.localdomain"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Readable without the token, and showing no secret.
PUBLIC_PATHS = frozenset(
    {"/metrics", "/api/v1/system/status", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
)
WEBHOOK_PREFIX = "/api/v1/webhooks/"


def host_name(host_header: str) -> str:
    """`127.0.0.1:8420` -> `127.0.0.1`; `[::1]:8420` -> `[::1]`."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host_header: str | None, extra_hosts: Iterable[str]) -> bool:
    if not host_header:
        return False
    name = host_name(host_header)
    return name in LOOPBACK_NAMES or name in {h.lower() for h in extra_hosts}


def origin_allowed(origin: str | None, host_header: str | None, extra_hosts: Iterable[str]) -> bool:
    """No Origin (curl, the CLI) is fine; a browser's Origin must be the daemon's own address."""
    if origin is None:
        return True
    if origin == "null" or not host_header:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return False
    origin_host = host_name(parts.netloc)
    if origin_host not in LOOPBACK_NAMES and origin_host not in {h.lower() for h in extra_hosts}:
        return False
    return parts.netloc.lower() == host_header.strip().lower()


def bearer_matches(header: str | None, token: str) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def needs_token(method: str, path: str) -> bool:
    if method == "POST" and path.startswith(WEBHOOK_PREFIX):
        return False  # an inbound webhook's HMAC signature is its authentication
    if path in PUBLIC_PATHS:
        return method not in SAFE_METHODS
    if path.startswith("/api/") or path == "/ws":
        return True
    return method not in SAFE_METHODS


class GuardMiddleware:
    """Refuses foreign Host/Origin (DNS rebinding, CSRF, WS hijacking) and requests without the token."""

    def __init__(self, app: ASGIApp, token: str, extra_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.extra_hosts = tuple(extra_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host")
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        path = scope["path"]
        if not host_allowed(host, self.extra_hosts):
            await self._refuse(scope, receive, send, 403, "Host header is not a loopback name: request refused")
            return
        if not origin_allowed(headers.get("origin"), host, self.extra_hosts):
            await self._refuse(scope, receive, send, 403, "Origin is not this daemon: cross-site request refused")
            return
        if needs_token(method, path) and not self._token_ok(scope, headers):
            await self._refuse(scope, receive, send, 401, "missing or wrong API token (Authorization: Bearer ...)")
            return
        await self.app(scope, receive, send)

    def _token_ok(self, scope: Scope, headers: dict[str, str]) -> bool:
        if bearer_matches(headers.get("authorization"), self.token):
            return True
        if scope["type"] == "websocket":
            # Browsers cannot set headers on a WebSocket: the token may come as a subprotocol.
            for proto in headers.get("sec-websocket-protocol", "").split(","):
                proto = proto.strip()
                if proto.startswith("token.") and hmac.compare_digest(proto[6:].encode(), self.token.encode()):
                    return True
        return False

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401 if status == 401 else 4403, "reason": detail})
            return
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
