"""An MCP server over streamable HTTP (the SDK's own server on loopback) as a tool backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer

from aiventbus.core.executor import RunContext
from aiventbus.records.events import EventIn
from tests.support.daemon import free_port, running_daemon

pytestmark = pytest.mark.e2e


@pytest.fixture
def http_mcp_server() -> Iterator[str]:
    """A streamable-HTTP MCP server with one `add` tool, served by uvicorn in a thread; yields its URL."""
    server = MCPServer("calculator")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    port = free_port()
    config = uvicorn.Config(
        server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="none"
    )
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, name="mcp-http-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not web.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the MCP test server did not start")
        time.sleep(0.01)  # waiting for another thread's event loop
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        web.should_exit = True
        thread.join(15)


async def test_streamable_http_server_tools_are_offered_and_called(tmp_path: Path, http_mcp_server: str) -> None:
    entry = {"name": "calc", "transport": "http", "url": http_mcp_server, "timeout_seconds": 30}
    async with running_daemon(tmp_path, {"tools": {"mcp_servers": [entry]}}) as d:
        section = d.daemon.executor.prompt_section(None)
        assert 'tool "calc"' in section and 'method "add": Add two integers.' in section
        event = await d.daemon.bus.publish(EventIn(topic="user.ask", payload={}, source="user"))
        ctx = RunContext("agent_tester", event, None, None, event.trace_id, [])
        proposal = {"action_type": "tool_call", "tool": "calc", "method": "add", "params": {"a": 2, "b": 40}}
        [outcome] = await d.daemon.executor.handle_proposals([proposal], ctx)
        assert outcome.status == "pending", outcome
        record = await d.daemon.executor.approvals.approve(str(outcome.action_id))
        assert record.status.value == "executed", record
        assert record.result is not None
        output = record.result["output"]
        assert output == {"result": 42}, output
