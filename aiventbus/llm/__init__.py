"""LLM providers behind one protocol (`base.py`); this module holds the small pieces both providers share."""

from __future__ import annotations

import inspect

import httpx

from aiventbus.llm.base import TokenCallback

CONNECT_TIMEOUT_SECONDS = 5.0
ERROR_BODY_MAX_CHARS = 300


async def emit_token(on_token: TokenCallback | None, text: str) -> None:
    """Hand one streamed chunk to the callback, awaiting it when it is a coroutine function."""
    if on_token is None:
        return
    result = on_token(text)
    if inspect.isawaitable(result):
        await result


def http_timeout(request_timeout_seconds: float) -> httpx.Timeout:
    """Connect fast or fail; once connected, allow the configured time between chunks."""
    return httpx.Timeout(request_timeout_seconds, connect=min(CONNECT_TIMEOUT_SECONDS, request_timeout_seconds))


async def error_text(response: httpx.Response) -> str:
    """The server's own error message from a failed response, shortened for logs and API details."""
    raw = (await response.aread()).decode(errors="replace").strip()
    try:
        data = response.json()
    except ValueError:
        return raw[:ERROR_BODY_MAX_CHARS]
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:ERROR_BODY_MAX_CHARS]
    return raw[:ERROR_BODY_MAX_CHARS]
