"""The provider protocol every LLM backend implements, and the values that cross it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

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
    # Why generation ended, as the server said ("stop", "length"...); None when it did not say (old Ollama).
    finish_reason: str | None = None


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


@runtime_checkable
class TokenCounter(Protocol):
    """A provider whose server can count tokens with the model's own tokenizer."""

    async def count_tokens(self, model: str, text: str) -> int | None:
        """Tokens of `text` for `model`; None when the server offers no tokenizer or cannot be reached."""
        ...


async def count_tokens(provider: object, model: str, text: str) -> int | None:
    """The real token count where the provider can give one, else None (the caller estimates)."""
    if not isinstance(provider, TokenCounter):
        return None
    return await provider.count_tokens(model, text)


# Reasons that mean the model ended its answer itself; anything else (length, content_filter, abort...) is a cut.
COMPLETE_FINISH_REASONS = frozenset({"stop", "eos", "tool_calls", "function_call"})


def truncation_problem(reason: str | None, max_tokens: int | None, *, field: str = "finish_reason") -> str | None:
    """Why an answer that ended with `reason` is not a whole answer, or None when it is.

    No reason at all is a cut too: llama-cpp-python ends a stream it interrupts for another request with a plain
    `[DONE]`, and the half answer would otherwise look complete.
    """
    if reason in COMPLETE_FINISH_REASONS:
        return None
    if reason == "length":
        limit = f"max_tokens={max_tokens}" if max_tokens is not None else "the server's output limit"
        return f"the answer was cut at {limit} ({field}=length)"
    if reason is None:
        return f"the stream ended without a {field} (the server cut the answer, e.g. for another request)"
    return f"the answer was cut by the server ({field}={reason})"
