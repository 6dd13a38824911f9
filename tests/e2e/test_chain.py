"""Chain reactions: agent A's emit_event triggers agent B on one trace; a two-agent loop meets the chain limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.ollama_server import OllamaServer

pytestmark = pytest.mark.e2e


def reply(*actions: dict[str, Any]) -> str:
    return json.dumps({"type": "action", "summary": "step", "confidence": 0.9, "proposed_actions": list(actions)})


def emit(topic: str) -> dict[str, Any]:
    return {"action_type": "emit_event", "topic": topic, "payload": {"from": "agent"}}


async def agent_with_rule(d: RunningDaemon, name: str, topic_pattern: str) -> str:
    agent = await d.client.post("/api/v1/agents", json={"name": name, "max_tokens": 120})
    assert agent.status_code == 201, agent.text
    agent_id: str = agent.json()["id"]
    rule = await d.client.post(
        "/api/v1/routing-rules", json={"name": f"to-{name}", "topic_pattern": topic_pattern, "consumer_id": agent_id}
    )
    assert rule.status_code == 201, rule.text
    return agent_id


async def trace_topics(d: RunningDaemon, trace_id: str) -> list[str]:
    events = (await d.client.get(f"/api/v1/events/trace/{trace_id}")).json()["events"]
    return [e["topic"] for e in events]


def config(server: OllamaServer, **bus: int) -> dict[str, Any]:
    return {"ollama": {"base_url": server.base_url, "default_model": server.model}, "bus": bus}


async def test_agent_a_emit_triggers_agent_b_on_one_trace(tmp_path: Path, ollama_server: OllamaServer) -> None:
    async with running_daemon(tmp_path, config(ollama_server)) as d:
        await agent_with_rule(d, "alpha", "user.chain")
        await agent_with_rule(d, "beta", "chain.step")
        ollama_server.queue_reply(reply(emit("chain.step")))
        ollama_server.queue_reply(reply({"action_type": "log", "message": "beta was here"}))
        root = await d.client.post(
            "/api/v1/events", json={"topic": "user.chain", "payload": {"go": 1}, "source": "user"}
        )
        trace_id = root.json()["trace_id"]
        await d.daemon.settled()  # the whole chain: both runs, their actions and every event they published
        topics = await trace_topics(d, trace_id)
        for expected in (
            "user.chain",
            "agent.alpha.response",
            "action.emit_event.executed",
            "chain.step",
            "agent.beta.response",
            "action.log.executed",
        ):
            assert expected in topics, topics
        events = (await d.client.get(f"/api/v1/events/trace/{trace_id}")).json()["events"]
        step = next(e for e in events if e["topic"] == "chain.step")
        alpha_response = next(e for e in events if e["topic"] == "agent.alpha.response")
        assert step["parent_event"] == alpha_response["id"] and step["source"].startswith("agent:")
        assert {e["trace_id"] for e in events} == {trace_id}


async def test_two_agents_triggering_each_other_are_stopped_by_the_chain_limit(
    tmp_path: Path, ollama_server: OllamaServer
) -> None:
    async with running_daemon(tmp_path, config(ollama_server, max_chain_depth=6, max_chain_budget=40)) as d:
        await agent_with_rule(d, "ping", "ping.*")
        await agent_with_rule(d, "pong", "pong.*")
        for _ in range(6):
            ollama_server.queue_reply(reply(emit("pong.ball")))
            ollama_server.queue_reply(reply(emit("ping.ball")))
        root = await d.client.post("/api/v1/events", json={"topic": "ping.start", "payload": {}, "source": "user"})
        trace_id = root.json()["trace_id"]
        await d.daemon.settled()
        events = (await d.client.get(f"/api/v1/events/trace/{trace_id}")).json()["events"]
        limit = next(e for e in events if e["topic"] == "system.chain_limit")
        assert limit["payload"]["reason"] == "depth"
        assert max(e["depth"] for e in events) <= 7
        # Past the limit nothing more is admitted: the agent whose response was refused still had its emit_event
        # recorded, failed by the same limit, and the loop ended there.
        actions = (await d.client.get("/api/v1/actions/history", params={"trace_id": trace_id})).json()["actions"]
        failed = [a for a in actions if a["status"] == "failed"]
        assert failed and all("chain limit" in a["error"] for a in failed)
        assert ollama_server.scripted, "the loop stopped before using every scripted reply"
        # Settled means settled: no run was still on its way, so the trace stays as it is.
        assert len(await trace_topics(d, trace_id)) == len(events)
