"""The agent response: its JSON schema for constrained decoding, a lenient-where-safe parser, and the repair prompt."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aiventbus.errors import StructuredOutputError
from aiventbus.llm.base import ChatMessage

RESPONSE_TYPE_MAX_CHARS = 200
MAX_PROPOSED_ACTIONS = 4
# Grammar converters (llama.cpp, Ollama) ignore minimum/maximum on numbers; an enum keeps small models in 0..1.
CONFIDENCE_STEPS = [round(step / 20, 2) for step in range(21)]

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_NUMERIC = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


class AgentResponse(BaseModel):
    """What an agent answers: a kind, a summary, its confidence and the actions it proposes."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(min_length=1, max_length=RESPONSE_TYPE_MAX_CHARS)
    summary: str
    confidence: float = Field(ge=0.0, le=1.0)
    proposed_actions: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("type", "summary", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value

    @field_validator("confidence", mode="before")
    @classmethod
    def _numeric_confidence(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number between 0 and 1")
        if isinstance(value, str):
            if not _NUMERIC.match(value):
                raise ValueError("must be a number between 0 and 1")
            return float(value)
        return value

    @field_validator("proposed_actions", mode="after")
    @classmethod
    def _typed_actions(cls, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, action in enumerate(actions):
            action_type = action.get("action_type")
            if not isinstance(action_type, str) or not action_type.strip():
                raise ValueError(f"item {index} needs a string action_type")
        return actions


_SCALAR: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
# Action fields are scalars or one flat object (e.g. tool arguments): deep free-form nesting is where small
# models wander off until they run out of tokens and leave the JSON unfinished.
_ACTION_FIELD: dict[str, Any] = {"anyOf": [*_SCALAR["anyOf"], {"type": "object", "additionalProperties": _SCALAR}]}


def agent_response_schema(
    action_types: Sequence[str] | None = None, action_fields: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The JSON schema sent as Ollama's `format` / OpenAI's `response_format`.

    `action_types` narrows action_type to those names; `action_fields` (field name -> JSON schema) closes each
    action to those fields, which keeps small models from inventing keys.
    """
    action_type: dict[str, Any] = {"type": "string"}
    if action_types:
        action_type = {"type": "string", "enum": sorted(set(action_types))}
    action_item: dict[str, Any] = {
        "type": "object",
        "properties": {"action_type": action_type},
        "required": ["action_type"],
        "additionalProperties": _ACTION_FIELD,
    }
    if action_fields:
        extra = {name: schema for name, schema in action_fields.items() if name != "action_type"}
        action_item = {
            **action_item,
            "properties": {"action_type": action_type, **extra},
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": {
            # No maxLength anywhere: llama.cpp's converter nests one optional per character, which halves the
            # decoding speed at 64 characters and crashes the server at a few thousand.
            "type": {"type": "string"},
            "summary": {"type": "string"},
            "confidence": {"type": "number", "enum": CONFIDENCE_STEPS},
            "proposed_actions": {
                "type": "array",
                "maxItems": MAX_PROPOSED_ACTIONS,
                "items": action_item,
            },
        },
        "required": ["type", "summary", "confidence", "proposed_actions"],
        "additionalProperties": False,
    }


def parse_agent_response(text: str) -> AgentResponse:
    """Parse model output into an AgentResponse; raises StructuredOutputError(detail, raw) saying what was wrong."""
    candidate = _strip_fences(text)
    data = _outermost_object(candidate, text)
    try:
        return AgentResponse.model_validate(data)
    except ValidationError as error:
        raise StructuredOutputError(_describe(error), raw=text) from None


def repair_messages(messages: list[ChatMessage], raw: str, error: str) -> list[ChatMessage]:
    """The conversation for the one repair attempt: the original, the bad answer, and what to fix."""
    instruction = (
        f"Your previous answer was not a valid response: {error}. "
        "Answer again with only one JSON object with the keys "
        '"type" (string), "summary" (string), "confidence" (number from 0 to 1) and '
        '"proposed_actions" (list of objects, each with a string "action_type"). '
        "No prose, no code fences: JSON only."
    )
    return [*messages, ChatMessage("assistant", raw), ChatMessage("user", instruction)]


def _strip_fences(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1) if match else text


def _outermost_object(candidate: str, raw: str) -> Any:
    """The JSON object spanning the first `{` to the last `}` (prose around it is dropped)."""
    start = candidate.find("{")
    end = candidate.rfind("}")
    if start >= 0 and end < start:
        raise StructuredOutputError("unfinished JSON object (the answer was cut off)", raw=raw)
    if start < 0:
        shown = "an empty answer" if not raw.strip() else "no JSON object"
        raise StructuredOutputError(f"expected a JSON object, got {shown}", raw=raw)
    try:
        # strict=False: raw newlines inside strings, which llama.cpp's schema grammar lets through, are harmless.
        data = json.loads(candidate[start : end + 1], strict=False)
    except json.JSONDecodeError as error:
        raise StructuredOutputError(f"invalid JSON: {error.msg} at character {error.pos}", raw=raw) from None
    except RecursionError:
        raise StructuredOutputError("invalid JSON: nested too deeply to parse", raw=raw) from None
    except ValueError as error:  # an integer of more than 4,300 digits
        raise StructuredOutputError(f"invalid JSON: {error}", raw=raw) from None
    if not isinstance(data, dict):
        raise StructuredOutputError("expected a JSON object", raw=raw)
    return data


def _describe(error: ValidationError) -> str:
    """The first problem as `field: message`, e.g. `confidence: Input should be less than or equal to 1`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "response"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if first["type"] != "missing" else f"{where}: required field is missing"
