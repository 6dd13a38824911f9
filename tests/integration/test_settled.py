"""The daemon's run-until-idle hook: `settled()` returns once everything triggered so far has moved as far as the
daemon alone can move it, so tests await it instead of polling for each effect."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiventbus.records.events import EventIn
from tests.support.daemon import running_daemon


async def test_settled_after_a_burst_every_event_is_routed(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        for index in range(50):
            answer = await d.client.post("/api/v1/events", json={"topic": "notes.saved", "payload": {"n": index}})
            assert answer.status_code == 201, answer.text
        await d.daemon.settled()
        assert d.daemon.idle()
        events = (await d.client.get("/api/v1/events", params={"topic": "notes.saved", "limit": 100})).json()
        assert [e["status"] for e in events["events"]] == ["unrouted"] * 50  # no agent: each settled as unrouted
        assert d.daemon.router.status()["queued"] == 0


async def test_work_parked_on_an_unreachable_model_does_not_hold_settled_up(tmp_path: Path) -> None:
    # The config's Ollama is 127.0.0.1:9, where nothing listens: the assignment waits for the outside world.
    async with running_daemon(tmp_path) as d:
        agent = await d.client.post("/api/v1/agents", json={"name": "helper"})
        assert agent.status_code == 201, agent.text
        rule = {"name": "all-notes", "topic_pattern": "notes.*", "consumer_id": agent.json()["id"]}
        assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201
        event = await d.client.post("/api/v1/events", json={"topic": "notes.saved", "payload": {}})
        await d.daemon.settled()
        stored = (await d.client.get(f"/api/v1/events/{event.json()['id']}")).json()
        assert stored["status"] == "processing"  # routed to the agent, its run not done
        assignments = (await d.client.get(f"/api/v1/events/{stored['id']}/assignments")).json()
        assert [a["status"] for a in assignments["assignments"]] == ["pending"]
        assert sum(d.daemon.scheduler.status()["waiting_for_llm"].values()) == 1


async def test_settled_is_not_idle_while_a_publish_is_on_its_way(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        task = asyncio.ensure_future(d.daemon.bus.publish(EventIn(topic="notes.saved", payload={})))
        await asyncio.sleep(0)
        assert not d.daemon.idle()
        await d.daemon.settled()
        assert task.done() and d.daemon.idle()
