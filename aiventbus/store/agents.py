"""Queries over the agents and routing_rules tables; callers validate first."""

from __future__ import annotations

import json
import sqlite3

from aiventbus.errors import Conflict, NotFound
from aiventbus.records.agents import AgentSpec, RoutingRule
from aiventbus.store.database import Database

RULE_COLUMNS = "id, name, topic_pattern, semantic_type, source, consumer_id, priority, enabled, created_at"


def row_to_rule(row: sqlite3.Row) -> RoutingRule:
    return RoutingRule(
        id=row["id"],
        name=row["name"],
        topic_pattern=row["topic_pattern"],
        semantic_type=row["semantic_type"],
        source=row["source"],
        consumer_id=row["consumer_id"],
        priority=row["priority"],
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
    )


def _spec_json(agent: AgentSpec) -> str:
    return agent.model_dump_json(exclude={"id", "name", "enabled", "created_at", "updated_at"})


class AgentTable:
    """SQL for agents and their routing rules."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load_agents(self) -> list[AgentSpec]:
        rows = await self.db.fetch_all(
            "SELECT id, name, spec, enabled, created_at, updated_at FROM agents ORDER BY created_at, id"
        )
        return [
            AgentSpec.model_validate(
                {
                    **json.loads(row["spec"]),
                    "id": row["id"],
                    "name": row["name"],
                    "enabled": bool(row["enabled"]),
                    "created_at": row["created_at"],
                    "updated_at": row["updated_at"],
                }
            )
            for row in rows
        ]

    async def ids(self) -> set[str]:
        """The ids of the stored agents; none when the database has no agents table."""
        exists = await self.db.fetch_value("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agents'")
        if not exists:
            return set()
        return {row["id"] for row in await self.db.fetch_all("SELECT id FROM agents")}

    async def load_rules(self) -> list[RoutingRule]:
        rows = await self.db.fetch_all(f"SELECT {RULE_COLUMNS} FROM routing_rules ORDER BY priority, created_at")
        return [row_to_rule(row) for row in rows]

    async def insert_agent(self, agent: AgentSpec) -> None:
        def job(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM agents WHERE id = ?", (agent.id,)).fetchone():
                raise Conflict(f"agent {agent.id} already exists (names must differ in letters or digits)", id=agent.id)
            conn.execute(
                "INSERT INTO agents (id, name, spec, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (agent.id, agent.name, _spec_json(agent), int(agent.enabled), agent.created_at, agent.updated_at),
            )

        await self.db.write(job)

    async def update_agent(self, agent: AgentSpec) -> None:
        changed = await self.db.execute(
            "UPDATE agents SET spec = ?, enabled = ?, updated_at = ? WHERE id = ?",
            (_spec_json(agent), int(agent.enabled), agent.updated_at, agent.id),
        )
        if not changed:
            raise NotFound("agent", agent.id)

    async def delete_agent(self, agent_id: str) -> None:
        """Deletes the agent and (by cascade) the rules that feed it."""
        if not await self.db.execute("DELETE FROM agents WHERE id = ?", (agent_id,)):
            raise NotFound("agent", agent_id)

    async def insert_rule(self, rule: RoutingRule) -> None:
        await self.db.execute(
            f"INSERT INTO routing_rules ({RULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rule.id,
                rule.name,
                rule.topic_pattern,
                rule.semantic_type,
                rule.source,
                rule.consumer_id,
                rule.priority,
                int(rule.enabled),
                rule.created_at,
            ),
        )

    async def update_rule(self, rule: RoutingRule) -> None:
        changed = await self.db.execute(
            "UPDATE routing_rules SET name = ?, topic_pattern = ?, semantic_type = ?, source = ?, consumer_id = ?,"
            " priority = ?, enabled = ? WHERE id = ?",
            (
                rule.name,
                rule.topic_pattern,
                rule.semantic_type,
                rule.source,
                rule.consumer_id,
                rule.priority,
                int(rule.enabled),
                rule.id,
            ),
        )
        if not changed:
            raise NotFound("routing rule", rule.id)

    async def delete_rule(self, rule_id: str) -> None:
        if not await self.db.execute("DELETE FROM routing_rules WHERE id = ?", (rule_id,)):
            raise NotFound("routing rule", rule_id)
