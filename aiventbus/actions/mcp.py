"""MCP servers as tool backends: one client session per configured server, its tools as ToolMethods."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from mcp import Client, StdioServerParameters

from aiventbus.actions.tool_registry import ToolBackend, ToolMethod, ToolRegistry
from aiventbus.config import McpServerConfig
from aiventbus.records.actions import ActionFailed
from aiventbus.service import Problem

log = logging.getLogger(__name__)


def method_from_tool(name: str, description: str | None, schema: dict[str, Any]) -> ToolMethod:
    """A ToolMethod whose params are the tool's input-schema properties (required ones as declared)."""
    properties = schema.get("properties") or {}
    params: dict[str, str] = {}
    for param, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "value")
        about = spec.get("description") or spec.get("title") or ""
        params[str(param)] = f"{kind}: {about}".rstrip(": ")
    required = frozenset(str(p) for p in schema.get("required") or [] if p in properties)
    return ToolMethod(name, (description or name).strip().splitlines()[0][:300], params, required)


def output_of(result: Any) -> Any:
    """Structured content when the server gives it, else the text blocks joined."""
    if result.structured_content is not None:
        return result.structured_content
    texts = [block.text for block in result.content if getattr(block, "type", "") == "text"]
    return "\n".join(texts)


class McpToolBackend(ToolBackend):
    """The tools of one connected MCP server."""

    def __init__(self, config: McpServerConfig, client: Client, methods: list[ToolMethod], about: str) -> None:
        self.config = config
        self.client = client
        self._methods = methods
        self._about = about

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def description(self) -> str:
        return self._about

    def methods(self) -> list[ToolMethod]:
        return list(self._methods)

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        result = await asyncio.wait_for(
            self.client.call_tool(method, params, read_timeout_seconds=self.config.timeout_seconds),
            self.config.timeout_seconds,
        )
        if result.is_error:
            raise ActionFailed(f"{self.name}.{method} reported an error: {output_of(result)}")
        return output_of(result)


def client_for(config: McpServerConfig) -> Client:
    if config.transport == "http":
        if not config.url:
            raise ValueError("transport http needs a url")
        return Client(config.url, read_timeout_seconds=config.timeout_seconds)
    if not config.command:
        raise ValueError("transport stdio needs a command")
    params = StdioServerParameters(command=config.command[0], args=config.command[1:], env=config.env or None)
    return Client(params, read_timeout_seconds=config.timeout_seconds)


class McpService:
    """Starts every configured MCP server at daemon start; one that fails is a problem, not a crash."""

    name = "mcp"

    def __init__(self, servers: list[McpServerConfig], registry: ToolRegistry) -> None:
        self.servers = servers
        self.registry = registry
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._failures: dict[str, str] = {}
        self._connected: dict[str, int] = {}

    async def start(self) -> None:
        ready: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()
        for server in self.servers:
            started: asyncio.Future[None] = loop.create_future()
            ready.append(started)
            self._tasks.append(asyncio.create_task(self._hold(server, started), name=f"mcp:{server.name}"))
        if ready:
            await asyncio.gather(*ready, return_exceptions=True)

    async def _hold(self, server: McpServerConfig, started: asyncio.Future[None]) -> None:
        """Keep one session open (its context lives in this task) until the daemon stops."""
        try:
            client = client_for(server)
            async with asyncio.timeout(server.timeout_seconds):
                await client.__aenter__()
            try:
                async with asyncio.timeout(server.timeout_seconds):
                    listing = await client.list_tools()
                methods = [method_from_tool(t.name, t.description, t.input_schema) for t in listing.tools]
                info = client.server_info
                about = f"MCP server {server.name}" + (f" ({info.name})" if info is not None and info.name else "")
                self.registry.register(McpToolBackend(server, client, methods, about))
                self._connected[server.name] = len(methods)
                started.set_result(None)
                await self._stop.wait()
            finally:
                self.registry.unregister(server.name)
                self._connected.pop(server.name, None)
                with contextlib.suppress(Exception):
                    await client.__aexit__(None, None, None)
        except Exception as error:
            reason = _describe(error)
            self._failures[server.name] = reason
            log.warning("MCP server %s did not start: %s", server.name, reason)
        finally:
            if not started.done():
                started.set_result(None)

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def problems(self) -> list[Problem]:

        return [
            Problem(f"mcp:{name}", f"MCP server did not start: {reason}", "check tools.mcp_servers in the config")
            for name, reason in sorted(self._failures.items())
        ]

    def status(self) -> dict[str, Any]:
        return {"connected": dict(self._connected), "failed": dict(self._failures)}


def _describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup) and error.exceptions:
        return _describe(error.exceptions[0])
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
