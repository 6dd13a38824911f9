"""max_tokens is always set on agent requests: the agent's own, else what the context leaves (bounded)."""

from __future__ import annotations

import pytest

from aiventbus.core.token_budget import ANSWER_TOKENS_MAX, ANSWER_TOKENS_MIN, answer_token_limit

CASES = [
    ("the agent's own wins", 100, 2048, 1900, 100),
    ("unknown window: the cap", None, None, 500, ANSWER_TOKENS_MAX),
    ("roomy window: the cap", None, 8192, 1000, ANSWER_TOKENS_MAX),
    ("what the window leaves", None, 2048, 1848, 200),
    ("a full window still leaves the floor", None, 2048, 2100, ANSWER_TOKENS_MIN),
]


@pytest.mark.parametrize(
    ("label", "agent_max", "window", "estimate", "expected"), CASES, ids=[case[0] for case in CASES]
)
def test_answer_token_limit(
    label: str, agent_max: int | None, window: int | None, estimate: int, expected: int
) -> None:
    assert answer_token_limit(agent_max, window, estimate) == expected, label
