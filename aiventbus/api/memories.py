"""Long-term memories (list/search, create, get, change importance, delete) and an agent's memory view:
its recent transcript and pinned facts, with pin/unpin."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from aiventbus.api.body import read_model
from aiventbus.api.deps import daemon_of
from aiventbus.errors import NotFound
from aiventbus.records.memory import SCOPE_PATTERN, Memory, MemoryIn, MemoryPage, MemoryPatch

router = APIRouter(prefix="/api/v1", tags=["memory"])

BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON"},
    415: {"description": "Content type is not application/json"},
    422: {"description": "A field is missing or invalid; detail names it"},
}
NO_MEMORY: dict[int | str, dict[str, Any]] = {404: {"description": "No such memory"}}
NO_AGENT: dict[int | str, dict[str, Any]] = {404: {"description": "No such agent"}}


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fact: str = Field(..., min_length=1, max_length=2000, description="Always placed in this agent's prompt")


class PinnedFactOut(BaseModel):
    id: str
    agent_id: str = Field(..., description="The agent, or 'global' for every agent")
    fact: str
    created_at: float


class TranscriptTurnOut(BaseModel):
    response_id: str
    event_id: str
    topic: str
    payload: dict[str, Any]
    summary: str | None
    answer: str
    taint: list[str]
    created_at: float


class AgentMemory(BaseModel):
    agent_id: str
    transcript: list[TranscriptTurnOut] = Field(..., description="Recent responses, newest first")
    pinned_facts: list[PinnedFactOut] = Field(..., description="Global pins and this agent's own")


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


@router.get("/memories", response_model=MemoryPage, responses={422: {"description": "Bad filter"}})
async def list_memories(
    request: Request,
    q: str | None = Query(None, max_length=1000, description="Full-text search (BM25, weighted)"),
    scope: str | None = Query(None, pattern=SCOPE_PATTERN),
    kind: Literal["semantic", "episodic", "procedural"] | None = Query(None),
    limit: int = Query(50, ge=1, le=500),
) -> MemoryPage:
    """Without q: most important first. With q: best matches first (each with its score)."""
    memory = daemon_of(request).memory
    if q:
        found = await memory.search(q, [scope] if scope else None, kind, limit)
    else:
        found = await memory.list(scope, kind, limit)
    return MemoryPage(memories=found)


@router.post("/memories", status_code=201, response_model=Memory, responses=BODY_ERRORS, openapi_extra=_body(MemoryIn))
async def create_memory(request: Request) -> Memory:
    daemon = daemon_of(request)
    incoming = await read_model(request, MemoryIn, daemon.config.server.max_body_bytes)
    return await daemon.memory.add(incoming, created_by="user")


@router.get("/memories/{memory_id}", response_model=Memory, responses=NO_MEMORY)
async def get_memory(request: Request, memory_id: str) -> Memory:
    found = await daemon_of(request).memory.get(memory_id)
    if found is None:
        raise NotFound("memory", memory_id)
    return found


@router.patch(
    "/memories/{memory_id}",
    response_model=Memory,
    responses={**NO_MEMORY, **BODY_ERRORS},
    openapi_extra=_body(MemoryPatch),
)
async def update_memory(request: Request, memory_id: str) -> Memory:
    """Change the importance (0..1)."""
    daemon = daemon_of(request)
    patch = await read_model(request, MemoryPatch, daemon.config.server.max_body_bytes)
    updated = await daemon.memory.set_importance(memory_id, patch.importance)
    if updated is None:
        raise NotFound("memory", memory_id)
    return updated


@router.delete("/memories/{memory_id}", status_code=204, responses=NO_MEMORY)
async def delete_memory(request: Request, memory_id: str) -> Response:
    if not await daemon_of(request).memory.delete(memory_id):
        raise NotFound("memory", memory_id)
    return Response(status_code=204)


async def _known_agent(request: Request, agent_id: str) -> None:
    if agent_id == "global":
        return
    if agent_id not in await daemon_of(request).context.agent_ids():
        raise NotFound("agent", agent_id)


@router.get("/agents/{agent_id}/memory", response_model=AgentMemory, responses=NO_AGENT)
async def agent_memory(request: Request, agent_id: str, limit: int = Query(20, ge=1, le=200)) -> AgentMemory:
    """The agent's recent transcript (from its stored responses) and its pinned facts."""
    await _known_agent(request, agent_id)
    daemon = daemon_of(request)
    turns = await daemon.context.recent_transcript(agent_id, limit) if agent_id != "global" else []
    pins = await daemon.knowledge.pinned_for(agent_id)
    return AgentMemory(
        agent_id=agent_id,
        transcript=[TranscriptTurnOut(**turn.to_api()) for turn in turns],
        pinned_facts=[PinnedFactOut(**pin.to_api()) for pin in pins],
    )


@router.post(
    "/agents/{agent_id}/memory/pinned",
    status_code=201,
    response_model=PinnedFactOut,
    responses={**NO_AGENT, **BODY_ERRORS},
    openapi_extra=_body(PinIn),
)
async def pin_fact(request: Request, agent_id: str) -> PinnedFactOut:
    """Pin a fact into this agent's prompt (agent_id `global`: every agent's)."""
    await _known_agent(request, agent_id)
    daemon = daemon_of(request)
    body = await read_model(request, PinIn, daemon.config.server.max_body_bytes)
    return PinnedFactOut(**(await daemon.knowledge.pin(agent_id, body.fact)).to_api())


@router.delete("/agents/{agent_id}/memory/pinned/{pin_id}", status_code=204, responses=NO_AGENT)
async def unpin_fact(request: Request, agent_id: str, pin_id: str) -> Response:
    if not await daemon_of(request).knowledge.unpin(agent_id, pin_id):
        raise NotFound("pinned fact", pin_id)
    return Response(status_code=204)
