"""The store's answers to core: routing state, recovery pages, transcripts, the distill log, counts."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiventbus.records.events import EventStatus
from aiventbus.store.actions import ActionStatus, ActionStore, NewAction
from aiventbus.store.agents import AgentTable
from aiventbus.store.assignments import AssignmentTable
from aiventbus.store.database import Database
from aiventbus.store.events import EventQueries, set_routing_status
from aiventbus.store.memories import DistillLog, mark_distilled
from aiventbus.store.router_state import advance_routed_through, routed_through


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "q.db")
    await database.open()
    yield database
    await database.close()


async def add_event(db: Database, n: int, status: str = "pending", taint: str = "[]") -> None:
    await db.execute(
        "INSERT INTO events (id, topic, payload, priority, trace_id, source, taint, status, created_at)"
        " VALUES (?, 't.x', '{\"n\": 1}', 'normal', ?, 'api', ?, ?, ?)",
        (f"evt_{n}", f"tr_{n}", taint, status, float(n)),
    )


async def add_response(db: Database, n: int, event: int, agent: str = "a", response: str | None = "{}") -> None:
    await db.execute(
        "INSERT INTO agent_responses (id, event_id, agent_id, assignment_id, trace_id, model, raw_text, response,"
        " summary, taint, created_at) VALUES (?, ?, ?, 'asg', 'tr', 'm', 'raw', ?, NULL, '[\"web\"]', ?)",
        (f"rsp_{n}", f"evt_{event}", agent, response, float(n)),
    )


async def test_highest_seq_is_zero_without_events(db: Database) -> None:
    events = EventQueries(db)
    assert await events.highest_seq() == 0
    for n in range(3):
        await add_event(db, n)
    assert await events.highest_seq() == 3


async def test_pending_after_pages_through_pending_events_only(db: Database) -> None:
    for n, status in enumerate(["pending", "routed", "pending", "pending", "unrouted", "pending"]):
        await add_event(db, n, status)
    events = EventQueries(db)
    first = await events.pending_after(0, 2)
    assert [event.id for event in first] == ["evt_0", "evt_2"]
    rest = await events.pending_after(first[-1].seq, 10)
    assert [event.id for event in rest] == ["evt_3", "evt_5"]


async def test_routing_status_and_watermark_are_written_in_the_callers_job(db: Database) -> None:
    await add_event(db, 0)
    await add_event(db, 1, "completed")

    def job(conn: sqlite3.Connection) -> None:
        set_routing_status(conn, "evt_0", EventStatus.routed)
        set_routing_status(conn, "evt_1", EventStatus.unrouted)
        advance_routed_through(conn, 5)
        advance_routed_through(conn, 3)  # never moves back

    await db.write(job)
    statuses = {row[0]: row[1] for row in await db.fetch_all("SELECT id, status FROM events")}
    assert statuses == {"evt_0": "routed", "evt_1": "completed"}
    assert await routed_through(db) == 5


async def test_count_pending_counts_actions_waiting_for_approval(db: Database) -> None:
    store = ActionStore(db)
    assert await store.count_pending() == 0
    for n, status in enumerate([ActionStatus.pending, ActionStatus.pending, ActionStatus.denied]):
        await store.insert(
            NewAction(
                id=f"act_{n}",
                action_type="notify",
                content_json="{}",
                status=status,
                verdict="ask",
                rule="r",
                reason="",
                agent_id="a",
                response_id=None,
                event_id="evt_0",
                response_event_id=None,
                trace_id="tr_0",
                taint=[],
                created_at=0.0,
                expires_at=None,
            )
        )
    assert await store.count_pending() == 2


async def test_agent_ids(db: Database) -> None:
    assert await AgentTable(db).ids() == set()
    await db.execute(
        "INSERT INTO agents (id, name, spec, enabled, created_at, updated_at) VALUES ('x', 'X', '{}', 1, 0, 0)"
    )
    assert await AgentTable(db).ids() == {"x"}


async def test_transcript_is_newest_first_without_the_excluded_event(db: Database) -> None:
    for n in range(3):
        await add_event(db, n, taint='["mail"]')
    await add_response(db, 1, event=0)
    await add_response(db, 2, event=1, response=None)
    await add_response(db, 3, event=2)
    await add_response(db, 4, event=0, agent="other")
    rows = await AssignmentTable(db).transcript("a", 10, exclude_event="evt_2")
    assert [row.response_id for row in rows] == ["rsp_2", "rsp_1"]
    assert rows[0].response is None and rows[0].raw_text == "raw"
    assert (rows[1].taint, rows[1].event_taint, rows[1].payload) == (["web"], ["mail"], '{"n": 1}')
    assert [row.response_id for row in await AssignmentTable(db).transcript("a", 1)] == ["rsp_3"]


async def test_distill_log_lists_what_is_not_marked_yet(db: Database) -> None:
    await add_event(db, 0, taint='["mail"]')
    for n in range(3):
        await add_response(db, n, event=0)
    await add_response(db, 3, event=99)  # its event is gone
    log = DistillLog(db)
    assert await log.pending_count() == 4
    await db.write(lambda conn: mark_distilled(conn, ["rsp_0", "rsp_2"], "distilled", 1, 10.0))
    await db.write(lambda conn: mark_distilled(conn, ["rsp_0"], "unusable_answer", 0, 11.0))  # first entry stays
    pending = await log.pending(10)
    assert [row.id for row in pending] == ["rsp_1", "rsp_3"]
    assert (pending[0].topic, pending[0].event_taint, pending[0].taint) == ("t.x", ["mail"], ["web"])
    assert (pending[1].topic, pending[1].payload, pending[1].event_taint) == (None, None, [])
    assert await log.pending_count() == 2
    assert await db.fetch_value("SELECT outcome FROM memory_distilled WHERE response_id = 'rsp_0'") == "distilled"
