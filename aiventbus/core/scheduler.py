"""Three lanes of agent work: reserved interactive workers, critical before ambient, ambient preempted.

Dispatch is event-driven (a condition woken by every change); the only polling is the lease-expiry check and
the sweep that expires interactive work which waited longer than `lanes.interactive_expiry_seconds`.
A single local LLM server serializes generations, so while interactive work is queued or running no ambient
generation runs: a running one is cancelled and re-queued without spending an attempt.

Work that is not running (ready, delayed, parked while its LLM server is down) is kept by core/waiting_work.py;
the pure rules (lane order, backoff, expiry) are core/lane_rules.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from aiventbus.config import AgentsConfig, LanesConfig
from aiventbus.core.lane_rules import LANES, backoff_seconds, expiry_check_interval, expiry_reason, overdue
from aiventbus.core.waiting_work import WaitingWork
from aiventbus.service import LiveFeed
from aiventbus.store.assignments import Assignment, AssignmentStatus, AssignmentTable
from aiventbus.telemetry import Metrics

T = TypeVar("T")
log = logging.getLogger(__name__)


class OutcomeKind(StrEnum):
    completed = "completed"  # the runner stored the result and completed the claim
    dead = "dead"  # the runner dead-lettered it (no retries make sense)
    retry = "retry"  # a transient failure: spend an attempt, retry with backoff
    unavailable = "unavailable"  # the LLM server is down: wait, spend nothing
    lost = "lost"  # the claim was taken away meanwhile; nothing to record


@dataclass(frozen=True)
class RunOutcome:
    kind: OutcomeKind
    error: str = ""


class WorkRunner(Protocol):
    """What runs one claimed assignment (core/agent_run.py's AgentRunner)."""

    def server_key(self, assignment: Assignment) -> str: ...

    async def run(self, assignment: Assignment, worker: str) -> RunOutcome: ...


@dataclass
class _Running:
    assignment: Assignment
    task: asyncio.Task[RunOutcome] | None = None
    preempted: bool = False


# What publishes a system event: EventBus.publish_system(name, payload, parent_event=...).
SystemReport = Callable[..., Awaitable[Any]]


class Scheduler:
    """Owns the in-memory lane queues and the workers; the assignments table is the durable truth."""

    name = "scheduler"

    def __init__(
        self,
        table: AssignmentTable,
        lanes: LanesConfig,
        agents: AgentsConfig,
        metrics: Metrics,
        hub: LiveFeed,
        runner: WorkRunner | None = None,
        clock: Callable[[], float] = time.time,
        depth_sample_interval_seconds: float = 5.0,
        report: SystemReport | None = None,
    ) -> None:
        self.table = table
        self.lanes = lanes
        self.agents = agents
        self.metrics = metrics
        self.hub = hub
        self.runner = runner
        self.clock = clock
        self.depth_sample_interval_seconds = depth_sample_interval_seconds
        self.report = report
        self.expired_count = 0
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.waiting = WaitingWork(
            clock, self._server_key, self._preempt_ambient, self._wake, agents.llm_retry_max_seconds
        )
        self._running: dict[str, _Running] = {}
        self._ambient_calls: dict[asyncio.Task[Any], bool] = {}
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover pending work (also what a previous process left), then start workers and monitors."""
        for assignment in await self.table.pending():
            self.waiting.add(assignment, front=False)
        for index in range(self.lanes.interactive_slots):
            self._tasks.append(asyncio.create_task(self._worker("interactive"), name=f"worker-interactive-{index}"))
        for index in range(self.lanes.background_slots):
            self._tasks.append(asyncio.create_task(self._worker("background"), name=f"worker-background-{index}"))
        self._tasks.append(asyncio.create_task(self._lease_monitor(), name="lease-monitor"))
        self._tasks.append(asyncio.create_task(self._depth_sampler(), name="queue-depth-sampler"))
        if self.lanes.interactive_expiry_seconds > 0:
            self._tasks.append(asyncio.create_task(self._expiry_monitor(), name="interactive-expiry"))
        self._wake()

    async def stop(self) -> None:
        """Cancel runs and give their claims back, so a restart picks them up at once."""
        self.waiting.close()
        for task in [*self._tasks, *self._ambient_calls]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.table.release_all(self.worker_id, self.clock())

    def idle(self) -> bool:
        """Nothing runs and nothing is ready or waiting on a retry timer. Work parked while its model server is
        unreachable waits on the outside world, not on the daemon: it does not count."""
        return not self._running and self.waiting.idle()

    def status(self) -> dict[str, Any]:
        return {
            "worker": self.worker_id,
            "ready": self.waiting.ready_counts(),
            "running": {lane: sum(1 for r in self._running.values() if r.assignment.lane == lane) for lane in LANES},
            "waiting_for_llm": self.waiting.parked_counts(),
            "interactive_expiry_seconds": self.lanes.interactive_expiry_seconds,
            "expired": self.expired_count,
        }

    # -- intake --------------------------------------------------------------------------------

    async def submit(self, assignments: list[Assignment]) -> None:
        """Queue newly created assignments; interactive ones preempt running ambient generations."""
        for assignment in assignments:
            self.waiting.add(assignment, front=False)
        self._wake()

    def _server_key(self, assignment: Assignment) -> str:
        return self.runner.server_key(assignment) if self.runner else ""

    def _wake(self) -> None:
        """Every waiting worker looks at the queues again."""
        self._changed.set()

    async def _wait_for_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    # -- lanes ---------------------------------------------------------------------------------

    def _urgent_active(self, lanes: tuple[str, ...] = ("interactive", "critical")) -> bool:
        """Work of these lanes is queued or running."""
        if self.waiting.has_ready(lanes):
            return True
        return any(r.assignment.lane in lanes for r in self._running.values())

    def _preempt_ambient(self) -> None:
        for running in self._running.values():
            if running.assignment.lane == "ambient" and not running.preempted:
                running.preempted = True
                if running.task is not None:
                    running.task.cancel()
        for task, preempted in list(self._ambient_calls.items()):
            if not preempted:
                self._ambient_calls[task] = True
                task.cancel()

    def _pick(self, kind: str) -> Assignment | None:
        order = ("interactive",) if kind == "interactive" else LANES
        for lane in order:
            if lane == "ambient" and self._urgent_active():
                return None
            assignment = self.waiting.pop_ready(lane)
            if assignment is not None:
                return assignment
        return None

    async def _take(self, kind: str) -> Assignment:
        while True:
            if self.runner is not None and (assignment := self._pick(kind)) is not None:
                # Registered before the claim's await, so a preemption meanwhile is not missed.
                self._running[assignment.id] = _Running(assignment)
                return assignment
            await self._wait_for_change()

    # -- workers -------------------------------------------------------------------------------

    async def _worker(self, kind: str) -> None:
        while True:
            assignment = await self._take(kind)
            try:
                await self._execute(assignment)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("assignment %s: worker error", assignment.id)
            finally:
                self._running.pop(assignment.id, None)
                self._wake()

    async def _execute(self, queued: Assignment) -> None:
        assert self.runner is not None
        record = self._running[queued.id]
        now = self.clock()
        claimed = await self.table.claim(queued.id, self.worker_id, now, now + self.agents.lease_seconds)
        if claimed is None:
            return  # someone else has it, or it was settled meanwhile
        self._transition(claimed, "claimed")
        if record.preempted:
            await self._requeue(claimed, "preempted by interactive work")
            return
        record.assignment = claimed
        run = asyncio.create_task(self.runner.run(claimed, self.worker_id), name=f"run-{claimed.id}")
        record.task = run
        renewer = asyncio.create_task(self._renew(claimed, run), name=f"lease-{claimed.id}")
        try:
            outcome = await run
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if record.preempted and current is not None and not current.cancelling():
                await self._requeue(claimed, "preempted by interactive work")
                return
            raise
        except Exception as error:
            log.exception("assignment %s: run raised", claimed.id)
            outcome = RunOutcome(OutcomeKind.retry, f"{type(error).__name__}: {error}")
        finally:
            renewer.cancel()
        await self._settle(claimed, outcome)

    async def _renew(self, assignment: Assignment, run: asyncio.Task[RunOutcome]) -> None:
        interval = max(self.agents.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            if not await self.table.renew(assignment.id, self.worker_id, self.clock() + self.agents.lease_seconds):
                log.warning("assignment %s: lease lost, stopping its run", assignment.id)
                run.cancel()
                return

    async def _requeue(self, assignment: Assignment, reason: str) -> None:
        await self.table.release([assignment.id], self.worker_id, self.clock())
        fresh = assignment.model_copy(update={"status": AssignmentStatus.pending, "worker": None})
        self._transition(fresh, "requeued", reason)
        self.waiting.add(fresh, front=True)

    async def _settle(self, assignment: Assignment, outcome: RunOutcome) -> None:
        now = self.clock()
        if outcome.kind is not OutcomeKind.unavailable and self.runner is not None:
            self.waiting.end_outage(assignment)  # the server answered
        if outcome.kind is OutcomeKind.completed:
            self._transition(assignment, "completed")
        elif outcome.kind is OutcomeKind.dead:
            self._transition(assignment, "failed", outcome.error)
        elif outcome.kind is OutcomeKind.unavailable:
            await self.table.release([assignment.id], self.worker_id, now, outcome.error)
            fresh = assignment.model_copy(
                update={"status": AssignmentStatus.pending, "worker": None, "last_error": outcome.error or None}
            )
            self._transition(fresh, "requeued", outcome.error)
            self.waiting.park(fresh)
        elif outcome.kind is OutcomeKind.retry:
            attempts = assignment.attempts + 1
            retry_at = None
            if attempts < self.agents.max_attempts:
                retry_at = now + backoff_seconds(self.agents.retry_backoff_seconds, attempts)
            status = await self.table.fail(assignment.id, self.worker_id, now, outcome.error, retry_at)
            if status is AssignmentStatus.pending and retry_at is not None:
                fresh = assignment.model_copy(
                    update={"status": status, "attempts": attempts, "available_at": retry_at, "worker": None}
                )
                self._transition(fresh, "retried", outcome.error)
                self.waiting.add(fresh, front=False)
            elif status is AssignmentStatus.failed:
                failed = assignment.model_copy(update={"attempts": attempts})
                self._transition(failed, "failed", outcome.error)
                await self._report_failed(failed, outcome.error)

    # -- background work -------------------------------------------------------------------------

    async def run_ambient(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn` when no interactive or critical work waits; cancelled and retried if such work arrives."""
        while True:
            while self._urgent_active():
                await self._wait_for_change()
            task: asyncio.Task[T] = asyncio.ensure_future(fn())
            self._ambient_calls[task] = False
            try:
                return await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if self._ambient_calls.get(task) and current is not None and not current.cancelling():
                    continue
                task.cancel()
                raise
            finally:
                self._ambient_calls.pop(task, None)
                self._wake()

    # -- monitors ------------------------------------------------------------------------------

    async def _lease_monitor(self) -> None:
        interval = min(self.agents.lease_check_interval_seconds, self.agents.lease_seconds / 2)
        while True:
            await self.reclaim_expired()
            await asyncio.sleep(interval)

    async def reclaim_expired(self) -> int:
        """Re-queue claims whose worker died (lease ran out); returns how many were found."""
        keep = frozenset(self._running)
        requeued, dead = await self.table.reclaim_expired(self.clock(), self.agents.max_attempts, keep)
        for assignment in requeued:
            self._transition(assignment, "retried", assignment.last_error or "lease expired")
            self.waiting.add(assignment, front=False)
        for assignment in dead:
            self._transition(assignment, "failed", assignment.last_error or "lease expired")
            await self._report_failed(assignment, assignment.last_error or "lease expired")
        if requeued:
            self._wake()
        return len(requeued) + len(dead)

    async def _expiry_monitor(self) -> None:
        interval = expiry_check_interval(self.lanes.interactive_expiry_seconds)
        while True:
            try:
                await self.expire_overdue()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiring overdue interactive work failed")
            await asyncio.sleep(interval)

    async def expire_overdue(self) -> list[Assignment]:
        """Expire interactive work that waited too long, tell the hub and publish system.assignment_expired."""
        expiry = self.lanes.interactive_expiry_seconds
        now = self.clock()
        due = overdue(await self.table.pending_in_lane("interactive"), now, expiry)
        if not due:
            return []
        reasons = {a.id: expiry_reason(a.last_error, self._outage_reason(a), expiry) for a in due}
        expired = await self.table.expire(reasons, now)
        self.waiting.forget({a.id for a in expired})
        for assignment in expired:
            self.expired_count += 1
            reason = reasons[assignment.id]
            self._transition(assignment, "expired", reason)
            log.warning("assignment %s expired after %.0f s: %s", assignment.id, now - assignment.created_at, reason)
            waited = round(now - assignment.created_at, 3)
            await self._report("assignment_expired", assignment, waited_seconds=waited, reason=reason)
        if expired:
            self._wake()
        return expired

    async def _report_failed(self, assignment: Assignment, error: str) -> None:
        """Retries ran out: say so as system.assignment_failed, so no work ends without a trace."""
        log.warning("assignment %s failed after %d attempts: %s", assignment.id, assignment.attempts, error)
        await self._report("assignment_failed", assignment, attempts=assignment.attempts, error=error)

    async def _report(self, name: str, assignment: Assignment, **facts: Any) -> None:
        """system.<name> about the assignment, as a child of its event."""
        if self.report is not None:
            about = {"assignment_id": assignment.id, "event_id": assignment.event_id, "agent_id": assignment.agent_id}
            await self.report(name, {**about, **facts}, parent_event=assignment.event_id)

    def _outage_reason(self, assignment: Assignment) -> str:
        return "" if self.runner is None else self.waiting.outage_reason(assignment)

    async def _depth_sampler(self) -> None:
        while True:
            await self.sample_queue_depth()
            await asyncio.sleep(self.depth_sample_interval_seconds)

    async def sample_queue_depth(self) -> dict[str, int]:
        depth = await self.table.queue_depth()
        for lane in LANES:
            self.metrics.assignment_queue_depth.labels(lane).set(depth.get(lane, 0))
        return depth

    def _transition(self, assignment: Assignment, state: str, error: str = "") -> None:
        self.metrics.assignment_transitions.labels(assignment.agent_id, state).inc()
        self.hub.publish("assignment", assignment.update_message(state, error), topic=assignment.topic)
