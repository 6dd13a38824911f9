"""The scheduler's work that is not running: ready in its lane's queue, delayed until its retry is due, or parked
while its LLM server is down (one parked assignment is let through after a growing delay to find out whether the
server is back; all of them go back to their queues once it answers)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aiventbus.core.lane_rules import LANES, lane_rank
from aiventbus.store.assignments import Assignment


@dataclass
class _Outage:
    parked: list[Assignment] = field(default_factory=list)
    delay: float = 0.5
    timer: asyncio.TimerHandle | None = None
    probing: str | None = None
    reason: str = ""


class WaitingWork:
    """In-memory only: the assignments table is the durable truth, and a restart queues its pending work again."""

    def __init__(
        self,
        clock: Callable[[], float],
        server_key: Callable[[Assignment], str],
        on_interactive: Callable[[], None],
        wake: Callable[[], None],
        max_probe_delay: float,
    ) -> None:
        self.clock = clock
        self.server_key = server_key
        self.on_interactive = on_interactive
        self.wake = wake
        self.max_probe_delay = max_probe_delay
        self.closed = False
        self._ready: dict[str, deque[Assignment]] = {lane: deque() for lane in LANES}
        self._delayed: dict[str, asyncio.TimerHandle] = {}
        self._outages: dict[str, _Outage] = {}

    def close(self) -> None:
        """Stop every timer; nothing is queued from now on (the daemon stops)."""
        self.closed = True
        for handle in self._delayed.values():
            handle.cancel()
        for outage in self._outages.values():
            if outage.timer is not None:
                outage.timer.cancel()

    def idle(self) -> bool:
        """No assignment is ready or delayed for a retry."""
        return not self._delayed and not any(self._ready.values())

    def ready_counts(self) -> dict[str, int]:
        return {lane: len(queue) for lane, queue in self._ready.items()}

    def parked_counts(self) -> dict[str, int]:
        return {key: len(outage.parked) for key, outage in self._outages.items()}

    # -- queues ----------------------------------------------------------------------------------

    def add(self, assignment: Assignment, front: bool) -> None:
        """Queue it in its lane (interactive work preempts ambient generations), or set a timer if it is not due."""
        if self.closed:
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
            self.on_interactive()

    def _release_delayed(self, assignment: Assignment) -> None:
        self._delayed.pop(assignment.id, None)
        self.add(assignment.model_copy(update={"available_at": self.clock()}), front=False)
        self.wake()

    def has_ready(self, lanes: tuple[str, ...]) -> bool:
        return any(self._ready[lane] for lane in lanes)

    def pop_ready(self, lane: str) -> Assignment | None:
        """The next assignment of `lane` that may run; work for a server that is down is parked on the way."""
        queue = self._ready[lane]
        while queue:
            assignment = queue.popleft()
            outage = self._outages.get(self.server_key(assignment))
            if outage is not None and outage.probing != assignment.id:
                outage.parked.append(assignment)
                continue
            return assignment
        return None

    def forget(self, assignment_ids: set[str]) -> None:
        """Drop settled work (a claim of it would fail anyway; this frees the slot)."""
        if not assignment_ids:
            return
        for lane, queue in self._ready.items():
            self._ready[lane] = deque(a for a in queue if a.id not in assignment_ids)
        for key, outage in self._outages.items():
            outage.parked = [a for a in outage.parked if a.id not in assignment_ids]
            if outage.probing in assignment_ids and not self.closed:
                # The probe itself expired before it ran: let another parked one find out about the server.
                outage.probing = None
                if outage.timer is None:
                    outage.timer = asyncio.get_running_loop().call_later(outage.delay, self._probe, key)
        for assignment_id in assignment_ids:
            handle = self._delayed.pop(assignment_id, None)
            if handle is not None:
                handle.cancel()

    # -- LLM outages -----------------------------------------------------------------------------

    def park(self, assignment: Assignment) -> None:
        """Hold work for a server that is down; one of it is retried after a growing delay."""
        key = self.server_key(assignment)
        outage = self._outages.setdefault(key, _Outage())
        outage.parked.append(assignment)
        outage.probing = None
        outage.reason = assignment.last_error or outage.reason
        if outage.timer is None and not self.closed:
            outage.timer = asyncio.get_running_loop().call_later(outage.delay, self._probe, key)
            outage.delay = min(outage.delay * 2, self.max_probe_delay)

    def _probe(self, key: str) -> None:
        """Let one parked assignment (the most urgent) through to find out whether the server is back."""
        outage = self._outages.get(key)
        if outage is None:
            return
        outage.timer = None
        if not outage.parked:
            return
        probe = min(outage.parked, key=lane_rank)
        outage.parked.remove(probe)
        outage.probing = probe.id
        self.add(probe, front=True)
        self.wake()

    def end_outage(self, assignment: Assignment) -> None:
        """The assignment's server answered: its parked work goes back to the queues."""
        outage = self._outages.pop(self.server_key(assignment), None)
        if outage is None:
            return
        if outage.timer is not None:
            outage.timer.cancel()
        for parked in outage.parked:
            self.add(parked, front=False)

    def outage_reason(self, assignment: Assignment) -> str:
        """Why the assignment's server is down, as far as known; "" when it is not down."""
        outage = self._outages.get(self.server_key(assignment))
        return outage.reason if outage is not None else ""
