"""The real model end to end: an agent and a user.* rule via the API, `aibus query` as a subprocess, the answer
streamed, schema-valid, persisted and seen on /ws; once through the OpenAI provider (llama.cpp's server) and once
through the Ollama provider (the Ollama-protocol test server over the same model)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from aiventbus.llm.structured import AgentResponse
from tests.support.daemon import RunningDaemon, running_daemon, write_config

pytestmark = pytest.mark.e2e
AIBUS = str(Path(sys.executable).parent / "aibus")


async def run_aibus(config_path: Path, *args: str, timeout: float = 100) -> tuple[int, str, str]:
    """The CLI as a subprocess, without blocking the loop the in-process daemon runs on."""
    process = await asyncio.create_subprocess_exec(
        AIBUS,
        "--config",
        str(config_path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_PROXY": "*"},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def setup_agent(d: RunningDaemon, provider: str, base_url: str, model: str) -> str:
    agent = {
        "name": "general assistant",
        "model": model,
        "provider": provider,
        "base_url": base_url,
        "description": "General-purpose AI assistant",
        "system_prompt": "You are a helpful AI assistant. Answer concisely.",
        "allowed_actions": [],
        "max_tokens": 160,
        "temperature": 0.0,
        "context_tokens": 2048,
    }
    response = await d.client.post("/api/v1/agents", json=agent)
    assert response.status_code == 201, response.text
    rule = {"name": "user queries", "topic_pattern": "user.*", "consumer_id": response.json()["id"]}
    assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201
    return str(response.json()["id"])


async def query_end_to_end(tmp_path: Path, provider: str, base_url: str, model: str) -> None:
    async with running_daemon(tmp_path) as d:
        await setup_agent(d, provider, base_url, model)
        config_path = write_config(tmp_path, port=d.daemon.config.server.port)
        seen: list[dict[str, Any]] = []
        ws_url = d.base_url.replace("http://", "ws://") + "/ws?channels=event,token"
        async with connect(ws_url, additional_headers={"Authorization": f"Bearer {d.token}"}) as ws:
            assert json.loads(await ws.recv())["channel"] == "hello"

            async def collect() -> None:
                async for raw in ws:
                    seen.append(json.loads(raw))

            collector = asyncio.create_task(collect())
            code, out, err = await run_aibus(config_path, "query", "What is the capital of France?")
            assert code == 0, err
            [query] = (await d.client.get("/api/v1/events", params={"topic": "user.query"})).json()["events"]
            deadline = asyncio.get_running_loop().time() + 10
            while not any(m["channel"] == "event" and m["data"]["parent_event"] == query["id"] for m in seen):
                assert asyncio.get_running_loop().time() < deadline, "the response event never reached /ws"
                await asyncio.sleep(0.02)
            collector.cancel()

        assert query["source"] == "user" and query["payload"] == {"text": "What is the capital of France?"}
        [stored] = (await d.client.get(f"/api/v1/events/{query['id']}/responses")).json()["responses"]
        assert stored["response"] is not None, stored["raw_text"]
        answer = AgentResponse.model_validate(stored["response"])
        if provider == "ollama":  # llama.cpp's OpenAI stream carries no usage counts
            assert stored["prompt_tokens"] > 0 and stored["eval_tokens"] > 0

        tokens = [m["data"]["text"] for m in seen if m["channel"] == "token" and m["data"]["event_id"] == query["id"]]
        assert len(tokens) > 3, "the answer was not streamed token by token"
        assert "".join(tokens) == stored["raw_text"]
        [response_event] = [
            m["data"] for m in seen if m["channel"] == "event" and m["data"]["parent_event"] == query["id"]
        ]
        assert response_event["topic"] == "agent.general-assistant.response"
        assert response_event["payload"]["response_id"] == stored["id"]
        # What the CLI printed as it streamed is the answer's summary.
        assert out.strip().startswith(answer.summary.strip())
        assert answer.proposed_actions == []  # the agent may propose nothing, and the schema said so
        assert (await d.client.get(f"/api/v1/events/{query['id']}")).json()["status"] == "completed"


async def test_query_through_the_openai_provider(tmp_path: Path, llama_server: Any) -> None:
    await query_end_to_end(tmp_path, "openai", llama_server.base_url, llama_server.model)


async def test_query_through_the_ollama_provider(tmp_path: Path, ollama_server: Any) -> None:
    await query_end_to_end(tmp_path, "ollama", ollama_server.base_url, ollama_server.model)
    chat = [r for r in ollama_server.requests if r["path"] == "/api/chat"]
    assert chat, "the daemon never called /api/chat"
    assert chat[-1].get("format", {}).get("required") == ["type", "summary", "confidence", "proposed_actions"]


async def test_query_without_a_route_says_so(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        config_path = write_config(tmp_path, port=d.daemon.config.server.port)
        code, _, err = await run_aibus(config_path, "query", "anyone?", "--timeout", "30")
    assert code == 1
    assert err.count("\n") == 1 and "no agent handles user.query" in err
    assert "Traceback" not in err


async def test_query_with_the_daemon_down_is_one_line(tmp_path: Path) -> None:
    from tests.support.daemon import free_port

    config_path = write_config(tmp_path, port=free_port())
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "api-token").write_text("x\n")
    code, _, err = await run_aibus(config_path, "query", "hello?")
    assert code == 1
    assert err.startswith("aibus: the daemon is not running") and err.count("\n") == 1
