"""http_request: private targets refused unless allowed, the connection pinned to the vetted IP, capped bodies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from aiventbus.actions.http import HttpActions, address_problem
from aiventbus.config import ToolsConfig
from aiventbus.core.executor import RunContext
from aiventbus.records.actions import ActionFailed, ActionScope, HttpRequestAction
from aiventbus.records.events import EventIn
from tests.support.daemon import running_daemon

SCOPE = ActionScope("act_t", "agent_t", "tr_t", "evt_t", [])


@asynccontextmanager
async def tiny_http_server(
    routes: dict[str, tuple[int, dict[str, str], bytes]],
) -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    """A raw HTTP/1.1 server on 127.0.0.1 answering from `routes`; yields (port, request headers seen)."""
    seen: list[dict[str, str]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        seen.append({"path": path, **headers})
        status, extra, body = routes.get(path, (404, {}, b"no route"))
        response = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
        response += "".join(f"{k}: {v}\r\n" for k, v in extra.items()) + "\r\n"
        writer.write(response.encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, seen
    finally:
        server.close()
        await server.wait_closed()


def resolver_for(table: dict[str, list[str]]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("0.0.0.0", True),
        ("::ffff:127.0.0.1", True),
        ("224.0.0.1", True),
        ("93.184.216.34", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_address_vetting(address: str, refused: bool) -> None:
    assert (address_problem(address) is not None) is refused


async def test_loopback_is_refused_by_default_and_nothing_is_sent() -> None:
    async with tiny_http_server({"/": (200, {}, b"secret")}) as (port, seen):
        actions = HttpActions(ToolsConfig())
        with pytest.raises(ActionFailed, match="loopback"):
            await actions.request(HttpRequestAction(action_type="http_request", url=f"http://127.0.0.1:{port}/"), SCOPE)
        assert seen == []


async def test_one_bad_address_among_good_ones_refuses_the_host() -> None:
    actions = HttpActions(ToolsConfig(), resolver_for({"mixed.test": ["93.184.216.34", "10.0.0.5"]}))
    with pytest.raises(ActionFailed, match="private"):
        await actions.request(HttpRequestAction(action_type="http_request", url="http://mixed.test/"), SCOPE)


async def test_connection_is_pinned_to_the_resolved_ip_and_keeps_the_host_header() -> None:
    async with tiny_http_server({"/page?q=1": (200, {"Content-Type": "text/plain"}, b"hello")}) as (port, seen):
        config = ToolsConfig(http_request_allow_private=True)
        actions = HttpActions(config, resolver_for({"service.test": ["127.0.0.1"]}))
        result = await actions.request(
            HttpRequestAction(action_type="http_request", url=f"http://service.test:{port}/page?q=1"), SCOPE
        )
        assert result.source == "http_response"
        assert result.data["status_code"] == 200 and result.data["body"] == "hello"
        assert seen[0]["host"] == f"service.test:{port}"


async def test_body_is_capped_at_the_configured_size() -> None:
    async with tiny_http_server({"/big": (200, {}, b"a" * 5000)}) as (port, _):
        config = ToolsConfig(http_request_allow_private=True, http_request_max_size=1000)
        result = await HttpActions(config).request(
            HttpRequestAction(action_type="http_request", url=f"http://127.0.0.1:{port}/big"), SCOPE
        )
        assert result.data["truncated"] is True and len(result.data["body"]) == 1000


async def test_each_redirect_hop_is_resolved_and_vetted_again() -> None:
    routes = {
        "/start": (302, {"Location": "http://elsewhere.test/next"}, b""),
        "/hop": (302, {"Location": "/final"}, b""),
        "/final": (200, {}, b"arrived"),
    }
    async with tiny_http_server(routes) as (port, seen):
        config = ToolsConfig(http_request_allow_private=True)
        actions = HttpActions(config, resolver_for({"origin.test": ["127.0.0.1"]}))
        with pytest.raises(ActionFailed, match=r"cannot resolve elsewhere\.test"):
            await actions.request(
                HttpRequestAction(action_type="http_request", url=f"http://origin.test:{port}/start"), SCOPE
            )
        followed = await actions.request(
            HttpRequestAction(action_type="http_request", url=f"http://origin.test:{port}/hop"), SCOPE
        )
        assert followed.data["body"] == "arrived" and followed.data["url"].endswith("/final")
        assert [s["path"] for s in seen] == ["/start", "/hop", "/final"]


async def test_http_request_through_the_executor_taints_its_result(tmp_path: Path) -> None:
    async with tiny_http_server({"/data": (200, {}, b"payload from the web")}) as (port, _):
        overrides = {"tools": {"http_request_allow_private": True}}
        async with running_daemon(tmp_path, overrides) as d:
            event = await d.daemon.bus.publish(EventIn(topic="user.ask", payload={}, source="user"))
            ctx = RunContext("agent_tester", event, None, None, event.trace_id, [])
            [outcome] = await d.daemon.executor.handle_proposals(
                [{"action_type": "http_request", "url": f"http://127.0.0.1:{port}/data"}], ctx
            )
            assert outcome.status == "executed", outcome  # a GET to an allowed host runs without asking
            assert outcome.result is not None and outcome.result["body"] == "payload from the web"
            trace = (await d.client.get(f"/api/v1/events/trace/{event.trace_id}")).json()["events"]
            done = next(e for e in trace if e["topic"] == "action.http_request.executed")
            assert done["source"] == "http_response" and done["taint"] == ["http_response"]
            assert done["parent_event"] == event.id


async def test_http_request_to_the_daemon_itself_is_denied(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, {"tools": {"http_request_allow_private": True}}) as d:
        event = await d.daemon.bus.publish(EventIn(topic="user.ask", payload={}, source="user"))
        ctx = RunContext("agent_tester", event, None, None, event.trace_id, [])
        [outcome] = await d.daemon.executor.handle_proposals(
            [{"action_type": "http_request", "url": f"{d.base_url}/api/v1/actions/pending"}], ctx
        )
        assert outcome.status == "denied", outcome
        assert outcome.rule == "daemon_target"
