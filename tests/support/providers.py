"""A base for the stand-in LLM providers of tests and benches: they script `chat`; the rest answers as a healthy
server that is never asked for embeddings would."""

from __future__ import annotations

from aiventbus.llm.base import ModelCheck


class ChatOnlyProvider:
    async def check(self, model: str) -> ModelCheck:
        return ModelCheck(ok=True)

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        return []

    async def close(self) -> None:
        return None
