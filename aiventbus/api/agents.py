"""Agents: create, list, read, update, enable/disable, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from aiventbus.api.body import read_model
from aiventbus.api.deps import daemon_of
from aiventbus.records.agents import AgentIn, AgentPatch, AgentSpec

router = APIRouter(prefix="/api/v1", tags=["agents"])

BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON"},
    413: {"description": "Body over the size limit"},
    415: {"description": "Content type is not application/json"},
    422: {"description": "A field is missing or invalid (e.g. an unknown provider); detail names it"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such agent"}}


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body for routes that read their JSON through read_model."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


class AgentList(BaseModel):
    agents: list[AgentSpec]


@router.post(
    "/agents",
    status_code=201,
    response_model=AgentSpec,
    responses={**BODY_ERRORS, 409: {"description": "An agent with that id (slug of the name) exists"}},
    openapi_extra=body_schema(AgentIn),
)
async def create_agent(request: Request) -> AgentSpec:
    """Create an agent; its id is agent_<slug-of-name>."""
    daemon = daemon_of(request)
    incoming = await read_model(request, AgentIn, daemon.config.server.max_body_bytes)
    return await daemon.agents.create(incoming)


@router.get("/agents", response_model=AgentList)
async def list_agents(request: Request) -> AgentList:
    return AgentList(agents=daemon_of(request).agents.all())


@router.get("/agents/{agent_id}", response_model=AgentSpec, responses=NOT_FOUND)
async def get_agent(request: Request, agent_id: str) -> AgentSpec:
    return daemon_of(request).agents.require(agent_id)


@router.patch(
    "/agents/{agent_id}",
    response_model=AgentSpec,
    responses={**BODY_ERRORS, **NOT_FOUND},
    openapi_extra=body_schema(AgentPatch),
)
async def update_agent(request: Request, agent_id: str) -> AgentSpec:
    """Change some fields; the name (and id) stay."""
    daemon = daemon_of(request)
    daemon.agents.require(agent_id)
    patch = await read_model(request, AgentPatch, daemon.config.server.max_body_bytes)
    return await daemon.agents.update(agent_id, patch)


@router.post("/agents/{agent_id}/enable", response_model=AgentSpec, responses=NOT_FOUND)
async def enable_agent(request: Request, agent_id: str) -> AgentSpec:
    return await daemon_of(request).agents.set_enabled(agent_id, True)


@router.post("/agents/{agent_id}/disable", response_model=AgentSpec, responses=NOT_FOUND)
async def disable_agent(request: Request, agent_id: str) -> AgentSpec:
    """A disabled agent gets no new assignments."""
    return await daemon_of(request).agents.set_enabled(agent_id, False)


@router.delete("/agents/{agent_id}", status_code=204, responses=NOT_FOUND)
async def delete_agent(request: Request, agent_id: str) -> None:
    """Delete the agent, the routing rules that feed it, and dead-letter its pending work."""
    daemon = daemon_of(request)
    await daemon.agents.delete(agent_id)
    await daemon.router.scheduler.table.fail_for_agent(agent_id, daemon.clock(), "agent deleted")
