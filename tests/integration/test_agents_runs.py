"""Events become assignments and agent runs in a real daemon, with a scripted LLM provider injected."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from aiventbus.errors import LLMError, LLMUnavailable
from aiventbus.llm.base import ChatRequest, ChatResult, ModelCheck, TokenCallback
from aiventbus.llm.registry import LLMRegistry
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.waiting import eventually

VALID = json.dumps({"type": "answer", "summary": "All good.", "confidence": 0.9, "proposed_actions": []})


class ScriptedProvider:
    """Answers from a queue of replies (text, or an exception to raise); streams each reply in small chunks."""

    kind = "ollama"

    def __init__(self, base_url: str = "http://127.0.0.1:9") -> None:
        self.base_url = base_url
        self.replies: deque[str | Exception] = deque()
        self.calls: list[ChatRequest] = []
        self.down: LLMUnavailable | None = None

    async def chat(self, request: ChatRequest, on_token: TokenCallback | None = None) -> ChatResult:
        self.calls.append(request)
        if self.down is not None:
            raise self.down
        reply = self.replies.popleft() if self.replies else VALID
        if isinstance(reply, Exception):
            raise reply
        for start in range(0, len(reply), 8):
            if on_token is not None:
                result = on_token(reply[start : start + 8])
                if isinstance(result, Awaitable):
                    await result
        return ChatResult(text=reply, prompt_tokens=12, eval_tokens=len(reply) // 4)

    async def check(self, model: str) -> ModelCheck:
        return ModelCheck(ok=self.down is None, problem="down" if self.down else "")

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        return [[0.0] for _ in texts]

    async def close(self) -> None:
        return None


def use_provider(running: RunningDaemon, provider: ScriptedProvider) -> LLMRegistry:
    """Swap the daemon's LLM registry for one whose every provider is `provider` (constructor injection)."""
    daemon = running.daemon
    registry = LLMRegistry(daemon.config, daemon.metrics, factory=lambda kind, url: provider)
    daemon.services[daemon.services.index(daemon.llm)] = registry  # its problems() feed the status
    daemon.llm = registry
    daemon.scheduler.runner.llm = registry  # type: ignore[union-attr]
    daemon.router.llm = registry
    return registry


@pytest.fixture
async def scripted(tmp_path: Path) -> AsyncIterator[tuple[RunningDaemon, ScriptedProvider]]:
    overrides = {"agents": {"retry_backoff_seconds": 0.0, "llm_retry_max_seconds": 0.2}}
    async with running_daemon(tmp_path, overrides) as running:
        provider = ScriptedProvider()
        use_provider(running, provider)
        yield running, provider


async def make_agent(d: RunningDaemon, name: str, pattern: str | None, **fields: Any) -> str:
    response = await d.client.post("/api/v1/agents", json={"name": name, "model": "m1", **fields})
    assert response.status_code == 201, response.text
    agent_id = str(response.json()["id"])
    if pattern is not None:
        rule = {"name": f"{name} rule", "topic_pattern": pattern, "consumer_id": agent_id}
        assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201
    return agent_id


