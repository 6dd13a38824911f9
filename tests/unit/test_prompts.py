"""The prompts hold no placeholder a small model could copy into its answer, and examples that parse."""

from __future__ import annotations

import json
import re

import pytest

from aiventbus.core.prompts import CLASSIFIER_PROMPT, RESPONSE_FORMAT, system_prompt
from aiventbus.llm.structured import parse_agent_response
from aiventbus.records.agents import AgentSpec

PLACEHOLDER = re.compile(r"<[^<>\n]{2,}>")


@pytest.mark.parametrize(
    "prompt",
    [
        RESPONSE_FORMAT,
        CLASSIFIER_PROMPT,
        system_prompt(AgentSpec(id="agent_a", name="a", model="m"), ""),
        system_prompt(AgentSpec(id="agent_a", name="a", model="m"), "## Actions\n- log: write a line"),
    ],
)
def test_no_copyable_placeholder(prompt: str) -> None:
    assert PLACEHOLDER.search(prompt) is None


def test_every_example_is_a_valid_response() -> None:
    examples = [line for line in RESPONSE_FORMAT.splitlines() if line.startswith('{"type"')]
    assert len(examples) == 2
    for line in examples:
        parse_agent_response(json.dumps(json.loads(line)))
