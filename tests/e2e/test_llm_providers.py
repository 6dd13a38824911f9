"""Both providers against the real SmolLM2-135M (llama.cpp's server, and the Ollama-protocol server on top of it)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiventbus.config import parse_config
from aiventbus.errors import LLMError, LLMUnavailable
from aiventbus.llm.base import ChatMessage, ChatRequest, LLMProvider
from aiventbus.llm.ollama import OllamaProvider
from aiventbus.llm.openai_compat import OpenAICompatProvider
from aiventbus.llm.registry import LLMRegistry, backoff_delays
from aiventbus.llm.slots import ServerSlots
from aiventbus.llm.structured import agent_response_schema, parse_agent_response
from aiventbus.telemetry import Metrics
from tests.support.daemon import free_port, running_daemon
from tests.support.llama_server import LlamaServer
from tests.support.ollama_server import OllamaServer
from tests.support.waiting import eventually

SYSTEM = (
    "You are a monitoring assistant. Answer with one JSON object: type (a word), summary (one short sentence), "
    "confidence (0 to 1) and proposed_actions (a list, often empty)."
)
# Narrowed action types keep SmolLM2-135M short and on track; 256 tokens leaves room to finish the object.
SCHEMA = agent_response_schema(["log", "notify"])


def agent_request(model: str, question: str = "The disk /home is 95% full.", max_tokens: int = 256) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[ChatMessage("system", SYSTEM), ChatMessage("user", question)],
        json_schema=SCHEMA,
        temperature=0.0,
        max_tokens=max_tokens,
        seed=7,
    )


@pytest.fixture
async def openai_provider(llama_server: LlamaServer) -> AsyncIterator[OpenAICompatProvider]:
    provider = OpenAICompatProvider(llama_server.base_url, request_timeout_seconds=110)
    yield provider
    await provider.close()


@pytest.fixture
async def ollama_provider(ollama_server: OllamaServer) -> AsyncIterator[OllamaProvider]:
    provider = OllamaProvider(ollama_server.base_url, request_timeout_seconds=110, keep_alive="10m")
    yield provider
    await provider.close()


# -- streaming and structured output --------------------------------------------------------------


class RecordingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that notes every request's path and answer status."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[tuple[str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen.append((request.url.path, response.status_code))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def paths(self, path: str) -> int:
        return sum(1 for seen, _status in self.seen if seen == path)


@pytest.mark.e2e
async def test_openai_provider_streams_schema_valid_json(llama_server: LlamaServer) -> None:
    transport = RecordingTransport()
    openai_provider = OpenAICompatProvider(llama_server.base_url, request_timeout_seconds=110, transport=transport)
    chunks: list[str] = []
    try:
        result = await openai_provider.chat(agent_request(llama_server.model), on_token=chunks.append)
    finally:
        await openai_provider.close()
    assert len(chunks) > 3 and "".join(chunks) == result.text
    response = parse_agent_response(result.text)
    assert 0.0 <= response.confidence <= 1.0
    assert all(action["action_type"] in {"log", "notify"} for action in response.proposed_actions)
    assert result.eval_tokens > 0 and result.first_token_seconds is not None
    # llama-cpp-python refuses the `json_schema` shape: the provider knew before its first call (no failing call).
    assert openai_provider.schema_style == "json_object" and openai_provider.dialect == "json_object"
    assert openai_provider.server_info is not None and openai_provider.server_info.flavour == "llama-cpp-python"
    assert transport.seen[:2] == [("/props", 404), ("/openapi.json", 200)]
    assert transport.seen[2:] == [("/v1/chat/completions", 200)]


@pytest.mark.e2e
async def test_ollama_provider_streams_schema_valid_json(
    ollama_provider: OllamaProvider, ollama_server: OllamaServer
) -> None:
    chunks: list[str] = []

    async def on_token(text: str) -> None:
        chunks.append(text)

    result = await ollama_provider.chat(agent_request(ollama_server.model), on_token=on_token)
    assert len(chunks) > 3 and "".join(chunks) == result.text
    response = parse_agent_response(result.text)
    assert 0.0 <= response.confidence <= 1.0
    assert result.prompt_tokens > 0 and result.eval_tokens > 0
    sent = ollama_server.requests[-1]
    assert sent["format"] == SCHEMA and sent["keep_alive"] == "10m" and sent["stream"] is True
    assert sent["options"] == {"temperature": 0.0, "num_predict": 256, "seed": 7}


@pytest.mark.e2e
async def test_plain_chat_without_schema(openai_provider: OpenAICompatProvider, llama_server: LlamaServer) -> None:
    request = ChatRequest(model=llama_server.model, messages=[ChatMessage("user", "Say hello.")], max_tokens=200)
    result = await openai_provider.chat(request)
    assert result.text and result.eval_tokens > 0
    assert result.finish_reason == "stop"


# -- checks and failures -------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_check_finds_the_model_and_its_context(
    ollama_provider: OllamaProvider, openai_provider: OpenAICompatProvider, ollama_server: OllamaServer
) -> None:
    found = await ollama_provider.check(ollama_server.model)
    assert found.ok and found.context_tokens == 2048 and ollama_server.model in found.models
    assert ollama_provider.dialect == "format"
    # llama-cpp-python answers /props with 404 and reports no window anywhere: the config's default applies.
    llama = await openai_provider.check("smollm2-135m")
    assert llama.ok and llama.context_tokens is None


@pytest.mark.e2e
async def test_missing_model_is_reported_with_the_pull_fix(
    ollama_provider: OllamaProvider, openai_provider: OpenAICompatProvider, ollama_server: OllamaServer
) -> None:
    missing = await ollama_provider.check("gemma4:latest")
    assert not missing.ok
    assert missing.problem == f"model gemma4:latest not found at {ollama_server.base_url}"
    assert missing.fix == "ollama pull gemma4:latest"
    with pytest.raises(LLMUnavailable) as caught:
        await ollama_provider.chat(agent_request("gemma4:latest"))
    assert caught.value.fix == "ollama pull gemma4:latest"
    other = await openai_provider.check("gemma4:latest")
    assert not other.ok and "not found" in other.problem and "smollm2-135m" in other.models


async def test_server_down_is_reported_with_the_start_fix() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    providers: list[LLMProvider] = [OllamaProvider(down), OpenAICompatProvider(down)]
    for provider in providers:
        check = await provider.check("any")
        assert not check.ok and check.problem.startswith("cannot reach") and down in check.problem
        with pytest.raises(LLMUnavailable) as caught:
            await provider.chat(ChatRequest(model="any", messages=[ChatMessage("user", "hi")]))
        assert caught.value.fix
        await provider.close()
    assert "ollama serve" in (await OllamaProvider(down).check("any")).fix


async def _serve_raw(body: bytes, content_type: str) -> tuple[asyncio.Server, str]:
    """A real HTTP server that answers every request with `body` (for malformed-stream tests)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        ("ollama", b'{"message": {"content": "hi"}, "done": false}\nnot json\n', "malformed stream from Ollama"),
        ("ollama", b'{"message": {"content": "hi"}, "done": false}\n', "ended without its final done message"),
        ("ollama", b'{"error": "out of memory"}\n', "out of memory"),
        ("openai", b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\ndata: {oops\n\n', "malformed stream"),
        ("openai", b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n', "ended without its [DONE] line"),
    ],
)
async def test_malformed_stream_is_an_llm_error(kind: str, body: bytes, message: str) -> None:
    server, url = await _serve_raw(body, "application/x-ndjson" if kind == "ollama" else "text/event-stream")
    provider: LLMProvider = OllamaProvider(url) if kind == "ollama" else OpenAICompatProvider(url)
    try:
        with pytest.raises(LLMError) as caught:
            await provider.chat(ChatRequest(model="m", messages=[ChatMessage("user", "hi")]))
        assert message in caught.value.detail
    finally:
        await provider.close()
        server.close()
        await server.wait_closed()


# -- cancellation ----------------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_cancelling_mid_stream_closes_the_stream(
    ollama_provider: OllamaProvider, ollama_server: OllamaServer
) -> None:
    streaming = asyncio.Event()
    request = ChatRequest(
        model=ollama_server.model, messages=[ChatMessage("user", "Write a long story about a cat.")], max_tokens=1500
    )
    task = asyncio.create_task(ollama_provider.chat(request, on_token=lambda _text: streaming.set()))
    await asyncio.wait_for(streaming.wait(), 30)
    assert ollama_server.active_streams == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: ollama_server.active_streams == 0, timeout=20, what="the stream to close")
    # The model server is free again: a short call runs to its limit (a cut answer is an error, never a result).
    short = ChatRequest(model=ollama_server.model, messages=[ChatMessage("user", "Hi")], max_tokens=4)
    with pytest.raises(LLMError, match=r"cut at max_tokens=4 \(done_reason=length\)"):
        await ollama_provider.chat(short)


