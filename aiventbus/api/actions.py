"""Actions: pending approvals, history, detail, approve (runs it) and deny."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from aiventbus.api.body import parse_model, read_json
from aiventbus.api.deps import daemon_of
from aiventbus.store.actions import ActionRecord, ActionStatus

if TYPE_CHECKING:
    from aiventbus.core.executor import Executor

router = APIRouter(prefix="/api/v1/actions", tags=["actions"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such action"}}
APPROVE_ERRORS: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    403: {"description": "The policy denies the action now (blocklist re-checked at approval)"},
    409: {"description": "Not pending: already approved (with the first result), denied, expired or edited"},
}


class ActionPage(BaseModel):
    actions: list[ActionRecord]


class DenyBody(BaseModel):
    reason: str = Field("", max_length=2000, description="Why the action is denied (shown in history)")


def executor_of(request: Request) -> Executor:
    return daemon_of(request).executor


@router.get("/pending", response_model=ActionPage)
async def pending(request: Request, limit: int = Query(100, ge=1, le=1000)) -> ActionPage:
    """Actions waiting for the user, newest first (expired ones are moved to history)."""
    return ActionPage(actions=await executor_of(request).approvals.pending(limit))


@router.get("/history", response_model=ActionPage, responses={422: {"description": "Bad filter"}})
async def history(
    request: Request,
    status: ActionStatus | None = Query(None),
    trace_id: str | None = Query(None),
    limit: int = Query(50, ge=1, le=1000),
) -> ActionPage:
    """Every action (pending and resolved), newest first."""
    records = await executor_of(request).approvals.history(status.value if status else None, trace_id, limit)
    return ActionPage(actions=records)


@router.get("/{action_id}", response_model=ActionRecord, responses=NOT_FOUND)
async def detail(request: Request, action_id: str) -> ActionRecord:
    return await executor_of(request).approvals.get(action_id)


@router.post("/{action_id}/approve", response_model=ActionRecord, responses=APPROVE_ERRORS)
async def approve(request: Request, action_id: str) -> ActionRecord:
    """Approve a pending action and run it now; returns the finished action with its result."""
    return await executor_of(request).approvals.approve(action_id, decided_by="user")


@router.post(
    "/{action_id}/deny",
    response_model=ActionRecord,
    responses={**NOT_FOUND, 409: {"description": "Not pending"}, 422: {"description": "Bad body"}},
)
async def deny(request: Request, action_id: str) -> ActionRecord:
    """Refuse a pending action; it is never run."""
    body = DenyBody()
    if request.headers.get("content-length") not in (None, "0"):
        body = parse_model(DenyBody, await read_json(request, 65_536))
    return await executor_of(request).approvals.deny(action_id, body.reason, decided_by="user")
