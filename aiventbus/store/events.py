"""Queries over the events table: the insert job run by the writer, and the readers' lookups."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from aiventbus.core.events import (
    ChainLimits,
    ChainState,
    Event,
    EventIn,
    EventStatus,
    Priority,
    chain_limit_violation,
    new_id,
    taint_of,
    within_dedupe_window,
)
from aiventbus.errors import ChainLimitExceeded, ValidationFailed
from aiventbus.store.database import Database

COLUMNS = (
    "seq, id, topic, payload, priority, semantic_type, dedupe_key, trace_id, parent_event, output_topic,"
    " context_refs, memory_scope, source, taint, depth, status, created_at"
)


def row_to_event(row: sqlite3.Row, deduplicated: bool = False) -> Event:
    return Event(
        seq=row["seq"],
        id=row["id"],
        topic=row["topic"],
        payload=json.loads(row["payload"]),
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


@dataclass(frozen=True)
class PublishRules:
    limits: ChainLimits
    dedupe_window_seconds: float
    trusted_sources: frozenset[str]
    enforce_limits: bool = True


def insert_event(conn: sqlite3.Connection, incoming: EventIn, now: float, rules: PublishRules) -> Event:
    """Dedupe, apply chain limits and insert, inside the writer's transaction."""
    if incoming.dedupe_key is not None and rules.dedupe_window_seconds > 0:
        original = conn.execute(
            f"SELECT {COLUMNS} FROM events WHERE dedupe_key = ? AND created_at > ? ORDER BY seq DESC LIMIT 1",
            (incoming.dedupe_key, now - rules.dedupe_window_seconds),
        ).fetchone()
        if original is not None and within_dedupe_window(original["created_at"], now, rules.dedupe_window_seconds):
            return row_to_event(original, deduplicated=True)

    parent_taint: list[str] = []
    depth = 0
    trace_id = incoming.trace_id
    parent_children = 0
    if incoming.parent_event is not None:
        parent = conn.execute(
            "SELECT trace_id, depth, taint FROM events WHERE id = ?", (incoming.parent_event,)
        ).fetchone()
        if parent is None:
            raise ValidationFailed("parent_event", f"event {incoming.parent_event} does not exist")
        if trace_id is not None and trace_id != parent["trace_id"]:
            raise ValidationFailed("trace_id", f"must match the parent's trace {parent['trace_id']}")
        trace_id = parent["trace_id"]
        depth = parent["depth"] + 1
        parent_taint = json.loads(parent["taint"])
        parent_children = conn.execute(
            "SELECT COUNT(*) FROM events WHERE parent_event = ?", (incoming.parent_event,)
        ).fetchone()[0]
    if trace_id is None:
        trace_id = new_id("tr")
        trace_events = 0
    else:
        # system.* events report on a trace; they do not spend its budget.
        trace_events = conn.execute(
            "SELECT COUNT(*) FROM events WHERE trace_id = ? AND source != 'system'", (trace_id,)
        ).fetchone()[0]
        if incoming.parent_event is None and trace_events:
            # Joining an existing trace without a parent inherits the trace's taint.
            for (taint_json,) in conn.execute(
                "SELECT DISTINCT taint FROM events WHERE trace_id = ? AND taint != '[]'", (trace_id,)
            ):
                parent_taint.extend(json.loads(taint_json))

    if rules.enforce_limits:
        violation = chain_limit_violation(ChainState(depth, trace_events, parent_children), rules.limits)
        if violation is not None:
            raise ChainLimitExceeded(violation[0], violation[1], trace_id)

    # Everything here was validated on the way in; skip a second validation on the hot path.
    event = Event.model_construct(
        id=new_id("evt"),
        topic=incoming.topic,
        payload=incoming.payload,
        priority=incoming.priority,
        semantic_type=incoming.semantic_type,
        dedupe_key=incoming.dedupe_key,
        trace_id=trace_id,
        parent_event=incoming.parent_event,
        output_topic=incoming.output_topic,
        context_refs=incoming.context_refs,
        memory_scope=incoming.memory_scope,
        source=incoming.source,
        taint=taint_of(incoming.source, parent_taint, rules.trusted_sources),
        depth=depth,
        status=EventStatus.pending,
        created_at=now,
        deduplicated=False,
        seq=0,
    )
    cursor = conn.execute(
        "INSERT INTO events (id, topic, payload, priority, semantic_type, dedupe_key, trace_id, parent_event,"
        " output_topic, context_refs, memory_scope, source, taint, depth, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.id,
            event.topic,
            json.dumps(event.payload, separators=(",", ":")),
            event.priority.value,
            event.semantic_type,
            event.dedupe_key,
            event.trace_id,
            event.parent_event,
            event.output_topic,
            json.dumps(event.context_refs),
            event.memory_scope,
            event.source,
            json.dumps(event.taint),
            event.depth,
            event.status.value,
            event.created_at,
        ),
    )
    event.seq = cursor.lastrowid or 0
    return event


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
            f"SELECT {COLUMNS} FROM events WHERE trace_id = ? ORDER BY seq LIMIT ?", (trace_id, limit)
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

    async def set_status(self, event_id: str, status: EventStatus) -> None:
        await self.db.execute("UPDATE events SET status = ? WHERE id = ?", (status.value, event_id))
