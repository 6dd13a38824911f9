"""The token budget's arithmetic: template overhead, padding, answer room, shrinking, margins, summary cap."""

from __future__ import annotations

import pytest

from aiventbus.core.token_budget import (
    ANSWER_TOKENS_MAX,
    ANSWER_TOKENS_MIN,
    DEFAULT_ESTIMATE_MARGIN,
    LEARNT_MARGIN_SLACK,
    MAX_ESTIMATE_MARGIN,
    MIN_LEARNT_MARGIN,
    TEMPLATE_TOKENS_PER_MESSAGE,
    TEMPLATE_TOKENS_PER_PROMPT,
    EstimateMargins,
    answer_room,
    answer_token_limit,
    observed_ratio,
    padded,
    shrunk_context,
    templated_tokens,
)
from aiventbus.llm.structured import ANSWER_FRAME_TOKENS, SUMMARY_MAX_CHARS, agent_response_schema, summary_cap
from aiventbus.records.actions import answer_schemas


def test_templated_tokens_adds_the_chat_template_per_message_and_once() -> None:
    assert templated_tokens(100, 3) == 100 + 3 * TEMPLATE_TOKENS_PER_MESSAGE + TEMPLATE_TOKENS_PER_PROMPT


@pytest.mark.parametrize(("estimate", "margin", "expected"), [(100, 1.5, 150), (100, 1.234, 124), (100, 0.5, 100)])
def test_padded_raises_never_lowers(estimate: int, margin: float, expected: int) -> None:
    assert padded(estimate, margin) == expected


ROOM_CASES = [
    ("the agent's own", 100, 2048, 100),
    ("a quarter of a small window", None, 512, 128),
    ("capped for a big window", None, 8192, ANSWER_TOKENS_MAX),
    ("never below the floor", None, 200, ANSWER_TOKENS_MIN),
    ("an agent asking for more than half", 2000, 2048, 1024),
]


@pytest.mark.parametrize(("label", "agent_max", "window", "expected"), ROOM_CASES, ids=[c[0] for c in ROOM_CASES])
def test_answer_room(label: str, agent_max: int | None, window: int, expected: int) -> None:
    assert answer_room(agent_max, window) == expected, label


LIMIT_CASES = [
    ("what is left, under the agent's cap", 400, 512, 300, 212),
    ("the agent's cap when there is room", 100, 2048, 1000, 100),
    ("a tiny agent cap stays tiny", 4, 512, 510, 4),
    ("no window known: the cap", None, None, 900, ANSWER_TOKENS_MAX),
    ("an overfull window keeps the floor", None, 512, 600, ANSWER_TOKENS_MIN),
]


@pytest.mark.parametrize(
    ("label", "agent_max", "window", "prompt", "expected"), LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES]
)
def test_answer_token_limit(label: str, agent_max: int | None, window: int | None, prompt: int, expected: int) -> None:
    assert answer_token_limit(agent_max, window, prompt) == expected, label


def test_a_fitting_prompt_and_its_limit_never_exceed_the_window() -> None:
    for window in (512, 1024, 2048, 8192):
        for agent_max in (None, 16, 200, 4000):
            prompt = window - answer_room(agent_max, window)
            assert prompt + answer_token_limit(agent_max, window, prompt) <= window


def test_shrunk_context_is_proportional_aimed_lower_and_always_smaller() -> None:
    assert shrunk_context(2048, 1000, 500) == int(2048 * 0.5 * 0.9)
    assert shrunk_context(512, 400, 399) < 512
    assert shrunk_context(600, 10_000, 10) >= 1
    assert shrunk_context(512, 100, 400) == 511, "a prompt that already fits still makes progress, never growth"


def test_observed_ratio_needs_both_figures() -> None:
    assert observed_ratio(130, 100) == pytest.approx(1.3)
    assert observed_ratio(0, 100) is None
    assert observed_ratio(130, 0) is None


def test_margins_start_at_the_default_then_follow_the_worst_seen_per_server() -> None:
    margins = EstimateMargins()
    assert margins.margin("a") == DEFAULT_ESTIMATE_MARGIN
    margins.observe("a", 60, 100)
    assert margins.margin("a") == MIN_LEARNT_MARGIN, "a low figure (a cached prompt) is not trusted entirely"
    margins.observe("a", 110, 100)
    assert margins.margin("a") == pytest.approx(1.1 * LEARNT_MARGIN_SLACK), "a real figure replaces the default"
    margins.observe("a", 125, 100)
    margins.observe("a", 105, 100)
    assert margins.margin("a") == pytest.approx(1.25 * LEARNT_MARGIN_SLACK), "only the worst ratio counts"
    margins.observe("a", 0, 100)
    assert margins.margin("a") == pytest.approx(1.25 * LEARNT_MARGIN_SLACK), "no usage teaches nothing"
    assert margins.margin("b") == DEFAULT_ESTIMATE_MARGIN, "each server learns on its own"
    margins.observe("b", 10_000, 10)
    assert margins.margin("b") == MAX_ESTIMATE_MARGIN


@pytest.mark.parametrize(
    ("max_tokens", "expected"),
    [(None, SUMMARY_MAX_CHARS), (4000, SUMMARY_MAX_CHARS), (200, (200 - ANSWER_FRAME_TOKENS) * 2), (64, 40), (4, 40)],
)
def test_summary_cap_keeps_the_whole_answer_within_max_tokens(max_tokens: int | None, expected: int) -> None:
    assert summary_cap(max_tokens) == expected
    schema = agent_response_schema(answer_schemas([]), summary_cap(max_tokens))
    assert schema["properties"]["summary"]["maxLength"] == expected
