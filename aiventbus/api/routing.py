"""Routing rules: create, list, read, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from aiventbus.api.agents import BODY_ERRORS, body_schema
from aiventbus.api.body import read_model
from aiventbus.api.deps import daemon_of
from aiventbus.records.agents import RoutingRule, RoutingRuleIn, RoutingRulePatch

router = APIRouter(prefix="/api/v1", tags=["routing"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such routing rule"}}


class RuleList(BaseModel):
    rules: list[RoutingRule]


@router.post(
    "/routing-rules",
    status_code=201,
    response_model=RoutingRule,
    responses=BODY_ERRORS,
    openapi_extra=body_schema(RoutingRuleIn),
)
async def create_rule(request: Request) -> RoutingRule:
    """Send events whose topic matches `topic_pattern` (and semantic_type/source, if given) to `consumer_id`."""
    daemon = daemon_of(request)
    incoming = await read_model(request, RoutingRuleIn, daemon.config.server.max_body_bytes)
    return await daemon.agents.create_rule(incoming)


@router.get("/routing-rules", response_model=RuleList)
async def list_rules(request: Request) -> RuleList:
    """In rule order (priority, then age)."""
    return RuleList(rules=daemon_of(request).agents.rules())


@router.get("/routing-rules/{rule_id}", response_model=RoutingRule, responses=NOT_FOUND)
async def get_rule(request: Request, rule_id: str) -> RoutingRule:
    return daemon_of(request).agents.require_rule(rule_id)


@router.patch(
    "/routing-rules/{rule_id}",
    response_model=RoutingRule,
    responses={**BODY_ERRORS, **NOT_FOUND},
    openapi_extra=body_schema(RoutingRulePatch),
)
async def update_rule(request: Request, rule_id: str) -> RoutingRule:
    daemon = daemon_of(request)
    daemon.agents.require_rule(rule_id)
    patch = await read_model(request, RoutingRulePatch, daemon.config.server.max_body_bytes)
    return await daemon.agents.update_rule(rule_id, patch)


@router.delete("/routing-rules/{rule_id}", status_code=204, responses=NOT_FOUND)
async def delete_rule(request: Request, rule_id: str) -> None:
    await daemon_of(request).agents.delete_rule(rule_id)
