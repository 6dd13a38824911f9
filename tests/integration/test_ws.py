"""/ws over a real server: token on the handshake, channel and topic filters, disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.daemon import RunningDaemon
from tests.support.waiting import eventually


def ws_base(d: RunningDaemon) -> str:
    return d.base_url.replace("http://", "ws://") + "/ws"


async def receive(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), timeout)))


async def test_events_stream_with_bearer_token_and_topic_filter(daemon: RunningDaemon) -> None:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    async with connect(ws_base(daemon) + "?channels=event&topics=user.*", additional_headers=headers) as ws:
        hello = await receive(ws)
        assert hello["channel"] == "hello" and hello["data"] == {"channels": ["event"], "topics": ["user.*"]}
        await daemon.client.post("/api/v1/events", json={"topic": "clipboard.text", "payload": {"n": 1}})
        await daemon.client.post("/api/v1/events", json={"topic": "user.note", "payload": {"n": 2}})
        message = await receive(ws)
        assert message["channel"] == "event" and message["topic"] == "user.note"
        assert message["data"]["payload"] == {"n": 2}


async def test_token_as_subprotocol_is_echoed(daemon: RunningDaemon) -> None:
    protocol = f"token.{daemon.token}"
    async with connect(ws_base(daemon) + "?channels=event", subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == protocol
        assert (await receive(ws))["channel"] == "hello"


async def test_channel_filter_drops_other_channels(daemon: RunningDaemon) -> None:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    async with connect(ws_base(daemon) + "?channels=token", additional_headers=headers) as ws:
        await receive(ws)
        await daemon.client.post("/api/v1/events", json={"topic": "user.note", "payload": {}})
        daemon.daemon.hub.publish("token", {"text": "hi"}, topic="user.query")
        message = await receive(ws)
        assert message == {"channel": "token", "topic": "user.query", "data": {"text": "hi"}}


async def test_no_token_or_foreign_origin_is_refused(daemon: RunningDaemon) -> None:
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        async with connect(ws_base(daemon)) as ws:
            await receive(ws)
    headers = {"Authorization": f"Bearer {daemon.token}"}
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        async with connect(ws_base(daemon), additional_headers=headers, origin="http://evil.example") as ws:  # type: ignore[arg-type]
            await receive(ws)
    assert daemon.daemon.hub.client_count == 0


async def test_unknown_channel_is_refused(daemon: RunningDaemon) -> None:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        async with connect(ws_base(daemon) + "?channels=gossip", additional_headers=headers) as ws:
            await receive(ws)


async def test_disconnect_unsubscribes(daemon: RunningDaemon) -> None:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    hub = daemon.daemon.hub
    async with connect(ws_base(daemon), additional_headers=headers) as ws:
        await receive(ws)
        assert hub.client_count == 1
    await eventually(lambda: hub.client_count == 0, timeout=10, what="the hub to drop the client")
    # The daemon goes on publishing to nobody.
    response = await daemon.client.post("/api/v1/events", json={"topic": "user.note", "payload": {}})
    assert response.status_code == 201
