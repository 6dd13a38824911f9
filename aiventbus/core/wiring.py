"""Builds the recall stage (knowledge, long-term memory, the context engine that reads them) and the distiller that
feeds memory, from explicit parts: nothing here reads the daemon."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiventbus.config import Config
from aiventbus.core.context import ContextEngine
from aiventbus.core.knowledge import KnowledgeStore
from aiventbus.core.memory.distill import AmbientRunner, Distiller
from aiventbus.core.memory.store import MemoryStore
from aiventbus.llm.base import LLMProvider
from aiventbus.records.memory import SearchWeights
from aiventbus.store.database import Database

ProviderLookup = Callable[[str, str], LLMProvider]  # (provider name, base_url) -> provider


@dataclass(frozen=True)
class RecallStage:
    knowledge: KnowledgeStore
    memory: MemoryStore
    context: ContextEngine


def memory_provider(config: Config, lookup: ProviderLookup) -> Callable[[], LLMProvider]:
    """The provider memory's embeddings and distillation call, resolved per call (agents may change servers)."""
    settings = config.memory
    base_url = settings.llm_base_url or config.ollama.base_url
    return lambda: lookup(settings.llm_provider, base_url)


def build_recall(
    config: Config,
    db: Database,
    clock: Callable[[], float],
    lookup: ProviderLookup,
    secrets: Callable[[], tuple[str, ...]],
) -> RecallStage:
    """Knowledge, memory and the context engine, from the config, the store, the clock and the LLM registry."""
    settings = config.memory
    provider = memory_provider(config, lookup)

    async def embed(texts: list[str]) -> list[list[float]]:
        return await provider().embed(settings.embedding_model, texts)

    knowledge = KnowledgeStore(db, clock, settings.knowledge_value_max_bytes, settings.pinned_facts)
    memory = MemoryStore(
        db,
        clock,
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
        db,
        knowledge,
        memory,
        default_context_tokens=config.ollama.context_tokens,
        answer_tokens=settings.context_answer_tokens,
        transcript_turns=config.agents.transcript_turns,
        interactive_prefixes=config.lanes.interactive_prefixes,
        recall_limit=settings.recall_limit,
        secrets=secrets,
    )
    return RecallStage(knowledge, memory, context)


def build_distiller(
    config: Config,
    db: Database,
    memory: MemoryStore,
    clock: Callable[[], float],
    lookup: ProviderLookup,
    ambient: AmbientRunner,
) -> Distiller:
    """The distiller, which runs its model calls in the ambient lane (`ambient`: the scheduler's)."""
    settings = config.memory
    return Distiller(
        db,
        memory,
        memory_provider(config, lookup),
        settings.distill_model or config.ollama.default_model,
        clock,
        interval_seconds=settings.distill_interval_seconds,
        batch_size=settings.distill_batch_size,
        max_memories=settings.distill_max_memories,
        max_tokens=settings.distill_max_tokens,
        merge_similarity=settings.merge_similarity,
        ambient=ambient,
        enabled=settings.distill_enabled,
    )
