"""POST /api/v1/webhooks/{name}: an inbound hook, authenticated by its HMAC signature instead of the token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from aiventbus.api.deps import daemon_of
from aiventbus.errors import NotFound, PayloadTooLarge
from aiventbus.producers.webhook import SIGNATURE_HEADER, WebhookProducer

router = APIRouter(prefix="/api/v1", tags=["producers"])


class WebhookAccepted(BaseModel):
    event_id: str
    topic: str


@router.post(
    "/webhooks/{name}",
    status_code=202,
    response_model=WebhookAccepted,
    responses={
        401: {"description": f"Missing or wrong {SIGNATURE_HEADER} (sha256=<hex HMAC-SHA256 of the raw body>)"},
        404: {"description": "No webhook of that name in producers.webhooks"},
        413: {"description": "Body over producers.webhook_max_body_bytes"},
        422: {"description": "The JSON body breaks a value rule (aiventbus.values); detail names the path and rule"},
        429: {"description": "The webhook producer's rate limit was reached"},
    },
)
async def receive_webhook(name: str, request: Request) -> WebhookAccepted:
    """Publish the body as webhook.<name> when its signature matches the hook's secret."""
    producer = daemon_of(request).producers.get("webhook")
    if not isinstance(producer, WebhookProducer):
        raise NotFound("webhook", name)
    producer.check_hook(name)
    limit = producer.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body: {declared} bytes exceeds producers.webhook_max_body_bytes ({limit})")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"body: exceeds producers.webhook_max_body_bytes ({limit})")
    event = await producer.receive(
        name, bytes(body), request.headers.get(SIGNATURE_HEADER), request.headers.get("content-type", "")
    )
    return WebhookAccepted(event_id=event.id, topic=event.topic)