@pytest.mark.e2e
async def test_cancelling_the_openai_stream(openai_provider: OpenAICompatProvider, llama_server: LlamaServer) -> None:
    streaming = asyncio.Event()
    request = ChatRequest(model=llama_server.model, messages=[ChatMessage("user", "Count to 500.")], max_tokens=1500)
    task = asyncio.create_task(openai_provider.chat(request, on_token=lambda _text: streaming.set()))
    await asyncio.wait_for(streaming.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    short = ChatRequest(model=llama_server.model, messages=[ChatMessage("user", "Hi")], max_tokens=4)
    with pytest.raises(LLMError, match=r"cut at max_tokens=4 \(finish_reason=length\)"):
        await openai_provider.chat(short)


# -- embeddings -----------------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_embeddings_from_both_providers(
    ollama_provider: OllamaProvider,
    openai_provider: OpenAICompatProvider,
    ollama_server: OllamaServer,
    embedding_server: LlamaServer,
) -> None:
    texts = ["the disk is full", "a cat sleeps on the sofa"]
    from_ollama = await ollama_provider.embed(ollama_server.model, texts)
    from_openai = await openai_provider.embed(embedding_server.model, texts)
    for vectors in (from_ollama, from_openai):
        assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1]) == 576
        assert vectors[0] != vectors[1]
    assert math.isclose(math.fsum(v * v for v in from_ollama[0]), 1.0, rel_tol=1e-6)


