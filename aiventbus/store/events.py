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
from aiventbus.errors import AiventbusError, ChainLimitExceeded, ValidationFailed
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


_compact_json = json.JSONEncoder(separators=(",", ":"))


@dataclass(slots=True)
class PendingPublish:
    """One publish on its way to the writer; what needs no database is prepared before, off the writer thread."""

    incoming: EventIn
    now: float
    enforce_limits: bool
    event_id: str
    payload_json: str

    @classmethod
    def prepare(cls, incoming: EventIn, now: float, enforce_limits: bool = True) -> PendingPublish:
        return cls(incoming, now, enforce_limits, new_id("evt"), _compact_json.encode(incoming.payload))


@dataclass(slots=True)
class Placement:
    """What the writer decided for a new event."""

    seq: int
    trace_id: str
    depth: int
    taint: list[str]

    def event(self, item: PendingPublish) -> Event:
        incoming = item.incoming
        values = {
            "id": item.event_id,
            "seq": self.seq,
            "topic": incoming.topic,
            "payload": incoming.payload,
            "priority": incoming.priority,
            "semantic_type": incoming.semantic_type,
            "dedupe_key": incoming.dedupe_key,
            "trace_id": self.trace_id,
            "parent_event": incoming.parent_event,
            "output_topic": incoming.output_topic,
            "context_refs": incoming.context_refs,
            "memory_scope": incoming.memory_scope,
            "source": incoming.source,
            "taint": self.taint,
            "depth": self.depth,
            "status": EventStatus.pending,
            "created_at": item.now,
            "deduplicated": False,
        }
        # Every value was validated on the way in and every field is set: this is model_construct without its
        # per-field default filling, which is most of a publish's cost on the event loop.
        event = Event.__new__(Event)
        object.__setattr__(event, "__dict__", values)
        object.__setattr__(event, "__pydantic_fields_set__", _EVENT_FIELDS)
        object.__setattr__(event, "__pydantic_extra__", None)
        object.__setattr__(event, "__pydantic_private__", None)
        return event


_EVENT_FIELDS = set(Event.model_fields)


