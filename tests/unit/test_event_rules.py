"""Pure rules of the bus: chain limits, dedupe windows, lanes and taint."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aiventbus.labels import label_of
from aiventbus.records.events import (
    ChainLimits,
    ChainState,
    EventIn,
    chain_limit_violation,
    lane_of,
    within_dedupe_window,
)

LIMITS = ChainLimits(max_depth=10, max_budget=20, max_fan_out=3)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (ChainState(0, 0, 0), None),
        (ChainState(10, 19, 2), None),
        (ChainState(11, 0, 0), ("depth", 10)),
        (ChainState(1, 20, 0), ("budget", 20)),
        (ChainState(1, 5, 3), ("fan_out", 3)),
        (ChainState(11, 20, 3), ("depth", 10)),
    ],
)
def test_chain_limits(state: ChainState, expected: tuple[str, int] | None) -> None:
    assert chain_limit_violation(state, LIMITS) == expected


@pytest.mark.parametrize(
    ("created", "now", "window", "inside"),
    [
        (100.0, 159.9, 60, True),
        (100.0, 160.0, 60, False),
        (100.0, 100.0, 0, False),
        (100.0, 101.0, 1.5, True),
    ],
)
def test_dedupe_window(created: float, now: float, window: float, inside: bool) -> None:
    assert within_dedupe_window(created, now, window) is inside


@pytest.mark.parametrize(
    ("topic", "lane"),
    [
        ("user.query", "interactive"),
        ("security.auth_failure", "critical"),
        ("system.failure.disk", "critical"),
        ("system.parse_failure", "ambient"),
        ("clipboard.text", "ambient"),
        ("username.x", "ambient"),
    ],
)
def test_lanes(topic: str, lane: str) -> None:
    assert lane_of(topic, ["user."], ["security.", "system.failure"]) == lane


@pytest.mark.parametrize(
    ("source", "parent", "trusted", "expected"),
    [
        ("api", [], frozenset(), []),
        ("clipboard", [], frozenset(), ["clipboard"]),
        ("producer:webhook", [], frozenset(), ["webhook"]),
        ("agent:agent_x", ["clipboard"], frozenset(), ["clipboard"]),
        ("clipboard", ["file"], frozenset({"clipboard"}), ["file"]),
        ("user", [], frozenset(), []),
        ("executor", ["shell_output"], frozenset(), ["shell_output"]),
        ("shell_output", [], frozenset(), ["shell_output"]),
    ],
)
def test_taint(source: str, parent: list[str], trusted: frozenset[str], expected: list[str]) -> None:
    assert label_of(source, parent, trusted=trusted) == expected


def test_event_in_requires_topic_and_payload() -> None:
    EventIn(topic="a.b", payload={})
    with pytest.raises(ValidationError):
        EventIn.model_validate({"topic": "a.b"})
    with pytest.raises(ValidationError):
        EventIn.model_validate({"payload": {}})
    with pytest.raises(ValidationError):
        EventIn.model_validate({"topic": "a.b", "payload": {}, "trace_id": "abc"})
