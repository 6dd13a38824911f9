"""A run's prompt fitted into the model's window: built by the context engine, counted (by the server's tokenizer
where it has one, else estimated and padded), and rebuilt with a smaller context until the answer has its room."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiventbus.core.context import PromptBundle
from aiventbus.core.prompt_assembly import estimate_tokens
from aiventbus.core.token_budget import (
    FIT_ROUNDS,
    EstimateMargins,
    answer_room,
    padded,
    shrunk_context,
    templated_tokens,
)
from aiventbus.llm.base import ChatMessage, LLMProvider, count_tokens
from aiventbus.records.agents import AgentSpec
from aiventbus.records.events import Event

log = logging.getLogger(__name__)

# Turns the context's messages into the messages of one call (the first call sends them as built).
MessageShape = Callable[[list[ChatMessage]], list[ChatMessage]]


class ContextBuilder(Protocol):
    async def build(
        self, agent: AgentSpec, event: Event, system_prompt: str, context_tokens: int | None = None
    ) -> PromptBundle: ...


@dataclass(frozen=True)
class FittedPrompt:
    """The messages of one call, their token count (`counted`: by the server's tokenizer, else a padded estimate)
    and the unpadded estimate, which the usage the server reports back is compared with."""

    bundle: PromptBundle
    messages: list[ChatMessage]
    tokens: int
    estimate: int
    counted: bool


def as_built(messages: list[ChatMessage]) -> list[ChatMessage]:
    return messages


class PromptFitter:
    """Builds and fits prompts; learns per server (`server_of` an agent) how far the estimate counts low."""

    def __init__(self, context: ContextBuilder, server_of: Callable[[AgentSpec], str]) -> None:
        self.context = context
        self.server_of = server_of
        self.margins = EstimateMargins()

    async def fit(
        self,
        provider: LLMProvider,
        agent: AgentSpec,
        event: Event,
        prompt: str,
        window: int,
        shape: MessageShape = as_built,
        built: PromptBundle | None = None,
    ) -> FittedPrompt:
        """The call's messages (`shape` of the context's), rebuilt with a proportionally smaller context until they
        leave the answer its room in the window. Bounded: after FIT_ROUNDS rebuilds, or once a rebuild no longer
        shrinks the prompt (only required pieces left), the smallest one goes and max_tokens takes what is left."""
        room = window - answer_room(agent.max_tokens, window)
        context = window
        bundle = built or await self.context.build(agent, event, prompt, context)
        smallest = await self._measure(provider, agent, bundle, shape(bundle.messages))
        for _ in range(FIT_ROUNDS):
            if smallest.tokens <= room:
                return smallest
            context = shrunk_context(context, smallest.tokens, room)
            bundle = await self.context.build(agent, event, prompt, context)
            fitted = await self._measure(provider, agent, bundle, shape(bundle.messages))
            if fitted.tokens >= smallest.tokens:
                break
            smallest = fitted
        if smallest.tokens > room:
            log.warning(
                "agent %s: the prompt takes %d (%s) of %d tokens even at its smallest; the answer gets what is left",
                agent.id,
                smallest.tokens,
                "counted" if smallest.counted else "estimated",
                window,
            )
        return smallest

    async def _measure(
        self, provider: LLMProvider, agent: AgentSpec, bundle: PromptBundle, messages: list[ChatMessage]
    ) -> FittedPrompt:
        """The messages' tokens by the server's tokenizer where it has one, else the estimate padded by the margin
        learnt for that server."""
        estimate = templated_tokens(sum(estimate_tokens(m.content) for m in messages), len(messages))
        server = self.server_of(agent)
        counted = await count_tokens(provider, agent.model, "\n".join(m.content for m in messages))
        if counted is not None:
            real = templated_tokens(counted, len(messages))
            self.margins.observe(server, real, estimate)
            return FittedPrompt(bundle, messages, real, estimate, counted=True)
        return FittedPrompt(bundle, messages, padded(estimate, self.margins.margin(server)), estimate, counted=False)

    def learn(self, agent: AgentSpec, fitted: FittedPrompt, prompt_tokens: Any) -> None:
        """The prompt tokens the server reported (Ollama's prompt_eval_count, OpenAI usage; also with a cut answer)
        teach the margin."""
        if isinstance(prompt_tokens, int):
            self.margins.observe(self.server_of(agent), prompt_tokens, fitted.estimate)
