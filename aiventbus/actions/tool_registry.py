"""The public plugin API for tools: ToolBackend, ToolMethod and the registry the executor advertises."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

TOOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class ToolMethod:
    """One callable method of a backend: `params` maps each parameter name to a line describing it."""

    name: str
    description: str
    params: dict[str, str]
    # None means every declared param is required (the spec's example declares only required ones).
    required: frozenset[str] | None = None

    @property
    def required_params(self) -> frozenset[str]:
        return frozenset(self.params) if self.required is None else self.required

    def check_params(self, given: dict[str, Any]) -> str | None:
        """Why `given` does not fit this method's declared params, or None when it does."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            return f"unknown param(s) {', '.join(unknown)}; {self.name} takes {_names(self.params)}"
        missing = sorted(self.required_params - set(given))
        if missing:
            return f"missing param(s) {', '.join(missing)} for {self.name}"
        return None


def _names(params: dict[str, str]) -> str:
    return ", ".join(params) if params else "no params"


class ToolBackend(ABC):
    """An external capability agents can call through `tool_call` actions."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The `tool` value agents use."""

    @property
    @abstractmethod
    def description(self) -> str:
        """One line for the agent prompt."""

    @abstractmethod
    def methods(self) -> list[ToolMethod]:
        """The methods agents may call."""

    @abstractmethod
    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """Run one method; the JSON-able result becomes the action's result (source tool_output)."""

    def method(self, name: str) -> ToolMethod | None:
        return next((m for m in self.methods() if m.name == name), None)


class ToolRegistry:
    """The backends the executor offers, by name."""

    def __init__(self) -> None:
        self._backends: dict[str, ToolBackend] = {}

    def register(self, backend: ToolBackend) -> None:
        """Add `backend`; a second backend with the same name replaces the first."""
        if not TOOL_NAME.match(backend.name):
            raise ValueError(f"tool backend name {backend.name!r} must be letters, digits, _ . - (max 64)")
        self._backends[backend.name] = backend

    def unregister(self, name: str) -> None:
        self._backends.pop(name, None)

    def get(self, name: str) -> ToolBackend | None:
        return self._backends.get(name)

    def backends(self) -> list[ToolBackend]:
        return [self._backends[name] for name in sorted(self._backends)]

    def check_call(self, tool: str, method: str, params: dict[str, Any]) -> str | None:
        """Why a `tool_call` would not fit the registered backends, or None when it does."""
        backend = self.get(tool)
        if backend is None:
            known = ", ".join(b.name for b in self.backends()) or "none registered"
            return f"tool: no tool backend {tool!r} (available: {known})"
        found = backend.method(method)
        if found is None:
            return f"method: {tool} has no method {method!r} (methods: {', '.join(m.name for m in backend.methods())})"
        problem = found.check_params(params)
        return None if problem is None else f"params: {problem}"

    def describe(self) -> str:
        """The prompt text that lists every backend with its methods and params."""
        lines: list[str] = []
        for backend in self.backends():
            lines.append(f'- tool "{backend.name}": {backend.description}')
            for method in backend.methods():
                lines.append(f'  - method "{method.name}": {method.description}')
                for param, about in method.params.items():
                    optional = "" if param in method.required_params else " (optional)"
                    lines.append(f"    - {param}{optional}: {about}")
        return "\n".join(lines)
