"""The distiller over a real store with scripted model answers: provenance, merge, supersede, never twice."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aiventbus.config import BusConfig
from aiventbus.core.bus import EventBus
from aiventbus.core.memory.distill import Distiller
from aiventbus.core.memory.store import MemoryStore
from aiventbus.errors import LLMUnavailable
from aiventbus.llm.base import ChatRequest, ChatResult, TokenCallback
from aiventbus.records.events import Event, EventIn
from aiventbus.records.memory import MemoryIn
from aiventbus.store.database import Database
from aiventbus.telemetry import Metrics
from tests.support.clock import FakeClock
from tests.support.providers import ChatOnlyProvider


@dataclass
class ScriptedProvider(ChatOnlyProvider):
    """Answers chat requests with queued texts and keeps the requests it saw."""

    replies: list[str] = field(default_factory=list)
    requests: list[ChatRequest] = field(default_factory=list)
    down: bool = False
    kind: str = "scripted"
    base_url: str = "scripted://"

    async def chat(self, request: ChatRequest, on_token: TokenCallback | None = None) -> ChatResult:
        if self.down:
            raise LLMUnavailable("connection refused", "start the server")
        self.requests.append(request)
        return ChatResult(self.replies.pop(0))

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        raise AssertionError("not used")


def answer(*memories: dict[str, Any]) -> str:
    return json.dumps({"memories": list(memories)})


def item(content: str, relation: str = "new", source: int = 1, scope: str = "global", **extra: Any) -> dict[str, Any]:
    return {"source": source, "kind": "semantic", "scope": scope, "content": content, "importance": 0.6,
            "relation": relation, **extra}  # fmt: skip


@dataclass
class Stage:
    db: Database
    bus: EventBus
    clock: FakeClock
    memory: MemoryStore
    model: ScriptedProvider
    distiller: Distiller
    ambient_calls: list[str]

    async def agent_run(self, text: str, agent_id: str = "agent_ops", **event: Any) -> tuple[Event, str]:
        self.clock.advance(1)
        published = await self.bus.publish(
            EventIn.model_validate({"topic": "user.note", "payload": {"text": text}, **event})
        )
        response_id = f"resp_{int(self.clock()):012d}"

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO agent_responses (id, event_id, agent_id, assignment_id, trace_id, model, raw_text,"
                " summary, taint, created_at) VALUES (?, ?, ?, 'asg_1', ?, 'm', ?, ?, ?, ?)",
                (response_id, published.id, agent_id, published.trace_id, text, f"noted: {text}",
                 json.dumps(published.taint), self.clock()),
            )  # fmt: skip

        await self.db.write(job)
        return published, response_id


@pytest.fixture
async def stage(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Stage]:
    db = Database(tmp_path / "store.db")
    await db.open()
    memory = MemoryStore(db, clock)
    model = ScriptedProvider()
    ambient_calls: list[str] = []

    async def ambient(work: Any) -> Any:
        ambient_calls.append("ambient")
        return await work()

    distiller = Distiller(db, memory, lambda: model, "m", clock, batch_size=4, ambient=ambient, enabled=False)
    try:
        yield Stage(
            db, EventBus(db, BusConfig(), Metrics(), clock=clock), clock, memory, model, distiller, ambient_calls
        )
    finally:
        await db.close()


async def test_distils_with_provenance_and_never_twice(stage: Stage) -> None:
    event, response_id = await stage.agent_run("my editor is helix", source="producer:clipboard")
    stage.model.replies.append(answer(item("The user's editor is Helix", scope="user")))

    assert await stage.distiller.run_once() == 1
    assert stage.ambient_calls == ["ambient"]
    [memory] = await stage.memory.list(scope="user")
    assert memory.content == "The user's editor is Helix"
    assert memory.source_event_id == event.id and memory.trace_id == event.trace_id
    assert memory.agent_id == "agent_ops" and memory.response_id == response_id
    assert memory.created_by == "distiller" and memory.taint == ["clipboard"]

    request = stage.model.requests[0]
    assert request.json_schema is not None and "my editor is helix" in request.messages[-1].content
    # Nothing is left: the response is never distilled again.
    assert await stage.distiller.pending_count() == 0
    assert await stage.distiller.run_once() == 0
    assert len(stage.model.requests) == 1


async def test_repeat_merges_and_contradiction_supersedes(stage: Stage) -> None:
    old = await stage.memory.add(MemoryIn(kind="semantic", scope="global", content="Backups run at 02:00 nightly"))
    await stage.agent_run("backups ran at 02:00 again")
    await stage.agent_run("backups moved to 04:00")
    stage.model.replies.append(
        answer(
            item("Nightly backups run at 02:00", relation=f"same_as:{old.id}", source=1, importance=0.9),
            item("Backups now run at 04:00 nightly", relation=f"supersedes:{old.id}", source=2),
        )
    )
    assert await stage.distiller.run_once() == 2
    # The model saw the old memory as a candidate, with its id, and could only name it.
    prompt = stage.model.requests[0].messages[-1].content
    assert old.id in prompt
    relations = stage.model.requests[0].json_schema["properties"]["memories"]["items"]["properties"]["relation"]
    assert f"same_as:{old.id}" in relations["enum"]

    merged = await stage.memory.get(old.id)
    assert merged is not None and merged.seen_count == 2 and merged.importance > 0.9
    assert merged.superseded_by is not None
    newer = await stage.memory.get(merged.superseded_by)
    assert newer is not None and newer.content == "Backups now run at 04:00 nightly"
    live = await stage.memory.list(scope="global")
    assert [m.id for m in live] == [newer.id]
    assert [m.id for m in await stage.memory.search("backups")] == [newer.id]


async def test_model_saying_new_for_a_repeat_does_not_duplicate(stage: Stage) -> None:
    await stage.agent_run("the VPN gateway is vpn.example.org")
    stage.model.replies.append(answer(item("The VPN gateway is vpn.example.org")))
    await stage.distiller.run_once()
    await stage.agent_run("remember: the VPN gateway is vpn.example.org")
    stage.model.replies.append(answer(item("the VPN gateway is vpn.example.org.")))
    await stage.distiller.run_once()
    [memory] = await stage.memory.list(scope="global")
    assert memory.seen_count == 2


async def test_same_fact_twice_in_one_answer_is_one_memory(stage: Stage) -> None:
    await stage.agent_run("printer is on floor 3")
    stage.model.replies.append(answer(item("The printer is on floor 3"), item("The printer is on floor 3")))
    await stage.distiller.run_once()
    assert len(await stage.memory.list()) == 1


async def test_scope_outside_the_response_falls_back_and_bad_sources_are_skipped(stage: Stage) -> None:
    await stage.agent_run("alert rules live in /etc/alerts", memory_scope="security-agent")
    stage.model.replies.append(
        answer(item("Alert rules live in /etc/alerts", scope="agent_other"), item("ghost", source=7))
    )
    await stage.distiller.run_once()
    [memory] = await stage.memory.list()
    assert memory.scope == "security-agent"


async def test_unusable_answer_is_recorded_not_retried_and_outage_waits(stage: Stage) -> None:
    await stage.agent_run("first")
    stage.model.down = True
    assert await stage.distiller.run_once() == 0
    assert stage.distiller.problems() and "unreachable" in stage.distiller.problems()[0].problem
    assert await stage.distiller.pending_count() == 1

    stage.model.down = False
    stage.model.replies.append("this is not JSON")
    assert await stage.distiller.run_once() == 1
    assert stage.distiller.problems() == []
    assert await stage.distiller.pending_count() == 0
    outcome = await stage.db.fetch_value("SELECT outcome FROM memory_distilled")
    assert outcome == "unusable_answer"


async def test_batches_follow_the_batch_size(stage: Stage) -> None:
    for i in range(6):
        await stage.agent_run(f"fact number {i}")
    stage.model.replies.extend([answer(), answer()])
    assert await stage.distiller.run_once() == 4
    assert await stage.distiller.run_once() == 2
    assert stage.model.requests[0].messages[-1].content.count("Transcript ") == 4
