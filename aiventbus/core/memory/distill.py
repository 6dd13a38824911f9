"""Distiller: turns agent transcripts into a few durable memories, batched, in the ambient lane."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from aiventbus.core.memory.merge import NEW, SAME_AS, SUPERSEDES, Decision, decide
from aiventbus.core.memory.store import MemoryStore
from aiventbus.errors import LLMError, LLMUnavailable
from aiventbus.labels import join
from aiventbus.llm.base import ChatMessage, ChatRequest, LLMProvider
from aiventbus.records.events import Event, new_id
from aiventbus.records.memory import Memory
from aiventbus.service import Problem
from aiventbus.store.database import Database
from aiventbus.store.memories import DistillLog, insert_memory, mark_distilled, merge_into, supersede
from aiventbus.values import escape_text

log = logging.getLogger(__name__)
T = TypeVar("T")
AmbientRunner = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]
TRANSCRIPT_CHARS = 1500
CANDIDATES_PER_RESPONSE = 3
# One memory is a sentence or two; the cap also bounds how long a small model can ramble.
CONTENT_MAX_CHARS = 200

SYSTEM_PROMPT = (
    "You keep an AI assistant's long-term memory. Read the transcripts below and write at most {limit} short,"
    " durable memories worth keeping for the future: facts about the user or the machine (semantic), notable"
    " happenings (episodic), or how-to knowledge (procedural). Skip anything trivial. For each memory give the"
    " transcript number it came from, and its relation to the existing memories listed: 'new', 'same_as:<id>'"
    " when it repeats one, or 'supersedes:<id>' when it contradicts or updates one. Answer with JSON only."
)


@dataclass(frozen=True)
class PendingResponse:
    """An agent response not yet distilled, with the event that caused it."""

    id: str
    event_id: str
    agent_id: str
    trace_id: str
    summary: str
    text: str
    taint: list[str]
    topic: str
    payload: str
    memory_scope: str | None

    def scopes(self) -> list[str]:
        own = [self.memory_scope] if self.memory_scope else [self.agent_id]
        return [*own, "global", "user"]

    def transcript(self) -> str:
        body = f"event {self.topic}: {self.payload}\nagent {self.agent_id} answered: {self.summary or self.text}"
        return body[:TRANSCRIPT_CHARS]


class DistilledItem(BaseModel):
    source: int
    kind: Literal["semantic", "episodic", "procedural"]
    scope: str
    content: str = Field(..., min_length=1)
    importance: float
    relation: str = NEW


class DistillOutput(BaseModel):
    memories: list[DistilledItem]


def distill_schema(
    sources: int, scopes: list[str], relations: list[str], limit: int, content_max_chars: int = CONTENT_MAX_CHARS
) -> dict[str, Any]:
    """The JSON schema the model's answer is constrained to: only real sources, scopes and candidate ids."""
    return {
        "type": "object",
        "properties": {
            "memories": {
                "type": "array",
                "maxItems": limit,
                "items": {
                    "type": "object",
                    "properties": {
                        "source": {"type": "integer", "enum": list(range(1, sources + 1))},
                        "kind": {"type": "string", "enum": ["semantic", "episodic", "procedural"]},
                        "scope": {"type": "string", "enum": scopes},
                        "content": {"type": "string", "minLength": 1, "maxLength": content_max_chars},
                        "importance": {"type": "number", "minimum": 0, "maximum": 1},
                        "relation": {"type": "string", "enum": relations},
                    },
                    "required": ["source", "kind", "scope", "content", "importance", "relation"],
                },
            }
        },
        "required": ["memories"],
    }


def distill_messages(batch: list[PendingResponse], candidates: list[Memory], limit: int) -> list[ChatMessage]:
    transcripts = "\n\n".join(f"Transcript {i}:\n{r.transcript()}" for i, r in enumerate(batch, start=1))
    existing = "\n".join(f"- {m.id} [{m.scope}] {m.content}" for m in candidates) or "(none)"
    return [
        ChatMessage("system", SYSTEM_PROMPT.format(limit=limit)),
        ChatMessage("user", f"{transcripts}\n\nExisting memories:\n{existing}"),
    ]


