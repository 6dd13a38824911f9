"""Which queued work expires: a pure decision over assignments, the clock and lanes.interactive_expiry_seconds."""

from __future__ import annotations

import pytest

from aiventbus.config import parse_config
from aiventbus.core.lane_rules import expiry_check_interval, expiry_reason, overdue
from aiventbus.errors import ConfigError
from aiventbus.store.assignments import Assignment, AssignmentStatus


def assignment(lane: str, created_at: float, status: AssignmentStatus = AssignmentStatus.pending) -> Assignment:
    return Assignment(
        id=f"{lane}-{created_at}-{status}",
        event_id="e",
        agent_id="a",
        topic="t",
        lane=lane,
        status=status,
        available_at=created_at,
        created_at=created_at,
        updated_at=created_at,
    )


@pytest.mark.parametrize(
    ("lane", "created_at", "status", "now", "expiry", "expires"),
    [
        ("interactive", 100.0, AssignmentStatus.pending, 400.0, 300.0, True),  # exactly the expiry
        ("interactive", 100.0, AssignmentStatus.pending, 399.9, 300.0, False),
        ("interactive", 100.0, AssignmentStatus.pending, 10_000.0, 0.0, False),  # 0 = never
        ("critical", 100.0, AssignmentStatus.pending, 10_000.0, 300.0, False),
        ("ambient", 100.0, AssignmentStatus.pending, 10_000.0, 300.0, False),
        ("interactive", 100.0, AssignmentStatus.claimed, 10_000.0, 300.0, False),  # running: not waiting
        ("interactive", 100.0, AssignmentStatus.failed, 10_000.0, 300.0, False),
        ("interactive", 100.0, AssignmentStatus.expired, 10_000.0, 300.0, False),
    ],
)
def test_overdue(
    lane: str, created_at: float, status: AssignmentStatus, now: float, expiry: float, expires: bool
) -> None:
    item = assignment(lane, created_at, status)
    assert overdue([item], now, expiry) == ([item] if expires else [])


def test_overdue_keeps_the_order_and_picks_only_the_old_ones() -> None:
    old, fresh, older = assignment("interactive", 10.0), assignment("interactive", 95.0), assignment("interactive", 1.0)
    assert overdue([old, fresh, older], 100.0, 60.0) == [old, older]


@pytest.mark.parametrize(
    ("last_error", "outage", "expected"),
    [
        ("cannot reach Ollama at http://127.0.0.1:9", "other", "cannot reach Ollama at http://127.0.0.1:9"),
        (None, "cannot reach Ollama at http://127.0.0.1:9", "cannot reach Ollama at http://127.0.0.1:9"),
        (None, "", "no worker took it within lanes.interactive_expiry_seconds (300 s)"),
    ],
)
def test_expiry_reason_is_the_latest_known_cause(last_error: str | None, outage: str, expected: str) -> None:
    assert expiry_reason(last_error, outage, 300.0) == expected


@pytest.mark.parametrize(("expiry", "interval"), [(300.0, 5.0), (10.0, 1.0), (0.2, 0.05), (0.01, 0.05)])
def test_expiry_check_interval(expiry: float, interval: float) -> None:
    assert expiry_check_interval(expiry) == pytest.approx(interval)


def test_expiry_setting_defaults_and_validation() -> None:
    assert parse_config({}).lanes.interactive_expiry_seconds == 300.0
    assert parse_config({"lanes": {"interactive_expiry_seconds": 0}}).lanes.interactive_expiry_seconds == 0.0
    with pytest.raises(ConfigError, match=r"lanes\.interactive_expiry_seconds: .*greater than or equal to 0"):
        parse_config({"lanes": {"interactive_expiry_seconds": -1}})
    with pytest.raises(ConfigError, match=r"lanes\.interactive_expiry_seconds: .*valid number"):
        parse_config({"lanes": {"interactive_expiry_seconds": "soon"}})
