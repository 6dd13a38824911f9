"""The registry of agents and their routing rules: create, patch, list, and check that each agent's model exists."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiventbus.errors import NotFound, ValidationFailed
from aiventbus.llm.base import ModelCheck
from aiventbus.records.agents import (
    AgentIn,
    AgentPatch,
    AgentSpec,
    RoutingRule,
    RoutingRuleIn,
    RoutingRulePatch,
    agent_id_for,
)
from aiventbus.records.events import new_id
from aiventbus.store.agents import AgentTable


class ModelChecker(Protocol):
    """daemon.llm's check: records whether the server has the model, for the status."""

    async def check(self, kind: str, base_url: str | None, model: str, *, fresh: bool = False) -> ModelCheck: ...


class AgentRegistry:
    """Agents and routing rules, kept in memory for the router and written through to the store."""

    name = "agents"

    def __init__(
        self,
        table: AgentTable,
        default_model: str,
        clock: Callable[[], float] = time.time,
        checker: ModelChecker | None = None,
    ) -> None:
        self.table = table
        self.default_model = default_model
        self.clock = clock
        self.checker = checker
        self._agents: dict[str, AgentSpec] = {}
        self._rules: dict[str, RoutingRule] = {}
        self._checks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._agents = {agent.id: agent for agent in await self.table.load_agents()}
        self._rules = {rule.id: rule for rule in await self.table.load_rules()}
        for agent in self._agents.values():
            self._check_model(agent)

    async def stop(self) -> None:
        for task in self._checks:
            task.cancel()
        await asyncio.gather(*self._checks, return_exceptions=True)

    def _check_model(self, agent: AgentSpec) -> None:
        """Ask the agent's server about its model in the background, so the status shows a missing one at once."""
        if self.checker is None or not agent.enabled:
            return
        task = asyncio.create_task(self.checker.check(agent.provider, agent.base_url, agent.model, fresh=True))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    def status(self) -> dict[str, int]:
        return {
            "agents": len(self._agents),
            "enabled": len(self.enabled_ids()),
            "routing_rules": len(self._rules),
        }

    # -- agents --------------------------------------------------------------------------------

    def get(self, agent_id: str) -> AgentSpec | None:
        return self._agents.get(agent_id)

    def require(self, agent_id: str) -> AgentSpec:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise NotFound("agent", agent_id)
        return agent

    def all(self) -> list[AgentSpec]:
        return sorted(self._agents.values(), key=lambda agent: (agent.created_at, agent.id))

    def enabled_ids(self) -> set[str]:
        return {agent.id for agent in self._agents.values() if agent.enabled}

    async def create(self, incoming: AgentIn) -> AgentSpec:
        now = self.clock()
        data = incoming.model_dump()
        data["model"] = incoming.model or self.default_model
        agent = AgentSpec(id=agent_id_for(incoming.name), created_at=now, updated_at=now, **data)
        await self.table.insert_agent(agent)
        self._agents[agent.id] = agent
        self._check_model(agent)
        return agent

    async def update(self, agent_id: str, patch: AgentPatch) -> AgentSpec:
        current = self.require(agent_id)
        changes = {name: getattr(patch, name) for name in patch.model_fields_set}
        for required in ("model", "description", "system_prompt", "provider", "enabled", "temperature"):
            if required in changes and changes[required] is None:
                raise ValidationFailed(required, "cannot be null")
        updated = current.model_copy(update={**changes, "updated_at": self.clock()})
        AgentSpec.model_validate(updated.model_dump())
        await self.table.update_agent(updated)
        self._agents[agent_id] = updated
        if changes.keys() & {"provider", "base_url", "model", "enabled"}:
            self._check_model(updated)
        return updated

    async def set_enabled(self, agent_id: str, enabled: bool) -> AgentSpec:
        return await self.update(agent_id, AgentPatch(enabled=enabled))

    async def delete(self, agent_id: str) -> None:
        self.require(agent_id)
        await self.table.delete_agent(agent_id)
        self._agents.pop(agent_id, None)
        self._rules = {rid: rule for rid, rule in self._rules.items() if rule.consumer_id != agent_id}

    # -- routing rules -------------------------------------------------------------------------

    def rules(self) -> list[RoutingRule]:
        return sorted(self._rules.values(), key=lambda rule: (rule.priority, rule.created_at, rule.id))

    def require_rule(self, rule_id: str) -> RoutingRule:
        rule = self._rules.get(rule_id)
        if rule is None:
            raise NotFound("routing rule", rule_id)
        return rule

    def _check_consumer(self, consumer_id: str) -> None:
        if consumer_id not in self._agents:
            raise ValidationFailed("consumer_id", f"agent {consumer_id} does not exist (create it first)")

    async def create_rule(self, incoming: RoutingRuleIn) -> RoutingRule:
        self._check_consumer(incoming.consumer_id)
        rule = RoutingRule(id=new_id("rule"), created_at=self.clock(), **incoming.model_dump())
        await self.table.insert_rule(rule)
        self._rules[rule.id] = rule
        return rule

    async def update_rule(self, rule_id: str, patch: RoutingRulePatch) -> RoutingRule:
        current = self.require_rule(rule_id)
        changes = {name: getattr(patch, name) for name in patch.model_fields_set}
        for required in ("name", "topic_pattern", "consumer_id", "priority", "enabled"):
            if required in changes and changes[required] is None:
                raise ValidationFailed(required, "cannot be null")
        if "consumer_id" in changes:
            self._check_consumer(changes["consumer_id"])
        updated = current.model_copy(update=changes)
        await self.table.update_rule(updated)
        self._rules[rule_id] = updated
        return updated

    async def delete_rule(self, rule_id: str) -> None:
        self.require_rule(rule_id)
        await self.table.delete_rule(rule_id)
        self._rules.pop(rule_id, None)
