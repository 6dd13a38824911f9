"""Queries over the events table: how a stored row reads back as an Event, and the readers' lookups. The writer's
insert job is in `event_insert`."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from aiventbus.records.events import Event, EventStatus, Priority
from aiventbus.store.database import Database
from aiventbus.values import load_stored

COLUMNS = (
    "seq, id, topic, payload, priority, semantic_type, dedupe_key, trace_id, parent_event, output_topic,"
    " context_refs, memory_scope, source, taint, depth, status, created_at"
)


def row_to_event(row: sqlite3.Row, deduplicated: bool = False) -> Event:
    """The stored event; a payload an older version stored that cannot be shown comes back escaped."""
    return Event(
        seq=row["seq"],
        id=row["id"],
        topic=row["topic"],
        payload=load_stored(row["payload"]),
        priority=Priority(row["priority"]),
        semantic_type=row["semantic_type"],
        dedupe_key=row["dedupe_key"],
        trace_id=row["trace_id"],
        parent_event=row["parent_event"],
        output_topic=row["output_topic"],
        context_refs=json.loads(row["context_refs"]),
        memory_scope=row["memory_scope"],
        source=row["source"],
        taint=json.loads(row["taint"]),
        depth=row["depth"],
        status=EventStatus(row["status"]),
        created_at=row["created_at"],
        deduplicated=deduplicated,
    )


def trace_members(columns: str) -> str:
    """The events of trace `:trace`, as a subquery. The trace index leaves out roots (named after their trace, see
    migration 0005): they are found by id, everything else through the index."""
    return (
        f"(SELECT {columns} FROM events WHERE trace_id = :trace AND trace_id != 'tr_' || substr(id, 5)"
        f" UNION ALL SELECT {columns} FROM events WHERE id = 'evt_' || substr(:trace, 4) AND trace_id = :trace)"
    )


def set_routing_status(conn: sqlite3.Connection, event_id: str, status: EventStatus) -> None:
    """Record what routing decided for an event, only while it is still pending: a status set since stays."""
    conn.execute("UPDATE events SET status = ? WHERE id = ? AND status = 'pending'", (status.value, event_id))


@dataclass(frozen=True)
class EventFilter:
    topic_glob: str | None = None
    status: str | None = None
    source: str | None = None
    since: float | None = None
    until: float | None = None
    before_seq: int | None = None
    limit: int = 50


def glob_to_sql(pattern: str) -> str:
    """Topic globs use * and ?, which SQLite's GLOB understands; [ is matched literally."""
    return pattern.replace("[", "[[]")


class EventQueries:
    """Reads of the events table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, event_id: str) -> Event | None:
        row = await self.db.fetch_one(f"SELECT {COLUMNS} FROM events WHERE id = ?", (event_id,))
        return None if row is None else row_to_event(row)

    async def get_many(self, event_ids: list[str]) -> list[Event]:
        if not event_ids:
            return []
        marks = ",".join("?" * len(event_ids))
        rows = await self.db.fetch_all(f"SELECT {COLUMNS} FROM events WHERE id IN ({marks})", event_ids)
        return [row_to_event(row) for row in rows]

    async def search(self, query: EventFilter) -> list[Event]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.topic_glob:
            clauses.append("topic GLOB ?")
            params.append(glob_to_sql(query.topic_glob))
        if query.status:
            clauses.append("status = ?")
            params.append(query.status)
        if query.source:
            clauses.append("source = ?")
            params.append(query.source)
        if query.since is not None:
            clauses.append("created_at >= ?")
            params.append(query.since)
        if query.until is not None:
            clauses.append("created_at < ?")
            params.append(query.until)
        if query.before_seq is not None:
            clauses.append("seq < ?")
            params.append(query.before_seq)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.db.fetch_all(
            f"SELECT {COLUMNS} FROM events {where} ORDER BY seq DESC LIMIT ?", [*params, query.limit]
        )
        return [row_to_event(row) for row in rows]

    async def trace(self, trace_id: str, limit: int = 1000) -> list[Event]:
        rows = await self.db.fetch_all(
            f"SELECT {COLUMNS} FROM {trace_members(COLUMNS)} ORDER BY seq LIMIT :limit",
            {"trace": trace_id, "limit": limit},
        )
        return [row_to_event(row) for row in rows]

    async def chain(self, event_id: str) -> list[Event]:
        """The event's ancestors, itself and its descendants, in causal order."""
        rows = await self.db.fetch_all(
            f"""
            WITH RECURSIVE
              up(id, parent_event) AS (
                SELECT id, parent_event FROM events WHERE id = ?
                UNION SELECT e.id, e.parent_event FROM events e JOIN up ON e.id = up.parent_event
              ),
              down(id) AS (
                SELECT id FROM events WHERE id = ?
                UNION SELECT e.id FROM events e JOIN down ON e.parent_event = down.id
              )
            SELECT {COLUMNS} FROM events WHERE id IN (SELECT id FROM up UNION SELECT id FROM down)
            ORDER BY seq
            """,
            (event_id, event_id),
        )
        return [row_to_event(row) for row in rows]

    async def topics(self) -> list[dict[str, Any]]:
        rows = await self.db.fetch_all(
            "SELECT topic, COUNT(*) AS count, MAX(created_at) AS last_at FROM events GROUP BY topic ORDER BY topic"
        )
        return [{"topic": r["topic"], "count": r["count"], "last_event_at": r["last_at"]} for r in rows]

    async def count(self) -> int:
        return int(await self.db.fetch_value("SELECT COUNT(*) FROM events") or 0)

    async def highest_seq(self) -> int:
        """The seq of the newest event, 0 when there is none."""
        return int(await self.db.fetch_value("SELECT COALESCE(MAX(seq), 0) FROM events") or 0)

    async def pending_after(self, after_seq: int, limit: int) -> list[Event]:
        """The first `limit` events after `after_seq` still waiting to be routed, in seq order."""
        rows = await self.db.fetch_all(
            f"SELECT {COLUMNS} FROM events WHERE seq > ? AND status = 'pending' ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [row_to_event(row) for row in rows]

    async def set_status(self, event_id: str, status: EventStatus) -> None:
        await self.db.execute("UPDATE events SET status = ? WHERE id = ?", (status.value, event_id))
