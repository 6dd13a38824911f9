"""One agent run, in the order it happens: the context (fitted into the model's window), the LLM call (sent back
once when its answer does not parse), then the proposals, handed to the executor once the response is stored and
published as an event."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from aiventbus.config import OllamaConfig
from aiventbus.core.agent_registry import AgentRegistry
from aiventbus.core.bus import EventBus
from aiventbus.core.context import PromptBundle
from aiventbus.core.executor import RunContext
from aiventbus.core.prompt_fit import ContextBuilder, FittedPrompt, PromptFitter
from aiventbus.core.prompts import system_prompt
from aiventbus.core.scheduler import OutcomeKind, RunOutcome
from aiventbus.core.token_budget import answer_token_limit
from aiventbus.errors import ChainLimitExceeded, LLMError, LLMUnavailable, StructuredOutputError
from aiventbus.labels import join
from aiventbus.llm.base import ChatRequest, ChatResult, LLMProvider
from aiventbus.llm.registry import LLMRegistry
from aiventbus.llm.structured import (
    AgentResponse,
    agent_response_schema,
    parse_agent_response,
    repair_messages,
    summary_cap,
)
from aiventbus.records.actions import answer_schemas
from aiventbus.records.agents import AgentSpec, agent_source, response_topic
from aiventbus.records.events import Event, EventIn, new_id
from aiventbus.service import LiveFeed
from aiventbus.store.assignments import Assignment, AssignmentTable
from aiventbus.store.responses import ResponseRow
from aiventbus.telemetry import Metrics
from aiventbus.values import escaped

log = logging.getLogger(__name__)


# A retry at temperature 0 would replay the answer that just failed token for token (a runaway cut at max_tokens
# runs away again): from the second attempt on, sample at least this warm.
RETRY_MIN_TEMPERATURE = 0.4


def attempt_temperature(temperature: float, attempts_before: int) -> float:
    """The agent's temperature on its first attempt; at least RETRY_MIN_TEMPERATURE on a retry."""
    return temperature if attempts_before == 0 else max(temperature, RETRY_MIN_TEMPERATURE)


class ProposalHandler(Protocol):
    def available_actions(self, allowed: list[str] | None = None) -> list[str]: ...

    def prompt_section(self, allowed: list[str] | None = None) -> str: ...

    async def handle_proposals(self, proposals: list[Any], ctx: RunContext) -> Any: ...


@dataclass(frozen=True)
class RunPlan:
    """What a run asks of its agent's model: the provider, the system prompt (the agent's own, the actions the
    executor offers it, the response format), the window the prompt is fitted into, and those actions' schemas."""

    provider: LLMProvider
    system_prompt: str
    window: int
    actions: dict[str, dict[str, Any]]


@dataclass
class Exchange:
    """The run's calls: the context they were built from, every answer, and the last answer parsed (or why not)."""

    bundle: PromptBundle
    results: list[ChatResult]
    parsed: AgentResponse | StructuredOutputError


