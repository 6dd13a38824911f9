"""Memory search over a real store: weighting, scope filters, the scoring window and its fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiventbus.core.memory.store import MemoryStore
from aiventbus.records.memory import MemoryIn, SearchWeights
from aiventbus.store.database import Database
from tests.support.clock import FakeClock


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "store.db")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def add(
    memory: MemoryStore, clock: FakeClock, content: str, scope: str = "global", importance: float = 0.5
) -> str:
    clock.advance(60)
    return (await memory.add(MemoryIn(kind="semantic", scope=scope, content=content, importance=importance))).id


async def test_importance_and_recency_lift_equal_text_matches(db: Database, clock: FakeClock) -> None:
    memory = MemoryStore(db, clock, SearchWeights(importance_weight=1.0, half_life_seconds=3600))
    high = await add(memory, clock, "nginx reload needed", importance=0.9)
    low = await add(memory, clock, "nginx reload needed", importance=0.1)  # newer, but far less important
    assert [m.id for m in await memory.search("nginx")] == [high, low]

    old = await add(memory, clock, "disk sda is full")
    clock.advance(30 * 86_400)
    new = await add(memory, clock, "disk sda is full")
    assert [m.id for m in await memory.search("disk full")] == [new, old]


async def test_window_scores_newest_matches_and_falls_back_for_narrow_scopes(db: Database, clock: FakeClock) -> None:
    memory = MemoryStore(db, clock, SearchWeights(window=2))
    user_hits = [await add(memory, clock, f"backup note {i}", scope="user") for i in range(2)]
    newest = [await add(memory, clock, f"backup log {i}") for i in range(3)]

    # Only the two newest matches are scored when they fill the answer...
    assert {m.id for m in await memory.search("backup", limit=2)} <= set(newest)
    # ...but a scope whose matches are all older than the window still gets every hit.
    assert {m.id for m in await memory.search("backup", scopes=["user"], limit=2)} == set(user_hits)


async def test_superseded_and_other_kinds_are_left_out(db: Database, clock: FakeClock) -> None:
    memory = MemoryStore(db, clock)
    old = await add(memory, clock, "printer on floor 2")
    new = await add(memory, clock, "printer on floor 3")
    await db.execute("UPDATE memories SET superseded_by = ? WHERE id = ?", (new, old))
    assert [m.id for m in await memory.search("printer")] == [new]
    assert await memory.search("printer", kind="procedural") == []
    assert [m.id for m in await memory.list()] == [new]
