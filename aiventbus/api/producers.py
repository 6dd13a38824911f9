"""GET /api/v1/producers: each producer's state, capability report, counts and last error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from aiventbus.api.deps import daemon_of

router = APIRouter(prefix="/api/v1", tags=["producers"])


class CapabilityReport(BaseModel):
    name: str
    available: bool
    reason: str = ""
    fix: str = ""
    backend: str = ""


class ProducerReport(BaseModel):
    name: str
    source: str = Field(..., description="Event source its events carry (untrusted families taint agent runs)")
    enabled: bool
    state: str = Field(..., description="running, disabled, unavailable, failed or stopped")
    capability: CapabilityReport
    events_emitted: int
    coalesced: int = Field(..., description="Events folded into a later one while rate limited")
    pending: int
    rate_limited: int = Field(..., description="Requests refused by the rate limit (webhooks)")
    publish_failures: int
    last_event_at: float | None
    last_error: str
    fix: str
    restarts: int
    details: dict[str, Any]


class ProducersPage(BaseModel):
    platform: str
    producers: list[ProducerReport]
    capabilities: list[CapabilityReport]


@router.get("/producers", response_model=ProducersPage)
async def list_producers(request: Request) -> ProducersPage:
    """Every producer, including disabled and unavailable ones with the reason and fix."""
    manager = daemon_of(request).producers
    return ProducersPage.model_validate(
        {"platform": manager.platform.name, "producers": manager.report(), "capabilities": manager.capabilities()}
    )
