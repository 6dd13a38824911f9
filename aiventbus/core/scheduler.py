"""Three lanes of agent work: reserved interactive workers, critical before ambient, ambient preempted.

Dispatch is event-driven (a condition woken by every change); the only polling is the lease-expiry check and
the sweep that expires interactive work which waited longer than `lanes.interactive_expiry_seconds`.
A single local LLM server serializes generations, so while interactive work is queued or running no ambient
generation runs: a running one is cancelled and re-queued without spending an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from aiventbus.api.hub import Hub
from aiventbus.config import AgentsConfig, LanesConfig
from aiventbus.store.assignments import Assignment, AssignmentStatus, AssignmentTable
from aiventbus.telemetry import Metrics

T = TypeVar("T")
LANES = ("interactive", "critical", "ambient")
EXPIRING_LANES = frozenset({"interactive"})
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
    """What runs one claimed assignment (core/agents.py's AgentRunner)."""

    def server_key(self, assignment: Assignment) -> str: ...

    async def run(self, assignment: Assignment, worker: str) -> RunOutcome: ...


@dataclass
class _Running:
    assignment: Assignment
    task: asyncio.Task[RunOutcome] | None = None
    preempted: bool = False


@dataclass
class _Outage:
    parked: list[Assignment] = field(default_factory=list)
    delay: float = 0.5
    timer: asyncio.TimerHandle | None = None
    probing: str | None = None
    reason: str = ""


# What publishes a system event: EventBus.publish_system(name, payload, parent_event=...).
SystemReport = Callable[..., Awaitable[Any]]


def backoff_seconds(base: float, attempts: int) -> float:
    """Delay before retry number `attempts` (1-based): base, 2*base, 4*base..."""
    return float(base * (2 ** max(attempts - 1, 0)))


def overdue(assignments: Iterable[Assignment], now: float, expiry_seconds: float) -> list[Assignment]:
    """Pending work of an expiring lane that has waited `expiry_seconds` or longer since it was created
    (0 = nothing expires). Critical and ambient work never expires: it is not waited on by a person."""
    if expiry_seconds <= 0:
        return []
    return [
        assignment
        for assignment in assignments
        if assignment.lane in EXPIRING_LANES
        and assignment.status is AssignmentStatus.pending
        and now - assignment.created_at >= expiry_seconds
    ]


def expiry_reason(last_error: str | None, outage_reason: str, expiry_seconds: float) -> str:
    """The latest known cause of the wait: the assignment's own last error, its server's outage, or neither."""
    if last_error:
        return last_error
    if outage_reason:
        return outage_reason
    return f"no worker took it within lanes.interactive_expiry_seconds ({expiry_seconds:g} s)"


def expiry_check_interval(expiry_seconds: float) -> float:
    """How often overdue work is looked for: a tenth of the expiry, between 50 ms and 5 s."""
    return min(max(expiry_seconds / 10, 0.05), 5.0)


class Scheduler:
    """Owns the in-memory lane queues and the workers; the assignments table is the durable truth."""

    name = "scheduler"

    def __init__(
        self,
        table: AssignmentTable,
        lanes: LanesConfig,
        agents: AgentsConfig,
        metrics: Metrics,
        hub: Hub,
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
        self._ready: dict[str, deque[Assignment]] = {lane: deque() for lane in LANES}
        self._running: dict[str, _Running] = {}
        self._ambient_calls: dict[asyncio.Task[Any], bool] = {}
        self._outages: dict[str, _Outage] = {}
        self._delayed: dict[str, asyncio.TimerHandle] = {}
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover pending work (also what a previous process left), then start workers and monitors."""
        for assignment in await self.table.pending():
            self._enqueue(assignment, front=False)
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
        self._stopping = True
        for handle in self._delayed.values():
            handle.cancel()
        for outage in self._outages.values():
            if outage.timer is not None:
                outage.timer.cancel()
        for task in [*self._tasks, *self._ambient_calls]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.table.release_all(self.worker_id, self.clock())

    def status(self) -> dict[str, Any]:
        return {
            "worker": self.worker_id,
            "ready": {lane: len(queue) for lane, queue in self._ready.items()},
            "running": {lane: sum(1 for r in self._running.values() if r.assignment.lane == lane) for lane in LANES},
            "waiting_for_llm": {key: len(outage.parked) for key, outage in self._outages.items()},
            "interactive_expiry_seconds": self.lanes.interactive_expiry_seconds,
            "expired": self.expired_count,
        }

    # -- intake --------------------------------------------------------------------------------

    async def submit(self, assignments: list[Assignment]) -> None:
        """Queue newly created assignments; interactive ones preempt running ambient generations."""
        for assignment in assignments:
            self._enqueue(assignment, front=False)
        self._wake()

    def _enqueue(self, assignment: Assignment, front: bool) -> None:
        if self._stopping:
            return
        delay = assignment.available_at - self.clock()
        if delay > 0:
            loop = asyncio.get_running_loop()
            self._delayed[assignment.id] = loop.call_later(delay, self._release_delayed, assignment)
            return
        queue = self._ready[assignment.lane if assignment.lane in self._ready else "ambient"]
        if front:
            queue.appendleft(assignment)
        else:
            queue.append(assignment)
        if assignment.lane == "interactive":
            self._preempt_ambient()

    def _release_delayed(self, assignment: Assignment) -> None:
        self._delayed.pop(assignment.id, None)
        self._enqueue(assignment.model_copy(update={"available_at": self.clock()}), front=False)
        self._wake()

    def _wake(self) -> None:
        """Every waiting worker looks at the queues again."""
        self._changed.set()

    async def _wait_for_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    # -- lanes ---------------------------------------------------------------------------------

    def _urgent_active(self, lanes: tuple[str, ...] = ("interactive", "critical")) -> bool:
        """Work of these lanes is queued or running."""
        if any(self._ready[lane] for lane in lanes):
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
        order = ("interactive",) if kind == "interactive" else ("interactive", "critical", "ambient")
        for lane in order:
            if lane == "ambient" and self._urgent_active():
                return None
            queue = self._ready[lane]
            while queue:
                assignment = queue.popleft()
                key = self.runner.server_key(assignment) if self.runner else ""
                outage = self._outages.get(key)
                if outage is not None and outage.probing != assignment.id:
                    outage.parked.append(assignment)
                    continue
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
        self._enqueue(fresh, front=True)

    async def _settle(self, assignment: Assignment, outcome: RunOutcome) -> None:
        now = self.clock()
        if outcome.kind is not OutcomeKind.unavailable and self.runner is not None:
            self._end_outage(self.runner.server_key(assignment))  # the server answered
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
            self._park(fresh)
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
                self._enqueue(fresh, front=False)
            elif status is AssignmentStatus.failed:
                failed = assignment.model_copy(update={"attempts": attempts})
                self._transition(failed, "failed", outcome.error)
                await self._report_failed(failed, outcome.error)

    # -- LLM outages ---------------------------------------------------------------------------

    def _park(self, assignment: Assignment) -> None:
        """Hold work for a server that is down; one of it is retried after a growing delay."""
        key = self.runner.server_key(assignment) if self.runner else ""
        outage = self._outages.setdefault(key, _Outage())
        outage.parked.append(assignment)
        outage.probing = None
        outage.reason = assignment.last_error or outage.reason
        if outage.timer is None and not self._stopping:
            outage.timer = asyncio.get_running_loop().call_later(outage.delay, self._probe, key)
            outage.delay = min(outage.delay * 2, self.agents.llm_retry_max_seconds)

    def _probe(self, key: str) -> None:
        """Let one parked assignment (the most urgent) through to find out whether the server is back."""
        outage = self._outages.get(key)
        if outage is None:
            return
        outage.timer = None
        if not outage.parked:
            return
        probe = min(outage.parked, key=lambda a: (LANES.index(a.lane) if a.lane in LANES else 3, a.seq))
        outage.parked.remove(probe)
        outage.probing = probe.id
        self._enqueue(probe, front=True)
        self._wake()

    def _end_outage(self, key: str) -> None:
        outage = self._outages.pop(key, None)
        if outage is None:
            return
        if outage.timer is not None:
            outage.timer.cancel()
        for assignment in outage.parked:
            self._enqueue(assignment, front=False)

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
            self._enqueue(assignment, front=False)
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
        self._forget({a.id for a in expired})
        for assignment in expired:
            self.expired_count += 1
            reason = reasons[assignment.id]
            self._transition(assignment, "expired", reason)
            log.warning("assignment %s expired after %.0f s: %s", assignment.id, now - assignment.created_at, reason)
            if self.report is not None:
                await self.report(
                    "assignment_expired",
                    {
                        "assignment_id": assignment.id,
                        "event_id": assignment.event_id,
                        "agent_id": assignment.agent_id,
                        "waited_seconds": round(now - assignment.created_at, 3),
                        "reason": reason,
                    },
                    parent_event=assignment.event_id,
                )
        if expired:
            self._wake()
        return expired

    async def _report_failed(self, assignment: Assignment, error: str) -> None:
        """Retries ran out: say so as system.assignment_failed, so no work ends without a trace."""
        log.warning("assignment %s failed after %d attempts: %s", assignment.id, assignment.attempts, error)
        if self.report is not None:
            await self.report(
                "assignment_failed",
                {
                    "assignment_id": assignment.id,
                    "event_id": assignment.event_id,
                    "agent_id": assignment.agent_id,
                    "attempts": assignment.attempts,
                    "error": error,
                },
                parent_event=assignment.event_id,
            )

    def _outage_reason(self, assignment: Assignment) -> str:
        if self.runner is None:
            return ""
        outage = self._outages.get(self.runner.server_key(assignment))
        return outage.reason if outage is not None else ""

    def _forget(self, assignment_ids: set[str]) -> None:
        """Drop settled work from the in-memory queues (a claim of it would fail anyway; this frees the slot)."""
        if not assignment_ids:
            return
        for lane, queue in self._ready.items():
            self._ready[lane] = deque(a for a in queue if a.id not in assignment_ids)
        for key, outage in self._outages.items():
            outage.parked = [a for a in outage.parked if a.id not in assignment_ids]
            if outage.probing in assignment_ids and not self._stopping:
                # The probe itself expired before it ran: let another parked one find out about the server.
                outage.probing = None
                if outage.timer is None:
                    outage.timer = asyncio.get_running_loop().call_later(outage.delay, self._probe, key)
        for assignment_id in assignment_ids:
            handle = self._delayed.pop(assignment_id, None)
            if handle is not None:
                handle.cancel()

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
