"""Which finish reasons make an answer whole, and what a cut one says."""

from __future__ import annotations

import pytest

from aiventbus.core.agent_run import RETRY_MIN_TEMPERATURE, attempt_temperature
from aiventbus.llm.base import truncation_problem


@pytest.mark.parametrize("reason", ["stop", "eos", "tool_calls"])
def test_a_model_that_ended_its_answer_is_whole(reason: str) -> None:
    assert truncation_problem(reason, 100) is None


def test_length_names_the_limit_and_the_reason() -> None:
    assert truncation_problem("length", 37) == "the answer was cut at max_tokens=37 (finish_reason=length)"
    assert truncation_problem("length", None, field="done_reason") == (
        "the answer was cut at the server's output limit (done_reason=length)"
    )


def test_no_reason_at_all_is_a_cut_stream() -> None:
    problem = truncation_problem(None, 100)
    assert problem is not None and "without a finish_reason" in problem


def test_other_reasons_are_named() -> None:
    problem = truncation_problem("content_filter", 100)
    assert problem == "the answer was cut by the server (finish_reason=content_filter)"


def test_a_retry_samples_warmer_than_greedy_so_a_runaway_does_not_replay() -> None:
    assert attempt_temperature(0.0, 0) == 0.0  # the first attempt is the agent's own setting
    assert attempt_temperature(0.0, 1) == RETRY_MIN_TEMPERATURE
    assert attempt_temperature(0.9, 2) == 0.9  # a warmer agent keeps its own
