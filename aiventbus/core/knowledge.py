"""Key-value facts shared by every agent, pinned facts per agent, and the system facts filled in at start."""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from aiventbus.core.memory.search import RELEVANCE_THRESHOLD, content_terms, is_relevant, overlap_score
from aiventbus.errors import ValidationFailed
from aiventbus.labels import join
from aiventbus.platform.facts import collect_system_facts
from aiventbus.records.events import new_id
from aiventbus.store.database import Database
from aiventbus.store.knowledge import KnowledgeEntry, KnowledgeTable, PinnedFact
from aiventbus.values import check_value, escaped

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9_\-]{1,64}){0,15}$")
SET_BY_PATTERN = re.compile(r"^(user|system|agent:[A-Za-z0-9_\-]{1,100}|producer:[A-Za-z0-9_.\-]{1,100})$")
PIN_OWNER_PATTERN = re.compile(r"^(global|agent_[A-Za-z0-9_\-]{1,100})$")
MAX_KEY_CHARS = 200
MAX_FACT_CHARS = 2000
GLOBAL = "global"
# How people ask for what the `system.*` facts hold, in the words of their keys.
FACT_ALIASES = {
    "ram": "memory",
    "operating": "os",
    "machine": "hostname",
    "computer": "hostname",
    "host": "hostname",
    "architecture": "arch",
    "processor": "cpu",
    "core": "cpu",
    "graphic": "gpu",
    "distro": "release",
    "distribution": "release",
    "version": "release",
}
CANDIDATES_PER_MATCH = 5


def check_key(key: str) -> str:
    """Dotted names of letters, digits, _ and -: `user.pref.editor`."""
    if len(key) > MAX_KEY_CHARS or not KEY_PATTERN.match(key):
        raise ValidationFailed("key", "must be dotted names of letters, digits, _ or - (e.g. user.pref.editor)")
    return key


def check_set_by(set_by: str) -> str:
    if not SET_BY_PATTERN.match(set_by):
        raise ValidationFailed("set_by", "must be user, system, agent:<id> or producer:<name>")
    return set_by


def encode_value(value: Any, max_bytes: int) -> str:
    """The value as compact JSON, refused when it is not JSON, breaks a value rule (the detail names the path inside
    it and the rule, see aiventbus.values) or is too large."""
    check_value(value, "value")
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise ValidationFailed("value", "must be a JSON value") from None
    if len(text.encode()) > max_bytes:
        raise ValidationFailed("value", f"{len(text.encode())} bytes exceeds memory.knowledge_value_max_bytes")
    return text


def with_aliases(terms: builtins.list[str]) -> builtins.list[str]:
    """The terms plus the fact-key word each alias stands for."""
    extra = [FACT_ALIASES[term] for term in terms if term in FACT_ALIASES and FACT_ALIASES[term] not in terms]
    return [*terms, *dict.fromkeys(extra)]


def rank_facts(
    terms: builtins.list[str], entries: builtins.list[KnowledgeEntry], threshold: float = RELEVANCE_THRESHOLD
) -> builtins.list[tuple[KnowledgeEntry, float]]:
    """The entries whose key words the event's content terms cover well enough, best first (then newest)."""
    scored = [(entry, overlap_score(terms, content_terms(entry.key))) for entry in entries]
    relevant = [(entry, score) for entry, score in scored if is_relevant(score, threshold)]
    return sorted(relevant, key=lambda pair: (-pair[1], -pair[0].updated_at, pair[0].key))


def check_pin_owner(agent_id: str) -> str:
    if not PIN_OWNER_PATTERN.match(agent_id):
        raise ValidationFailed("agent_id", "must be an agent id (agent_...) or 'global'")
    return agent_id


class KnowledgeStore:
    """Durable facts: `get`, `set`, `list`, `delete`; pinned facts; system facts set at start."""

    name = "knowledge"

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        value_max_bytes: int = 65_536,
        configured_pins: dict[str, builtins.list[str]] | None = None,
        fact_source: Callable[[], dict[str, Any]] = collect_system_facts,
    ) -> None:
        self.table = KnowledgeTable(db)
        self.clock = clock
        self.value_max_bytes = value_max_bytes
        self.configured_pins = configured_pins or {}
        self.fact_source = fact_source
        self.system_facts_loaded = 0

    async def start(self) -> None:
        """Fill in the `system.*` facts (set_by `system`)."""
        facts = await asyncio.to_thread(self.fact_source)
        now = self.clock()
        rows = [
            (check_key(k), encode_value(escaped(v), self.value_max_bytes), "system", now, "[]")
            for k, v in facts.items()
        ]
        await self.table.upsert_many(rows)
        self.system_facts_loaded = len(rows)
        log.info("knowledge: %d system facts", len(rows))

    async def stop(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {"system_facts": self.system_facts_loaded}

    async def get(self, key: str) -> KnowledgeEntry | None:
        return await self.table.get(check_key(key))

    async def set(self, key: str, value: Any, set_by: str, taint: builtins.list[str] | None = None) -> KnowledgeEntry:
        """Write `key`; `taint` is the label of whatever produced the value (empty: the user or the daemon)."""
        text = encode_value(value, self.value_max_bytes)
        now = self.clock()
        label = join(taint or ())
        await self.table.upsert(check_key(key), text, check_set_by(set_by), now, label)
        return KnowledgeEntry(key, json.loads(text), set_by, now, label)

    async def list(self, prefix: str = "", limit: int = 100) -> builtins.list[KnowledgeEntry]:
        if len(prefix) > MAX_KEY_CHARS:
            raise ValidationFailed("prefix", f"at most {MAX_KEY_CHARS} characters")
        return await self.table.list_prefix(prefix, limit)

    async def delete(self, key: str) -> bool:
        """True when the key existed."""
        return await self.table.delete(check_key(key))

    async def matching_words(self, words: builtins.list[str], limit: int) -> builtins.list[KnowledgeEntry]:
        """Entries whose key contains any of `words` (no scoring: see `relevant`)."""
        return await self.table.matching_any([w.lower() for w in words], limit)

    async def relevant(self, text: str, limit: int) -> builtins.list[tuple[KnowledgeEntry, float]]:
        """The entries `text` is about, with their relevance (0-1), best first; `system.*` facts only when the text
        names what they hold (hostname, os, memory...), never for a generic word such as `user` or `system`."""
        terms = with_aliases(content_terms(text))
        candidates = await self.matching_words(terms, limit * CANDIDATES_PER_MATCH)
        return rank_facts(terms, candidates)[:limit]

    # -- pinned facts --------------------------------------------------------------------------

    async def pin(self, agent_id: str, fact: str) -> PinnedFact:
        text = fact.strip()
        if not text or len(text) > MAX_FACT_CHARS:
            raise ValidationFailed("fact", f"must be 1-{MAX_FACT_CHARS} characters")
        pinned = PinnedFact(new_id("pin"), check_pin_owner(agent_id), text, self.clock())
        await self.table.pin(pinned)
        return pinned

    async def unpin(self, agent_id: str, fact_id: str) -> bool:
        return await self.table.unpin(check_pin_owner(agent_id), fact_id)

    async def pinned_for(self, agent_id: str) -> builtins.list[PinnedFact]:
        """The agent's own and the global pins: from config first, then the ones set through the API."""
        owners = [GLOBAL] if agent_id == GLOBAL else [GLOBAL, agent_id]
        configured = [
            PinnedFact(f"config:{owner}:{i}", owner, fact, 0.0)
            for owner in owners
            for i, fact in enumerate(self.configured_pins.get(owner, []))
        ]
        return configured + await self.table.pinned(owners)
