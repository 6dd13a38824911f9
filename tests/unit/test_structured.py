"""Parsing and repair of agent responses: lenient where it is safe, strict otherwise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from llama_cpp import llama_grammar

from aiventbus.errors import StructuredOutputError
from aiventbus.llm.base import ChatMessage
from aiventbus.llm.structured import (
    AgentResponse,
    agent_response_schema,
    parse_agent_response,
    repair_messages,
)
from aiventbus.records.actions import ACTION_TYPES, ANSWER_TEXT_MAX_CHARS, answer_schemas

GOOD = {"type": "analysis", "summary": "disk almost full", "confidence": 0.9, "proposed_actions": []}


def dumped(**changes: Any) -> str:
    return json.dumps({**GOOD, **changes})


ACCEPTED = [
    ("plain object", dumped(), {"confidence": 0.9}),
    ("json fence", f"```json\n{dumped()}\n```", {"type": "analysis"}),
    ("bare fence", f"```\n{dumped()}\n```", {"summary": "disk almost full"}),
    ("prose around", f"Sure! Here it is: {dumped()} Hope that helps.", {"type": "analysis"}),
    ("numeric string confidence", dumped(confidence="0.75"), {"confidence": 0.75}),
    ("integer confidence", dumped(confidence=1), {"confidence": 1.0}),
    ("bounds", dumped(confidence=0), {"confidence": 0.0}),
    (
        "raw newline in a string",
        dumped(summary="x").replace('"x"', '"line one\nline two"'),
        {"summary": "line one\nline two"},
    ),
    (
        "actions keep their fields",
        dumped(proposed_actions=[{"action_type": "notify", "title": "Hi", "message": "m"}]),
        {"proposed_actions": [{"action_type": "notify", "title": "Hi", "message": "m"}]},
    ),
    ("no actions key means none", json.dumps({k: v for k, v in GOOD.items() if k != "proposed_actions"}), {}),
    ("extra top-level keys ignored", dumped(reasoning="because"), {"type": "analysis"}),
]


@pytest.mark.parametrize(("label", "text", "expected"), ACCEPTED, ids=[case[0] for case in ACCEPTED])
def test_accepted(label: str, text: str, expected: dict[str, Any]) -> None:
    response = parse_agent_response(text)
    for key, value in expected.items():
        assert getattr(response, key) == value, label


REJECTED = [
    ("empty", "", "expected a JSON object, got an empty answer"),
    ("prose only", "I think the disk is full.", "expected a JSON object, got no JSON object"),
    ("cut off", dumped()[:-10], "unfinished JSON object"),
    (
        "cut off inside an action",
        dumped(proposed_actions=[{"action_type": "log"}, {"action_type": "notify"}])[:-20],
        "invalid JSON",
    ),
    ("a list", "[1, 2]", "expected a JSON object"),
    ("missing summary", json.dumps({k: v for k, v in GOOD.items() if k != "summary"}), "summary: required field"),
    ("confidence too high", dumped(confidence=7931), "confidence: Input should be less than or equal to 1"),
    ("confidence negative", dumped(confidence=-0.1), "confidence: Input should be greater than or equal to 0"),
    ("confidence words", dumped(confidence="high"), "confidence: must be a number between 0 and 1"),
    ("confidence boolean", dumped(confidence=True), "confidence: must be a number between 0 and 1"),
    ("summary not text", dumped(summary=["a"]), "summary: must be a string"),
    ("empty type", dumped(type=""), "type: String should have at least 1 character"),
    ("action without type", dumped(proposed_actions=[{"command": "ls"}]), "item 0 needs a string action_type"),
    ("action type not text", dumped(proposed_actions=[{"action_type": 3}]), "item 0 needs a string action_type"),
    ("action not an object", dumped(proposed_actions=["notify"]), "proposed_actions.0"),
]


@pytest.mark.parametrize(("label", "text", "message"), REJECTED, ids=[case[0] for case in REJECTED])
def test_rejected(label: str, text: str, message: str) -> None:
    with pytest.raises(StructuredOutputError) as caught:
        parse_agent_response(text)
    assert message in caught.value.detail, label
    assert caught.value.raw == text


def test_repair_messages_keep_the_conversation_and_say_what_was_wrong() -> None:
    original = [ChatMessage("system", "You are a helper."), ChatMessage("user", "disk?")]
    repaired = repair_messages(original, "not json", "expected a JSON object, got no JSON object")
    assert repaired[:2] == original
    assert repaired[2] == ChatMessage("assistant", "not json")
    assert repaired[3].role == "user"
    assert "expected a JSON object, got no JSON object" in repaired[3].content
    assert "JSON only" in repaired[3].content
    assert original == [ChatMessage("system", "You are a helper."), ChatMessage("user", "disk?")]


def test_repair_carries_a_bounded_excerpt_not_the_whole_answer() -> None:
    original = [ChatMessage("system", "You are a helper."), ChatMessage("user", "disk?")]
    runaway = '{"type": "x", "summary": "' + "a" * 10_000
    repaired = repair_messages(original, runaway, "unfinished JSON object (the answer was cut off)")
    added = sum(len(message.content) for message in repaired[2:])
    assert added < 1_000
    assert repaired[2].content.startswith(runaway[:300])
    assert "unfinished JSON object" in repaired[3].content


def test_schema_matches_the_model_and_narrows_action_types() -> None:
    schema = agent_response_schema()
    assert set(schema["required"]) == set(AgentResponse.model_fields)
    assert all(0 <= step <= 1 for step in schema["properties"]["confidence"]["enum"])
    assert schema["properties"]["summary"]["maxLength"] == 600
    narrowed = agent_response_schema(["notify", "log", "notify"])
    item = narrowed["properties"]["proposed_actions"]["items"]
    assert item["properties"]["action_type"]["enum"] == ["log", "notify"]


def test_closed_schema_admits_one_whole_proposal_per_available_type() -> None:
    closed = agent_response_schema(answer_schemas(["notify", "log"]))
    proposals = closed["properties"]["proposed_actions"]
    assert proposals["maxItems"] == 4
    options = proposals["items"]["anyOf"]
    assert [option["properties"]["action_type"] for option in options] == [
        {"type": "string", "const": "log"},
        {"type": "string", "const": "notify"},
    ]
    assert all(option["additionalProperties"] is False for option in options)
    nothing = agent_response_schema(answer_schemas([]))
    assert nothing["properties"]["proposed_actions"]["maxItems"] == 0


def _strings(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "string" and "const" not in node and "enum" not in node else []
        return found + [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def test_every_string_in_the_full_schema_is_capped_within_what_the_server_survives() -> None:
    schema = agent_response_schema(answer_schemas(list(ACTION_TYPES)))
    strings = _strings(schema)
    assert strings
    assert all(0 < s["maxLength"] <= ANSWER_TEXT_MAX_CHARS for s in strings)


@pytest.mark.parametrize("variant", ["generic", "narrowed", "closed"])
def test_schema_converts_to_a_llama_cpp_grammar(variant: str) -> None:
    """The schema must survive llama.cpp's converter (which the e2e tests rely on for constrained decoding)."""
    schema = {
        "generic": agent_response_schema(),
        "narrowed": agent_response_schema(["notify"]),
        "closed": agent_response_schema(answer_schemas(list(ACTION_TYPES))),
    }[variant]
    grammar = llama_grammar.json_schema_to_gbnf(json.dumps(schema))
    assert grammar.count("\n") < 200
    assert 'confidence ::= "0.0"' in grammar