async def publish(d: RunningDaemon, topic: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    response = await d.client.post("/api/v1/events", json={"topic": topic, "payload": payload, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def event_status(d: RunningDaemon, event_id: str) -> str:
    return str((await d.client.get(f"/api/v1/events/{event_id}")).json()["status"])


async def settled(d: RunningDaemon, event_id: str) -> str:
    async def done() -> str | None:
        status = await event_status(d, event_id)
        return status if status in {"completed", "failed", "unrouted"} else None

    return str(await eventually(done))


async def events_on(d: RunningDaemon, topic: str) -> list[dict[str, Any]]:
    return list((await d.client.get("/api/v1/events", params={"topic": topic})).json()["events"])


async def test_rule_routes_a_user_query_to_a_persisted_published_response(scripted: tuple) -> None:
    d, provider = scripted
    tokens = d.daemon.hub.subscribe(["token", "assignment"])
    agent_id = await make_agent(d, "general assistant", "user.*")
    event = await publish(d, "user.query", {"text": "hello"}, source="user")
    assert await settled(d, event["id"]) == "completed"

    assignments = (await d.client.get(f"/api/v1/events/{event['id']}/assignments")).json()
    assert assignments["event_status"] == "completed"
    [assignment] = assignments["assignments"]
    assert (assignment["agent_id"], assignment["lane"], assignment["status"]) == (agent_id, "interactive", "completed")

    [response] = (await d.client.get(f"/api/v1/events/{event['id']}/responses")).json()["responses"]
    assert response["response"]["summary"] == "All good."
    assert response["raw_text"] == VALID
    assert response["assignment_id"] == assignment["id"]
    assert response["trace_id"] == event["trace_id"]

    [published] = await events_on(d, "agent.general-assistant.response")
    assert published["parent_event"] == event["id"]
    assert published["trace_id"] == event["trace_id"]
    assert published["payload"]["agent_id"] == agent_id
    assert published["payload"]["response_id"] == response["id"]
    assert published["payload"]["summary"] == "All good."
    assert response["response_event_id"] == published["id"]

    # The request carried the schema and a system prompt built from what is available.
    request = provider.calls[0]
    assert request.json_schema is not None and "summary" in request.json_schema["properties"]
    assert request.messages[0].role == "system" and "Response format" in request.messages[0].content
    # Every proposal is one whole closed action, and the answer is bounded even though the agent set no max_tokens.
    items = request.json_schema["properties"]["proposed_actions"]["items"]
    options = items.get("anyOf", [items])
    assert options and all(option["additionalProperties"] is False for option in options)
    assert request.max_tokens is not None and 0 < request.max_tokens <= 512

    seen: list[dict[str, Any]] = []
    while not tokens.queue.empty():
        seen.append(tokens.queue.get_nowait())
    streamed = "".join(m["data"]["text"] for m in seen if m["channel"] == "token")
    assert streamed == VALID
    states = [m["data"]["state"] for m in seen if m["channel"] == "assignment" and m["data"]["event_id"] == event["id"]]
    assert states == ["pending", "claimed", "completed"]

    metrics = (await d.client.get("/metrics")).text
    assert 'aiventbus_routing_decisions_total{result="matched"} 1.0' in metrics
    assert f'aiventbus_assignments_created_total{{agent_id="{agent_id}",lane="interactive"}} 1.0' in metrics
    assert "aiventbus_agent_runs_total" in metrics and "aiventbus_llm_tokens_total" in metrics


async def test_unmatched_event_is_unrouted(scripted: tuple) -> None:
    d, _ = scripted
    await make_agent(d, "a", "user.*")
    event = await publish(d, "clipboard.text", {"text": "x"})
    assert await settled(d, event["id"]) == "unrouted"
    assert (await d.client.get(f"/api/v1/events/{event['id']}/assignments")).json()["assignments"] == []


async def test_own_output_does_not_retrigger_through_a_catch_all(scripted: tuple) -> None:
    d, provider = scripted
    await make_agent(d, "echo", "*")
    event = await publish(d, "note.new", {"text": "x"})
    assert await settled(d, event["id"]) == "completed"
    [response_event] = await events_on(d, "agent.echo.response")
    assert await settled(d, response_event["id"]) == "unrouted"
    assert len(provider.calls) == 1


async def test_disabled_agent_gets_no_work(scripted: tuple) -> None:
    d, provider = scripted
    agent_id = await make_agent(d, "a", "user.*")
    await d.client.post(f"/api/v1/agents/{agent_id}/disable")
    event = await publish(d, "user.query", {"text": "x"})
    assert await settled(d, event["id"]) == "unrouted"
    assert provider.calls == []


async def test_garbage_is_repaired_once(scripted: tuple) -> None:
    d, provider = scripted
    await make_agent(d, "a", "user.*")
    provider.replies.extend(["I think the answer is 42", VALID])
    event = await publish(d, "user.query", {"text": "x"})
    assert await settled(d, event["id"]) == "completed"
    assert len(provider.calls) == 2
    repair = provider.calls[1].messages
    assert repair[-2].role == "assistant" and repair[-2].content == "I think the answer is 42"
    assert await events_on(d, "system.parse_failure") == []


async def test_garbage_twice_is_a_parse_failure_without_retries(scripted: tuple) -> None:
    d, provider = scripted
    await make_agent(d, "a", "user.*")
    provider.replies.extend(["not json at all", '{"summary": 3'])
    event = await publish(d, "user.query", {"text": "x"})
    assert await settled(d, event["id"]) == "failed"
    [failure] = await eventually(lambda: events_on(d, "system.parse_failure"))
    assert failure["payload"]["raw"] == '{"summary": 3'
    assert failure["parent_event"] == event["id"]
    [assignment] = (await d.client.get(f"/api/v1/events/{event['id']}/assignments")).json()["assignments"]
    assert assignment["status"] == "failed" and assignment["last_error"].startswith("parse failure")
    [response] = (await d.client.get(f"/api/v1/events/{event['id']}/responses")).json()["responses"]
    assert response["response"] is None and response["raw_text"] == '{"summary": 3'
    assert len(provider.calls) == 2
    metrics = (await d.client.get("/metrics")).text
    assert 'aiventbus_llm_parse_failures_total{agent_id="agent_a",model="m1"} 2.0' in metrics


async def test_transient_errors_are_retried_then_dead_lettered(scripted: tuple) -> None:
    d, provider = scripted
    await make_agent(d, "a", "user.*")
    provider.replies.extend([LLMError("HTTP 500 from the server"), VALID])
    first = await publish(d, "user.query", {"text": "retry me"})
    assert await settled(d, first["id"]) == "completed"
    [assignment] = (await d.client.get(f"/api/v1/events/{first['id']}/assignments")).json()["assignments"]
    assert assignment["attempts"] == 1

    provider.replies.extend([LLMError("HTTP 500")] * 3)
    second = await publish(d, "user.query", {"text": "give up"})
    assert await settled(d, second["id"]) == "failed"
    [dead] = (await d.client.get(f"/api/v1/events/{second['id']}/assignments")).json()["assignments"]
    assert dead["attempts"] == d.daemon.config.agents.max_attempts
    assert dead["last_error"] == "HTTP 500"


async def test_llm_down_waits_reports_and_resumes(scripted: tuple) -> None:
    d, provider = scripted
    await make_agent(d, "a", "user.*", base_url="http://127.0.0.1:5")
    provider.down = LLMUnavailable("cannot reach Ollama at http://127.0.0.1:5", "start it: ollama serve")
    events = [await publish(d, "user.query", {"text": f"q{n}"}) for n in range(3)]

    async def reported() -> dict[str, Any] | None:
        status = (await d.anonymous.get("/api/v1/system/status")).json()
        found = [p for p in status["problems"] if "127.0.0.1:5" in p["problem"]]
        return found[0] if status["status"] == "degraded" and found else None

    problem = await eventually(reported)
    assert "cannot reach Ollama" in problem["problem"] and problem["fix"] == "start it: ollama serve"
    calls_while_down = len(provider.calls)
    await eventually(lambda: _more_calls(provider, calls_while_down + 2))  # it keeps probing, slowly
    for event in events:
        [assignment] = (await d.client.get(f"/api/v1/events/{event['id']}/assignments")).json()["assignments"]
        assert assignment["status"] == "pending" and assignment["attempts"] == 0

    provider.down = None
    for event in events:
        assert await settled(d, event["id"]) == "completed"
    assert len(await events_on(d, "system.llm_unavailable")) == 1
    [recovered] = await events_on(d, "system.llm_recovered")
    assert recovered["payload"]["model"] == "m1"
    problems = (await d.anonymous.get("/api/v1/system/status")).json()["problems"]
    assert not [p for p in problems if "127.0.0.1:5" in p["problem"]]


async def _more_calls(provider: ScriptedProvider, count: int) -> bool:
    return len(provider.calls) >= count


async def test_classifier_routes_unmatched_events(tmp_path: Path) -> None:
    overrides = {"classifier": {"enabled": True, "model": "tiny"}}
    async with running_daemon(tmp_path, overrides) as d:
        provider = ScriptedProvider()
        use_provider(d, provider)
        await make_agent(d, "files", None, description="Handles files")
        await make_agent(d, "chat", None, description="Talks")
        provider.replies.extend([json.dumps({"agent_id": "agent_files"}), VALID, json.dumps({"agent_id": "none"})])
        routed = await publish(d, "file.created", {"path": "/tmp/x"})
        assert await settled(d, routed["id"]) == "completed"
        [assignment] = (await d.client.get(f"/api/v1/events/{routed['id']}/assignments")).json()["assignments"]
        assert assignment["agent_id"] == "agent_files"
        classifier_request = provider.calls[0]
        assert classifier_request.model == "tiny"
        assert classifier_request.json_schema is not None
        enum = classifier_request.json_schema["properties"]["agent_id"]["enum"]
        assert enum == ["agent_chat", "agent_files", "none"]

        nobody = await publish(d, "weather.report", {"t": 3})
        assert await settled(d, nobody["id"]) == "unrouted"
        metrics = (await d.client.get("/metrics")).text
        assert 'aiventbus_classifier_fallbacks_total{result="matched"} 1.0' in metrics
        assert 'aiventbus_classifier_fallbacks_total{result="none"} 1.0' in metrics


async def test_aibus_query_json_prints_the_response_payload(scripted: tuple, tmp_path: Path) -> None:
    from tests.e2e.test_agent_flow import run_aibus
    from tests.support.daemon import write_config

    d, provider = scripted
    await make_agent(d, "general assistant", "user.*")
    answer = {"type": "answer", "summary": "Forty-two.", "confidence": 0.8, "proposed_actions": []}
    provider.replies.append(json.dumps(answer))
    config_path = write_config(tmp_path, port=d.daemon.config.server.port)
    code, out, err = await run_aibus(config_path, "query", "meaning of life?", "--json", timeout=60)
    assert code == 0, err
    printed = json.loads(out)
    assert {k: printed[k] for k in answer} == answer
    assert printed["agent_id"] == "agent_general-assistant" and printed["response_id"].startswith("resp_")

    provider.replies.append(json.dumps(answer))
    code, out, err = await run_aibus(config_path, "query", "again, streamed", timeout=60)
    assert code == 0, err
    assert out == "Forty-two.\n"


async def test_event_is_processing_while_an_agent_works_on_it(scripted: tuple) -> None:
    d, provider = scripted
    release = asyncio.Event()
    answer = provider.chat

    async def held_chat(request: ChatRequest, on_token: TokenCallback | None = None) -> ChatResult:
        await release.wait()
        return await answer(request, on_token)

    provider.chat = held_chat
    await make_agent(d, "worker", "job.*")
    event = await publish(d, "job.start", {"n": 1})

    async def processing() -> bool:
        return await event_status(d, event["id"]) == "processing"

    await eventually(processing)
    release.set()
    assert await settled(d, event["id"]) == "completed"
