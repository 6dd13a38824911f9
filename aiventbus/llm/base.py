"""The provider protocol every LLM backend implements, and the values that cross it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
TokenCallback = Callable[[str], Awaitable[None] | None]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[ChatMessage]
    json_schema: dict[str, Any] | None = None
    temperature: float = 0.2
    max_tokens: int | None = None
    keep_alive: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class ChatResult:
    text: str
    prompt_tokens: int = 0
    eval_tokens: int = 0
    duration_seconds: float = 0.0
    first_token_seconds: float | None = None


@dataclass(frozen=True)
class ModelCheck:
    """Whether the server answers and has the model; `fix` tells the user what to do when not."""

    ok: bool
    problem: str = ""
    fix: str = ""
    context_tokens: int | None = None
    models: list[str] = field(default_factory=list)


class LLMProvider(Protocol):
    """One LLM server. `chat` streams tokens to `on_token` and is cancellable at any await."""

    kind: str
    base_url: str

    async def chat(self, request: ChatRequest, on_token: TokenCallback | None = None) -> ChatResult:
        """Raises LLMUnavailable when the server or model cannot be reached, LLMError on a bad answer."""
        ...

    async def check(self, model: str) -> ModelCheck: ...

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]: ...

    async def close(self) -> None: ...
