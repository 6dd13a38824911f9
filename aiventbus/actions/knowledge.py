"""set_knowledge and get_knowledge through the daemon's KnowledgeStore."""

from __future__ import annotations

from typing import Any, Protocol

from aiventbus.errors import ValidationFailed
from aiventbus.records.actions import ActionFailed, ActionScope, GetKnowledgeAction, HandlerResult, SetKnowledgeAction


class KnowledgeEntryLike(Protocol):
    key: str
    value: Any
    set_by: str
    updated_at: float
    taint: list[str]


class KnowledgeBackend(Protocol):
    """The part of `core.knowledge.KnowledgeStore` these actions use."""

    async def get(self, key: str) -> Any: ...

    async def set(self, key: str, value: Any, set_by: str, taint: list[str] | None = None) -> Any: ...


class KnowledgeActions:
    def __init__(self, store: KnowledgeBackend) -> None:
        self.store = store

    async def set(self, action: SetKnowledgeAction, scope: ActionScope) -> HandlerResult:
        try:
            await self.store.set(action.key, action.value, f"agent:{scope.agent_id}", taint=scope.taint)
        except ValidationFailed as error:
            raise ActionFailed(error.detail) from None
        data = {"key": action.key, "value": action.value, "set_by": f"agent:{scope.agent_id}", "taint": scope.taint}
        return HandlerResult(data)

    async def get(self, action: GetKnowledgeAction, scope: ActionScope) -> HandlerResult:
        try:
            entry = await self.store.get(action.key)
        except ValidationFailed as error:
            raise ActionFailed(error.detail) from None
        if entry is None:
            return HandlerResult({"key": action.key, "found": False, "value": None})
        return HandlerResult(
            {
                "key": action.key,
                "found": True,
                "value": entry.value,
                "set_by": entry.set_by,
                "updated_at": entry.updated_at,
                "taint": entry.taint,
            },
            taint=entry.taint,
        )
