"""Health and metrics: readable without the token, and showing no secret."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(tags=["system"])


@router.get("/api/v1/system/status")
async def status(request: Request) -> dict[str, Any]:
    """ok or degraded, with each problem and its fix."""
    result: dict[str, Any] = await request.app.state.daemon.status()
    return result


@router.get("/metrics", include_in_schema=True)
async def metrics(request: Request) -> Response:
    body = request.app.state.daemon.metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
