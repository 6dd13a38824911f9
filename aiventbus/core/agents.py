"""Agents and their routing rules (the registry), and one agent run: prompt, stream, parse, store, publish, act."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from aiventbus.actions.models import answer_schemas
from aiventbus.api.hub import Hub
from aiventbus.config import OllamaConfig
from aiventbus.core.agent_spec import (
    AgentIn,
    AgentPatch,
    AgentSpec,
    RoutingRule,
    RoutingRuleIn,
    RoutingRulePatch,
    agent_id_for,
    agent_source,
    response_topic,
)
from aiventbus.core.bus import EventBus
from aiventbus.core.context import PromptBundle, estimate_tokens
from aiventbus.core.events import Event, EventIn, new_id
from aiventbus.core.executor import RunContext
from aiventbus.core.prompts import system_prompt
from aiventbus.core.scheduler import OutcomeKind, RunOutcome
from aiventbus.core.token_budget import (
    FIT_ROUNDS,
    EstimateMargins,
    answer_room,
    answer_token_limit,
    padded,
    shrunk_context,
    templated_tokens,
)
from aiventbus.errors import (
    ChainLimitExceeded,
    LLMError,
    LLMUnavailable,
    NotFound,
    StructuredOutputError,
    ValidationFailed,
)
from aiventbus.labels import join
from aiventbus.llm.base import ChatMessage, ChatRequest, ChatResult, LLMProvider, ModelCheck, count_tokens
from aiventbus.llm.registry import LLMRegistry
from aiventbus.llm.structured import (
    AgentResponse,
    agent_response_schema,
    parse_agent_response,
    repair_messages,
    summary_cap,
)
from aiventbus.store.agents import AgentTable
from aiventbus.store.assignments import Assignment, AssignmentTable, ResponseRow
from aiventbus.telemetry import Metrics
from aiventbus.values import escaped

log = logging.getLogger(__name__)


# A retry at temperature 0 would replay the answer that just failed token for token (a runaway cut at max_tokens
# runs away again): from the second attempt on, sample at least this warm.
RETRY_MIN_TEMPERATURE = 0.4


def attempt_temperature(temperature: float, attempts_before: int) -> float:
    """The agent's temperature on its first attempt; at least RETRY_MIN_TEMPERATURE on a retry."""
    return temperature if attempts_before == 0 else max(temperature, RETRY_MIN_TEMPERATURE)


@dataclass(frozen=True)
class FittedPrompt:
    """The messages of one call, their token count (`counted`: by the server's tokenizer, else a padded estimate)
    and the unpadded estimate, which the usage the server reports back is compared with."""

    bundle: PromptBundle
    messages: list[ChatMessage]
    tokens: int
    estimate: int
    counted: bool


def _as_built(messages: list[ChatMessage]) -> list[ChatMessage]:
    return messages


class ContextBuilder(Protocol):
    async def build(
        self, agent: AgentSpec, event: Event, system_prompt: str, context_tokens: int | None = None
    ) -> PromptBundle: ...


class ProposalHandler(Protocol):
    def available_actions(self, allowed: list[str] | None = None) -> list[str]: ...

    def prompt_section(self, allowed: list[str] | None = None) -> str: ...

    async def handle_proposals(self, proposals: list[Any], ctx: RunContext) -> Any: ...


class ModelChecker(Protocol):
    """daemon.llm's check: records whether the server has the model, for the status."""

    async def check(self, kind: str, base_url: str | None, model: str, *, fresh: bool = False) -> ModelCheck: ...


