"""Hybrid memory search with real embeddings (SmolLM2 via llama.cpp's /v1/embeddings) kept in sqlite-vec."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiventbus.llm.openai_compat import OpenAICompatProvider
from tests.support.daemon import running_daemon
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.e2e


async def test_hybrid_search_fuses_vector_and_text_hits(tmp_path: Path, embedding_server: LlamaServer) -> None:
    provider = OpenAICompatProvider(embedding_server.base_url)
    try:
        [probe] = await provider.embed(embedding_server.model, ["dimension probe"])
    finally:
        await provider.close()
    overrides = {
        "memory": {
            "embeddings_enabled": True,
            "llm_provider": "openai",
            "llm_base_url": embedding_server.base_url,
            "embedding_model": embedding_server.model,
            "embedding_dimensions": len(probe),
        }
    }
    async with running_daemon(tmp_path, overrides) as d:
        status = (await d.client.get("/api/v1/system/status")).json()
        assert status["components"]["memory"]["hybrid_search"] is True, status
        contents = ["The NAS backs up every night at 02:00", "Ada prefers the Helix editor", "nginx serves port 443"]
        for content in contents:
            created = await d.client.post("/api/v1/memories", json={"kind": "semantic", "content": content})
            assert created.status_code == 201, created.text
        assert await d.daemon.db.fetch_value("SELECT COUNT(*) FROM memory_vectors") == len(contents)

        lexical = (await d.client.get("/api/v1/memories", params={"q": "nginx"})).json()["memories"]
        assert lexical[0]["content"] == "nginx serves port 443"
        # No word in common with any memory: only the vector side can answer, and it does.
        semantic = (await d.client.get("/api/v1/memories", params={"q": "zzqx wobble", "limit": 2})).json()
        assert len(semantic["memories"]) == 2

        gone = (await d.client.get("/api/v1/memories", params={"q": "nginx"})).json()["memories"][0]["id"]
        assert (await d.client.delete(f"/api/v1/memories/{gone}")).status_code == 204
        assert await d.daemon.db.fetch_value("SELECT COUNT(*) FROM memory_vectors") == len(contents) - 1


async def test_hybrid_off_says_why(tmp_path: Path) -> None:
    def no_extensions(daemon: object) -> None:
        daemon.db._try_load_vec = _refuse  # type: ignore[attr-defined]

    async with running_daemon(tmp_path, {"memory": {"embeddings_enabled": True}}, setup=no_extensions) as d:
        status = (await d.client.get("/api/v1/system/status")).json()
        assert status["status"] == "degraded"
        [problem] = [p for p in status["problems"] if p["component"] == "memory"]
        assert "sqlite-vec" in problem["problem"] and problem["fix"]
        assert status["components"]["memory"]["hybrid_search"] is False
        # Search still works, lexically.
        await d.client.post("/api/v1/memories", json={"kind": "semantic", "content": "nginx serves port 443"})
        found = (await d.client.get("/api/v1/memories", params={"q": "nginx"})).json()["memories"]
        assert [m["content"] for m in found] == ["nginx serves port 443"]


async def _refuse(conn: object) -> bool:
    return False
