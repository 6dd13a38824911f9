"""Failures with real parts: the LLM server down then back, garbage output, a daemon killed mid-assignment."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_agent_flow import run_aibus
from tests.support.daemon import free_port, running_daemon, start_daemon_process, stop_process, write_config
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


def agent_body(base_url: str, model: str) -> dict[str, Any]:
    return {
        "name": "assistant",
        "model": model,
        "provider": "ollama",
        "base_url": base_url,
        "allowed_actions": [],
        "max_tokens": 120,
        "temperature": 0.0,
        "context_tokens": 2048,
    }


async def add_agent(client: httpx.AsyncClient, base_url: str, model: str) -> None:
    assert (await client.post("/api/v1/agents", json=agent_body(base_url, model))).status_code == 201
    rule = {"name": "user", "topic_pattern": "user.*", "consumer_id": "agent_assistant"}
    assert (await client.post("/api/v1/routing-rules", json=rule)).status_code == 201


async def assignment_of(client: httpx.AsyncClient, event_id: str) -> dict[str, Any] | None:
    found = (await client.get(f"/api/v1/events/{event_id}/assignments")).json()["assignments"]
    return found[0] if found else None


async def test_llm_down_waits_says_why_and_resumes_when_back(tmp_path: Path, make_ollama_server: Any) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    async with running_daemon(tmp_path, {"agents": {"llm_retry_max_seconds": 1.0}}) as d:
        await add_agent(d.client, base_url, "smollm2:135m")
        event = (await d.client.post("/api/v1/events", json={"topic": "user.query", "payload": {"text": "hi"}})).json()

        async def problem_for_port() -> dict[str, str] | None:
            status = (await d.anonymous.get("/api/v1/system/status")).json()
            return next((p for p in status["problems"] if str(port) in p["problem"]), None)

        problem = await eventually(problem_for_port)
        assert "cannot reach" in problem["problem"].lower() or "connect" in problem["problem"].lower()
        assert problem["fix"], "the status must say how to fix it"

        async def waiting() -> bool:
            found = await assignment_of(d.client, event["id"])
            return found is not None and found["status"] == "pending" and bool(found["last_error"])

        await eventually(waiting)  # it tried, found the server down, and waits without spending an attempt
        found = await assignment_of(d.client, event["id"])
        assert found is not None and found["attempts"] == 0

        server = make_ollama_server(port=port)  # the server comes up on the same port
        # A canned (valid) answer keeps this about waiting and resuming, not about the model's speed.
        server.queue_reply(json.dumps({"type": "answer", "summary": "back", "confidence": 1.0, "proposed_actions": []}))

        async def completed() -> bool:
            found = await assignment_of(d.client, event["id"])
            return found is not None and found["status"] == "completed"

        await eventually(completed)
        done = await assignment_of(d.client, event["id"])
        assert done is not None and done["attempts"] == 0
        unavailable = (await d.client.get("/api/v1/events", params={"topic": "system.llm_unavailable"})).json()
        recovered = (await d.client.get("/api/v1/events", params={"topic": "system.llm_recovered"})).json()
        assert [e["payload"]["base_url"] for e in unavailable["events"]] == [base_url]
        assert [e["payload"]["base_url"] for e in recovered["events"]] == [base_url]
        assert await problem_for_port() is None


async def test_garbage_is_repaired_then_reported_as_parse_failure(tmp_path: Path, ollama_server: Any) -> None:
    async with running_daemon(tmp_path) as d:
        await add_agent(d.client, ollama_server.base_url, ollama_server.model)
        config_path = write_config(tmp_path, port=d.daemon.config.server.port)
        ollama_server.queue_reply("Sure! The answer is: it depends.")
        ollama_server.queue_reply("{not json either")
        code, _, err = await run_aibus(config_path, "query", "garbage please", "--timeout", "60")
        assert code == 1
        assert "not valid JSON even after a repair attempt" in err and err.count("\n") == 1
        [failure] = (await d.client.get("/api/v1/events", params={"topic": "system.parse_failure"})).json()["events"]
        assert failure["payload"]["raw"] == "{not json either"
        event_id = failure["parent_event"]
        chats = [r for r in ollama_server.requests if r["path"] == "/api/chat"]
        repair = chats[-1]["messages"]
        assert repair[-2] == {"role": "assistant", "content": "Sure! The answer is: it depends."}
        found = await assignment_of(d.client, event_id)
        assert found is not None and found["status"] == "failed"
        [response] = (await d.client.get(f"/api/v1/events/{event_id}/responses")).json()["responses"]
        assert response["response"] is None

        # One bad answer and a good repair (the real model answers the repair prompt): completed.
        ollama_server.queue_reply("no JSON here")
        # The repair is a real generation (up to a few hundred tokens on a busy 2-core machine): minutes, not 60 s.
        code, out, err = await run_aibus(config_path, "query", "say hello", "--timeout", "300", timeout=330)
        assert code == 0, err
        assert out.strip()


async def test_daemon_killed_mid_assignment_is_reclaimed_and_completed_once(tmp_path: Path, ollama_server: Any) -> None:
    overrides = {"agents": {"lease_seconds": 2.0, "lease_check_interval_seconds": 0.25}}
    config_path = write_config(tmp_path, overrides, port=free_port())
    slow = json.dumps({"type": "answer", "summary": "slow " * 80, "confidence": 0.5, "proposed_actions": []})
    ollama_server.queue_reply(slow, token_delay=0.5)  # ~60 s: it is still streaming when the daemon dies
    first = start_daemon_process(config_path)
    try:
        async with httpx.AsyncClient(base_url=first.base_url, headers=first.headers(), timeout=30) as client:
            await add_agent(client, ollama_server.base_url, ollama_server.model)
            event = (await client.post("/api/v1/events", json={"topic": "user.query", "payload": {"text": "x"}})).json()

            async def claimed() -> bool:
                found = await assignment_of(client, event["id"])
                return found is not None and found["status"] == "claimed"

            await eventually(claimed)
            await eventually(lambda: _streaming(ollama_server))
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
    finally:
        stop_process(first.process)

    second = start_daemon_process(config_path)
    try:
        async with httpx.AsyncClient(base_url=second.base_url, headers=second.headers(), timeout=30) as client:

            async def completed() -> dict[str, Any] | None:
                found = await assignment_of(client, event["id"])
                return found if found is not None and found["status"] == "completed" else None

            done = await eventually(completed, timeout=90)
            assert done["attempts"] == 1  # the dead worker's claim counted as one attempt
            responses = (await client.get(f"/api/v1/events/{event['id']}/responses")).json()["responses"]
            assert len(responses) == 1 and responses[0]["response"] is not None
    finally:
        assert stop_process(second.process) == 0
    db = sqlite3.connect(tmp_path / "data" / "aiventbus.db")
    try:
        published = db.execute(
            "SELECT COUNT(*) FROM events WHERE parent_event = ? AND source = 'agent:agent_assistant'", (event["id"],)
        ).fetchone()[0]
    finally:
        db.close()
    assert published == 1


async def _streaming(server: Any) -> bool:
    return bool(server.active_streams)


async def test_missing_model_shows_in_the_status_with_its_fix(tmp_path: Path, ollama_server: Any) -> None:
    async with running_daemon(tmp_path) as d:
        body = {**agent_body(ollama_server.base_url, "gemma4:latest"), "name": "needs gemma"}
        assert (await d.client.post("/api/v1/agents", json=body)).status_code == 201

        async def reported() -> dict[str, str] | None:
            status = (await d.anonymous.get("/api/v1/system/status")).json()
            return next(
                (p for p in status["problems"] if "gemma4" in p["problem"] and ollama_server.base_url in p["problem"]),
                None,
            )

        problem = await eventually(reported, timeout=30)
        assert "ollama pull gemma4" in problem["fix"]