# -- registry ----------------------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_registry_tracks_an_outage_and_waits_for_recovery(
    make_ollama_server: Callable[..., OllamaServer],
) -> None:
    server = make_ollama_server()
    config = parse_config({"ollama": {"base_url": server.base_url, "default_model": server.model}})
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            await asyncio.to_thread(server.start)

    registry = LLMRegistry(config, Metrics(), sleep=fake_sleep)
    try:
        assert (await registry.check("ollama", None, server.model)).ok
        assert registry.problems() == [] and registry.context_tokens("ollama", None, server.model) == 2048
        await asyncio.to_thread(server.stop)
        down = await registry.check("ollama", None, server.model, fresh=True)
        assert not down.ok
        [problem] = registry.problems()
        assert problem.component == "llm" and server.base_url in problem.problem and "ollama serve" in problem.fix
        # The runner reports the same outage again: only the first report starts it.
        assert registry.note_failure("ollama", None, server.model, down.problem, down.fix) is False
        recovered = await registry.wait_until_available("ollama", None, server.model)
        assert recovered.ok and sleeps == [1.0, 2.0, 4.0] and backoff_delays()(10) == 30.0
        assert registry.problems() == [] and registry.note_failure("ollama", None, server.model, "x") is True
        assert registry.note_success("ollama", None, server.model) is True
        assert registry.provider("ollama") is registry.provider("ollama", server.base_url + "/")
    finally:
        await registry.stop()