class AgentRunner:
    """Runs one claimed assignment; the scheduler decides when, this decides what happens."""

    def __init__(
        self,
        *,
        registry: AgentRegistry,
        bus: EventBus,
        table: AssignmentTable,
        llm: LLMRegistry,
        context: ContextBuilder,
        executor: ProposalHandler,
        hub: LiveFeed,
        metrics: Metrics,
        ollama: OllamaConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.bus = bus
        self.table = table
        self.llm = llm
        self.fitter = PromptFitter(context, self._server_of)
        self.executor = executor
        self.hub = hub
        self.metrics = metrics
        self.ollama = ollama
        self.clock = clock
        self._outage_started: dict[str, float] = {}

    # -- what the scheduler asks ---------------------------------------------------------------

    def base_url_of(self, agent: AgentSpec) -> str:
        return agent.base_url or self.ollama.base_url

    def server_key(self, assignment: Assignment) -> str:
        agent = self.registry.get(assignment.agent_id)
        return "" if agent is None else self._server_of(agent)

    def _server_of(self, agent: AgentSpec) -> str:
        return f"{agent.provider}:{self.base_url_of(agent)}"

    async def run(self, assignment: Assignment, worker: str) -> RunOutcome:
        agent = self.registry.get(assignment.agent_id)
        event = await self.bus.queries.get(assignment.event_id)
        if agent is None or event is None:
            missing = f"agent {assignment.agent_id}" if agent is None else f"event {assignment.event_id}"
            await self.table.fail(assignment.id, worker, self.clock(), f"{missing} no longer exists", None)
            return RunOutcome(OutcomeKind.dead, f"{missing} no longer exists")
        started = time.perf_counter()
        outcome = await self._run(agent, event, assignment, worker)
        elapsed = time.perf_counter() - started
        self.metrics.agent_runs.labels(agent.id, agent.model, outcome.kind.value).inc()
        self.metrics.agent_run_duration.labels(agent.id, agent.model, outcome.kind.value).observe(elapsed)
        return outcome

    # -- one run: context, then LLM, then proposals ----------------------------------------------

    async def _run(self, agent: AgentSpec, event: Event, assignment: Assignment, worker: str) -> RunOutcome:
        plan = self._plan(agent, assignment)
        try:
            fitted = await self.fitter.fit(plan.provider, agent, event, plan.system_prompt, plan.window)
            exchange = await self._ask(agent, event, assignment, plan, fitted)
        except LLMUnavailable as error:
            await self._outage(agent, error)
            return RunOutcome(OutcomeKind.unavailable, error.detail)
        except LLMError as error:
            return RunOutcome(OutcomeKind.retry, error.detail)
        if isinstance(exchange.parsed, StructuredOutputError):
            return await self._parse_failure(agent, event, assignment, worker, exchange, exchange.parsed)
        return await self._finish(agent, event, assignment, worker, exchange, exchange.parsed)

    def _plan(self, agent: AgentSpec, assignment: Assignment) -> RunPlan:
        """The system prompt lists the actions the executor offers this agent, so the executor is asked first."""
        return RunPlan(
            provider=self.llm.provider(agent.provider, self.base_url_of(agent), lane=assignment.lane),
            system_prompt=system_prompt(agent, self.executor.prompt_section(agent.allowed_actions)),
            window=self.window_of(agent),
            actions=answer_schemas(self.executor.available_actions(agent.allowed_actions)),
        )

    def window_of(self, agent: AgentSpec) -> int:
        """The context window calls are fitted into: the server's own, else the agent's, else the stated default."""
        reported = self.llm.context_tokens(agent.provider, self.base_url_of(agent), agent.model)
        return reported or agent.context_tokens or self.ollama.context_tokens

    # -- the LLM call ----------------------------------------------------------------------------

    async def _ask(
        self, agent: AgentSpec, event: Event, assignment: Assignment, plan: RunPlan, fitted: FittedPrompt
    ) -> Exchange:
        """The model's answer, parsed; one that does not parse is sent back once with what was wrong with it."""
        request = self._request(agent, assignment, plan, fitted)
        answer = await self._chat(plan.provider, request, agent, assignment, fitted, attempt=1)
        await self._recovered(agent)
        exchange = Exchange(fitted.bundle, [answer], self._parse(agent, answer))
        if isinstance(exchange.parsed, StructuredOutputError):
            await self._repair(agent, event, assignment, plan, exchange, exchange.parsed)
        return exchange

    async def _repair(
        self,
        agent: AgentSpec,
        event: Event,
        assignment: Assignment,
        plan: RunPlan,
        exchange: Exchange,
        failure: StructuredOutputError,
    ) -> None:
        """The second and last call: the conversation so far, the start of the bad answer, and what to fix."""
        shape = functools.partial(repair_messages, raw=failure.raw, error=failure.detail)
        repaired = await self.fitter.fit(
            plan.provider, agent, event, plan.system_prompt, plan.window, shape, built=exchange.bundle
        )
        exchange.bundle = replace(exchange.bundle, taint=join(exchange.bundle.taint, repaired.bundle.taint))
        request = self._request(agent, assignment, plan, repaired)
        answer = await self._chat(plan.provider, request, agent, assignment, repaired, attempt=2)
        exchange.results.append(answer)
        exchange.parsed = self._parse(agent, answer)

    def _request(self, agent: AgentSpec, assignment: Assignment, plan: RunPlan, fitted: FittedPrompt) -> ChatRequest:
        max_tokens = answer_token_limit(agent.max_tokens, plan.window, fitted.tokens)
        return ChatRequest(
            model=agent.model,
            messages=fitted.messages,
            json_schema=agent_response_schema(plan.actions, summary_cap(max_tokens)),
            temperature=attempt_temperature(agent.temperature, assignment.attempts),
            max_tokens=max_tokens,
            keep_alive=self.ollama.keep_alive if agent.provider == "ollama" else None,
            # Reproducible per attempt, yet a retry samples differently from the try that failed.
            seed=assignment.attempts,
        )

    async def _chat(
        self,
        provider: LLMProvider,
        request: ChatRequest,
        agent: AgentSpec,
        assignment: Assignment,
        fitted: FittedPrompt,
        attempt: int,
    ) -> ChatResult:
        def on_token(text: str) -> None:
            self.hub.publish(
                "token",
                {
                    "assignment_id": assignment.id,
                    "agent_id": agent.id,
                    "event_id": assignment.event_id,
                    "text": text,
                    "attempt": attempt,
                },
                topic=assignment.topic,
            )

        started = time.perf_counter()
        try:
            answer = await provider.chat(request, on_token)
        except BaseException as error:
            result = {LLMUnavailable: "unavailable", asyncio.CancelledError: "cancelled"}.get(type(error), "error")
            self.llm.record_call(agent.id, agent.model, result, seconds=time.perf_counter() - started)
            if isinstance(error, LLMError):
                self.fitter.learn(agent, fitted, error.data.get("prompt_tokens"))
            raise
        self.llm.record_call(agent.id, agent.model, "ok", answer, seconds=time.perf_counter() - started)
        self.fitter.learn(agent, fitted, answer.prompt_tokens)
        return answer

    def _parse(self, agent: AgentSpec, answer: ChatResult) -> AgentResponse | StructuredOutputError:
        """The answer as a response, or (counted as a parse failure) what is wrong with it."""
        try:
            return parse_agent_response(answer.text)
        except StructuredOutputError as error:
            self.metrics.llm_parse_failures.labels(agent.id, agent.model).inc()
            return error

    # -- the response and its proposals -----------------------------------------------------------

    def _row(self, agent: AgentSpec, event: Event, assignment: Assignment, exchange: Exchange) -> ResponseRow:
        results = exchange.results
        response = exchange.parsed if isinstance(exchange.parsed, AgentResponse) else None
        return ResponseRow(
            id=new_id("resp"),
            event_id=event.id,
            agent_id=agent.id,
            assignment_id=assignment.id,
            trace_id=event.trace_id,
            model=agent.model,
            raw_text=results[-1].text,
            response=response.model_dump() if response is not None else None,
            summary=response.summary if response is not None else None,
            taint=join(exchange.bundle.taint, event.taint),
            prompt_tokens=sum(r.prompt_tokens for r in results),
            eval_tokens=sum(r.eval_tokens for r in results),
            created_at=self.clock(),
        )

    async def _finish(
        self,
        agent: AgentSpec,
        event: Event,
        assignment: Assignment,
        worker: str,
        exchange: Exchange,
        response: AgentResponse,
    ) -> RunOutcome:
        row = self._row(agent, event, assignment, exchange)
        if not await self.table.complete(assignment.id, worker, self.clock(), row):
            return RunOutcome(OutcomeKind.lost, "the claim was lost before the response was stored")
        published = await self._publish_response(agent, event, row, response)
        try:
            await self.executor.handle_proposals(
                response.proposed_actions,
                RunContext(
                    agent_id=agent.id,
                    event=event,
                    response_id=row.id,
                    response_event_id=published.id if published else None,
                    trace_id=event.trace_id,
                    taint=row.taint,
                    allowed_actions=agent.allowed_actions,
                ),
            )
        except Exception:
            log.exception("assignment %s: the executor failed on the proposals", assignment.id)
        return RunOutcome(OutcomeKind.completed)

    async def _publish_response(
        self, agent: AgentSpec, event: Event, row: ResponseRow, response: AgentResponse
    ) -> Event | None:
        """The response as an event (parent = the event, same trace): the start of chain reactions."""
        try:
            published = await self.bus.publish(
                EventIn(
                    topic=event.output_topic or response_topic(agent.id),
                    # Escaped: a proposal breaking a value rule is refused by the executor, not lost with the response.
                    payload=escaped({**response.model_dump(), "agent_id": agent.id, "response_id": row.id}),
                    parent_event=event.id,
                    source=agent_source(agent.id),
                    taint=row.taint,
                )
            )
        except ChainLimitExceeded:
            return None  # the bus reported it as system.chain_limit
        await self.table.set_response_event(row.id, published.id)
        return published

    async def _parse_failure(
        self,
        agent: AgentSpec,
        event: Event,
        assignment: Assignment,
        worker: str,
        exchange: Exchange,
        error: StructuredOutputError,
    ) -> RunOutcome:
        row = self._row(agent, event, assignment, exchange)
        if not await self.table.dead_letter(assignment.id, worker, self.clock(), f"parse failure: {error.detail}", row):
            return RunOutcome(OutcomeKind.lost, "the claim was lost")
        await self.bus.publish_system(
            "parse_failure",
            {
                "agent_id": agent.id,
                "model": agent.model,
                "assignment_id": assignment.id,
                "event_id": event.id,
                "response_id": row.id,
                "error": error.detail,
                "raw": error.raw[:16384],
            },
            trace_id=event.trace_id,
            parent_event=event.id,
        )
        return RunOutcome(OutcomeKind.dead, f"parse failure: {error.detail}")

    # -- LLM outages ---------------------------------------------------------------------------

    async def _outage(self, agent: AgentSpec, error: LLMUnavailable) -> None:
        """One system.llm_unavailable per outage of a (server, model); daemon.llm shows it in the status."""
        base_url = self.base_url_of(agent)
        self.llm.note_failure(agent.provider, base_url, agent.model, error.detail, error.fix)
        key = f"{agent.provider}:{base_url}:{agent.model}"
        if key in self._outage_started:
            return
        self._outage_started[key] = self.clock()
        await self.bus.publish_system(
            "llm_unavailable",
            {
                "provider": agent.provider,
                "base_url": base_url,
                "model": agent.model,
                "detail": error.detail,
                "fix": error.fix,
            },
        )

    async def _recovered(self, agent: AgentSpec) -> None:
        base_url = self.base_url_of(agent)
        self.llm.note_success(agent.provider, base_url, agent.model)
        since = self._outage_started.pop(f"{agent.provider}:{base_url}:{agent.model}", None)
        if since is None:
            return
        await self.bus.publish_system(
            "llm_recovered",
            {
                "provider": agent.provider,
                "base_url": base_url,
                "model": agent.model,
                "down_seconds": round(self.clock() - since, 3),
            },
        )
