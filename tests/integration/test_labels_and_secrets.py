"""Labels through the executor's hops, and the API token kept out of action results, result events and prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiventbus.core.executor import RunContext
from aiventbus.records.agents import AgentSpec
from aiventbus.records.events import EventIn
from tests.support.daemon import RunningDaemon, running_daemon


async def context(d: RunningDaemon, source: str, taint: list[str] | None = None) -> RunContext:
    event = await d.daemon.bus.publish(EventIn(topic="user.ask", payload={"text": "hi"}, source=source))
    return RunContext("agent_tester", event, None, None, event.trace_id, taint or [])


async def event_of(d: RunningDaemon, event_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await d.client.get(f"/api/v1/events/{event_id}")).json()
    return found


async def test_a_stated_label_can_only_add_origins(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        root = await d.client.post(
            "/api/v1/events", json={"topic": "a.b", "payload": {}, "source": "webhook", "taint": ["clipboard"]}
        )
        assert root.json()["taint"] == ["clipboard", "webhook"]
        child = await d.client.post(
            "/api/v1/events", json={"topic": "a.c", "payload": {}, "parent_event": root.json()["id"], "taint": []}
        )
        assert child.json()["taint"] == ["clipboard", "webhook"]
        bad = await d.client.post("/api/v1/events", json={"topic": "a.b", "payload": {}, "taint": ["Not A Name"]})
        assert bad.status_code == 422 and "taint" in bad.json()["detail"]


async def test_knowledge_keeps_the_writing_runs_label_and_get_knowledge_returns_it(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        tainted = await context(d, "user", ["terminal"])
        [written] = await d.daemon.executor.handle_proposals(
            [{"action_type": "set_knowledge", "key": "user.note", "value": "from the terminal"}], tainted
        )
        assert written.status == "executed"
        assert (await d.client.get("/api/v1/knowledge/user.note")).json()["taint"] == ["terminal"]

        clean = await context(d, "user")
        [read] = await d.daemon.executor.handle_proposals([{"action_type": "get_knowledge", "key": "user.note"}], clean)
        record = (await d.client.get(f"/api/v1/actions/{read.action_id}")).json()
        assert record["taint"] == [] and record["result_taint"] == ["terminal"]
        assert (await event_of(d, record["result_event_id"]))["taint"] == ["terminal"]

        await d.client.put("/api/v1/knowledge/user.note", json={"value": "set by the user"})
        assert (await d.client.get("/api/v1/knowledge/user.note")).json()["taint"] == []


async def test_the_token_never_appears_in_a_result_or_its_event(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        token_path = d.daemon.config.token_path
        [outcome] = await d.daemon.executor.handle_proposals(
            [{"action_type": "shell_exec", "command": f"cat {token_path}"}], await context(d, "user")
        )
        assert outcome.status == "pending", outcome  # reading the daemon's own files is never auto
        approved = await d.client.post(f"/api/v1/actions/{outcome.action_id}/approve")
        record = approved.json()
        assert record["status"] == "executed", record
        assert "[REDACTED:daemon_secret]" in record["result"]["stdout"]
        event = await event_of(d, record["result_event_id"])
        assert d.token not in repr(record) and d.token not in repr(event)
        assert event["taint"] == ["shell_output"]


async def test_the_token_never_reaches_a_prompt(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        event = await d.daemon.bus.publish(
            EventIn(topic="clipboard.text", payload={"text": f"copied {d.token}"}, source="clipboard")
        )
        agent = AgentSpec(id="agent_t", name="t", model="m")
        bundle = await d.daemon.context.build(agent, event, "You help.")
        prompt = "\n".join(message.content for message in bundle.messages)
        assert d.token not in prompt and "copied [REDACTED:daemon_secret]" in prompt
        assert bundle.taint == ["clipboard"] and "[untrusted: clipboard]" in prompt


async def test_a_symlink_to_the_token_is_judged_as_the_token(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        link = tmp_path / "harmless.txt"
        link.symlink_to(d.daemon.config.token_path)
        proposals: list[dict[str, Any]] = [
            {"action_type": "shell_exec", "command": f"cat {link}"},
            {"action_type": "shell_exec", "command": f"head -c 100 {tmp_path}/./harmless.txt"},
            {"action_type": "file_read", "path": str(link)},
        ]
        outcomes = await d.daemon.executor.handle_proposals(proposals, await context(d, "user"))
        assert [o.status for o in outcomes] == ["pending", "pending", "pending"], outcomes
