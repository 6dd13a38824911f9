"""Every built-in action type parses from the spec's shapes; malformed and unknown proposals are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiventbus.records.actions import (
    ACTION_DOCS,
    ACTION_MODELS,
    ACTION_TYPES,
    ANSWER_SCHEMAS,
    InvalidAction,
    action_content,
    canonical_json,
    content_digest,
    parse_action,
)

VALID: list[dict[str, Any]] = [
    {"action_type": "emit_event", "topic": "user.note", "payload": {"text": "hi"}},
    {"action_type": "log", "message": "disk almost full", "level": "warning"},
    {"action_type": "alert", "title": "Security Alert", "message": "Possible credential stuffing"},
    {"action_type": "notify", "title": "Security Alert", "message": "Possible credential stuffing attack detected"},
    {"action_type": "shell_exec", "command": "last -i | grep 10.0.0.1"},
    {"action_type": "file_read", "path": "~/notes.txt"},
    {"action_type": "file_write", "path": "/tmp/x.txt", "content": "hello"},
    {"action_type": "file_delete", "path": "/tmp/x.txt"},
    {"action_type": "open_app", "target": "https://example.com"},
    {"action_type": "http_request", "url": "https://api.weather.com/v1/current?city=bucharest", "method": "GET"},
    {"action_type": "set_knowledge", "key": "security.last_alert", "value": "credential stuffing from 10.0.0.1"},
    {"action_type": "get_knowledge", "key": "security.last_alert"},
    {"action_type": "tool_call", "tool": "playwright", "method": "goto", "params": {"url": "https://x.example"}},
]


def test_every_type_has_a_valid_example_and_prompt_docs() -> None:
    assert {p["action_type"] for p in VALID} == set(ACTION_TYPES) == set(ACTION_MODELS) == set(ACTION_DOCS)


@pytest.mark.parametrize("proposal", VALID, ids=lambda p: p["action_type"])
def test_spec_shapes_parse_and_round_trip(proposal: dict[str, Any]) -> None:
    action = parse_action(proposal)
    assert action.action_type == proposal["action_type"]
    content = action_content(action)
    for key, value in proposal.items():
        assert content[key] == value
    assert parse_action(content) == action


@pytest.mark.parametrize(
    ("proposal", "field"),
    [
        ({"action_type": "shell_exec"}, "command"),
        ({"action_type": "shell_exec", "command": ""}, "command"),
        ({"action_type": "shell_exec", "command": "ls", "cmd": "ls"}, "cmd: unknown field"),
        ({"action_type": "notify", "message": "no title"}, "title"),
        ({"action_type": "notify", "title": "t", "message": "m", "urgency": "panic"}, "urgency"),
        ({"action_type": "emit_event", "topic": "bad topic!", "payload": {}}, "topic"),
        ({"action_type": "emit_event", "topic": "system.fake", "payload": {}}, "reserved"),
        ({"action_type": "emit_event", "topic": "a.b", "payload": [1]}, "payload"),
        ({"action_type": "http_request", "url": "file:///etc/passwd"}, "url"),
        ({"action_type": "http_request", "url": "https://x.example", "method": "TRACE"}, "method"),
        ({"action_type": "file_write", "path": "/tmp/x"}, "content"),
        ({"action_type": "set_knowledge", "key": "has space", "value": 1}, "key"),
        ({"action_type": "tool_call", "tool": "t", "method": "m", "params": "not a dict"}, "params"),
        ({"action_type": "log", "message": "x", "level": "loud"}, "level"),
    ],
)
def test_malformed_proposals_name_the_field(proposal: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidAction) as caught:
        parse_action(proposal)
    assert field in caught.value.reason
    assert caught.value.unknown is False
    assert caught.value.action_type == proposal["action_type"]


def test_unknown_type_and_non_objects() -> None:
    with pytest.raises(InvalidAction) as caught:
        parse_action({"action_type": "launch_missiles"})
    assert caught.value.unknown is True
    for bad in ("ls", ["shell_exec"], {"command": "ls"}, {"action_type": 3}):
        with pytest.raises(InvalidAction) as caught:
            parse_action(bad)
        assert caught.value.unknown is False


def test_http_method_is_case_insensitive() -> None:
    action = parse_action({"action_type": "http_request", "url": "http://x.example", "method": "post"})
    assert action_content(action)["method"] == "POST"


def test_digest_is_of_canonical_json_so_key_order_does_not_matter() -> None:
    a = canonical_json(action_content(parse_action({"action_type": "file_write", "path": "/a", "content": "x"})))
    b = canonical_json(action_content(parse_action({"content": "x", "path": "/a", "action_type": "file_write"})))
    assert a == b
    assert content_digest(a) == content_digest(b)
    assert content_digest(a) != content_digest(a.replace('"x"', '"y"'))


@pytest.mark.parametrize("proposal", VALID, ids=[p["action_type"] for p in VALID])
def test_answer_schema_agrees_with_the_model_and_the_prompt_docs(proposal: dict[str, Any]) -> None:
    """One source: the answer schema's fields are the model's, and the prompt's shape names only those."""
    action_type = proposal["action_type"]
    schema = ANSWER_SCHEMAS[action_type]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) <= set(ACTION_MODELS[action_type].model_fields)
    assert set(schema["required"]) <= set(schema["properties"])
    shown = set(json.loads(ACTION_DOCS[action_type][1])) | {"action_type"}
    assert set(schema["required"]) <= shown <= set(schema["properties"])
    assert set(proposal) <= set(schema["properties"])
