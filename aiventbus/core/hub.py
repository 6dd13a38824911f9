"""Fan-out of live messages (events, assignment changes, tokens, approvals) to WebSocket clients."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CHANNELS = frozenset({"event", "assignment", "token", "approval", "action", "producer"})


@dataclass(eq=False)  # kept in a set: identity, not field equality
class HubSubscription:
    """One client's queue; a slow client loses its oldest messages, never blocks the daemon."""

    channels: frozenset[str]
    topics: tuple[str, ...] = ()
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    dropped: int = 0

    def wants(self, channel: str, topic: str | None) -> bool:
        if channel not in self.channels:
            return False
        if not self.topics or topic is None:
            return True
        return any(fnmatch.fnmatchcase(topic, pattern) for pattern in self.topics)

    def offer(self, message: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)


class Hub:
    def __init__(self) -> None:
        self._subscriptions: set[HubSubscription] = set()

    def subscribe(self, channels: Iterable[str] = CHANNELS, topics: Iterable[str] = ()) -> HubSubscription:
        subscription = HubSubscription(frozenset(channels) & CHANNELS, tuple(topics))
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: HubSubscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, channel: str, data: dict[str, Any], topic: str | None = None) -> None:
        """Send `data` on `channel`; `topic` (an event topic) is what clients' topic filters match."""
        if not self._subscriptions:
            return
        message = {"channel": channel, "topic": topic, "data": data}
        for subscription in list(self._subscriptions):
            if subscription.wants(channel, topic):
                subscription.offer(message)

    @property
    def client_count(self) -> int:
        return len(self._subscriptions)
