"""The scheduler's pure decisions: lane order, retry backoff, and when waiting interactive work expires."""

from __future__ import annotations

from collections.abc import Iterable

from aiventbus.store.assignments import Assignment, AssignmentStatus

LANES = ("interactive", "critical", "ambient")
EXPIRING_LANES = frozenset({"interactive"})


def lane_rank(assignment: Assignment) -> tuple[int, int]:
    """Most urgent lane first (an unknown lane last), then the oldest."""
    return (LANES.index(assignment.lane) if assignment.lane in LANES else 3, assignment.seq)


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
