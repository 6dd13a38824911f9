"""/ws: live hub messages (events, assignment changes, tokens, ...) filtered by channel and topic glob.

The guard middleware has already checked Host, Origin and the token on the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from aiventbus.core.hub import CHANNELS
from aiventbus.values import escaped

router = APIRouter()


def render(message: dict[str, Any]) -> str:
    """The message as JSON text; one that breaks a value rule (an old row, a model's token) goes out escaped rather
    than failing the send and dropping the client."""
    try:
        return orjson.dumps(message).decode()
    except TypeError:  # lone surrogates, integers beyond 64 bits, nesting past 255, types JSON does not know
        return orjson.dumps(escaped(message), default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


def split_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def token_subprotocol(websocket: WebSocket) -> str | None:
    """Echo the `token.<TOKEN>` subprotocol a browser offered; it must be selected for the handshake to finish."""
    for proto in websocket.scope.get("subprotocols", []):
        if proto.startswith("token."):
            return str(proto)
    return None


@router.websocket("/ws")
async def live(websocket: WebSocket) -> None:
    """Query: channels=event,token,... (default all) and topics=user.*,agent.* (default all)."""
    channels = split_list(websocket.query_params.get("channels")) or sorted(CHANNELS)
    unknown = sorted(set(channels) - CHANNELS)
    if unknown:
        await websocket.close(code=4422, reason=f"channels: unknown {', '.join(unknown)}")
        return
    topics = split_list(websocket.query_params.get("topics"))
    hub = websocket.app.state.daemon.hub
    subscription = hub.subscribe(channels, topics)
    try:
        await websocket.accept(subprotocol=token_subprotocol(websocket))
        await websocket.send_json({"channel": "hello", "topic": None, "data": {"channels": channels, "topics": topics}})
        closed = asyncio.create_task(_until_closed(websocket))
        try:
            while not closed.done():
                getter = asyncio.create_task(subscription.queue.get())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                await websocket.send_text(render(getter.result()))
        finally:
            closed.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await closed
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away mid-send
    finally:
        hub.unsubscribe(subscription)


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) client frames until the client disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
