"""Context engine: token-bounded prompt assembly from the event, its refs, the agent's transcript, pinned facts,
knowledge and recalled memories. The pure parts (budgeting, piece texts, message layout) are in `prompt_assembly`;
`ContextEngine` does the I/O."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiventbus.core.knowledge import KnowledgeStore
from aiventbus.core.memory.store import MemoryStore
from aiventbus.core.prompt_assembly import (
    REF_TEXT_CHARS,
    Piece,
    assemble,
    estimate_tokens,
    event_line,
    event_text,
    examples_text,
    exchange_belongs,
    fit_to_budget,
    is_conversation,
    knowledge_pieces,
    prompt_budget,
    question_of,
    search_text,
    truncate_to_tokens,
    without_known_facts,
    worked_examples,
)
from aiventbus.labels import join
from aiventbus.llm.base import ChatMessage
from aiventbus.records.agents import AgentSpec, agent_slug
from aiventbus.records.events import Event, lane_of
from aiventbus.redaction import mask_secrets
from aiventbus.store.agents import AgentTable
from aiventbus.store.assignments import AssignmentTable
from aiventbus.store.database import Database
from aiventbus.store.events import EventQueries
from aiventbus.store.knowledge import KnowledgeEntry
from aiventbus.values import load_stored

TURN_TEXT_CHARS = 1500
KNOWLEDGE_MATCHES = 10


@dataclass(frozen=True)
class Included:
    kind: str
    ref: str
    tokens: int

    def to_api(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "tokens": self.tokens}


@dataclass(frozen=True)
class TranscriptTurn:
    """One earlier run of an agent: the event it saw and what it answered."""

    response_id: str
    event_id: str
    topic: str
    payload: str
    summary: str | None
    answer: str
    taint: list[str]
    created_at: float
    parsed: bool = True  # False: the answer was not valid even after the repair (shown, never replayed)

    def to_api(self) -> dict[str, Any]:
        return {
            "response_id": self.response_id,
            "event_id": self.event_id,
            "topic": self.topic,
            "payload": load_stored(self.payload),
            "summary": self.summary,
            "answer": self.answer,
            "taint": self.taint,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class PromptBundle:
    """The messages for the LLM, the untrusted sources of everything in them, and what was placed."""

    messages: list[ChatMessage]
    taint: list[str]
    included: list[Included]
    token_estimate: int
    dropped: list[Included] = field(default_factory=list)


class ContextEngine:
    """`build(agent, event, system_prompt) -> PromptBundle` within the agent's context budget."""

    def __init__(
        self,
        db: Database,
        knowledge: KnowledgeStore,
        memory: MemoryStore,
        default_context_tokens: int,
        answer_tokens: int,
        transcript_turns: int,
        recall_limit: int,
        agent_ids: Callable[[], Awaitable[set[str]]] | None = None,
        secrets: Callable[[], Sequence[str]] = tuple,
        interactive_prefixes: Sequence[str] = ("user.",),
    ) -> None:
        self.db = db
        self.events = EventQueries(db)
        self.responses = AssignmentTable(db)
        self.knowledge = knowledge
        self.memory = memory
        self.default_context_tokens = default_context_tokens
        self.answer_tokens = answer_tokens
        self.transcript_turns = transcript_turns
        self.recall_limit = recall_limit
        self.agent_ids = agent_ids or AgentTable(db).ids
        self.secrets = secrets
        self.interactive_prefixes = tuple(interactive_prefixes)

    async def build(
        self, agent: AgentSpec, event: Event, system_prompt: str, context_tokens: int | None = None
    ) -> PromptBundle:
        """Everything for one agent run; `context_tokens` (e.g. from the server) beats the agent's and default."""
        window = context_tokens or agent.context_tokens or self.default_context_tokens
        budget = prompt_budget(window, agent.max_tokens or self.answer_tokens)
        query = search_text(event)
        conversation = is_conversation(event, self.interactive_prefixes)
        question = question_of(event) if conversation else None
        history = await self._transcript(agent, event)
        recent_events = any(piece.kind == "recent" for piece in history)
        examples = worked_examples(budget, recent_events) if question else ()
        system = Piece("system", "system_prompt", system_prompt, 1.0, required=True)
        shots = Piece("system", "examples", examples_text(examples), 1.0, required=True)
        room = max(64, budget - system.tokens - shots.tokens - 64)
        text, heading = (f"Question: {question}", "") if question else (event_text(event), "Event:\n")
        head = Piece(
            "event",
            event.id,
            truncate_to_tokens(text, room),
            1.0,
            event.created_at,
            required=True,
            taint=tuple(event.taint),
            heading=heading,
        )
        pieces = [system, shots, head] if examples else [system, head]
        pieces += await self._refs(event)
        pieces += history
        pieces += await self._pinned(agent)
        facts = await self.knowledge.relevant(query, KNOWLEDGE_MATCHES)
        pieces += knowledge_pieces(facts)
        pieces += await self._memories(agent, event, query, [entry for entry, _ in facts])
        kept, dropped = fit_to_budget(pieces, budget)
        taint = join(*(piece.taint for piece in kept))
        messages = [
            ChatMessage(message.role, mask_secrets(message.content, self.secrets()))
            for message in assemble(system_prompt, kept, taint, examples)
        ]
        return PromptBundle(
            messages=messages,
            taint=taint,
            included=[Included(p.kind, p.ref, p.tokens) for p in kept],
            token_estimate=sum(estimate_tokens(m.content) for m in messages),
            dropped=[Included(p.kind, p.ref, p.tokens) for p in dropped],
        )

    async def recall_scopes(self, agent: AgentSpec, event: Event) -> list[str]:
        """global, user, the agent's own scopes, and the event's memory_scope unless it is another agent's."""
        own = [agent.id, agent_slug(agent.id)]
        scopes = ["global", "user", *own]
        scope = event.memory_scope
        if scope and scope not in scopes:
            others = {
                name for other in await self.agent_ids() if other != agent.id for name in (other, agent_slug(other))
            }
            if scope not in others:
                scopes.append(scope)
        return scopes

    async def _refs(self, event: Event) -> list[Piece]:
        refs = await self.events.get_many(event.context_refs)
        order = {ref: i for i, ref in enumerate(event.context_refs)}
        return [
            Piece(
                "context_ref",
                ref.id,
                event_line(ref.topic, ref.payload, REF_TEXT_CHARS),
                0.9,
                ref.created_at,
                taint=tuple(ref.taint),
            )
            for ref in sorted(refs, key=lambda ref: order[ref.id])
        ]

    async def recent_transcript(
        self, agent_id: str, limit: int, exclude_event: str | None = None
    ) -> list[TranscriptTurn]:
        """The agent's latest responses with the events that caused them, newest first."""
        return [
            TranscriptTurn(
                response_id=row.response_id,
                event_id=row.event_id,
                topic=row.topic,
                payload=row.payload,
                summary=row.summary,
                answer=row.response or row.raw_text or "",
                parsed=row.response is not None,
                taint=join(row.taint, row.event_taint),
                created_at=row.created_at,
            )
            for row in await self.responses.transcript(agent_id, limit, exclude_event)
        ]

    async def _transcript(self, agent: AgentSpec, event: Event) -> list[Piece]:
        """Earlier questions with their answers as chat turns; the other events the agent handled meanwhile as a list
        of recent events without its answers to them (an answer about a file event is what a small model would
        repeat as the answer to the next question)."""
        if self.transcript_turns <= 0 or not is_conversation(event, self.interactive_prefixes):
            return []
        pieces = []
        question = question_of(event) or ""
        latest_exchange = True
        turns = await self.recent_transcript(agent.id, self.transcript_turns, event.id)
        # A broken answer in the transcript is what a small model copies next: only valid turns are replayed.
        for age, turn in enumerate(turn for turn in turns if turn.parsed):
            relevance = max(0.3, 0.8 - 0.05 * age)
            payload = load_stored(turn.payload)
            taint = tuple(turn.taint)
            if lane_of(turn.topic, list(self.interactive_prefixes), []) != "interactive":
                line = event_line(turn.topic, payload, TURN_TEXT_CHARS)
                pieces.append(Piece("recent", turn.event_id, line, relevance, turn.created_at, taint=taint))
                continue
            text = payload.get("text") if isinstance(payload, dict) else None
            earlier = text if isinstance(text, str) else json.dumps(payload, ensure_ascii=False)
            belongs = exchange_belongs(question, earlier, latest=latest_exchange)
            latest_exchange = False
            if not belongs:
                continue
            asked = f"Question: {text}" if isinstance(text, str) and text.strip() else f"Event {turn.topic}: {payload}"
            reply = turn.answer[:TURN_TEXT_CHARS]
            pieces.append(
                Piece(
                    "transcript",
                    turn.response_id,
                    asked[:TURN_TEXT_CHARS],
                    relevance,
                    turn.created_at,
                    taint=taint,
                    reply=reply,
                )
            )
        return pieces

    async def _pinned(self, agent: AgentSpec) -> list[Piece]:
        return [
            Piece("pinned", pin.id, f"- {pin.fact}", 0.95, pin.created_at)
            for pin in await self.knowledge.pinned_for(agent.id)
        ]

    async def _memories(self, agent: AgentSpec, event: Event, query: str, facts: list[KnowledgeEntry]) -> list[Piece]:
        scopes = await self.recall_scopes(agent, event)
        recalled = without_known_facts(await self.memory.recall(scopes, query, self.recall_limit), facts)
        return [
            Piece(
                "memory",
                memory.id,
                f"- [{memory.kind}, {memory.scope}] {memory.content}",
                0.4 + 0.4 * (memory.score or 0.0) + 0.1 * memory.importance,
                memory.created_at,
                taint=tuple(memory.taint),
            )
            for memory in recalled
        ]


__all__ = ["ContextEngine", "Included", "PromptBundle", "TranscriptTurn"]
