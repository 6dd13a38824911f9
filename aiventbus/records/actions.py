"""One pydantic model per built-in action type, the parser that picks one, and what handlers exchange."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from aiventbus.records.events import TOPIC_PATTERN, Priority
from aiventbus.values import RULE_TEXT, ValueRule, format_path, violation

JsonValue = Any


class ActionModel(BaseModel):
    """Fields every action shares; anything not declared is an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str | None = Field(None, max_length=2000, description="Why the agent proposes this (shown to the user)")


class EmitEventAction(ActionModel):
    action_type: Literal["emit_event"]
    topic: str = Field(..., description="Topic of the new event")
    payload: dict[str, JsonValue] = Field(default_factory=dict, description="JSON object the event carries")
    priority: Priority = Priority.normal

    @field_validator("topic")
    @classmethod
    def _topic_shape(cls, value: str) -> str:
        if not TOPIC_PATTERN.match(value):
            raise ValueError("must be 1-200 characters of letters, digits and . _ - : / (e.g. user.note)")
        if value.startswith(("system.", "action.")):
            raise ValueError("system.* and action.* topics are reserved for the daemon")
        return value


class LogAction(ActionModel):
    action_type: Literal["log"]
    message: str = Field(..., min_length=1, max_length=10_000)
    level: Literal["debug", "info", "warning", "error"] = "info"


class NotifyAction(ActionModel):
    action_type: Literal["notify"]
    title: str = Field(..., min_length=1, max_length=200)
    message: str = Field(..., max_length=2000)
    urgency: Literal["low", "normal", "critical"] = "normal"


class AlertAction(ActionModel):
    action_type: Literal["alert"]
    title: str = Field(..., min_length=1, max_length=200)
    message: str = Field(..., max_length=2000)


class ShellExecAction(ActionModel):
    action_type: Literal["shell_exec"]
    command: str = Field(..., min_length=1, max_length=10_000, description="Command line to run")


class FileReadAction(ActionModel):
    action_type: Literal["file_read"]
    path: str = Field(..., min_length=1, max_length=4096)


class FileWriteAction(ActionModel):
    action_type: Literal["file_write"]
    path: str = Field(..., min_length=1, max_length=4096)
    content: str = Field(..., description="Full new content of the file (UTF-8 text)")


class FileDeleteAction(ActionModel):
    action_type: Literal["file_delete"]
    path: str = Field(..., min_length=1, max_length=4096)


class OpenAppAction(ActionModel):
    action_type: Literal["open_app"]
    target: str = Field(..., min_length=1, max_length=4096, description="URL, file or application to open")


class HttpRequestAction(ActionModel):
    action_type: Literal["http_request"]
    url: str = Field(..., min_length=1, max_length=8192)
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | dict[str, JsonValue] | list[JsonValue] | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class SetKnowledgeAction(ActionModel):
    action_type: Literal["set_knowledge"]
    key: str = Field(..., min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/\-]+$")
    value: JsonValue = Field(..., description="Any JSON value")


class GetKnowledgeAction(ActionModel):
    action_type: Literal["get_knowledge"]
    key: str = Field(..., min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/\-]+$")


class ToolCallAction(ActionModel):
    action_type: Literal["tool_call"]
    tool: str = Field(..., min_length=1, max_length=64)
    method: str = Field(..., min_length=1, max_length=128)
    params: dict[str, JsonValue] = Field(default_factory=dict)


Action = Annotated[
    EmitEventAction
    | LogAction
    | NotifyAction
    | AlertAction
    | ShellExecAction
    | FileReadAction
    | FileWriteAction
    | FileDeleteAction
    | OpenAppAction
    | HttpRequestAction
    | SetKnowledgeAction
    | GetKnowledgeAction
    | ToolCallAction,
    Field(discriminator="action_type"),
]

ACTION_MODELS: dict[str, type[ActionModel]] = {
    "emit_event": EmitEventAction,
    "log": LogAction,
    "alert": AlertAction,
    "notify": NotifyAction,
    "shell_exec": ShellExecAction,
    "file_read": FileReadAction,
    "file_write": FileWriteAction,
    "file_delete": FileDeleteAction,
    "open_app": OpenAppAction,
    "http_request": HttpRequestAction,
    "set_knowledge": SetKnowledgeAction,
    "get_knowledge": GetKnowledgeAction,
    "tool_call": ToolCallAction,
}
ACTION_TYPES = tuple(ACTION_MODELS)
_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


