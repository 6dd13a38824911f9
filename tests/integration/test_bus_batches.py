"""What one writer batch decides when new roots, children, duplicates and refusals travel together."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiventbus.config import BusConfig
from aiventbus.core.bus import EventBus
from aiventbus.errors import ChainLimitExceeded
from aiventbus.records.events import Event, EventIn
from aiventbus.store.database import Database
from aiventbus.store.event_insert import COLUMN_DEFAULTS, MAX_ROWS_PER_INSERT, ROW_COLUMNS, compact_json
from aiventbus.telemetry import Metrics
from tests.support.waiting import eventually


@pytest.fixture(params=["NORMAL", "FULL"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventBus]:
    """Here the bus runs at both synchronous settings, with max_fan_out 2 (the shared fixture: NORMAL, no dedupe)."""
    db = Database(tmp_path / "bus.db", synchronous=request.param)
    await db.open()
    yield EventBus(db, BusConfig(max_fan_out=2), Metrics())
    await db.close()


async def stored(bus: EventBus) -> list[Event]:
    """Every event but system.* reports, in seq order."""
    rows = await bus.db.fetch_all("SELECT id FROM events WHERE topic NOT LIKE 'system.%' ORDER BY seq")
    events = {event.id: event for event in await bus.queries.get_many([row["id"] for row in rows])}
    return [events[row["id"]] for row in rows]


async def test_more_roots_than_one_insert_holds(bus: EventBus) -> None:
    count = MAX_ROWS_PER_INSERT * 2 + 7
    published = await bus.publish_many([EventIn(topic="bulk.item", payload={"n": n}) for n in range(count)])
    assert all(isinstance(event, Event) for event in published)
    seqs = [event.seq for event in published if isinstance(event, Event)]
    assert seqs == list(range(seqs[0], seqs[0] + count))  # one seq each, in publish order
    by_id = {event.id: event for event in await stored(bus)}
    assert len(by_id) == count
    for event in published:
        assert isinstance(event, Event)
        assert by_id[event.id].seq == event.seq
        assert by_id[event.id].trace_id == event.trace_id == f"tr_{event.id[4:]}"


async def test_a_mixed_batch_sees_its_own_earlier_events(bus: EventBus) -> None:
    parent = await bus.publish(EventIn(topic="chain.root", payload={}, source="clipboard"))
    batch = [
        EventIn(topic="fresh.root", payload={"a": 1}),
        EventIn(topic="keyed", payload={"first": True}, dedupe_key="k1"),
        EventIn(topic="keyed", payload={"first": False}, dedupe_key="k1"),  # duplicate of the one just before
        EventIn(topic="child", payload={"i": 1}, parent_event=parent.id),
        EventIn(topic="child", payload={"i": 2}, parent_event=parent.id),
        EventIn(topic="child", payload={"i": 3}, parent_event=parent.id),  # the third child: over max_fan_out 2
        EventIn(topic="fresh.root", payload={"a": 2}),
    ]
    results = await bus.publish_many(batch)
    root_a, keyed, duplicate, child1, child2, refused, root_b = results
    assert isinstance(duplicate, Event) and duplicate.deduplicated and duplicate.id == getattr(keyed, "id", None)
    assert isinstance(refused, ChainLimitExceeded) and refused.reason == "fan_out"
    for child in (child1, child2):
        assert isinstance(child, Event)
        assert (child.trace_id, child.depth, child.taint) == (parent.trace_id, 1, ["clipboard"])
    events = [r for r in (root_a, keyed, child1, child2, root_b) if isinstance(r, Event)]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert [(e.id, e.seq) for e in await stored(bus)] == [(parent.id, parent.seq)] + [(e.id, e.seq) for e in events]
    system = await bus.db.fetch_all("SELECT payload FROM events WHERE topic = 'system.chain_limit'")
    assert [json.loads(row["payload"])["reason"] for row in system] == ["fan_out"]


async def test_columns_left_to_their_defaults_read_back_as_published(bus: EventBus) -> None:
    """An INSERT states only the columns some row of it sets: rows that set them and rows that do not, together and
    apart, read back exactly as published."""
    plain = EventIn(topic="plain", payload={"p": 1})
    full = EventIn(
        topic="full",
        payload={"f": 1},
        semantic_type="alert",
        output_topic="out.topic",
        context_refs=["evt_abc"],
        memory_scope="project:x",
        source="clipboard",
        dedupe_key="full-once",
    )
    together = await bus.publish_many([plain, full, plain.model_copy(), full.model_copy(update={"dedupe_key": "2"})])
    alone = await bus.publish_many([plain.model_copy(), plain.model_copy()])
    published = [event for event in [*together, *alone] if isinstance(event, Event)]
    assert len(published) == 6
    by_id = {event.id: event for event in await stored(bus)}
    for event in published:
        assert by_id[event.id].model_dump() == event.model_dump()
    assert by_id[published[1].id].taint == ["clipboard"] and by_id[published[0].id].taint == []


async def test_column_defaults_match_the_table(bus: EventBus) -> None:
    """A column left out of an INSERT takes the table's default, which must be the value the row would have had."""
    declared = {row["name"]: row for row in await bus.db.fetch_all("PRAGMA table_info(events)")}
    assert set(ROW_COLUMNS) == set(declared) - {"seq", "status"}
    assert declared["status"]["dflt_value"] == "'pending'"
    for column, default in COLUMN_DEFAULTS.items():
        table_default = declared[column]["dflt_value"]  # SQL text, e.g. '[]' or 0; None when there is none (NULL)
        assert (None if table_default is None else await bus.db.fetch_value(f"SELECT {table_default}")) == default


