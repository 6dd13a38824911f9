"""The executor: validate proposals, ask the policy, run or park them, record everything, emit results.

Running an action is dispatching it to its handler in actions/ (`_build_handlers`); results go out through
core/action_results.py."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiventbus.actions.events import EventActions
from aiventbus.actions.files import BackupStore, FileActions
from aiventbus.actions.http import HttpActions, Resolver, system_resolver
from aiventbus.actions.knowledge import KnowledgeActions, KnowledgeBackend
from aiventbus.actions.notify import DesktopActions, DesktopPlatform
from aiventbus.actions.shell import ShellActions
from aiventbus.actions.tool_registry import ToolRegistry
from aiventbus.actions.tools import ToolActions
from aiventbus.config import Config
from aiventbus.core.action_results import ActionResults, bounded
from aiventbus.core.approvals import Approvals
from aiventbus.core.bus import EventBus
from aiventbus.core.policy import PolicyRules, decide
from aiventbus.core.shell_analysis import sensitive_targets
from aiventbus.errors import AiventbusError
from aiventbus.labels import join
from aiventbus.platform import Sandbox, current_sandbox
from aiventbus.records.actions import (
    ACTION_DOCS,
    ACTION_TYPES,
    RESULT_ORIGINS,
    Action,
    ActionFailed,
    ActionScope,
    HandlerResult,
    InvalidAction,
    ToolCallAction,
    action_content,
    canonical_json,
    parse_action,
)
from aiventbus.records.events import Event, new_id
from aiventbus.redaction import mask_secrets
from aiventbus.service import LiveFeed, Problem
from aiventbus.store.actions import ActionRecord, ActionStatus, ActionStore, BackupIndex, NewAction
from aiventbus.store.database import Database
from aiventbus.telemetry import Metrics
from aiventbus.values import escaped

log = logging.getLogger(__name__)
Handler = Callable[[Any, ActionScope], Awaitable[HandlerResult]]
T = TypeVar("T")


@dataclass(frozen=True)
class RunContext:
    """One agent run's proposals: who proposed them, in answer to what, and what the run had seen."""

    agent_id: str
    event: Event
    response_id: str | None
    response_event_id: str | None
    trace_id: str
    taint: list[str] = field(default_factory=list)
    allowed_actions: list[str] | None = None

    @property
    def label(self) -> list[str]:
        """The run's label: what its prompt held, which always includes the event it answered."""
        return join(self.taint, self.event.taint)


@dataclass(frozen=True)
class ActionOutcome:
    """What became of one proposal: executed, failed, pending, denied or invalid."""

    action_id: str | None
    action_type: str | None
    status: str
    rule: str
    reason: str
    result: dict[str, Any] | None = None
    error: str | None = None

    @classmethod
    def of(cls, record: ActionRecord) -> ActionOutcome:
        return cls(
            record.id, record.action_type, record.status.value, record.rule, record.reason, record.result, record.error
        )


