"""Distillation end to end: agent runs through the pipeline leave responses, their response events nudge the
distiller, and the real SmolLM2 model (llama.cpp's OpenAI-compatible server) turns them into memories."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaServer

pytestmark = pytest.mark.e2e

NOTES = [
    ("I use the Helix editor on Arch Linux", "The user edits code in Helix on Arch Linux."),
    ("Our backups run at 02:00 every night on the NAS", "Backups run nightly at 02:00 on the NAS."),
]


async def add_agent(d: RunningDaemon, server: OllamaServer) -> str:
    body = {
        "name": "ops",
        "model": server.model,
        "provider": "ollama",
        "base_url": server.base_url,
        "system_prompt": "You take notes.",
        "allowed_actions": [],
        "max_tokens": 64,
        "context_tokens": 2048,
    }
    created = await d.client.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    rule = {"name": "notes", "topic_pattern": "user.note", "consumer_id": created.json()["id"]}
    assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201
    return str(created.json()["id"])


async def test_agent_runs_become_memories_with_provenance(
    tmp_path: Path, llama_server: LlamaServer, ollama_server: OllamaServer
) -> None:
    overrides = {
        "memory": {
            "distill_enabled": True,
            "llm_provider": "openai",
            "llm_base_url": llama_server.base_url,
            "distill_model": llama_server.model,
            "distill_batch_size": 2,
            "distill_interval_seconds": 3600,
            "distill_max_memories": 1,
        }
    }
    async with running_daemon(tmp_path, overrides) as d:
        agent_id = await add_agent(d, ollama_server)
        events = []
        for note, summary in NOTES:
            # The agent's answer is scripted (fast and exact); the distillation below is the real model.
            reply = {"type": "answer", "summary": summary, "confidence": 0.9, "proposed_actions": []}
            ollama_server.queue_reply(json.dumps(reply))
            published = await d.client.post("/api/v1/events", json={"topic": "user.note", "payload": {"text": note}})
            assert published.status_code == 201, published.text
            events.append(published.json())

        # Each response event nudges the distiller; once a full batch waits it runs, not an hour later.
        deadline = time.monotonic() + 100
        while await d.daemon.db.fetch_value("SELECT COUNT(*) FROM memory_distilled") < 2:
            assert time.monotonic() < deadline, "the distiller did not handle both responses"
            await asyncio.sleep(0.2)

        outcomes = [row[0] for row in await d.daemon.db.fetch_all("SELECT outcome FROM memory_distilled")]
        assert outcomes == ["distilled", "distilled"]
        responses = {
            row["id"]: row
            for row in await d.daemon.db.fetch_all("SELECT id, event_id, trace_id, agent_id FROM agent_responses")
        }
        assert {row["event_id"] for row in responses.values()} == {event["id"] for event in events}
        memories = (await d.client.get("/api/v1/memories", params={"limit": 50})).json()["memories"]
        assert memories, "the model produced no memory"
        for memory in memories:
            origin = responses[memory["response_id"]]
            assert memory["source_event_id"] == origin["event_id"] and memory["trace_id"] == origin["trace_id"]
            assert memory["agent_id"] == agent_id and memory["created_by"] == "distiller"
            assert memory["scope"] in {agent_id, "global", "user"}
            assert 0 <= memory["importance"] <= 1 and memory["content"].strip()

        # Each response is distilled once: another pass finds nothing to do.
        assert await d.daemon.distiller.run_once() == 0
        status = (await d.client.get("/api/v1/system/status")).json()["components"]["distiller"]
        assert status["passes"] == 1 and status["memories_created"] == len(memories)
