"""webhook.<name>: inbound HTTP hooks authenticated by an HMAC-SHA256 signature of the raw body."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from typing import Any

from aiventbus.config import WebhookConfig
from aiventbus.errors import AiventbusError, NotFound, PayloadTooLarge
from aiventbus.producers.outlet import Outlet
from aiventbus.records.events import Event
from aiventbus.values import MAX_DEPTH, parse_json

SIGNATURE_HEADER = "X-Aiventbus-Signature"
HOOK_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SignatureInvalid(AiventbusError):
    status_code = 401


def sign(secret: str, body: bytes) -> str:
    """The header value a sender puts in X-Aiventbus-Signature."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of `sha256=<hex>` against the body's HMAC."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(header.strip().encode(), sign(secret, body).encode())


def webhook_payload(name: str, body: bytes, content_type: str) -> dict[str, Any]:
    """A JSON body is kept as data; anything else as text. UnsafeValue (422, naming the path under `body` and the
    rule) when the JSON breaks a value rule: the payload's own object leaves one level fewer for the body."""
    text = body.decode("utf-8", "replace")
    parsed: Any = text
    if content_type.split(";", 1)[0].strip().lower() in {"application/json", ""} and text.strip():
        try:
            parsed = parse_json(text, "body", max_depth=MAX_DEPTH - 1)
        except ValueError:
            parsed = text
    return {"hook": name, "body": parsed, "content_type": content_type}


class WebhookProducer:
    name = "webhook"
    source = "webhook"
    capability = ""

    def __init__(self, hooks: dict[str, WebhookConfig], max_body_bytes: int) -> None:
        self.hooks = hooks
        self.max_body_bytes = max_body_bytes
        self.outlet: Outlet | None = None
        self.refused_signatures = 0

    def details(self) -> dict[str, Any]:
        return {"hooks": sorted(self.hooks), "refused_signatures": self.refused_signatures}

    async def run(self, outlet: Outlet) -> None:
        self.outlet = outlet
        try:
            await asyncio.Event().wait()  # passive: requests arrive through receive()
        finally:
            self.outlet = None

    def check_hook(self, name: str) -> WebhookConfig:
        hook = self.hooks.get(name) if HOOK_NAME.match(name) else None
        if hook is None or self.outlet is None:
            raise NotFound("webhook", name)
        return hook

    async def receive(self, name: str, body: bytes, signature: str | None, content_type: str) -> Event:
        """Verify and publish one delivery: 404 unknown, 413 too big, 401 bad signature, 429 rate limited."""
        hook = self.check_hook(name)
        if len(body) > self.max_body_bytes:
            raise PayloadTooLarge(f"body: {len(body)} bytes exceeds producers.webhook_max_body_bytes")
        if not signature_valid(hook.secret, body, signature):
            self.refused_signatures += 1
            detail = "missing" if not signature else "wrong"
            raise SignatureInvalid(f"{SIGNATURE_HEADER}: {detail} signature (expected sha256=<hex HMAC of the body>)")
        assert self.outlet is not None
        return await self.outlet.publish_now(f"webhook.{name}", webhook_payload(name, body, content_type))
