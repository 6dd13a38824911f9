"""Approving and denying parked actions: bound to the exact content, expiring, and run at most once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from aiventbus.core.policy import PolicyRules, decide
from aiventbus.errors import Conflict, NotFound, PolicyDenied
from aiventbus.records.actions import Action, InvalidAction, parse_action
from aiventbus.store.actions import ActionRecord, ActionStatus, ActionStore, ClaimOutcome


class ApprovedRunner(Protocol):
    """What approving needs of the executor: the policy as it stands now, and running or announcing a decision."""

    def rules(self) -> PolicyRules: ...

    def policy_view_sync(self, action: Action) -> dict[str, Any]: ...

    async def run(self, record: ActionRecord, action: Action | None = None) -> ActionRecord: ...

    async def announce(self, record: ActionRecord) -> ActionRecord: ...


class Approvals:
    """The user's side of `confirm`: list, approve (which executes) and deny pending actions."""

    def __init__(self, store: ActionStore, executor: ApprovedRunner, clock: Callable[[], float]) -> None:
        self.store = store
        self.executor = executor
        self.clock = clock
        self._running: dict[str, asyncio.Future[ActionRecord]] = {}

    async def pending(self, limit: int = 100) -> list[ActionRecord]:
        await self.store.expire_due(self.clock())
        return await self.store.list(status=ActionStatus.pending.value, limit=limit)

    async def history(
        self, status: str | None = None, trace_id: str | None = None, limit: int = 50
    ) -> list[ActionRecord]:
        await self.store.expire_due(self.clock())
        return await self.store.list(status=status, trace_id=trace_id, limit=limit)

    async def get(self, action_id: str) -> ActionRecord:
        record = await self.store.get(action_id)
        if record is None:
            raise NotFound("action", action_id)
        return record

    def recheck(self, record: ActionRecord) -> str | None:
        """Why the stored action may not run now (invalid, or denied by today's policy), or None."""
        try:
            action = parse_action(record.content)
        except InvalidAction as error:
            return f"the stored action is no longer valid: {error.reason}"
        if action.action_type != record.action_type:
            return "the stored action's type does not match its record"
        view = self.executor.policy_view_sync(action)
        decision = decide(action.action_type, view, taint=record.taint, rules=self.executor.rules())
        if decision.verdict == "deny":
            return f"policy now denies it ({decision.rule}): {decision.reason}"
        return None

    async def approve(self, action_id: str, decided_by: str = "user") -> ActionRecord:
        """pending -> approved -> executed/failed, once; a second approval gets 409 with the first result."""
        outcome, record, reason = await self.store.claim(action_id, self.clock(), decided_by, self.recheck)
        if outcome is ClaimOutcome.missing or record is None:
            raise NotFound("action", action_id)
        if outcome is ClaimOutcome.claimed:
            done: asyncio.Future[ActionRecord] = asyncio.get_running_loop().create_future()
            self._running[action_id] = done
            try:
                finished = await self.executor.run(record)
            except BaseException as error:
                done.set_exception(error)
                done.exception()  # retrieved: the waiting duplicate, if any, re-raises it itself
                raise
            finally:
                self._running.pop(action_id, None)
            done.set_result(finished)
            return finished
        if outcome is ClaimOutcome.refused:
            await self.executor.announce(record)
            raise PolicyDenied(record.action_type, "approval.recheck", reason)
        if outcome in (ClaimOutcome.expired, ClaimOutcome.tampered):
            await self.executor.announce(record)
            label = "expired" if outcome is ClaimOutcome.expired else "content changed"
            raise Conflict(f"action {action_id} cannot be approved: {label}: {reason}", status=record.status.value)
        running = self._running.get(action_id)
        if running is not None:
            record = await asyncio.shield(running)
        raise Conflict(
            f"action {action_id} is already {record.status.value}; it is not run again",
            status=record.status.value,
            result=record.result,
            error=record.error,
        )

    async def deny(self, action_id: str, reason: str = "", decided_by: str = "user") -> ActionRecord:
        record = await self.get(action_id)
        if record.status is not ActionStatus.pending:
            raise Conflict(f"action {action_id} is {record.status.value}, not pending", status=record.status.value)
        if not await self.store.deny(action_id, self.clock(), decided_by, reason or f"denied by {decided_by}"):
            latest = await self.get(action_id)
            raise Conflict(f"action {action_id} is {latest.status.value}, not pending", status=latest.status.value)
        denied = await self.get(action_id)
        return await self.executor.announce(denied)
