"""A tiny context window (512 tokens) with long knowledge and long conversation turns never overflows.

A llama.cpp server of its own runs SmolLM2 with n_ctx 512; the Ollama-protocol stand-in in front of it reports that
window (the OpenAI path is told it by the agent's `context_tokens`, as llama-cpp-python reports none). Every event
must complete with no context error; on the Ollama path every request the daemon sent is measured with the model's
own tokenizer: prompt (in its chat template) + num_predict must fit the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiventbus.core.prompt_assembly import estimate_tokens
from aiventbus.llm.ollama import OllamaProvider
from aiventbus.llm.openai_compat import OpenAICompatProvider
from tests.support.daemon import free_port, running_daemon
from tests.support.llama_server import LlamaServer, llama_server_running
from tests.support.ollama_server import CHATML_GENERATION_PROMPT_TOKENS, CHATML_TOKENS_PER_MESSAGE, OllamaServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

WINDOW = 512
EVENTS = 5
TOPICS = ["garden", "boat", "kitchen", "printer", "bicycle"]


@pytest.fixture(scope="module")
def small_llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    with llama_server_running(
        Path(tmp_path_factory.mktemp("small-llama")), embedding=False, context_tokens=WINDOW
    ) as server:
        yield server


@pytest.fixture(scope="module")
def small_ollama(small_llama: LlamaServer) -> Iterator[OllamaServer]:
    with OllamaServer(small_llama.base_url, small_llama.model, context_tokens=WINDOW) as server:
        yield server


def long_fact(topic: str, number: int) -> str:
    return (
        f"Notes on the {topic} number {number}: the {topic} was inspected on a rainy Tuesday, its parts were "
        f"listed one by one, and every part of the {topic} got a label with a date, a colour and the name of "
        f"whoever looked at it last. "
    ) * 4


async def fill_knowledge(client: httpx.AsyncClient) -> None:
    for topic in TOPICS:
        for number in range(4):
            key = f"{topic}.notes.{number}"
            answer = await client.put(f"/api/v1/knowledge/{key}", json={"value": long_fact(topic, number)})
            assert answer.status_code == 200, answer.text


async def add_agent(client: httpx.AsyncClient, provider: str, base_url: str, model: str) -> None:
    body = {
        "name": "small",
        "model": model,
        "provider": provider,
        "base_url": base_url,
        "allowed_actions": [],
        "temperature": 0.0,
        "context_tokens": WINDOW,
    }
    assert (await client.post("/api/v1/agents", json=body)).status_code == 201
    rule = {"name": "user", "topic_pattern": "user.*", "consumer_id": "agent_small"}
    assert (await client.post("/api/v1/routing-rules", json=rule)).status_code == 201


async def run_events(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """One long question per topic, in turn (each sees the earlier turns as its conversation)."""
    settled: list[dict[str, Any]] = []
    for topic in TOPICS[:EVENTS]:
        text = f"Tell me about the {topic}. " + f"I keep thinking about the {topic} and what the notes say. " * 12
        answer = await client.post("/api/v1/events", json={"topic": "user.query", "payload": {"text": text}})
        assert answer.status_code == 201, answer.text
        event_id = answer.json()["id"]

        async def done(event_id: str = event_id) -> dict[str, Any] | None:
            found = (await client.get(f"/api/v1/events/{event_id}/assignments")).json()["assignments"]
            return found[0] if found and found[0]["status"] in ("completed", "failed") else None

        settled.append(await eventually(done, timeout=240))
    return settled


def assert_none_overflowed(settled: list[dict[str, Any]]) -> None:
    for assignment in settled:
        error = assignment["last_error"] or ""
        assert "context" not in error.lower() and "exceed" not in error.lower(), error
        assert assignment["status"] == "completed", assignment


@pytest.mark.timeout(900)
async def test_ollama_path_fits_every_request_into_512_tokens(tmp_path: Path, small_ollama: OllamaServer) -> None:
    async with running_daemon(tmp_path, {"agents": {"retry_backoff_seconds": 0.05}}) as d:
        await fill_knowledge(d.client)
        await add_agent(d.client, "ollama", small_ollama.base_url, small_ollama.model)
        settled = await run_events(d.client)
        assert_none_overflowed(settled)

    chats = [r for r in small_ollama.requests if r["path"] == "/api/chat"]
    assert len(chats) >= EVENTS
    async with httpx.AsyncClient(base_url=small_ollama.upstream_url, timeout=30) as upstream:
        for chat in chats:
            text = "\n".join(m["content"] for m in chat["messages"])
            count = (await upstream.post("/extras/tokenize/count", json={"input": text})).json()["count"]
            prompt = count + CHATML_TOKENS_PER_MESSAGE * len(chat["messages"]) + CHATML_GENERATION_PROMPT_TOKENS
            answer = chat["options"]["num_predict"]
            assert prompt + answer <= WINDOW, f"prompt {prompt} + answer {answer} overflow the window of {WINDOW}"
            assert answer >= 64, "the answer keeps a usable room"


@pytest.mark.timeout(900)
async def test_openai_path_never_overflows_512_tokens(tmp_path: Path, small_llama: LlamaServer) -> None:
    async with running_daemon(tmp_path, {"agents": {"retry_backoff_seconds": 0.05}}) as d:
        await fill_knowledge(d.client)
        await add_agent(d.client, "openai", small_llama.base_url, small_llama.model)
        settled = await run_events(d.client)
        assert_none_overflowed(settled)


# -- real token counts -------------------------------------------------------------------------------


async def test_token_counts_come_from_the_server_tokenizer_once_found(
    small_llama: LlamaServer, small_ollama: OllamaServer
) -> None:
    text = 'Event user.query {"text": "disk /dev/sda1 is 97% full", "ids": [1042, 2213, 3871], "ok": false}'
    async with httpx.AsyncClient(base_url=small_llama.base_url) as direct:
        expected = (await direct.post("/extras/tokenize/count", json={"input": text})).json()["count"]
    openai = OpenAICompatProvider(small_llama.base_url)
    try:
        assert await openai.count_tokens(small_llama.model, text) == expected
        assert openai.tokenizer == "extras", "llama-cpp-python's /extras/tokenize/count is found and remembered"
        assert expected > estimate_tokens(text), "the 4-characters estimate counts this model's tokens low"
    finally:
        await openai.close()

    # A server without a tokenizer (here: the Ollama stand-in, which answers 404 to both endpoints) -> None, once.
    no_tokenizer = OpenAICompatProvider(small_ollama.base_url)
    try:
        assert await no_tokenizer.count_tokens(small_llama.model, text) is None
        assert no_tokenizer.tokenizer == "none"
    finally:
        await no_tokenizer.close()

    ollama = OllamaProvider(small_ollama.base_url)
    try:
        assert await ollama.count_tokens(small_ollama.model, text) is None
    finally:
        await ollama.close()


async def test_an_unreachable_server_counts_nothing_and_is_asked_again() -> None:
    provider = OpenAICompatProvider(f"http://127.0.0.1:{free_port()}")
    try:
        assert await provider.count_tokens("any", "some text") is None
        assert provider.tokenizer is None, "nothing is remembered about a server that did not answer"
    finally:
        await provider.close()
