"""The chain budget counts every event of a trace, system reports included, so a loop through them stops there."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_agents_runs import ScriptedProvider, make_agent, publish, settled, use_provider
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.waiting import eventually

BUDGET = 6
INVALID = json.dumps(
    {"type": "action", "summary": "Log it.", "confidence": 0.9, "proposed_actions": [{"action_type": "log"}]}
)


@pytest.fixture
async def looping(tmp_path: Path) -> AsyncIterator[tuple[RunningDaemon, ScriptedProvider]]:
    overrides = {
        "agents": {"retry_backoff_seconds": 0.0, "llm_retry_max_seconds": 0.2},
        "bus": {"max_chain_budget": BUDGET, "max_chain_depth": 40, "max_fan_out": 10},
    }
    async with running_daemon(tmp_path, overrides) as running:
        provider = ScriptedProvider()
        provider.replies.extend([INVALID] * 20)  # far more than the budget allows
        use_provider(running, provider)
        yield running, provider


async def trace(d: RunningDaemon, trace_id: str) -> list[dict[str, Any]]:
    return list((await d.client.get(f"/api/v1/events/trace/{trace_id}")).json()["events"])


async def test_a_self_loop_through_invalid_actions_stops_at_the_budget(
    looping: tuple[RunningDaemon, ScriptedProvider],
) -> None:
    d, provider = looping
    agent_id = await make_agent(d, "looper", "note.*")
    rule = {"name": "own reports", "topic_pattern": "system.*", "consumer_id": agent_id}
    assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201
    root = await publish(d, "note.new", {"text": "x"})

    async def stopped() -> list[dict[str, Any]]:
        events = await trace(d, root["trace_id"])
        return [e for e in events if e["topic"] == "system.invalid_action" and e["status"] == "unrouted"]

    [last] = await eventually(stopped)
    events = await trace(d, root["trace_id"])
    for event in events:
        assert await settled(d, event["id"]) in {"completed", "unrouted"}
    # The budget admits note.new and five more; the sixth report is kept (reports are never lost) but starts nothing.
    assert [e["topic"] for e in events] == ["note.new", *["agent.looper.response", "system.invalid_action"] * 3]
    assert events[-1]["id"] == last["id"] and len(events) == BUDGET + 1
    assert len(provider.calls) == 3
