"""Reading a JSON request body with a size cap and errors that say what was wrong."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from aiventbus.errors import AiventbusError, PayloadTooLarge
from aiventbus.values import parse_json

M = TypeVar("M", bound=BaseModel)


class UnsupportedMediaType(AiventbusError):
    status_code = 415


class MalformedJson(AiventbusError):
    status_code = 400


class InvalidBody(AiventbusError):
    status_code = 422


async def read_json(request: Request, max_bytes: int) -> Any:
    """The body's JSON value; 415 not JSON, 413 too big, 400 malformed, 422 when a value breaks a rule of
    aiventbus.values (the detail names its path and the rule)."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(f"content type must be application/json, got {content_type or 'none'!r}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the {max_bytes}-byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body exceeds the {max_bytes}-byte limit")
    try:
        return parse_json(bytes(body))
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError; UnsafeValue is not one
        raise MalformedJson(f"malformed JSON: {error}") from None


def describe(error: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming the field: `payload: Field required`."""
    lines = []
    for item in error.errors()[:5]:
        loc = ".".join(str(part) for part in item["loc"])
        field = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "body")
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"{field}: {message}")
    return "; ".join(lines)


def parse_model(model: type[M], data: Any, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidBody(describe(error, prefix)) from None


async def read_model(request: Request, model: type[M], max_bytes: int) -> M:
    return parse_model(model, await read_json(request, max_bytes))
