"""Knowledge: list by prefix, get, set (PUT) and delete durable key-value facts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from aiventbus.api.body import read_model
from aiventbus.api.deps import daemon_of
from aiventbus.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["knowledge"])

BAD_KEY: dict[int | str, dict[str, Any]] = {
    422: {"description": "The key is not a dotted name, or the value breaks a value rule; detail names it"}
}
NO_KEY: dict[int | str, dict[str, Any]] = {404: {"description": "No entry with this key"}, **BAD_KEY}


class KnowledgeEntryOut(BaseModel):
    key: str
    value: Any
    set_by: str = Field(..., description="user, system, agent:<id> or producer:<name>")
    updated_at: float
    taint: list[str] = Field(
        default_factory=list, description="Untrusted origins of the value (what the run that wrote it had seen)"
    )


class KnowledgePage(BaseModel):
    entries: list[KnowledgeEntryOut]


class KnowledgeValue(BaseModel):
    """The body of PUT: any JSON value."""

    model_config = ConfigDict(extra="forbid")

    value: Any = Field(..., description="Any JSON value")


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


@router.get("/knowledge", response_model=KnowledgePage, responses={422: {"description": "Bad prefix or limit"}})
async def list_knowledge(
    request: Request,
    prefix: str = Query("", description="Only keys starting with this, e.g. system."),
    limit: int = Query(100, ge=1, le=1000),
) -> KnowledgePage:
    entries = await daemon_of(request).knowledge.list(prefix, limit)
    return KnowledgePage(entries=[KnowledgeEntryOut(**entry.to_api()) for entry in entries])


@router.get("/knowledge/{key}", response_model=KnowledgeEntryOut, responses=NO_KEY)
async def get_knowledge(request: Request, key: str) -> KnowledgeEntryOut:
    entry = await daemon_of(request).knowledge.get(key)
    if entry is None:
        raise NotFound("knowledge key", key)
    return KnowledgeEntryOut(**entry.to_api())


@router.put(
    "/knowledge/{key}",
    response_model=KnowledgeEntryOut,
    responses={
        **BAD_KEY,
        400: {"description": "Malformed JSON"},
        415: {"description": "Content type is not application/json"},
    },
    openapi_extra=_body(KnowledgeValue),
)
async def set_knowledge(request: Request, key: str) -> KnowledgeEntryOut:
    """Create or replace the entry; set_by is `user`."""
    daemon = daemon_of(request)
    body = await read_model(request, KnowledgeValue, daemon.config.server.max_body_bytes)
    entry = await daemon.knowledge.set(key, body.value, "user")
    return KnowledgeEntryOut(**entry.to_api())


@router.delete("/knowledge/{key}", status_code=204, responses=NO_KEY)
async def delete_knowledge(request: Request, key: str) -> Response:
    if not await daemon_of(request).knowledge.delete(key):
        raise NotFound("knowledge key", key)
    return Response(status_code=204)
