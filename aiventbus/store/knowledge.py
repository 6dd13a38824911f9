"""Queries over the knowledge and pinned_facts tables."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from aiventbus.store.database import Database
from aiventbus.values import load_stored


@dataclass(frozen=True)
class KnowledgeEntry:
    key: str
    value: Any
    set_by: str
    updated_at: float
    taint: list[str]

    def to_api(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": self.value,
            "set_by": self.set_by,
            "updated_at": self.updated_at,
            "taint": self.taint,
        }


@dataclass(frozen=True)
class PinnedFact:
    id: str
    agent_id: str
    fact: str
    created_at: float

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "agent_id": self.agent_id, "fact": self.fact, "created_at": self.created_at}


def _entry(row: sqlite3.Row) -> KnowledgeEntry:
    return KnowledgeEntry(
        row["key"], load_stored(row["value"]), row["set_by"], row["updated_at"], json.loads(row["taint"])
    )


ENTRY_COLUMNS = "key, value, set_by, updated_at, taint"


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching keys that start with `prefix`, with % and _ taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class KnowledgeTable:
    """SQL for knowledge entries and pinned facts; callers validate first."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> KnowledgeEntry | None:
        row = await self.db.fetch_one(f"SELECT {ENTRY_COLUMNS} FROM knowledge WHERE key = ?", (key,))
        return None if row is None else _entry(row)

    async def upsert(self, key: str, value_json: str, set_by: str, now: float, taint: list[str]) -> None:
        await self.upsert_many([(key, value_json, set_by, now, json.dumps(taint))])

    async def upsert_many(self, rows: list[tuple[str, str, str, float, str]]) -> None:
        """(key, value JSON, set_by, updated_at, label JSON) rows; a rewrite replaces the label with the new one."""

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO knowledge (key, value, set_by, updated_at, taint) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value, set_by = excluded.set_by,"
                " updated_at = excluded.updated_at, taint = excluded.taint",
                rows,
            )

        await self.db.write(job)

    async def list_prefix(self, prefix: str, limit: int) -> list[KnowledgeEntry]:
        rows = await self.db.fetch_all(
            f"SELECT {ENTRY_COLUMNS} FROM knowledge WHERE key LIKE ? ESCAPE '\\' ORDER BY key LIMIT ?",
            (like_prefix(prefix), limit),
        )
        return [_entry(row) for row in rows]

    async def matching_any(self, words: list[str], limit: int) -> list[KnowledgeEntry]:
        """Entries whose key contains any of `words` (lower-case), newest first."""
        if not words:
            return []
        clauses = " OR ".join("lower(key) LIKE ? ESCAPE '\\'" for _ in words)
        params: list[Any] = ["%" + like_prefix(word) for word in words]
        rows = await self.db.fetch_all(
            f"SELECT {ENTRY_COLUMNS} FROM knowledge WHERE {clauses} ORDER BY updated_at DESC LIMIT ?",
            [*params, limit],
        )
        return [_entry(row) for row in rows]

    async def delete(self, key: str) -> bool:
        return await self.db.execute("DELETE FROM knowledge WHERE key = ?", (key,)) > 0

    async def pin(self, fact: PinnedFact) -> None:
        await self.db.execute(
            "INSERT INTO pinned_facts (id, agent_id, fact, created_at) VALUES (?, ?, ?, ?)",
            (fact.id, fact.agent_id, fact.fact, fact.created_at),
        )

    async def pinned(self, agent_ids: list[str]) -> list[PinnedFact]:
        marks = ",".join("?" * len(agent_ids))
        rows = await self.db.fetch_all(
            f"SELECT id, agent_id, fact, created_at FROM pinned_facts WHERE agent_id IN ({marks}) ORDER BY created_at",
            agent_ids,
        )
        return [PinnedFact(r["id"], r["agent_id"], r["fact"], r["created_at"]) for r in rows]

    async def unpin(self, agent_id: str, fact_id: str) -> bool:
        return await self.db.execute("DELETE FROM pinned_facts WHERE id = ? AND agent_id = ?", (fact_id, agent_id)) > 0
