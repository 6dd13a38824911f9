"""Events committed but never routed (a crash, or a stop, between the two) are routed on the next start, and
recovery reads only the events above the durable routing watermark."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aiventbus.config import BusConfig
from aiventbus.core import router
from aiventbus.core.bus import EventBus
from aiventbus.records.events import Event, EventIn
from aiventbus.store.database import Database
from aiventbus.telemetry import Metrics
from tests.support.daemon import running_daemon


def stored(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def publish_without_a_router(db_path: Path, count: int) -> list[Event]:
    """Events committed while no router runs, as when the daemon dies between a commit and its routing."""
    db = Database(db_path)
    await db.open()
    try:
        bus = EventBus(db, BusConfig(), Metrics())
        return [await bus.publish(EventIn(topic="orphan", payload={"n": n})) for n in range(count)]
    finally:
        await db.close()


async def test_pending_events_above_the_watermark_are_routed_on_the_next_start(tmp_path: Path) -> None:
    db_path = tmp_path / "data" / "aiventbus.db"
    async with running_daemon(tmp_path) as first:
        published = [
            (await first.client.post("/api/v1/events", json={"topic": "first.run", "payload": {"n": n}})).json()
            for n in range(5)
        ]
        await first.daemon.settled()
        assert first.daemon.router.status()["routed_through_seq"] >= max(event["seq"] for event in published)
    [(through, highest)] = stored(db_path, "SELECT routed_through, (SELECT MAX(seq) FROM events) FROM router_state")
    assert through == highest
    assert stored(db_path, "SELECT COUNT(*) FROM events WHERE status = 'pending'") == [(0,)]

    orphans = await publish_without_a_router(db_path, 3)
    # Below the watermark nothing is read again: an event made pending there by hand stays as it is.
    below = published[0]["id"]
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE events SET status = 'pending' WHERE id = ?", (below,))
    conn.close()

    async with running_daemon(tmp_path) as second:
        await second.daemon.settled()
        assert second.daemon.router.status()["routed_through_seq"] >= orphans[-1].seq
    statuses = {event_id: status for event_id, status in stored(db_path, "SELECT id, status FROM events")}
    assert [statuses[event.id] for event in orphans] == ["unrouted"] * 3
    assert statuses[below] == "pending"
    [(through, highest)] = stored(db_path, "SELECT routed_through, (SELECT MAX(seq) FROM events) FROM router_state")
    assert through == highest
    plan = stored(db_path, "EXPLAIN QUERY PLAN SELECT seq FROM events WHERE seq > 5 AND status = 'pending'")
    assert "USING INTEGER PRIMARY KEY" in str(plan[0][3])


async def test_recovery_reads_page_after_page_until_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "data" / "aiventbus.db"
    async with running_daemon(tmp_path) as first:
        await first.daemon.settled()
    orphans = await publish_without_a_router(db_path, 7)

    monkeypatch.setattr(router, "RECOVER_PAGE", 2)
    async with running_daemon(tmp_path) as second:
        await second.daemon.settled()  # recovery included: every page read and routed
        assert not second.daemon.router.status()["recovering"]
        assert second.daemon.router.status()["routed_through_seq"] >= orphans[-1].seq
    statuses = {event_id: status for event_id, status in stored(db_path, "SELECT id, status FROM events")}
    assert [statuses[event.id] for event in orphans] == ["unrouted"] * 7
