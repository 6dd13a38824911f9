"""The scheduler over a real SQLite store: lane order, lease reclaim with a fake clock, run_ambient yielding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiventbus.config import AgentsConfig, LanesConfig
from aiventbus.core.hub import Hub
from aiventbus.core.scheduler import OutcomeKind, RunOutcome, Scheduler
from aiventbus.store.assignments import Assignment, AssignmentTable, insert_assignment
from aiventbus.store.database import Database
from aiventbus.telemetry import Metrics
from tests.support.clock import FakeClock
from tests.support.waiting import eventually


class Runner:
    """Completes each claim in the store; a run waits while `hold` is clear; `order` keeps who ran."""

    def __init__(self, table: AssignmentTable, clock: FakeClock) -> None:
        self.table = table
        self.clock = clock
        self.order: list[str] = []
        self.hold = asyncio.Event()
        self.hold.set()

    def server_key(self, assignment: Assignment) -> str:
        return "fake"

    async def run(self, assignment: Assignment, worker: str) -> RunOutcome:
        self.order.append(assignment.id)
        await self.hold.wait()
        ok = await self.table.complete(assignment.id, worker, self.clock(), None)
        return RunOutcome(OutcomeKind.completed if ok else OutcomeKind.lost)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(tmp_path / "s.db")
    await db.open()
    try:
        yield db
    finally:
        await db.close()


def assignment(name: str, lane: str, now: float) -> Assignment:
    return Assignment(
        id=f"asg_{name}",
        event_id=f"evt_{name}",
        agent_id="agent_a",
        topic=f"{lane}.x",
        lane=lane,
        available_at=now,
        created_at=now,
        updated_at=now,
    )


async def make_scheduler(db: Database, clock: FakeClock, **agents: Any) -> tuple[Scheduler, Runner]:
    table = AssignmentTable(db)
    runner = Runner(table, clock)
    scheduler = Scheduler(
        table,
        LanesConfig(),
        AgentsConfig(**agents),
        Metrics(),
        Hub(),
        runner=runner,
        clock=clock,
        depth_sample_interval_seconds=60,
    )
    return scheduler, runner


async def test_critical_runs_before_ambient_that_was_queued_first(store: Database, clock: FakeClock) -> None:
    for name, lane in (("a1", "ambient"), ("a2", "ambient"), ("c1", "critical")):
        await store.write(lambda conn, n=name, kind=lane: insert_assignment(conn, assignment(n, kind, clock())))
    scheduler, runner = await make_scheduler(store, clock)
    await scheduler.start()
    try:
        await eventually(lambda: len(runner.order) == 3)
        assert runner.order == ["asg_c1", "asg_a1", "asg_a2"]
    finally:
        await scheduler.stop()


async def test_expired_lease_of_a_dead_worker_is_reclaimed_and_run_once(store: Database, clock: FakeClock) -> None:
    def claimed_by_dead_worker(conn: Any) -> None:
        insert_assignment(conn, assignment("x", "interactive", clock()))
        conn.execute(
            "UPDATE assignments SET status = 'claimed', worker = 'dead:1', lease_expires_at = ? WHERE id = 'asg_x'",
            (clock() + 30,),
        )

    await store.write(claimed_by_dead_worker)
    scheduler, runner = await make_scheduler(store, clock, lease_seconds=30)
    await scheduler.start()
    try:
        assert await scheduler.reclaim_expired() == 0  # still leased: the worker may be alive
        assert runner.order == []
        clock.advance(31)
        assert await scheduler.reclaim_expired() == 1
        await eventually(lambda: runner.order == ["asg_x"])
        await eventually(lambda: scheduler.status()["running"]["interactive"] == 0)
        found = await scheduler.table.get("asg_x")
        assert found is not None and found.status == "completed" and found.attempts == 1
        assert await scheduler.reclaim_expired() == 0
        assert runner.order == ["asg_x"]
    finally:
        await scheduler.stop()


async def test_lease_expiry_dead_letters_after_max_attempts(store: Database, clock: FakeClock) -> None:
    def claimed(conn: Any) -> None:
        insert_assignment(conn, assignment("y", "ambient", clock()))
        conn.execute(
            "UPDATE assignments SET status = 'claimed', worker = 'dead:2', attempts = 2, lease_expires_at = ?"
            " WHERE id = 'asg_y'",
            (clock() - 1,),
        )

    await store.write(claimed)
    scheduler, runner = await make_scheduler(store, clock, max_attempts=3)
    reports = collect_reports(scheduler)
    await scheduler.start()
    try:
        await scheduler.reclaim_expired()
        found = await scheduler.table.get("asg_y")
        assert found is not None and found.status == "failed" and found.attempts == 3
        assert runner.order == []
        [(name, payload, parent)] = reports
        assert name == "assignment_failed" and parent == "evt_y"
        assert payload == {
            "assignment_id": "asg_y",
            "event_id": "evt_y",
            "agent_id": "agent_a",
            "attempts": 3,
            "error": "lease of worker dead:2 expired",
        }
    finally:
        await scheduler.stop()


async def test_the_last_failed_retry_is_reported_as_a_system_event(store: Database, clock: FakeClock) -> None:
    scheduler, _ = await make_scheduler(store, clock, max_attempts=2)
    reports = collect_reports(scheduler)

    def claimed(conn: Any) -> None:
        insert_assignment(conn, assignment("z", "interactive", clock()))
        conn.execute(
            "UPDATE assignments SET status = 'claimed', worker = ?, attempts = 1, lease_expires_at = ?"
            " WHERE id = 'asg_z'",
            (scheduler.worker_id, clock() + 60),
        )

    await store.write(claimed)
    found = await scheduler.table.get("asg_z")
    assert found is not None
    await scheduler._settle(found, RunOutcome(OutcomeKind.retry, "the answer was cut at max_tokens"))
    found = await scheduler.table.get("asg_z")
    assert found is not None and found.status == "failed" and found.attempts == 2
    [(name, payload, parent)] = reports
    assert name == "assignment_failed" and parent == "evt_z"
    assert payload["attempts"] == 2 and payload["error"] == "the answer was cut at max_tokens"


def collect_reports(scheduler: Scheduler) -> list[tuple[str, dict[str, Any], str | None]]:
    reports: list[tuple[str, dict[str, Any], str | None]] = []

    async def report(name: str, payload: dict[str, Any], parent_event: str | None = None) -> None:
        reports.append((name, payload, parent_event))

    scheduler.report = report
    return reports


async def test_run_ambient_waits_for_interactive_and_retries_when_preempted(store: Database, clock: FakeClock) -> None:
    scheduler, runner = await make_scheduler(store, clock)
    await scheduler.start()
    calls: list[str] = []
    gate = asyncio.Event()

    async def background() -> str:
        calls.append("start")
        await gate.wait()
        return "distilled"

    try:
        ambient = asyncio.create_task(scheduler.run_ambient(background))
        await eventually(lambda: calls == ["start"])
        runner.hold.clear()  # the interactive run will wait until released
        created = await store.write(lambda conn: insert_assignment(conn, assignment("q", "interactive", clock())))
        assert created is not None
        await scheduler.submit([created])
        await eventually(lambda: runner.order == ["asg_q"])
        assert calls == ["start"]  # cancelled, and not restarted while interactive work runs
        runner.hold.set()
        await eventually(lambda: calls == ["start", "start"])
        gate.set()
        assert await asyncio.wait_for(ambient, 10) == "distilled"
    finally:
        await scheduler.stop()


async def test_stop_gives_claims_back(store: Database, clock: FakeClock) -> None:
    scheduler, runner = await make_scheduler(store, clock)
    runner.hold.clear()
    await store.write(lambda conn: insert_assignment(conn, assignment("s", "interactive", clock())))
    await scheduler.start()
    await eventually(lambda: runner.order == ["asg_s"])
    await scheduler.stop()
    found = await scheduler.table.get("asg_s")
    assert found is not None and found.status == "pending" and found.attempts == 0 and found.worker is None