@pytest.mark.e2e
async def test_daemon_status_names_a_missing_model_and_its_fix(tmp_path: Path, ollama_server: OllamaServer) -> None:
    overrides = {"ollama": {"base_url": ollama_server.base_url, "default_model": "gemma4:latest"}}
    async with running_daemon(tmp_path, overrides) as running:
        agent = {"name": "watcher", "model": "gemma4:latest", "allowed_actions": []}
        assert (await running.client.post("/api/v1/agents", json=agent)).status_code == 201

        async def llm_problems() -> list[dict[str, str]]:
            status = (await running.client.get("/api/v1/system/status")).json()
            return [p for p in status["problems"] if p["component"] == "llm"]

        expected = [
            {
                "component": "llm",
                "problem": f"model gemma4:latest not found at {ollama_server.base_url}",
                "fix": "ollama pull gemma4:latest",
            }
        ]
        # The start-up check runs in the background; on a loaded machine it may first time out, then retry.
        deadline = time.monotonic() + 60
        while (found := await llm_problems()) != expected:
            assert time.monotonic() < deadline, f"the start-up check never reported the missing model: {found}"
            if found:
                await running.daemon.llm.check("ollama", None, "gemma4:latest", fresh=True)
            await asyncio.sleep(0.05)
        components = (await running.client.get("/api/v1/system/status")).json()["components"]
        assert components["llm"]["targets"][0]["ok"] is False


# -- what the server is, and its slots ------------------------------------------------------------------------


async def test_server_slots_serve_a_check_then_interactive_then_critical_then_ambient() -> None:
    slots = ServerSlots(1)
    served: list[str] = []

    async def request(lane: str) -> None:
        async with slots.hold(lane):
            served.append(lane)

    async with slots.hold("critical"):  # a generation is running
        waiting = [asyncio.create_task(request(lane)) for lane in ("ambient", "critical", "interactive", "check")]
        gone = asyncio.create_task(request("interactive"))
        await eventually(lambda: sum(slots.status()["waiting"].values()) == 5)
        gone.cancel()  # a waiting request that is cancelled gives up its place and takes no slot
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert slots.status() == {
            "slots": 1,
            "busy": 1,
            "waiting": {"ambient": 1, "critical": 1, "interactive": 1, "check": 1},
        }
    await asyncio.gather(*waiting)
    assert served == ["check", "interactive", "critical", "ambient"]
    assert slots.status() == {"slots": 1, "busy": 0, "waiting": {}}


@pytest.mark.e2e
async def test_a_check_never_cuts_a_running_generation(llama_server: LlamaServer) -> None:
    transport = RecordingTransport()
    config = parse_config({"ollama": {"base_url": "http://127.0.0.1:9"}})
    registry = LLMRegistry(config, Metrics(), factory=lambda _kind, url: OpenAICompatProvider(url, transport=transport))
    try:
        assert (await registry.check("openai", llama_server.base_url, llama_server.model)).ok
        tokens: list[str] = []
        streaming = asyncio.Event()

        def on_token(text: str) -> None:
            tokens.append(text)
            streaming.set()

        provider = registry.provider("openai", llama_server.base_url, lane="critical")
        request = ChatRequest(model=llama_server.model, messages=[ChatMessage("user", "Count to 500.")], max_tokens=48)
        chat = asyncio.create_task(provider.chat(request, on_token))
        await asyncio.wait_for(streaming.wait(), 60)
        listed = transport.paths("/v1/models")
        # An agent created now checks its model: the answer is the last one, nothing reaches the server.
        during = await registry.check("openai", llama_server.base_url, llama_server.model, fresh=True)
        assert during.ok and transport.paths("/v1/models") == listed
        at_check = len(tokens)
        # The stream went on after the check to its own end or its max_tokens; an interrupted one would end without
        # a finish reason, which the provider reports as a cut answer.
        try:
            assert (await chat).finish_reason == "stop"
        except LLMError as error:
            assert "finish_reason=length" in error.detail, error.detail
        assert len(tokens) > at_check
        assert (await registry.check("openai", llama_server.base_url, llama_server.model, fresh=True)).ok
        assert transport.paths("/v1/models") == listed + 1  # with the slot free, the check asks the server
        assert transport.paths("/v1/chat/completions") == 1
    finally:
        await registry.stop()