INSERT_SQL = (
    "INSERT INTO events (seq, id, topic, payload, priority, semantic_type, dedupe_key, trace_id, parent_event,"
    " output_topic, context_refs, memory_scope, source, taint, depth, status, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _json_list(values: list[str]) -> str:
    return json.dumps(values) if values else "[]"


class _Batch:
    """What a batch has decided so far, so later items see earlier ones before they are inserted."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        self.next_seq = (row[0] if row else 0) + 1
        self.by_id: dict[str, Placement] = {}
        self.by_dedupe_key: dict[str, tuple[PendingPublish, Placement]] = {}
        self.trace_counts: dict[str, int] = {}
        self.child_counts: dict[str, int] = {}
        self.rows: list[tuple[Any, ...]] = []


PublishOutcome = Placement | Event | AiventbusError


def insert_events(conn: sqlite3.Connection, batch: list[PendingPublish], rules: PublishRules) -> list[PublishOutcome]:
    """Dedupe, apply chain limits and insert a batch inside the writer's transaction; one outcome per item:
    a Placement for a new event, the original Event for a duplicate, or the error that refused it."""
    state = _Batch(conn)
    results: list[PublishOutcome] = []
    for item in batch:
        try:
            results.append(_decide(conn, item, rules, state))
        except AiventbusError as error:
            results.append(error)
    if state.rows:
        conn.executemany(INSERT_SQL, state.rows)
    return results


def _decide(conn: sqlite3.Connection, item: PendingPublish, rules: PublishRules, state: _Batch) -> Placement | Event:
    incoming, now = item.incoming, item.now
    if incoming.dedupe_key is None and incoming.parent_event is None and incoming.trace_id is None:
        return _place_root(item, rules, state)
    if incoming.dedupe_key is not None and rules.dedupe_window_seconds > 0:
        original = _find_duplicate(conn, incoming.dedupe_key, now, rules.dedupe_window_seconds, state)
        if original is not None:
            return original

    parent_taint: list[str] = []
    depth = 0
    trace_id = incoming.trace_id
    parent_children = 0
    if incoming.parent_event is not None:
        parent_id = incoming.parent_event
        pending_parent = state.by_id.get(parent_id)
        if pending_parent is not None:
            parent_trace, parent_depth, parent_taint = (
                pending_parent.trace_id,
                pending_parent.depth,
                pending_parent.taint,
            )
        else:
            parent = conn.execute("SELECT trace_id, depth, taint FROM events WHERE id = ?", (parent_id,)).fetchone()
            if parent is None:
                raise ValidationFailed("parent_event", f"event {parent_id} does not exist")
            parent_trace, parent_depth, parent_taint = parent[0], parent[1], json.loads(parent[2])
        if trace_id is not None and trace_id != parent_trace:
            raise ValidationFailed("trace_id", f"must match the parent's trace {parent_trace}")
        trace_id = parent_trace
        depth = parent_depth + 1
        if parent_id not in state.child_counts:
            state.child_counts[parent_id] = conn.execute(
                "SELECT COUNT(*) FROM events WHERE parent_event = ?", (parent_id,)
            ).fetchone()[0]
        parent_children = state.child_counts[parent_id]
    if trace_id is None:
        trace_id = new_id("tr")
        state.trace_counts[trace_id] = 0
    elif trace_id not in state.trace_counts:
        # system.* events report on a trace; they do not spend its budget.
        state.trace_counts[trace_id] = conn.execute(
            "SELECT COUNT(*) FROM events WHERE trace_id = ? AND source != 'system'", (trace_id,)
        ).fetchone()[0]
    trace_events = state.trace_counts[trace_id]
    if incoming.parent_event is None and trace_events:
        # Joining an existing trace without a parent inherits the trace's taint.
        for (taint_json,) in conn.execute(
            "SELECT DISTINCT taint FROM events WHERE trace_id = ? AND taint != '[]'", (trace_id,)
        ):
            parent_taint = [*parent_taint, *json.loads(taint_json)]

    if item.enforce_limits:
        violation = chain_limit_violation(ChainState(depth, trace_events, parent_children), rules.limits)
        if violation is not None:
            raise ChainLimitExceeded(violation[0], violation[1], trace_id)

    placement = _place(item, state, trace_id, depth, taint_of(incoming.source, parent_taint, rules.trusted_sources))
    state.by_id[item.event_id] = placement
    if incoming.dedupe_key is not None:
        state.by_dedupe_key[incoming.dedupe_key] = (item, placement)
    if incoming.source != "system":
        state.trace_counts[trace_id] += 1
    if incoming.parent_event is not None:
        state.child_counts[incoming.parent_event] += 1
    return placement


def _place_root(item: PendingPublish, rules: PublishRules, state: _Batch) -> Placement:
    """The common case, a new event starting its own trace: nothing to look up, no limit can apply."""
    incoming = item.incoming
    placement = _place(item, state, new_id("tr"), 0, taint_of(incoming.source, [], rules.trusted_sources))
    state.by_id[item.event_id] = placement
    state.trace_counts[placement.trace_id] = 0 if incoming.source == "system" else 1
    return placement


def _place(item: PendingPublish, state: _Batch, trace_id: str, depth: int, taint: list[str]) -> Placement:
    """Give the event the next seq and queue its row for the batch's one INSERT."""
    incoming = item.incoming
    placement = Placement(state.next_seq, trace_id, depth, taint)
    state.next_seq += 1
    state.rows.append(
        (
            placement.seq,
            item.event_id,
            incoming.topic,
            item.payload_json,
            incoming.priority.value,
            incoming.semantic_type,
            incoming.dedupe_key,
            trace_id,
            incoming.parent_event,
            incoming.output_topic,
            _json_list(incoming.context_refs),
            incoming.memory_scope,
            incoming.source,
            _json_list(taint),
            depth,
            "pending",
            item.now,
        )
    )
    return placement


def _find_duplicate(
    conn: sqlite3.Connection, key: str, now: float, window_seconds: float, state: _Batch
) -> Event | None:
    pending = state.by_dedupe_key.get(key)
    if pending is not None and within_dedupe_window(pending[0].now, now, window_seconds):
        return pending[1].event(pending[0])
    original = conn.execute(
        f"SELECT {COLUMNS} FROM events WHERE dedupe_key = ? AND created_at > ? ORDER BY seq DESC LIMIT 1",
        (key, now - window_seconds),
    ).fetchone()
    if original is not None and within_dedupe_window(original["created_at"], now, window_seconds):
        return row_to_event(original)
    return None


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
