"""The memory model as stored and served, and the bodies the API accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MemoryKind = Literal["semantic", "episodic", "procedural"]
SCOPE_PATTERN = r"^[A-Za-z0-9_.:\-]{1,200}$"
MAX_CONTENT_CHARS = 4000


class Memory(BaseModel):
    """A distilled (or hand-written) long-term memory with its provenance."""

    id: str
    kind: MemoryKind
    scope: str = Field(..., description="global, user, an agent id, or an event's memory_scope")
    content: str
    importance: float = Field(..., ge=0, le=1)
    seen_count: int = Field(1, description="How often this memory was (re)learned; merges bump it")
    source_event_id: str | None = None
    trace_id: str | None = None
    agent_id: str | None = None
    response_id: str | None = None
    taint: list[str] = Field(default_factory=list, description="Untrusted sources of the trace it came from")
    created_by: str = Field("user", description="user, distiller or agent:<id>")
    created_at: float
    updated_at: float
    last_recalled_at: float | None = None
    recall_count: int = 0
    superseded_by: str | None = Field(None, description="The memory that replaced this one")
    score: float | None = Field(None, description="Search relevance (higher is better), on search results only")


class MemoryIn(BaseModel):
    """A memory to create."""

    model_config = ConfigDict(extra="forbid")

    kind: MemoryKind
    scope: str = Field("global", pattern=SCOPE_PATTERN)
    content: str = Field(..., min_length=1, max_length=MAX_CONTENT_CHARS)
    importance: float = Field(0.5, ge=0, le=1)
    source_event_id: str | None = Field(None, pattern=r"^evt_[A-Za-z0-9_\-]{1,64}$")
    trace_id: str | None = Field(None, pattern=r"^tr_[A-Za-z0-9_\-]{1,64}$")
    agent_id: str | None = Field(None, max_length=200)


class MemoryPatch(BaseModel):
    """What PATCH may change."""

    model_config = ConfigDict(extra="forbid")

    importance: float = Field(..., ge=0, le=1)


class MemoryPage(BaseModel):
    memories: list[Memory]


@dataclass(frozen=True)
class SearchWeights:
    """score = -bm25 * (1 + importance_weight * importance) * (1 + 1 / (1 + age / half_life))."""

    importance_weight: float = 1.0
    half_life_seconds: float = 30 * 86_400.0
    window: int | None = 1000  # only the newest `window` matches are scored (see MemoryTable.search)
