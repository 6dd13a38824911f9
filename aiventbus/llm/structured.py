"""The agent response: its JSON schema for constrained decoding, a lenient-where-safe parser, and the repair prompt."""

from __future__ import annotations

import copy
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


TYPE_MAX_CHARS = 40
REPAIR_EXCERPT_CHARS = 300
REPAIR_ERROR_CHARS = 300
SUMMARY_MAX_CHARS = 600
SUMMARY_MIN_CHARS = 40
# The answer's JSON around the summary (keys, punctuation, a short type, the confidence) in tokens, and the fewest
# characters a token of the summary can hold (prose runs 3-4 per token, odd text less).
ANSWER_FRAME_TOKENS = 48
SUMMARY_CHARS_PER_TOKEN = 2


def summary_cap(max_tokens: int | None) -> int:
    """The summary's maxLength for an answer of at most `max_tokens`: short enough that the grammar closes the JSON
    before the limit (a cut answer is a failed call), never below SUMMARY_MIN_CHARS nor above SUMMARY_MAX_CHARS."""
    if max_tokens is None:
        return SUMMARY_MAX_CHARS
    room = (max_tokens - ANSWER_FRAME_TOKENS) * SUMMARY_CHARS_PER_TOKEN
    return max(SUMMARY_MIN_CHARS, min(SUMMARY_MAX_CHARS, room))


_SCALAR: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
# Action fields are scalars or one flat object (e.g. tool arguments): deep free-form nesting is where small
# models wander off until they run out of tokens and leave the JSON unfinished.
_ACTION_FIELD: dict[str, Any] = {"anyOf": [*_SCALAR["anyOf"], {"type": "object", "additionalProperties": _SCALAR}]}


def agent_response_schema(
    actions: Sequence[str] | Mapping[str, dict[str, Any]] | None = None, summary_max_chars: int = SUMMARY_MAX_CHARS
) -> dict[str, Any]:
    """The JSON schema sent as Ollama's `format` / OpenAI's `response_format`; `summary_max_chars` from
    `summary_cap(max_tokens)` keeps a whole answer within the request's max_tokens.

    `actions` maps each action type the agent may propose to its closed proposal schema
    (`actions.models.answer_schemas`): each item of proposed_actions is then exactly one of them, and an empty
    mapping admits none. A list of names only narrows action_type; None admits any type.
    """
    if isinstance(actions, Mapping):
        proposals = _closed_proposals(actions)
    else:
        action_type: dict[str, Any] = {"type": "string"}
        if actions:
            action_type = {"type": "string", "enum": sorted(set(actions))}
        item = {
            "type": "object",
            "properties": {"action_type": action_type},
            "required": ["action_type"],
            "additionalProperties": _ACTION_FIELD,
        }
        proposals = {"type": "array", "maxItems": MAX_PROPOSED_ACTIONS, "items": item}
    return {
        "type": "object",
        "properties": {
            "type": {"type": "string", "maxLength": TYPE_MAX_CHARS},
            "summary": {"type": "string", "maxLength": summary_max_chars},
            "confidence": {"type": "number", "enum": CONFIDENCE_STEPS},
            "proposed_actions": proposals,
        },
        "required": ["type", "summary", "confidence", "proposed_actions"],
        "additionalProperties": False,
    }


def _closed_proposals(actions: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    if not actions:
        return {"type": "array", "maxItems": 0, "items": {"type": "object"}}  # nothing it could propose would run
    options = [copy.deepcopy(actions[name]) for name in sorted(actions)]
    items = options[0] if len(options) == 1 else {"anyOf": options}
    return {"type": "array", "maxItems": MAX_PROPOSED_ACTIONS, "items": items}


def parse_agent_response(text: str) -> AgentResponse:
    """Parse model output into an AgentResponse; raises StructuredOutputError(detail, raw) saying what was wrong."""
    candidate = _strip_fences(text)
    data = _outermost_object(candidate, text)
    try:
        return AgentResponse.model_validate(data)
    except ValidationError as error:
        raise StructuredOutputError(_describe(error), raw=text) from None


def repair_messages(messages: list[ChatMessage], raw: str, error: str) -> list[ChatMessage]:
    """The conversation for the one repair attempt: the original, the start of the bad answer, and what to fix.

    Only a bounded excerpt goes back: a runaway answer that filled the context would overflow it again.
    """
    excerpt = raw[:REPAIR_EXCERPT_CHARS] + (" …(cut)" if len(raw) > REPAIR_EXCERPT_CHARS else "")
    instruction = (
        f"Your previous answer was not a valid response: {error[:REPAIR_ERROR_CHARS]}. "
        "Answer again with only one short JSON object with the keys "
        '"type" (string), "summary" (string), "confidence" (number from 0 to 1) and '
        '"proposed_actions" (list of objects, each with a string "action_type"). '
        "No prose, no code fences: JSON only."
    )
    return [*messages, ChatMessage("assistant", excerpt), ChatMessage("user", instruction)]


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
