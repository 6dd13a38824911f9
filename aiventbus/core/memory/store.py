"""MemoryStore: create, search (FTS5, optionally hybrid with sqlite-vec), recall and curate memories."""

from __future__ import annotations

import builtins
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from aiventbus.core.memory.search import (
    RELEVANCE_THRESHOLD,
    content_terms,
    fts_query,
    is_relevant,
    overlap_score,
    rrf_merge,
)
from aiventbus.errors import ValidationFailed
from aiventbus.records.events import new_id
from aiventbus.records.memory import Memory, MemoryIn, SearchWeights
from aiventbus.service import Problem
from aiventbus.store.database import Database
from aiventbus.store.memories import MemoryTable, create_vector_table, upsert_vector

log = logging.getLogger(__name__)

Embedder = Callable[[list[str]], Awaitable[list[list[float]]]]
MAX_LIMIT = 500


def load_vec_extension(conn: sqlite3.Connection) -> None:
    """Load sqlite-vec into the writer's connection (the readers' connection loads it on open)."""
    import sqlite_vec

    conn.enable_load_extension(True)
    try:
        sqlite_vec.load(conn)
    finally:
        conn.enable_load_extension(False)


class MemoryStore:
    """Long-term memories; hybrid search is on only when enabled, sqlite-vec loads and an embedder exists."""

    name = "memory"

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        weights: SearchWeights | None = None,
        embedder: Embedder | None = None,
        embeddings_enabled: bool = False,
        embedding_dimensions: int = 384,
    ) -> None:
        self.db = db
        self.table = MemoryTable(db)
        self.clock = clock
        self.weights = weights or SearchWeights()
        self.embedder = embedder
        self.embeddings_enabled = embeddings_enabled
        self.embedding_dimensions = embedding_dimensions
        self.hybrid = False
        self.hybrid_problem = ""
        self.embed_failures = 0

    async def start(self) -> None:
        if not self.embeddings_enabled:
            return
        if not self.db.extensions_loadable:
            self.hybrid_problem = "sqlite-vec cannot be loaded into this Python's SQLite: hybrid search is off"
            return
        if self.embedder is None:
            self.hybrid_problem = "no embedding provider is configured: hybrid search is off"
            return
        dimensions = self.embedding_dimensions

        def prepare(conn: sqlite3.Connection) -> None:
            load_vec_extension(conn)
            create_vector_table(conn, dimensions)

        try:
            await self.db.write(prepare)
        except Exception as error:
            self.hybrid_problem = f"sqlite-vec failed in the writer: {error}"
            return
        self.hybrid = True

    async def stop(self) -> None:
        return None

    def problems(self) -> builtins.list[Problem]:

        if self.embeddings_enabled and self.hybrid_problem:
            return [
                Problem(
                    "memory",
                    self.hybrid_problem,
                    "pip install sqlite-vec and use a Python whose sqlite3 can load extensions,"
                    " or set memory.embeddings_enabled: false",
                )
            ]
        return []

    async def status(self) -> dict[str, Any]:
        return {
            "memories": await self.table.count(),
            "hybrid_search": self.hybrid,
            "hybrid_problem": self.hybrid_problem or None,
            "embed_failures": self.embed_failures,
        }

    # -- writes --------------------------------------------------------------------------------

    async def add(self, incoming: MemoryIn, created_by: str = "user") -> Memory:
        """Store a memory written by hand (API, CLI); distilled ones come in through the Distiller."""
        now = self.clock()
        fields = incoming.model_dump()
        memory = Memory(id=new_id("mem"), created_by=created_by, created_at=now, updated_at=now, **fields)
        seq = await self.table.insert(memory)
        await self.index_vector(seq, memory.content)
        return memory

    async def index_vector(self, seq: int, content: str) -> None:
        """Store the content's embedding; a failing embedder is counted, the memory stays (FTS still finds it)."""
        if not self.hybrid or self.embedder is None:
            return
        try:
            [vector] = await self.embedder([content])
        except Exception as error:
            self.embed_failures += 1
            log.warning("memory: embedding failed: %s", error)
            return
        if len(vector) != self.embedding_dimensions:
            self.embed_failures += 1
            self.hybrid_problem = (
                f"the embedding model returned {len(vector)} dimensions, memory.embedding_dimensions is "
                f"{self.embedding_dimensions}"
            )
            return
        try:
            await self.db.write(lambda conn: upsert_vector(conn, seq, vector))
        except sqlite3.Error as error:
            self.embed_failures += 1
            self.hybrid_problem = f"storing an embedding failed: {error}"

    async def get(self, memory_id: str) -> Memory | None:
        return await self.table.get(memory_id)

    async def set_importance(self, memory_id: str, importance: float) -> Memory | None:
        if not 0.0 <= importance <= 1.0:
            raise ValidationFailed("importance", "must be between 0 and 1")
        if not await self.table.set_importance(memory_id, importance, self.clock()):
            return None
        return await self.table.get(memory_id)

    async def delete(self, memory_id: str) -> bool:
        return await self.table.delete(memory_id, with_vector=self.hybrid)

    # -- reads ---------------------------------------------------------------------------------

    async def list(self, scope: str | None = None, kind: str | None = None, limit: int = 50) -> builtins.list[Memory]:
        return await self.table.list_filtered([scope] if scope else None, kind, _bounded(limit))

    async def search(
        self, query: str, scopes: builtins.list[str] | None = None, kind: str | None = None, limit: int = 20
    ) -> builtins.list[Memory]:
        """FTS5 hits weighted by importance and recency; with hybrid on, fused with vector hits (RRF)."""
        limit = _bounded(limit)
        match = fts_query(query)
        lexical: builtins.list[Memory] = []
        if match:
            lexical = await self.table.search(match, scopes, kind, limit * 2, self.clock(), self.weights)
        if not self.hybrid or self.embedder is None or not query.strip():
            return lexical[:limit]
        try:
            [vector] = await self.embedder([query])
        except Exception as error:
            self.embed_failures += 1
            log.warning("memory: query embedding failed, lexical search only: %s", error)
            return lexical[:limit]
        semantic = await self.table.nearest(vector, scopes, kind, limit * 2, candidates=max(limit * 2, 20))
        return fuse(lexical, semantic, limit)

    async def recall(self, scopes: builtins.list[str], query: str, limit: int) -> builtins.list[Memory]:
        """The memories for a prompt: search hits in `scopes` that share enough content words with `query`
        (`rank_recalled`), best first, each with that relevance as its score. Nothing when nothing is about it."""
        terms = content_terms(query)
        if limit <= 0 or not scopes or not terms:
            return []
        found = await self.search(" ".join(terms), scopes, None, min(MAX_LIMIT, limit * 2))
        kept = rank_recalled(terms, found)[:limit]
        await self.table.mark_recalled([memory.id for memory in kept], self.clock())
        return kept


def rank_recalled(terms: list[str], memories: list[Memory], threshold: float = RELEVANCE_THRESHOLD) -> list[Memory]:
    """The memories whose content shares enough of the query's content terms, best first (stable for ties), scored
    by that share. A search hit on one word of a long event is not enough; vector-only hits with no word in common
    are left out too (a small embedder's nearest neighbours are mostly noise in a prompt)."""
    scored = [(memory, overlap_score(terms, content_terms(memory.content))) for memory in memories]
    ranked = sorted(
        ((memory, score) for memory, score in scored if is_relevant(score, threshold)), key=lambda pair: -pair[1]
    )
    return [memory.model_copy(update={"score": score}) for memory, score in ranked]


def fuse(lexical: list[Memory], semantic: list[Memory], limit: int) -> list[Memory]:
    """Reciprocal rank fusion of two ranked lists, scored by the fused value."""
    by_id = {memory.id: memory for memory in [*semantic, *lexical]}
    merged = rrf_merge([[m.id for m in lexical], [m.id for m in semantic]])
    return [by_id[memory_id].model_copy(update={"score": score}) for memory_id, score in merged[:limit]]


def _bounded(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit
