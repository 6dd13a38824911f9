"""Lanes: with 1,000 ambient assignments queued and an ambient generation running, a user query (answered by
the real model) starts generating without waiting for the ambient work; the ambient run yields and is re-queued."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from aiventbus.llm.base import ChatRequest, ChatResult, LLMProvider, ModelCheck, TokenCallback
from aiventbus.llm.registry import LLMRegistry
from tests.support.daemon import running_daemon
from tests.support.providers import ChatOnlyProvider
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
AMBIENT_URL = "http://127.0.0.1:7"


class HeldGeneration(ChatOnlyProvider):
    """An ambient 'model' whose generation streams one token and then runs until cancelled or released."""

    kind = "ollama"
    base_url = AMBIENT_URL

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.release = asyncio.Event()
        self.running = 0

    async def chat(self, request: ChatRequest, on_token: TokenCallback | None = None) -> ChatResult:
        marker = request.messages[-1].content[-40:]
        self.log.append(f"ambient-start {marker}")
        self.running += 1
        try:
            if on_token is not None:
                on_token('{"type": "note", ')
            await self.release.wait()
        except asyncio.CancelledError:
            self.log.append(f"ambient-cancelled {marker}")
            raise
        finally:
            self.running -= 1
        return ChatResult(json.dumps({"type": "note", "summary": "ok", "confidence": 1.0, "proposed_actions": []}))


class Recording:
    """The real provider, noting when the user's generation starts and streams its first token."""

    def __init__(self, real: LLMProvider, log: list[str]) -> None:
        self.real = real
        self.log = log
        self.kind = real.kind
        self.base_url = real.base_url

    async def chat(self, request: ChatRequest, on_token: TokenCallback | None = None) -> ChatResult:
        self.log.append("user-start")
        first = True

        def relay(text: str) -> Awaitable[None] | None:
            nonlocal first
            if first:
                self.log.append("user-first-token")
                first = False
            return on_token(text) if on_token is not None else None

        result = await self.real.chat(request, relay)
        self.log.append("user-done")
        return result

    async def check(self, model: str) -> ModelCheck:
        return await self.real.check(model)

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        return await self.real.embed(model, texts)

    async def close(self) -> None:
        await self.real.close()


async def test_user_query_preempts_ambient_flood(tmp_path: Path, ollama_server: Any) -> None:
    log: list[str] = []
    async with running_daemon(tmp_path) as d:
        daemon = d.daemon
        held = HeldGeneration(log)
        real = LLMRegistry(daemon.config, daemon.metrics)
        registry = LLMRegistry(
            daemon.config,
            daemon.metrics,
            factory=lambda kind, url: held if url == AMBIENT_URL else Recording(real.provider(kind, url), log),
        )
        daemon.scheduler.runner.llm = registry  # type: ignore[union-attr]

        for name, url, model, pattern in (
            ("background", AMBIENT_URL, "held", "clip.*"),
            ("assistant", ollama_server.base_url, ollama_server.model, "user.*"),
        ):
            agent = {"name": name, "model": model, "base_url": url, "allowed_actions": [], "max_tokens": 60}
            assert (await d.client.post("/api/v1/agents", json={**agent, "context_tokens": 2048})).status_code == 201
            rule = {"name": name, "topic_pattern": pattern, "consumer_id": f"agent_{name}"}
            assert (await d.client.post("/api/v1/routing-rules", json=rule)).status_code == 201

        flood = {"events": [{"topic": "clip.text", "payload": {"n": n}} for n in range(1000)]}
        response = await d.client.post("/api/v1/events/batch", json=flood)
        assert response.status_code == 200 and all(item["ok"] for item in response.json()["results"])
        await eventually(lambda: held.running == 1)
        await eventually(lambda: daemon.scheduler.status()["ready"]["ambient"] == 999)
        depth = await daemon.scheduler.sample_queue_depth()
        assert depth["ambient"] == 999  # one is generating, the rest wait (in the store too)

        query = {"topic": "user.query", "payload": {"text": "Say hello."}, "source": "user"}
        event = (await d.client.post("/api/v1/events", json=query)).json()
        await eventually(lambda: "user-done" in log)

        # The ambient generation was cancelled before the user's began, and no ambient work finished first.
        first_ambient = log[0]
        assert first_ambient.startswith("ambient-start")
        cancelled = log.index(first_ambient.replace("start", "cancelled"))
        assert cancelled < log.index("user-start") < log.index("user-first-token") < log.index("user-done")
        assert "user-first-token" in log
        counts = await daemon.scheduler.table.counts()
        assert counts.get("completed", 0) <= 1  # only (possibly) the user's so far
        await eventually(lambda: _done(daemon, event["id"]))

        # The preempted assignment lost no attempt and is back in the queue (or generating again).
        rows = await daemon.db.fetch_all(
            "SELECT status, attempts, last_error FROM assignments WHERE agent_id = 'agent_background'"
        )
        assert len(rows) == 1000
        assert all(row["attempts"] == 0 for row in rows)
        assert all(row["status"] in {"pending", "claimed"} for row in rows)
        metrics = (await d.client.get("/metrics")).text
        assert 'aiventbus_assignment_state_transitions_total{agent_id="agent_background",state="requeued"}' in metrics


def _done(daemon: Any, event_id: str) -> bool:
    return bool(daemon.scheduler.status()["running"]["interactive"] == 0)
