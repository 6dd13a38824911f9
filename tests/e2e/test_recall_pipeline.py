"""Recall through the whole pipeline: two agents get the same event; only the one owning the event's
memory_scope sees the scoped memory in the prompt the model server receives."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.ollama_server import OllamaServer

pytestmark = pytest.mark.e2e
REPLY = json.dumps({"type": "answer", "summary": "checked", "confidence": 0.9, "proposed_actions": []})


async def add_agent(d: RunningDaemon, name: str, prompt: str, server: OllamaServer) -> str:
    body = {
        "name": name,
        "model": server.model,
        "provider": "ollama",
        "base_url": server.base_url,
        "system_prompt": prompt,
        "allowed_actions": [],
        "max_tokens": 64,
        "context_tokens": 2048,
    }
    created = await d.client.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    agent_id = str(created.json()["id"])
    rule = {"name": f"logs to {name}", "topic_pattern": "log.*", "consumer_id": agent_id}
    assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201
    return agent_id


def prompt_of(server: OllamaServer, marker: str) -> str:
    """All message text of the /api/chat request whose system prompt carries `marker`."""
    for request in server.requests:
        messages: list[dict[str, Any]] = request.get("messages", [])
        if messages and marker in messages[0].get("content", ""):
            return "\n".join(message["content"] for message in messages)
    raise AssertionError(f"no request with {marker}")


async def test_scoped_memory_is_in_its_agents_prompt_only(tmp_path: Path, ollama_server: OllamaServer) -> None:
    run = uuid.uuid4().hex[:8]
    secret = f"Host bastion-{run} only accepts keys from the ops team"
    async with running_daemon(tmp_path) as d:
        security = await add_agent(d, "security agent", f"You guard the machine ({run}-sec).", ollama_server)
        general = await add_agent(d, "general assistant", f"You help ({run}-gen).", ollama_server)
        assert security == "agent_security-agent"
        memory = {"kind": "semantic", "scope": "security-agent", "content": secret, "importance": 0.9}
        assert (await d.client.post("/api/v1/memories", json=memory)).status_code == 201
        ollama_server.queue_reply(REPLY)
        ollama_server.queue_reply(REPLY)

        event = {
            "topic": "log.auth",
            "payload": {"message": f"ssh key rejected on bastion-{run}"},
            "memory_scope": "security-agent",
        }
        published = await d.client.post("/api/v1/events", json=event)
        assert published.status_code == 201, published.text
        event_id = published.json()["id"]

        deadline = time.monotonic() + 90
        while True:
            listed = (await d.client.get(f"/api/v1/events/{event_id}/responses")).json()["responses"]
            if len(listed) >= 2:
                break
            assert time.monotonic() < deadline, "both agents did not answer"
            await asyncio.sleep(0.2)

        assert secret in prompt_of(ollama_server, f"{run}-sec")
        assert secret not in prompt_of(ollama_server, f"{run}-gen")

        recalled = (await d.client.get("/api/v1/memories", params={"scope": "security-agent"})).json()["memories"]
        assert recalled[0]["recall_count"] == 1 and recalled[0]["last_recalled_at"] is not None

        view = (await d.client.get(f"/api/v1/agents/{security}/memory")).json()
        assert [turn["event_id"] for turn in view["transcript"]] == [event_id]
        assert (await d.client.get(f"/api/v1/agents/{general}/memory")).json()["transcript"][0]["event_id"] == event_id