def parse_distill_output(text: str) -> DistillOutput:
    """The model's answer, or LLMError saying why it is unusable."""
    try:
        return DistillOutput.model_validate(json.loads(text))
    except (ValueError, RecursionError) as error:  # JSONDecodeError, ValidationError, a 4,300-digit integer
        raise LLMError(f"distillation answer is not the expected JSON: {str(error)[:200]}") from None


class Distiller:
    """Service: every interval (or when nudged with a full batch waiting) distils pending responses."""

    name = "distiller"

    def __init__(
        self,
        db: Database,
        memory: MemoryStore,
        provider: Callable[[], LLMProvider],
        model: str,
        clock: Callable[[], float],
        interval_seconds: float = 60.0,
        batch_size: int = 8,
        max_memories: int = 5,
        max_tokens: int = 512,
        merge_similarity: float = 0.8,
        ambient: AmbientRunner | None = None,
        enabled: bool = True,
    ) -> None:
        self.db = db
        self.distill_log = DistillLog(db)
        self.memory = memory
        self.provider = provider
        self.model = model
        self.clock = clock
        self.interval_seconds = interval_seconds
        self.batch_size = batch_size
        self.max_memories = max_memories
        self.max_tokens = max_tokens
        self.merge_similarity = merge_similarity
        self.ambient = ambient
        self.enabled = enabled
        self._nudged = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.passes = 0
        self.created = 0
        self.merged = 0
        self.superseded = 0
        self.last_problem = ""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._loop(), name="distiller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def nudge(self) -> None:
        """New responses exist: distil now if a full batch waits, else at the next interval."""
        self._nudged.set()

    def on_event(self, event: Event) -> None:
        """Bus subscriber: an agent response arrived."""
        if event.source.startswith("agent:") or (
            event.topic.startswith("agent.") and event.topic.endswith(".response")
        ):
            self.nudge()

    def problems(self) -> list[Problem]:

        if self.last_problem:
            return [Problem("distiller", self.last_problem, "check memory.llm_base_url and memory.distill_model")]
        return []

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "model": self.model,
            "ambient_lane": self.ambient is not None,
            "passes": self.passes,
            "memories_created": self.created,
            "memories_merged": self.merged,
            "memories_superseded": self.superseded,
        }

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.interval_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudged.wait(), max(0.0, deadline - loop.time()))
            self._nudged.clear()
            due = loop.time() >= deadline
            if not due and await self.pending_count() < self.batch_size:
                continue
            try:
                while await self.run_once() >= self.batch_size:
                    pass
            except Exception as error:
                log.warning("distiller: pass failed: %s", error)
            deadline = loop.time() + self.interval_seconds

    # -- one pass ------------------------------------------------------------------------------

    async def pending_count(self) -> int:
        return await self.distill_log.pending_count()

    async def pending(self, limit: int) -> list[PendingResponse]:
        return [
            PendingResponse(
                id=row.id,
                event_id=row.event_id,
                agent_id=row.agent_id,
                trace_id=row.trace_id,
                summary=row.summary or "",
                text=row.raw_text or "",
                taint=join(row.taint, row.event_taint),
                topic=row.topic or "",
                payload=(row.payload or "{}")[:TRANSCRIPT_CHARS],
                memory_scope=row.memory_scope,
            )
            for row in await self.distill_log.pending(limit)
        ]

    async def run_once(self) -> int:
        """Distil one batch; returns how many responses it handled (0 when none waited or the LLM is down)."""
        pending = await self.pending(self.batch_size)
        if not pending:
            return 0
        # One label per distillation prompt: untrusted responses never share a prompt with trusted ones, so the
        # memories of trusted runs stay trusted; the others wait for the next pass.
        batch = [response for response in pending if response.taint == pending[0].taint]
        candidates = await self._candidates(batch)
        try:
            output = await self._ask(batch, candidates)
        except LLMUnavailable as error:
            self.last_problem = f"distillation model unreachable: {error.detail}"
            return 0
        except LLMError as error:
            log.warning("distiller: unusable answer for %d responses: %s", len(batch), error.detail)
            await self._mark(batch, "unusable_answer", 0)
            self.last_problem = ""
            return len(batch)
        self.last_problem = ""
        await self.apply(batch, candidates, output)
        self.passes += 1
        return len(batch)

    async def _candidates(self, batch: list[PendingResponse]) -> list[Memory]:
        """Existing memories the model may merge into, only those whose label the batch already carries: what
        the prompt shows must not widen the label of the memories it writes."""
        label = set(join(*(response.taint for response in batch)))
        found: dict[str, Memory] = {}
        for response in batch:
            for memory in await self.memory.search(
                response.transcript(), response.scopes(), None, CANDIDATES_PER_RESPONSE
            ):
                if set(memory.taint) <= label:
                    found.setdefault(memory.id, memory)
        return list(found.values())

    async def _ask(self, batch: list[PendingResponse], candidates: list[Memory]) -> DistillOutput:
        scopes = sorted({scope for response in batch for scope in response.scopes()})
        relations = [NEW] + [f"{SAME_AS}{m.id}" for m in candidates] + [f"{SUPERSEDES}{m.id}" for m in candidates]
        request = ChatRequest(
            model=self.model,
            messages=distill_messages(batch, candidates, self.max_memories),
            json_schema=distill_schema(len(batch), scopes, relations, self.max_memories),
            temperature=0.0,
            max_tokens=self.max_tokens,
        )

        async def call() -> DistillOutput:
            result = await self.provider().chat(request)
            return parse_distill_output(result.text)

        if self.ambient is not None:
            answer: DistillOutput = await self.ambient(call)
            return answer
        return await call()

    async def apply(
        self, batch: list[PendingResponse], candidates: list[Memory], output: DistillOutput
    ) -> list[Decision]:
        """Insert, merge or supersede each distilled memory and mark the batch distilled, in one transaction."""
        now = self.clock()
        known = list(candidates)
        plan: list[tuple[Decision, Memory]] = []
        # The model read every response and candidate of the prompt before writing any memory.
        batch_label = join(*(response.taint for response in batch), *(memory.taint for memory in candidates))
        for item in output.memories[: self.max_memories]:
            if not 1 <= item.source <= len(batch) or not item.content.strip():
                continue
            origin = batch[item.source - 1]
            scope = item.scope if item.scope in origin.scopes() else origin.scopes()[0]
            memory = Memory(
                id=new_id("mem"),
                kind=item.kind,
                scope=scope,
                content=escape_text(item.content.strip()),  # SQLite cannot store a lone surrogate
                importance=min(1.0, max(0.0, item.importance)),
                source_event_id=origin.event_id,
                trace_id=origin.trace_id,
                agent_id=origin.agent_id,
                response_id=origin.id,
                taint=batch_label,
                created_by="distiller",
                created_at=now,
                updated_at=now,
            )
            decision = decide(memory.content, memory.scope, item.relation, known, self.merge_similarity)
            plan.append((decision, memory))
            if decision.action != "merge":
                known.append(memory)
            if decision.action == "supersede":
                known = [m for m in known if m.id != decision.target_id]

        def job(conn: sqlite3.Connection) -> list[tuple[int, str]]:
            inserted: list[tuple[int, str]] = []
            for decision, memory in plan:
                target = decision.target_id
                merged = decision.action == "merge" and target is not None
                if merged and merge_into(conn, str(target), memory.importance, memory.taint, now):
                    continue
                inserted.append((insert_memory(conn, memory), memory.content))
                if decision.action == "supersede" and decision.target_id is not None:
                    supersede(conn, decision.target_id, memory.id, now)
            mark_distilled(conn, [r.id for r in batch], "distilled", len(plan), now)
            return inserted

        inserted = await self.db.write(job)
        for seq, content in inserted:
            await self.memory.index_vector(seq, content)
        self.created += len(inserted)
        self.merged += sum(1 for d, _ in plan if d.action == "merge")
        self.superseded += sum(1 for d, _ in plan if d.action == "supersede")
        return [decision for decision, _ in plan]

    async def _mark(self, batch: list[PendingResponse], outcome: str, count: int) -> None:
        now = self.clock()
        await self.db.write(lambda conn: mark_distilled(conn, [r.id for r in batch], outcome, count, now))