class Executor:
    """Runs agents' proposed actions through the policy; `tool_registry` and `approvals` are public."""

    name = "executor"

    def __init__(
        self,
        config: Config,
        db: Database,
        bus: EventBus,
        hub: LiveFeed,
        metrics: Metrics,
        knowledge: KnowledgeBackend | None,
        platform: Callable[[], DesktopPlatform],
        clock: Callable[[], float] = time.time,
        daemon_port: Callable[[], int | None] = lambda: None,
        resolver: Resolver = system_resolver,
        secrets: Callable[[], Sequence[str]] = tuple,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.config = config
        self.bus = bus
        self.hub = hub
        self.metrics = metrics
        self.clock = clock
        self.daemon_port = daemon_port
        self.resolver = resolver
        self.secrets = secrets
        self.shell = ShellActions(config.policy, sandbox or current_sandbox(), self._confinement)
        self.knowledge = knowledge
        self.store = ActionStore(db)
        self.backups = BackupStore(config.backups_dir, BackupIndex(db), clock)
        self.tool_registry = ToolRegistry()
        self.approvals = Approvals(self.store, self, clock)
        self.results = ActionResults(bus, hub, self.store, config.bus)
        self._handlers = self._build_handlers(platform)

    def _build_handlers(self, platform: Callable[[], DesktopPlatform]) -> dict[str, Handler]:
        files = FileActions(self.backups, self.config.policy.file_max_bytes)
        desktop = self.desktop = DesktopActions(platform)
        events = EventActions(self.bus)
        handlers: dict[str, Handler] = {
            "emit_event": events.emit,
            "log": events.log,
            "notify": desktop.notify,
            "alert": desktop.alert,
            "open_app": desktop.open_app,
            "shell_exec": self.shell.run,
            "file_read": files.read,
            "file_write": files.write,
            "file_delete": files.delete,
            "http_request": HttpActions(self.config.tools, self.resolver).request,
            "tool_call": ToolActions(self.tool_registry).call,
        }
        if self.knowledge is not None:
            knowledge = KnowledgeActions(self.knowledge)
            handlers["set_knowledge"] = knowledge.set
            handlers["get_knowledge"] = knowledge.get
        return handlers

    # -- what agents are told ----------------------------------------------------------------

    def unavailable_reason(self, action_type: str) -> str | None:
        """Why `action_type` cannot run on this daemon now, or None when it can."""
        if action_type not in self._handlers:
            return f"{action_type} has no handler here (the knowledge store is not running)"
        if self.config.policy.trust_overrides.get(action_type) == "deny":
            return f"policy.trust_overrides.{action_type} is deny"
        if action_type == "http_request" and not self.config.tools.http_request_enabled:
            return "tools.http_request_enabled is off"
        if action_type == "tool_call" and not self.tool_registry.backends():
            return "no tool backend is registered"
        return self.desktop.unavailable(action_type)

    def available_actions(self, allowed: list[str] | None = None) -> list[str]:
        """Action types an agent may propose here: handled, enabled, possible on this desktop, and allowed."""
        return [
            action_type
            for action_type in ACTION_TYPES
            if (allowed is None or action_type in allowed) and self.unavailable_reason(action_type) is None
        ]

    def prompt_section(self, allowed: list[str] | None = None) -> str:
        """The system-prompt text listing the action types and tool backends this agent can use."""
        types = self.available_actions(allowed)
        if not types:
            return "## Actions\nYou cannot propose actions here: leave proposed_actions empty."
        lines = [
            "## Actions",
            'Each entry of "proposed_actions" is an object with "action_type" and the fields shown. Available:',
        ]
        for action_type in types:
            about, shape = ACTION_DOCS[action_type]
            fields = shape[1:] if shape != "{}" else "}"
            lines.append(f'- {action_type}: {about}. {{"action_type": "{action_type}", {fields}')
        if "tool_call" in types:
            lines += ["", "## Tool backends (use tool_call with these tool, method and params)"]
            lines.append(self.tool_registry.describe())
        return "\n".join(lines)

    # -- proposals ---------------------------------------------------------------------------

    async def handle_proposals(self, proposals: list[Any], ctx: RunContext) -> list[ActionOutcome]:
        """Validate, decide and run (or park, or refuse) each proposal in order."""
        return [await self._handle_one(proposal, ctx) for proposal in proposals]

    async def _handle_one(self, proposal: Any, ctx: RunContext) -> ActionOutcome:
        parent = ctx.response_event_id or ctx.event.id
        try:
            action = self._validate(proposal)
        except InvalidAction as error:
            return await self._reject(proposal, error, ctx, parent)
        action_type = action.action_type
        verdict, rule, reason = await self._judge(action, ctx)
        now = self.clock()
        status = {"auto": ActionStatus.approved, "confirm": ActionStatus.pending}.get(verdict, ActionStatus.denied)
        record = await self.store.insert(
            NewAction(
                id=new_id("act"),
                action_type=action_type,
                content_json=canonical_json(action_content(action)),
                status=status,
                verdict=verdict,
                rule=rule,
                reason=reason,
                agent_id=ctx.agent_id,
                response_id=ctx.response_id,
                event_id=ctx.event.id,
                response_event_id=ctx.response_event_id,
                trace_id=ctx.trace_id,
                taint=ctx.label,
                created_at=now,
                expires_at=now + self.config.policy.approval_ttl_seconds if status is ActionStatus.pending else None,
            )
        )
        if status is ActionStatus.approved:
            record = await self.run(record, action)
        else:
            record = await self.announce(record)
            if status is ActionStatus.pending:
                self.hub.publish("approval", record.model_dump(mode="json"), topic=f"action.{action_type}.pending")
        return ActionOutcome.of(record)

    def _validate(self, proposal: Any) -> Action:
        action = parse_action(proposal)
        if isinstance(action, ToolCallAction):
            problem = self.tool_registry.check_call(action.tool, action.method, action.params)
            if problem is not None:
                raise InvalidAction(problem, action.action_type)
        return action

    async def _judge(self, action: Action, ctx: RunContext) -> tuple[str, str, str]:
        """(verdict, rule, reason): availability first, then the policy with the run's taint."""
        action_type = action.action_type
        if ctx.allowed_actions is not None and action_type not in ctx.allowed_actions:
            return "deny", "agent.allowed_actions", f"agent {ctx.agent_id} may not propose {action_type}"
        unavailable = self.unavailable_reason(action_type)
        if unavailable is not None:
            return "deny", "executor.unavailable", f"{action_type} is not available here: {unavailable}"
        view = await self.policy_view(action)
        decision = decide(action_type, view, taint=ctx.label, rules=self.rules())
        if decision.verdict == "auto" and action_type == "shell_exec":
            unconfined = await self.shell.unconfined_reason()
            if unconfined is not None:
                return "confirm", "sandbox.unavailable", f"{unconfined}; {decision.reason}"
        return decision.verdict, decision.rule, decision.reason

    def _confinement(self) -> tuple[str, tuple[str, ...]]:
        """Where a confined command runs (home) and what the sandbox hides (protected and sensitive paths)."""
        rules = self.rules()
        return rules.home, sensitive_targets(rules.shell)

    def rules(self) -> PolicyRules:
        """The policy's rules now; paths in shell commands are judged as written and with symlinks followed."""
        port = self.daemon_port() or self.config.server.port
        return PolicyRules.from_config(self.config, daemon_port=port, resolve=os.path.realpath)

    def policy_view_sync(self, action: Action) -> dict[str, Any]:
        """The action as the policy reads it, plus the resolved path of a file action."""
        view = action_content(action)
        view.update(resolved_path_fact(view))
        return view

    async def policy_view(self, action: Action) -> dict[str, Any]:
        """policy_view_sync plus, for http_request, the addresses its host resolves to now."""
        view = self.policy_view_sync(action)
        if action.action_type == "http_request":
            parts = urlsplit(action.url)
            if parts.hostname:
                with contextlib.suppress(OSError):
                    view["_resolved"] = await self.resolver(parts.hostname, parts.port or 443)
        return view

    async def _reject(self, proposal: Any, error: InvalidAction, ctx: RunContext, parent: str) -> ActionOutcome:
        kind = "unknown_action" if error.unknown else "invalid_action"
        # Escaped: the proposal may break a value rule (that may be why it is refused), and the report must not.
        shown = escaped(proposal) if isinstance(proposal, dict) else {"value": repr(escaped(proposal))[:500]}
        await self.bus.publish_system(
            kind,
            {"agent_id": ctx.agent_id, "reason": error.reason, "proposal": bounded(shown, 8192)},
            trace_id=ctx.trace_id,
            parent_event=parent,
        )
        self.metrics.action_executions.labels(ctx.agent_id, error.action_type or "none", "invalid").inc()
        return ActionOutcome(None, error.action_type, "invalid", f"executor.{kind}", error.reason)

    # -- running -----------------------------------------------------------------------------

    async def run(self, record: ActionRecord, action: Action | None = None) -> ActionRecord:
        """Run an approved action, store its result, and publish it on the trace."""
        if action is None:
            action = parse_action(record.content)
        scope = ActionScope(
            record.id, record.agent_id, record.trace_id, record.parent_event_id, record.taint, record.decided_by
        )
        started = time.perf_counter()
        result: HandlerResult | None = None
        data: dict[str, Any] | None
        error: str | None
        try:
            result = await self._handlers[record.action_type](action, scope)
        except ActionFailed as failure:
            status, data, error = ActionStatus.failed, failure.data or None, failure.reason
        except AiventbusError as failure:
            status, data, error = ActionStatus.failed, None, failure.detail
        except Exception as failure:
            log.exception("action %s (%s) crashed", record.id, record.action_type)
            status, data, error = ActionStatus.failed, None, f"{type(failure).__name__}: {failure}"
        else:
            status, data, error = ActionStatus.executed, result.data, None
        elapsed = time.perf_counter() - started
        self.metrics.action_executions.labels(record.agent_id, record.action_type, status.value).inc()
        self.metrics.action_execution_duration.labels(record.action_type, status.value).observe(elapsed)
        origin = RESULT_ORIGINS.get(record.action_type)
        result_taint = join(record.taint, [origin] if origin else (), result.taint if result is not None else ())
        data, error = self._without_secrets(data), self._without_secrets(error)
        finished = await self.store.finish(record.id, status, self.clock(), data, error, result_taint)
        return await self.results.publish(finished, result.source if result is not None else "executor")

    def _without_secrets(self, value: T) -> T:
        """`value` with the daemon's own secrets (the API token) and well-known secret shapes masked."""
        return mask_secrets(value, self.secrets())

    async def announce(self, record: ActionRecord) -> ActionRecord:
        """Count and publish a decision that ran nothing (denied, expired)."""
        self.metrics.action_executions.labels(record.agent_id, record.action_type, record.status.value).inc()
        return await self.results.publish(record, "executor")

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.expire_due(self.clock())
        await self.store.fail_interrupted(self.clock())
        await self.shell.probe_sandbox()

    async def stop(self) -> None:
        return None

    def problems(self) -> list[Problem]:
        return self.shell.problems()  # the sandbox was probed (off the loop) in start(), cached since

    async def status(self) -> dict[str, Any]:
        return {
            "pending_approvals": await self.store.count_pending(),
            "action_types": self.available_actions(),
            "unavailable": {t: r for t in ACTION_TYPES if (r := self.unavailable_reason(t)) is not None},
            "tool_backends": [backend.name for backend in self.tool_registry.backends()],
            "sandbox": await self.shell.sandbox_status(),
        }


def resolved_path_fact(view: dict[str, Any]) -> dict[str, Any]:
    """`_resolved_path` for file actions: the real path the action would touch, symlinks followed."""
    raw = view.get("path")
    if not isinstance(raw, str) or "action_type" not in view or not view["action_type"].startswith("file_"):
        return {}
    try:
        return {"_resolved_path": str(Path(raw).expanduser().resolve())}
    except (OSError, RuntimeError):
        return {}
