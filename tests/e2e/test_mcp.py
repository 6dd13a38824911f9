"""The reference MCP server mcp-server-time as a tool backend: advertised in prompts, answering real calls."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import running_daemon
from tests.support.runs import run_context

ASKED = {"text": "what time is it?"}

pytestmark = pytest.mark.e2e

TIME_SERVER = {
    "name": "time",
    "transport": "stdio",
    "command": [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"],
    "timeout_seconds": 60,
}


async def test_time_server_tools_are_in_the_prompt_and_an_approved_call_answers(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, {"tools": {"mcp_servers": [TIME_SERVER]}}) as d:
        section = d.daemon.executor.prompt_section(None)
        assert 'tool "time"' in section
        assert 'method "get_current_time"' in section and 'method "convert_time"' in section
        assert "timezone" in section

        proposal = {
            "action_type": "tool_call",
            "tool": "time",
            "method": "get_current_time",
            "params": {"timezone": "UTC"},
        }
        [outcome] = await d.daemon.executor.handle_proposals([proposal], await run_context(d, payload=ASKED))
        assert outcome.status == "pending", outcome
        answer = await d.client.post(f"/api/v1/actions/{outcome.action_id}/approve")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert body["status"] == "executed", body
        output = body["result"]["output"]
        assert output["timezone"] == "UTC"
        reported = datetime.fromisoformat(output["datetime"])
        assert abs((reported - datetime.now(UTC)).total_seconds()) < 3600
        status = (await d.client.get("/api/v1/system/status")).json()
        assert status["components"]["mcp"]["connected"] == {"time": 2}


async def test_params_are_checked_against_the_tool_schema(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, {"tools": {"mcp_servers": [TIME_SERVER]}}) as d:
        outcomes = await d.daemon.executor.handle_proposals(
            [
                {"action_type": "tool_call", "tool": "time", "method": "get_current_time", "params": {}},
                {"action_type": "tool_call", "tool": "time", "method": "get_current_time", "params": {"tz": "UTC"}},
            ],
            await run_context(d, payload=ASKED),
        )
        assert [o.status for o in outcomes] == ["invalid", "invalid"]


async def test_a_server_that_fails_to_start_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    broken = {"name": "broken", "command": [str(tmp_path / "no-such-mcp-server")], "timeout_seconds": 20}
    async with running_daemon(tmp_path, {"tools": {"mcp_servers": [broken, TIME_SERVER]}}) as d:
        status = (await d.client.get("/api/v1/system/status")).json()
        assert status["status"] == "degraded"
        assert any(p["component"] == "mcp:broken" for p in status["problems"])
        assert d.daemon.executor.tool_registry.get("broken") is None
        assert d.daemon.executor.tool_registry.get("time") is not None
