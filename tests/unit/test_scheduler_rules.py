"""Pure parts of the scheduler and the system prompt."""

from __future__ import annotations

import pytest

from aiventbus.core.lane_rules import backoff_seconds
from aiventbus.core.prompts import NO_ACTIONS, RESPONSE_FORMAT, system_prompt
from aiventbus.records.agents import AgentSpec


@pytest.mark.parametrize(("base", "attempts", "delay"), [(2.0, 1, 2.0), (2.0, 2, 4.0), (2.0, 3, 8.0), (0.0, 5, 0.0)])
def test_exponential_backoff(base: float, attempts: int, delay: float) -> None:
    assert backoff_seconds(base, attempts) == delay


def test_system_prompt_has_the_agent_prompt_the_actions_and_the_format() -> None:
    agent = AgentSpec(id="agent_a", name="a", model="m", system_prompt="Be brief.", description="Answers questions")
    prompt = system_prompt(agent, "## Actions\n- notify: show a desktop notification")
    assert prompt.startswith("Be brief.")
    assert "Answers questions" in prompt
    assert "- notify:" in prompt
    assert prompt.endswith(RESPONSE_FORMAT)


def test_system_prompt_without_actions_says_so() -> None:
    agent = AgentSpec(id="agent_a", name="a", model="m")
    assert NO_ACTIONS in system_prompt(agent, "")