@pytest.mark.e2e
async def test_status_shows_the_dialect_and_ignores_an_unused_target(tmp_path: Path, llama_server: LlamaServer) -> None:
    # The default Ollama URL is down (nothing listens on port 9), and no agent uses it.
    async with running_daemon(tmp_path) as running:

        async def llm_status() -> dict[str, Any]:
            status = (await running.client.get("/api/v1/system/status")).json()
            return {
                "problems": [p for p in status["problems"] if p["component"] == "llm"],
                **status["components"]["llm"],
            }

        await eventually(lambda: running.daemon.llm.is_failing("ollama", None, "gemma4:latest"))
        found = await llm_status()
        assert found["problems"] == [] and found["targets"][0]["in_use"] is False
        agent = {
            "name": "small",
            "provider": "openai",
            "base_url": llama_server.base_url,
            "model": llama_server.model,
            "allowed_actions": [],
        }
        assert (await running.client.post("/api/v1/agents", json=agent)).status_code == 201

        async def known() -> dict[str, Any] | None:
            status = await llm_status()
            servers = [s for s in status["servers"] if s["base_url"] == llama_server.base_url]
            return status if servers and servers[0]["dialect"] else None

        status = await eventually(known)
        [server] = [s for s in status["servers"] if s["base_url"] == llama_server.base_url]
        assert server["flavour"] == "llama-cpp-python" and server["dialect"] == "json_object"
        assert server["slots"] == 1 and server["context_tokens"] is None
        [target] = [t for t in status["targets"] if t["base_url"] == llama_server.base_url]
        # The server reports no window: the stated default (ollama.context_tokens) applies in the budget.
        assert target["in_use"] is True and target["ok"] is True and target["context_tokens"] is None
        assert status["problems"] == [] and running.daemon.config.ollama.context_tokens == 2048


@pytest.mark.e2e
async def test_critical_and_interactive_at_once_both_answered_interactive_first(
    tmp_path: Path, llama_server: LlamaServer
) -> None:
    async with running_daemon(tmp_path) as running:
        client = running.client
        agent = {
            "name": "guard",
            "provider": "openai",
            "base_url": llama_server.base_url,
            "model": llama_server.model,
            "system_prompt": "You watch a computer. Answer with one short JSON object.",
            "allowed_actions": [],
            "max_tokens": 96,
            "temperature": 0.0,
        }
        created = await client.post("/api/v1/agents", json=agent)
        assert created.status_code == 201, created.text
        for name, pattern in (("security", "security.*"), ("user", "user.*")):
            rule = {"name": name, "topic_pattern": pattern, "consumer_id": created.json()["id"]}
            assert (await client.post("/api/v1/routing-rules", json=rule)).status_code == 201
        slots = running.daemon.llm.slots("openai", llama_server.base_url)

        def checked() -> bool:
            targets = running.daemon.llm.status()["targets"]
            return slots.busy == 0 and any(t["ok"] for t in targets if t["base_url"] == llama_server.base_url)

        await eventually(checked)

        # While the server's only slot is taken (as by a running generation), both events arrive at once.
        async with slots.hold("ambient"):
            critical = (
                await client.post(
                    "/api/v1/events", json={"topic": "security.login_failed", "payload": {"user": "root", "tries": 9}}
                )
            ).json()
            interactive = (
                await client.post(
                    "/api/v1/events",
                    json={"topic": "user.query", "payload": {"text": "Is the disk full?"}, "source": "user"},
                )
            ).json()
            await eventually(lambda: slots.status()["waiting"] == {"critical": 1, "interactive": 1})

        finished: list[str] = []

        async def both_done() -> bool:
            for name, event in (("critical", critical), ("interactive", interactive)):
                status = (await client.get(f"/api/v1/events/{event['id']}")).json()["status"]
                if status == "completed" and name not in finished:
                    finished.append(name)
            return len(finished) == 2

        await eventually(both_done, timeout=240, interval=0.05)
        assert finished == ["interactive", "critical"]
        for event in (critical, interactive):
            [stored] = (await client.get(f"/api/v1/events/{event['id']}/responses")).json()["responses"]
            assert stored["raw_text"]
        counts = await running.daemon.scheduler.table.counts()
        assert counts.get("dead", 0) == 0 and counts.get("completed") == 2