def test_payload_text_is_compact_json_and_keeps_big_integers() -> None:
    assert compact_json({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'
    assert json.loads(compact_json({"big": 2**80})) == {"big": 2**80}


async def test_a_trace_holds_its_root_children_and_joiners(bus: EventBus) -> None:
    """Roots are left out of the trace index (found by id instead): every member must still show, and count."""
    root = await bus.publish(EventIn(topic="t.root", payload={}, source="webhook"))
    child = await bus.publish(EventIn(topic="t.child", payload={}, parent_event=root.id))
    joiner = await bus.publish(EventIn(topic="t.join", payload={}, trace_id=root.trace_id))
    keyed_root = await bus.publish(EventIn(topic="t.keyed", payload={}, dedupe_key="only-once"))
    assert root.trace_id == f"tr_{root.id[4:]}" and keyed_root.trace_id == f"tr_{keyed_root.id[4:]}"
    assert joiner.taint == ["webhook"]  # joined without a parent, so it inherits the trace's taint via its root
    assert [e.id for e in await bus.queries.trace(root.trace_id)] == [root.id, child.id, joiner.id]
    assert [e.id for e in await bus.queries.trace(keyed_root.trace_id)] == [keyed_root.id]
    # A trace id that only looks derived from an event of another trace does not pull that event in.
    stray = await bus.publish(EventIn(topic="t.stray", payload={}, trace_id=f"tr_{child.id[4:]}"))
    assert [e.id for e in await bus.queries.trace(stray.trace_id)] == [stray.id]
    plan = await bus.db.fetch_all(
        "EXPLAIN QUERY PLAN SELECT seq FROM events WHERE trace_id = ? AND trace_id != 'tr_' || substr(id, 5)",
        (root.trace_id,),
    )
    assert any("events_trace" in row[3] for row in plan)


@pytest.mark.parametrize("when", ["during the commit", "after the commit"])
async def test_subscribers_hear_of_an_event_whose_publisher_was_cancelled(bus: EventBus, when: str) -> None:
    """The event is stored either way, so the router must still hear of it (else it stays unrouted until a restart)."""
    heard: list[Event] = []
    bus.subscribe(heard.append)
    publishing: asyncio.Task[Event] | None = None
    committed: list[range] = []

    def cancel_the_publisher(seqs: range) -> None:
        committed.append(seqs)
        assert publishing is not None
        if when == "during the commit":
            publishing.cancel()  # its future is not resolved yet: it is cancelled with the task
        else:
            asyncio.get_running_loop().call_soon(publishing.cancel)  # its future resolves first

    bus.on_commit(cancel_the_publisher)
    publishing = asyncio.create_task(bus.publish(EventIn(topic="cancelled.publisher", payload={})))
    with pytest.raises(asyncio.CancelledError):
        await publishing
    await eventually(lambda: heard, timeout=5)
    [event] = heard
    assert [event.seq] == list(committed[0])
    assert [e.id for e in await stored(bus)] == [event.id]