class InvalidAction(Exception):
    """A proposal that is not a valid action; `unknown` when its type is not one we know, `rule` when one of its
    values breaks a rule of aiventbus.values."""

    def __init__(
        self, reason: str, action_type: str | None, unknown: bool = False, rule: ValueRule | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.action_type = action_type
        self.unknown = unknown
        self.rule = rule


def parse_action(proposal: Any) -> Action:
    """The typed action for one proposal, or InvalidAction naming the field that is wrong."""
    if not isinstance(proposal, dict):
        raise InvalidAction("a proposed action must be a JSON object", None)
    action_type = proposal.get("action_type")
    found = violation(proposal)
    if found is not None:
        path, rule = found
        known = action_type if isinstance(action_type, str) and action_type in ACTION_MODELS else None
        raise InvalidAction(f"{format_path('', path)}: {RULE_TEXT[rule]}", known, rule=rule)
    if not isinstance(action_type, str) or not action_type:
        raise InvalidAction("action_type: required (one of " + ", ".join(ACTION_TYPES) + ")", None)
    if action_type not in ACTION_MODELS:
        raise InvalidAction(f"action_type: unknown type {action_type!r}", action_type, unknown=True)
    try:
        return _ADAPTER.validate_python(proposal)
    except ValidationError as error:
        raise InvalidAction(describe_errors(error), action_type) from None


def describe_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors()[:5]:
        loc = [str(part) for part in item["loc"]]
        if loc and loc[0] in ACTION_MODELS:
            loc = loc[1:]
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"{'.'.join(loc) or 'action'}: {message}")
    return "; ".join(lines)


def action_content(action: ActionModel) -> dict[str, Any]:
    """The action as plain JSON data, the form that is stored and hashed."""
    return action.model_dump(mode="json", exclude_none=True)


