"""ToolMethod, ToolBackend and ToolRegistry as the spec's plugin example uses them."""

from __future__ import annotations

from typing import Any

import pytest

from aiventbus.actions.tool_registry import ToolBackend, ToolMethod, ToolRegistry


class PlaywrightLike(ToolBackend):
    @property
    def name(self) -> str:
        return "playwright"

    @property
    def description(self) -> str:
        return "Browser automation - navigate pages, extract text, take screenshots"

    def methods(self) -> list[ToolMethod]:
        return [
            ToolMethod("goto", "Navigate to a URL", {"url": "full URL string"}),
            ToolMethod("get_text", "Extract text from the page", {"selector": "CSS selector"}),
            ToolMethod("screenshot", "Take a screenshot", {"path": "output file path"}),
        ]

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        return {"status": "ok", "method": method, **params}


def test_positional_tool_method_as_in_the_spec() -> None:
    method = ToolMethod("goto", "Navigate to a URL", {"url": "full URL string"})
    assert (method.name, method.description, method.params) == ("goto", "Navigate to a URL", {"url": "full URL string"})
    assert method.required_params == {"url"}


def test_registry_register_get_unregister() -> None:
    registry = ToolRegistry()
    backend = PlaywrightLike()
    registry.register(backend)
    assert registry.get("playwright") is backend
    assert registry.backends() == [backend]
    registry.unregister("playwright")
    assert registry.get("playwright") is None
    assert registry.backends() == []


@pytest.mark.parametrize(
    ("tool", "method", "params", "problem"),
    [
        ("playwright", "goto", {"url": "https://x.example"}, None),
        ("selenium", "goto", {"url": "x"}, "tool: no tool backend 'selenium'"),
        ("playwright", "click", {}, "method: playwright has no method 'click'"),
        ("playwright", "goto", {}, "missing param(s) url"),
        ("playwright", "goto", {"url": "x", "wait": True}, "unknown param(s) wait"),
    ],
)
def test_call_checks(tool: str, method: str, params: dict[str, Any], problem: str | None) -> None:
    registry = ToolRegistry()
    registry.register(PlaywrightLike())
    found = registry.check_call(tool, method, params)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_optional_params_may_be_left_out() -> None:
    method = ToolMethod("search", "Search", {"q": "query", "limit": "max hits"}, frozenset({"q"}))
    assert method.check_params({"q": "x"}) is None
    assert method.check_params({"limit": 3}) is not None


def test_describe_lists_backends_methods_and_params() -> None:
    registry = ToolRegistry()
    registry.register(PlaywrightLike())
    text = registry.describe()
    assert 'tool "playwright"' in text
    assert 'method "goto": Navigate to a URL' in text
    assert "url: full URL string" in text


def test_bad_backend_names_are_refused() -> None:
    class Bad(PlaywrightLike):
        @property
        def name(self) -> str:
            return "has space"

    with pytest.raises(ValueError, match="letters"):
        ToolRegistry().register(Bad())
