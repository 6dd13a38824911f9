"""Builds the knowledge/memory/context stage for the daemon, resolving the LLM and scheduler late."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiventbus.core.context import ContextEngine
from aiventbus.core.knowledge import KnowledgeStore
from aiventbus.core.memory.distill import Distiller
from aiventbus.core.memory.search import SearchWeights
from aiventbus.core.memory.store import MemoryStore
from aiventbus.llm.base import LLMProvider

if TYPE_CHECKING:
    from aiventbus.daemon import Daemon


@dataclass(frozen=True)
class MemoryStage:
    knowledge: KnowledgeStore
    memory: MemoryStore
    context: ContextEngine
    distiller: Distiller


def build_memory_stage(daemon: Daemon) -> MemoryStage:
    """Knowledge, memory (+ distiller) and the context engine, from the daemon's config, store and clock."""
    config = daemon.config
    settings = config.memory
    base_url = settings.llm_base_url or config.ollama.base_url

    def provider() -> LLMProvider:
        registry: Any = daemon.llm  # set by the llm block before any call is made
        found: LLMProvider = registry.provider(settings.llm_provider, base_url)
        return found

    async def embed(texts: list[str]) -> list[list[float]]:
        return await provider().embed(settings.embedding_model, texts)

    async def ambient(work: Callable[[], Awaitable[Any]]) -> Any:
        scheduler = getattr(daemon, "scheduler", None)
        run_ambient = getattr(scheduler, "run_ambient", None)
        if run_ambient is None:
            return await work()
        return await run_ambient(work)

    knowledge = KnowledgeStore(daemon.db, daemon.clock, settings.knowledge_value_max_bytes, settings.pinned_facts)
    memory = MemoryStore(
        daemon.db,
        daemon.clock,
        SearchWeights(
            settings.search_importance_weight,
            settings.search_recency_half_life_days * 86_400.0,
            settings.search_window,
        ),
        embedder=embed,
        embeddings_enabled=settings.embeddings_enabled,
        embedding_dimensions=settings.embedding_dimensions,
    )
    context = ContextEngine(
        daemon.db,
        knowledge,
        memory,
        default_context_tokens=config.ollama.context_tokens,
        answer_tokens=settings.context_answer_tokens,
        transcript_turns=config.agents.transcript_turns,
        interactive_prefixes=config.lanes.interactive_prefixes,
        recall_limit=settings.recall_limit,
        secrets=lambda: (daemon.token,),
    )
    distiller = Distiller(
        daemon.db,
        memory,
        provider,
        settings.distill_model or config.ollama.default_model,
        daemon.clock,
        interval_seconds=settings.distill_interval_seconds,
        batch_size=settings.distill_batch_size,
        max_memories=settings.distill_max_memories,
        max_tokens=settings.distill_max_tokens,
        merge_similarity=settings.merge_similarity,
        ambient=ambient,
        enabled=settings.distill_enabled,
    )
    return MemoryStage(knowledge, memory, context, distiller)