class AgentRegistry:
    """Agents and routing rules, kept in memory for the router and written through to the store."""

    name = "agents"

    def __init__(
        self,
        table: AgentTable,
        default_model: str,
        clock: Callable[[], float] = time.time,
        checker: ModelChecker | None = None,
    ) -> None:
        self.table = table
        self.default_model = default_model
        self.clock = clock
        self.checker = checker
        self._agents: dict[str, AgentSpec] = {}
        self._rules: dict[str, RoutingRule] = {}
        self._checks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._agents = {agent.id: agent for agent in await self.table.load_agents()}
        self._rules = {rule.id: rule for rule in await self.table.load_rules()}
        for agent in self._agents.values():
            self._check_model(agent)

    async def stop(self) -> None:
        for task in self._checks:
            task.cancel()
        await asyncio.gather(*self._checks, return_exceptions=True)

    def _check_model(self, agent: AgentSpec) -> None:
        """Ask the agent's server about its model in the background, so the status shows a missing one at once."""
        if self.checker is None or not agent.enabled:
            return
        task = asyncio.create_task(self.checker.check(agent.provider, agent.base_url, agent.model, fresh=True))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    def status(self) -> dict[str, int]:
        return {
            "agents": len(self._agents),
            "enabled": len(self.enabled_ids()),
            "routing_rules": len(self._rules),
        }

    # -- agents --------------------------------------------------------------------------------

    def get(self, agent_id: str) -> AgentSpec | None:
        return self._agents.get(agent_id)

    def require(self, agent_id: str) -> AgentSpec:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise NotFound("agent", agent_id)
        return agent

    def all(self) -> list[AgentSpec]:
        return sorted(self._agents.values(), key=lambda agent: (agent.created_at, agent.id))

    def enabled_ids(self) -> set[str]:
        return {agent.id for agent in self._agents.values() if agent.enabled}

    async def create(self, incoming: AgentIn) -> AgentSpec:
        now = self.clock()
        data = incoming.model_dump()
        data["model"] = incoming.model or self.default_model
        agent = AgentSpec(id=agent_id_for(incoming.name), created_at=now, updated_at=now, **data)
        await self.table.insert_agent(agent)
        self._agents[agent.id] = agent
        self._check_model(agent)
        return agent

    async def update(self, agent_id: str, patch: AgentPatch) -> AgentSpec:
        current = self.require(agent_id)
        changes = {name: getattr(patch, name) for name in patch.model_fields_set}
        for required in ("model", "description", "system_prompt", "provider", "enabled", "temperature"):
            if required in changes and changes[required] is None:
                raise ValidationFailed(required, "cannot be null")
        updated = current.model_copy(update={**changes, "updated_at": self.clock()})
        AgentSpec.model_validate(updated.model_dump())
        await self.table.update_agent(updated)
        self._agents[agent_id] = updated
        if changes.keys() & {"provider", "base_url", "model", "enabled"}:
            self._check_model(updated)
        return updated

    async def set_enabled(self, agent_id: str, enabled: bool) -> AgentSpec:
        return await self.update(agent_id, AgentPatch(enabled=enabled))

    async def delete(self, agent_id: str) -> None:
        self.require(agent_id)
        await self.table.delete_agent(agent_id)
        self._agents.pop(agent_id, None)
        self._rules = {rid: rule for rid, rule in self._rules.items() if rule.consumer_id != agent_id}

    # -- routing rules -------------------------------------------------------------------------

    def rules(self) -> list[RoutingRule]:
        return sorted(self._rules.values(), key=lambda rule: (rule.priority, rule.created_at, rule.id))

    def require_rule(self, rule_id: str) -> RoutingRule:
        rule = self._rules.get(rule_id)
        if rule is None:
            raise NotFound("routing rule", rule_id)
        return rule

    def _check_consumer(self, consumer_id: str) -> None:
        if consumer_id not in self._agents:
            raise ValidationFailed("consumer_id", f"agent {consumer_id} does not exist (create it first)")

    async def create_rule(self, incoming: RoutingRuleIn) -> RoutingRule:
        self._check_consumer(incoming.consumer_id)
        rule = RoutingRule(id=new_id("rule"), created_at=self.clock(), **incoming.model_dump())
        await self.table.insert_rule(rule)
        self._rules[rule.id] = rule
        return rule

    async def update_rule(self, rule_id: str, patch: RoutingRulePatch) -> RoutingRule:
        current = self.require_rule(rule_id)
        changes = {name: getattr(patch, name) for name in patch.model_fields_set}
        for required in ("name", "topic_pattern", "consumer_id", "priority", "enabled"):
            if required in changes and changes[required] is None:
                raise ValidationFailed(required, "cannot be null")
        if "consumer_id" in changes:
            self._check_consumer(changes["consumer_id"])
        updated = current.model_copy(update=changes)
        await self.table.update_rule(updated)
        self._rules[rule_id] = updated
        return updated

    async def delete_rule(self, rule_id: str) -> None:
        self.require_rule(rule_id)
        await self.table.delete_rule(rule_id)
        self._rules.pop(rule_id, None)


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
        hub: Hub,
        metrics: Metrics,
        ollama: OllamaConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.bus = bus
        self.table = table
        self.llm = llm
        self.context = context
        self.executor = executor
        self.hub = hub
        self.metrics = metrics
        self.ollama = ollama
        self.clock = clock
        self._outage_started: dict[str, float] = {}
        self.margins = EstimateMargins()

    # -- what the scheduler asks ---------------------------------------------------------------

    def base_url_of(self, agent: AgentSpec) -> str:
        return agent.base_url or self.ollama.base_url

    def server_key(self, assignment: Assignment) -> str:
        agent = self.registry.get(assignment.agent_id)
        return "" if agent is None else f"{agent.provider}:{self.base_url_of(agent)}"

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

    # -- one run -------------------------------------------------------------------------------

    def window_of(self, agent: AgentSpec) -> int:
        """The context window calls are fitted into: the server's own, else the agent's, else the stated default."""
        reported = self.llm.context_tokens(agent.provider, self.base_url_of(agent), agent.model)
        return reported or agent.context_tokens or self.ollama.context_tokens

    async def _run(self, agent: AgentSpec, event: Event, assignment: Assignment, worker: str) -> RunOutcome:
        provider = self.llm.provider(agent.provider, self.base_url_of(agent), lane=assignment.lane)
        prompt = system_prompt(agent, self.executor.prompt_section(agent.allowed_actions))
        window = self.window_of(agent)
        actions = answer_schemas(self.executor.available_actions(agent.allowed_actions))
        results: list[ChatResult] = []
        try:
            fitted = await self._fit(provider, agent, event, prompt, window, _as_built)
            bundle = fitted.bundle
            max_tokens = answer_token_limit(agent.max_tokens, window, fitted.tokens)
            request = ChatRequest(
                model=agent.model,
                messages=fitted.messages,
                json_schema=agent_response_schema(actions, summary_cap(max_tokens)),
                temperature=attempt_temperature(agent.temperature, assignment.attempts),
                max_tokens=max_tokens,
                keep_alive=self.ollama.keep_alive if agent.provider == "ollama" else None,
                # Reproducible per attempt, yet a retry samples differently from the try that failed.
                seed=assignment.attempts,
            )
            results.append(await self._chat(provider, request, agent, assignment, fitted, attempt=1))
            await self._recovered(agent)
            try:
                response = parse_agent_response(results[-1].text)
            except StructuredOutputError as first:
                self.metrics.llm_parse_failures.labels(agent.id, agent.model).inc()
                shape = functools.partial(repair_messages, raw=first.raw, error=first.detail)
                repaired = await self._fit(provider, agent, event, prompt, window, shape, built=bundle)
                bundle = replace(bundle, taint=join(bundle.taint, repaired.bundle.taint))
                max_tokens = answer_token_limit(agent.max_tokens, window, repaired.tokens)
                repair = replace(
                    request,
                    messages=repaired.messages,
                    json_schema=agent_response_schema(actions, summary_cap(max_tokens)),
                    max_tokens=max_tokens,
                )
                results.append(await self._chat(provider, repair, agent, assignment, repaired, attempt=2))
                try:
                    response = parse_agent_response(results[-1].text)
                except StructuredOutputError as second:
                    self.metrics.llm_parse_failures.labels(agent.id, agent.model).inc()
                    return await self._parse_failure(agent, event, assignment, worker, bundle, results, second)
        except LLMUnavailable as error:
            await self._outage(agent, error)
            return RunOutcome(OutcomeKind.unavailable, error.detail)
        except LLMError as error:
            return RunOutcome(OutcomeKind.retry, error.detail)
        return await self._finish(agent, event, assignment, worker, bundle, results, response)

    # -- the token budget ----------------------------------------------------------------------

    async def _fit(
        self,
        provider: LLMProvider,
        agent: AgentSpec,
        event: Event,
        prompt: str,
        window: int,
        shape: Callable[[list[ChatMessage]], list[ChatMessage]],
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
        server = self._server_of(agent)
        counted = await count_tokens(provider, agent.model, "\n".join(m.content for m in messages))
        if counted is not None:
            real = templated_tokens(counted, len(messages))
            self.margins.observe(server, real, estimate)
            return FittedPrompt(bundle, messages, real, estimate, counted=True)
        return FittedPrompt(bundle, messages, padded(estimate, self.margins.margin(server)), estimate, counted=False)

    def _learn(self, agent: AgentSpec, fitted: FittedPrompt, prompt_tokens: Any) -> None:
        """The prompt tokens the server reported (Ollama's prompt_eval_count, OpenAI usage; also with a cut answer)
        teach the margin."""
        if isinstance(prompt_tokens, int):
            self.margins.observe(self._server_of(agent), prompt_tokens, fitted.estimate)

    def _server_of(self, agent: AgentSpec) -> str:
        return f"{agent.provider}:{self.base_url_of(agent)}"

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
                self._learn(agent, fitted, error.data.get("prompt_tokens"))
            raise
        self.llm.record_call(agent.id, agent.model, "ok", answer, seconds=time.perf_counter() - started)
        self._learn(agent, fitted, answer.prompt_tokens)
        return answer

    def _row(
        self,
        agent: AgentSpec,
        event: Event,
        assignment: Assignment,
        bundle: PromptBundle,
        results: list[ChatResult],
        response: AgentResponse | None,
    ) -> ResponseRow:
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
            taint=join(bundle.taint, event.taint),
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
        bundle: PromptBundle,
        results: list[ChatResult],
        response: AgentResponse,
    ) -> RunOutcome:
        row = self._row(agent, event, assignment, bundle, results, response)
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
        bundle: PromptBundle,
        results: list[ChatResult],
        error: StructuredOutputError,
    ) -> RunOutcome:
        row = self._row(agent, event, assignment, bundle, results, None)
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
