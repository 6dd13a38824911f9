"""A cut answer (finish_reason / done_reason `length`) is a failure that is retried, never a stored result.

The OpenAI path runs against the real llama.cpp server (a tiny max_tokens makes it cut for real); the Ollama path
against the Ollama-protocol stand-in, scripted where a cut and then a good answer must come in that order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.daemon import running_daemon
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

GOOD_ANSWER = json.dumps({"type": "answer", "summary": "the whole answer", "confidence": 0.9, "proposed_actions": []})
CUT_ANSWER = '{"type": "answer", "summary": "the answer was'
RETRIES = {"agents": {"max_attempts": 3, "retry_backoff_seconds": 0.05}}


async def add_agent(client: httpx.AsyncClient, provider: str, base_url: str, model: str, max_tokens: int) -> None:
    body = {
        "name": "answerer",
        "model": model,
        "provider": provider,
        "base_url": base_url,
        "allowed_actions": [],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "context_tokens": 2048,
    }
    assert (await client.post("/api/v1/agents", json=body)).status_code == 201
    rule = {"name": "user", "topic_pattern": "user.*", "consumer_id": "agent_answerer"}
    assert (await client.post("/api/v1/routing-rules", json=rule)).status_code == 201


async def publish(client: httpx.AsyncClient, text: str) -> str:
    answer = await client.post("/api/v1/events", json={"topic": "user.query", "payload": {"text": text}})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def assignment_of(client: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    [found] = (await client.get(f"/api/v1/events/{event_id}/assignments")).json()["assignments"]
    return dict(found)


async def settled(client: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        found = await assignment_of(client, event_id)
        return found if found["status"] in ("completed", "failed") else None

    result: dict[str, Any] = await eventually(done, timeout=240)
    return result


async def responses_of(client: httpx.AsyncClient, event_id: str) -> list[dict[str, Any]]:
    return list((await client.get(f"/api/v1/events/{event_id}/responses")).json()["responses"])


async def parse_failures(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return list((await client.get("/api/v1/events", params={"topic": "system.parse_failure"})).json()["events"])


async def assert_reported_failed(client: httpx.AsyncClient, event_id: str, error: str) -> None:
    """Work whose attempts ran out ends with system.assignment_failed, never silently."""

    async def reported() -> list[dict[str, Any]]:
        listed = (await client.get("/api/v1/events", params={"topic": "system.assignment_failed"})).json()["events"]
        return [event for event in listed if event["parent_event"] == event_id]

    [failed] = await eventually(reported, timeout=30)
    assert failed["payload"]["attempts"] == 3 and failed["payload"]["error"] == error


# -- Ollama ------------------------------------------------------------------------------------------


async def test_ollama_cut_answer_is_retried_and_the_good_one_stored(
    tmp_path: Path, ollama_server: OllamaServer
) -> None:
    seen_before = len(ollama_server.requests)  # the stand-in is shared by the session's tests
    async with running_daemon(tmp_path, RETRIES) as d:
        await add_agent(d.client, "ollama", ollama_server.base_url, ollama_server.model, max_tokens=200)
        ollama_server.queue_reply(CUT_ANSWER, done_reason="length")
        ollama_server.queue_reply(GOOD_ANSWER)
        event_id = await publish(d.client, "what is the answer?")

        found = await settled(d.client, event_id)
        assert found["status"] == "completed"
        assert found["attempts"] == 1, "the cut answer spends one attempt"
        [response] = await responses_of(d.client, event_id)
        assert response["summary"] == "the whole answer"
        assert response["raw_text"] == GOOD_ANSWER
        assert await parse_failures(d.client) == [], "a cut answer is retried, not repaired or dead-lettered"
        chats = [r for r in ollama_server.requests[seen_before:] if r["path"] == "/api/chat"]
        assert len(chats) == 2 and chats[0]["messages"] == chats[1]["messages"], "the retry asks the same again"


async def test_ollama_without_done_reason_is_a_whole_answer(tmp_path: Path, ollama_server: OllamaServer) -> None:
    """Ollama before 0.1.33 ends with `done: true` and no done_reason: that is complete, not cut."""
    async with running_daemon(tmp_path, RETRIES) as d:
        await add_agent(d.client, "ollama", ollama_server.base_url, ollama_server.model, max_tokens=200)
        ollama_server.queue_reply(GOOD_ANSWER, done_reason=None)
        event_id = await publish(d.client, "what is the answer?")

        found = await settled(d.client, event_id)
        assert (found["status"], found["attempts"]) == ("completed", 0)
        [response] = await responses_of(d.client, event_id)
        assert response["summary"] == "the whole answer"


async def test_ollama_real_model_always_cut_fails_after_its_attempts(
    tmp_path: Path, ollama_server: OllamaServer
) -> None:
    async with running_daemon(tmp_path, RETRIES) as d:
        # 4 tokens cannot hold the JSON object: the real model is cut at num_predict every time.
        await add_agent(d.client, "ollama", ollama_server.base_url, ollama_server.model, max_tokens=4)
        event_id = await publish(d.client, "describe the weather in detail")

        found = await settled(d.client, event_id)
        assert found["status"] == "failed"
        assert found["attempts"] == 3
        assert "done_reason=length" in found["last_error"] and "max_tokens=4" in found["last_error"]
        assert await responses_of(d.client, event_id) == [], "no cut answer is stored as a result"
        assert await parse_failures(d.client) == []
        await assert_reported_failed(d.client, event_id, found["last_error"])


# -- OpenAI-compatible (llama-cpp-python's server) ---------------------------------------------------


async def test_openai_cut_answer_is_retried_and_the_good_one_stored(tmp_path: Path, llama_server: LlamaServer) -> None:
    overrides = {"agents": {"max_attempts": 3, "retry_backoff_seconds": 2.0}}
    async with running_daemon(tmp_path, overrides) as d:
        await add_agent(d.client, "openai", llama_server.base_url, llama_server.model, max_tokens=4)
        event_id = await publish(d.client, "say hello")

        async def cut_once() -> dict[str, Any] | None:
            found = await assignment_of(d.client, event_id)
            return found if found["attempts"] == 1 and found["status"] == "pending" else None

        first = await eventually(cut_once, timeout=120)
        assert "finish_reason=length" in first["last_error"] and "max_tokens=4" in first["last_error"]
        assert await responses_of(d.client, event_id) == []
        # Before the retry (2 s backoff) the agent gets room for a whole answer.
        patched = await d.client.patch("/api/v1/agents/agent_answerer", json={"max_tokens": 200})
        assert patched.status_code == 200, patched.text

        found = await settled(d.client, event_id)
        assert (found["status"], found["attempts"]) == ("completed", 1)
        [response] = await responses_of(d.client, event_id)
        assert response["summary"], "the stored answer is the retry's whole one"
        json.loads(response["raw_text"])
        assert await parse_failures(d.client) == []


async def test_openai_real_model_always_cut_fails_after_its_attempts(tmp_path: Path, llama_server: LlamaServer) -> None:
    async with running_daemon(tmp_path, RETRIES) as d:
        await add_agent(d.client, "openai", llama_server.base_url, llama_server.model, max_tokens=4)
        event_id = await publish(d.client, "describe the weather in detail")

        found = await settled(d.client, event_id)
        assert found["status"] == "failed"
        assert found["attempts"] == 3
        assert "finish_reason=length" in found["last_error"]
        assert await responses_of(d.client, event_id) == []
        assert await parse_failures(d.client) == []
        await assert_reported_failed(d.client, event_id, found["last_error"])
