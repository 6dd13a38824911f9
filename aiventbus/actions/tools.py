"""tool_call: run one method of a registered tool backend, with a timeout; its output is untrusted."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiventbus.actions.tool_registry import ToolRegistry
from aiventbus.errors import AiventbusError
from aiventbus.records.actions import ActionFailed, ActionScope, HandlerResult, ToolCallAction

DEFAULT_TOOL_TIMEOUT_SECONDS = 60.0
MAX_OUTPUT_CHARS = 65_536


class ToolActions:
    def __init__(self, registry: ToolRegistry, timeout_seconds: float = DEFAULT_TOOL_TIMEOUT_SECONDS) -> None:
        self.registry = registry
        self.timeout_seconds = timeout_seconds

    async def call(self, action: ToolCallAction, scope: ActionScope) -> HandlerResult:
        problem = self.registry.check_call(action.tool, action.method, action.params)
        if problem is not None:
            raise ActionFailed(problem)
        backend = self.registry.get(action.tool)
        assert backend is not None
        try:
            output = await asyncio.wait_for(backend.call(action.method, dict(action.params)), self.timeout_seconds)
        except TimeoutError:
            raise ActionFailed(
                f"{action.tool}.{action.method} did not answer within {self.timeout_seconds:g}s"
            ) from None
        except AiventbusError as error:
            raise ActionFailed(f"{action.tool}.{action.method}: {error.detail}") from None
        except Exception as error:
            raise ActionFailed(f"{action.tool}.{action.method} failed: {type(error).__name__}: {error}") from None
        return HandlerResult(
            {"tool": action.tool, "method": action.method, "output": jsonable(output)}, source="tool_output"
        )


def jsonable(value: Any) -> Any:
    """The output as JSON data, long text cut so one tool cannot flood the bus."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        value = str(value)
        text = json.dumps(value, ensure_ascii=False)
    if len(text) > MAX_OUTPUT_CHARS:
        return {"truncated": True, "text": text[:MAX_OUTPUT_CHARS]}
    return value
