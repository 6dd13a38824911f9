"""What became of an event: its assignments (one per agent) and the agents' responses."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from aiventbus.api.deps import daemon_of
from aiventbus.errors import NotFound
from aiventbus.store.assignments import Assignment
from aiventbus.store.responses import AgentResponseRecord

router = APIRouter(prefix="/api/v1", tags=["events"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such event"}}


class AssignmentList(BaseModel):
    event_id: str
    event_status: str
    assignments: list[Assignment]


class ResponseList(BaseModel):
    event_id: str
    responses: list[AgentResponseRecord]


async def _require_event(request: Request, event_id: str) -> str:
    event = await daemon_of(request).bus.queries.get(event_id)
    if event is None:
        raise NotFound("event", event_id)
    return event.status.value


@router.get("/events/{event_id}/assignments", response_model=AssignmentList, responses=NOT_FOUND)
async def event_assignments(request: Request, event_id: str) -> AssignmentList:
    """Each agent the event went to: lane, state (pending, claimed, completed, failed), attempts, last error."""
    status = await _require_event(request, event_id)
    assignments = await daemon_of(request).router.scheduler.table.for_event(event_id)
    return AssignmentList(event_id=event_id, event_status=status, assignments=assignments)


@router.get("/events/{event_id}/responses", response_model=ResponseList, responses=NOT_FOUND)
async def event_responses(request: Request, event_id: str) -> ResponseList:
    """The stored agent responses (response is null when the output could not be parsed)."""
    await _require_event(request, event_id)
    responses = await daemon_of(request).router.scheduler.table.responses_for_event(event_id)
    return ResponseList(event_id=event_id, responses=responses)