def canonical_json(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_digest(content_json: str) -> str:
    """SHA-256 of the canonical JSON an approval is bound to."""
    return hashlib.sha256(content_json.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ActionScope:
    """Where an action runs: who proposed it (and who approved it), which trace its results join, and the proposing
    run's label."""

    action_id: str
    agent_id: str
    trace_id: str
    parent_event_id: str
    taint: list[str]
    approved_by: str | None = None  # who approved it; None when the policy's auto verdict ran it


@dataclass(frozen=True)
class HandlerResult:
    """What a handler produced: its data, the source its result event carries, and the label of content it
    returns beyond what its action type already implies (`RESULT_ORIGINS`), e.g. a labelled knowledge entry."""

    data: dict[str, Any] = field(default_factory=dict)
    source: str = "executor"
    taint: list[str] = field(default_factory=list)


# What an action's result holds content from, whether it succeeded or failed (a failed command's output too).
RESULT_ORIGINS: dict[str, str] = {
    "shell_exec": "shell_output",
    "file_read": "file",
    "http_request": "http_response",
    "tool_call": "tool_output",
}


class ActionFailed(Exception):
    """A handler could not do what the action asked; `reason` is shown to the user and the agent."""

    def __init__(self, reason: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.data = data or {}


# What agents read about each type: one line and the JSON shape to propose.
ACTION_DOCS: dict[str, tuple[str, str]] = {
    "emit_event": ("publish a new event that other agents may react to", '{"topic": "x.y", "payload": {}}'),
    "log": ("write a line to the daemon log", '{"message": "...", "level": "info"}'),
    "alert": ("show an urgent desktop notification", '{"title": "...", "message": "..."}'),
    "notify": ("show a desktop notification", '{"title": "...", "message": "...", "urgency": "normal"}'),
    "shell_exec": ("run a shell command (most need the user's approval)", '{"command": "ls -la ~/Downloads"}'),
    "file_read": ("read a text file", '{"path": "~/notes.txt"}'),
    "file_write": ("replace a file's content (old content is backed up)", '{"path": "~/notes.txt", "content": "..."}'),
    "file_delete": ("delete a file (it is backed up first)", '{"path": "~/old.txt"}'),
    "open_app": ("open a URL, file or application", '{"target": "https://example.com"}'),
    "http_request": (
        "make an HTTP request; the response comes back as a new event",
        '{"url": "https://example.com/api", "method": "GET", "headers": {}, "body": null}',
    ),
    "set_knowledge": ("remember a fact for every agent", '{"key": "topic.name", "value": "..."}'),
    "get_knowledge": ("look up a remembered fact", '{"key": "topic.name"}'),
    "tool_call": ("call a method of a tool backend listed below", '{"tool": "name", "method": "m", "params": {}}'),
}


# What an agent's answer may put in each string field: the schema's maxLength, tighter than the models' own limits
# (which also bound what people and tools send). llama-cpp-python's grammar converter nests one optional per
# character, and its server decodes at half speed with a 1,000-character cap and crashes at 2,000 (measured), so no
# cap exceeds ANSWER_TEXT_MAX_CHARS.
ANSWER_TEXT_MAX_CHARS = 600
ANSWER_STRING_CAPS: dict[str, int] = {
    "command": ANSWER_TEXT_MAX_CHARS,
    "content": ANSWER_TEXT_MAX_CHARS,
    "message": 400,
    "url": 500,
    "path": 300,
    "target": 300,
    "title": 120,
    "topic": 120,
    "key": 120,
    "tool": 64,
    "method": 64,
}
ANSWER_OTHER_STRING_MAX_CHARS = 200  # values, params, headers, bodies
ANSWER_ARRAY_MAX_ITEMS = 8
# The summary already says why; an optional `reason` per action only gives a small model more to wander in.
_NOT_IN_ANSWERS = {"reason"}


def _answer_schema(action_type: str, model: type[ActionModel]) -> dict[str, Any]:
    full = model.model_json_schema()
    defs: dict[str, Any] = full.get("$defs", {})
    properties: dict[str, Any] = {"action_type": {"type": "string", "const": action_type}}
    for name, schema in full["properties"].items():
        if name != "action_type" and name not in _NOT_IN_ANSWERS:
            properties[name] = _answer_value(schema, defs, ANSWER_STRING_CAPS.get(name, ANSWER_OTHER_STRING_MAX_CHARS))
    return {"type": "object", "properties": properties, "required": full["required"], "additionalProperties": False}


def _answer_value(schema: dict[str, Any], defs: dict[str, Any], cap: int) -> dict[str, Any]:
    """One field's schema as an answer may fill it: strings capped, free-form values one flat level of scalars."""
    if "$ref" in schema:
        return _answer_value(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, cap)
    if "anyOf" in schema:
        return {"anyOf": [_answer_value(option, defs, cap) for option in schema["anyOf"]]}
    if "const" in schema or "enum" in schema:
        return {key: schema[key] for key in ("type", "const", "enum") if key in schema}
    kind = schema.get("type")
    if kind == "string":
        return _answer_string(schema, cap)
    if kind == "object":
        values = schema.get("additionalProperties")
        inner = _answer_value(values, defs, cap) if isinstance(values, dict) and values else _answer_scalar(cap)
        return {"type": "object", "additionalProperties": inner}
    if kind == "array":
        return {"type": "array", "items": _answer_scalar(cap), "maxItems": ANSWER_ARRAY_MAX_ITEMS}
    if kind in ("number", "integer", "boolean", "null"):
        return {"type": kind}
    return _answer_scalar(cap)  # any JSON value


def _answer_string(schema: dict[str, Any], cap: int) -> dict[str, Any]:
    limit = min(cap, schema.get("maxLength", cap))
    least = schema.get("minLength", 0)
    result: dict[str, Any] = {"type": "string", "maxLength": limit}
    if least:
        result["minLength"] = least
    pattern = schema.get("pattern")
    # Converters take a pattern over maxLength: `^[...]+$` becomes `^[...]{1,limit}$` so the cap still holds.
    if isinstance(pattern, str) and pattern.startswith("^[") and pattern.endswith("]+$"):
        result["pattern"] = f"{pattern[:-2]}{{{max(least, 1)},{limit}}}$"
    return result


def _answer_scalar(cap: int) -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "maxLength": cap}, {"type": "number"}, {"type": "boolean"}]}


# One closed JSON schema per action type (its fields, types, required ones and caps), derived from the models above
# so that what the model may answer and what parse_action accepts cannot drift.
ANSWER_SCHEMAS: dict[str, dict[str, Any]] = {name: _answer_schema(name, model) for name, model in ACTION_MODELS.items()}


def answer_schemas(available: list[str]) -> dict[str, dict[str, Any]]:
    """The closed proposal schema of each available action type, for agent_response_schema."""
    return {name: ANSWER_SCHEMAS[name] for name in available if name in ANSWER_SCHEMAS}
