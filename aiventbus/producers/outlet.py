"""Where a producer's events leave it: redaction, coalescing and a token-bucket rate limit, then publish."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiventbus.errors import AiventbusError
from aiventbus.records.events import Event, EventIn, Priority
from aiventbus.redaction import redact_payload
from aiventbus.values import escaped

Publish = Callable[[EventIn], Awaitable[Event]]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
log = logging.getLogger(__name__)


class RateLimited(AiventbusError):
    """A producer's rate limit refused an event."""

    status_code = 429


class TokenBucket:
    """`rate` tokens a second up to `burst`; pure apart from the injected clock."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def try_take(self) -> bool:
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until one token is available (0 when one is)."""
        self._refill()
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


@dataclass
class Pending:
    topic: str
    payload: dict[str, Any]
    priority: Priority
    superseded: int = 0
    first_offered: float = 0.0


@dataclass
class CoalescingQueue:
    """At most `capacity` distinct keys; a repeated key keeps only its latest value and counts the rest."""

    capacity: int
    items: OrderedDict[str, Pending] = field(default_factory=OrderedDict)
    coalesced: int = 0

    def put(self, key: str, item: Pending) -> None:
        if key in self.items:
            previous = self.items[key]
            item.superseded = previous.superseded + 1
            item.first_offered = previous.first_offered
            self.items[key] = item
            self.coalesced += 1
            return
        if len(self.items) >= self.capacity:
            # Full: the oldest entry gives way, and its count survives on the newcomer.
            _, oldest = self.items.popitem(last=False)
            item.superseded += oldest.superseded + 1
            self.coalesced += 1
        self.items[key] = item

    def pop(self) -> Pending | None:
        if not self.items:
            return None
        return self.items.popitem(last=False)[1]

    def __len__(self) -> int:
        return len(self.items)


class Outlet:
    """One producer's path to the bus; `offer` never blocks and never grows memory past the queue's capacity."""

    def __init__(
        self,
        producer: str,
        publish: Publish,
        rate: float,
        burst: int,
        capacity: int,
        on_published: Callable[[Event], None] = lambda _event: None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.producer = producer
        self.source = producer
        self.publish = publish
        self.bucket = TokenBucket(rate, burst, clock)
        self.queue = CoalescingQueue(capacity)
        self.on_published = on_published
        self.clock = clock
        self.sleep = sleep
        self.emitted = 0
        self.failed = 0
        self.rejected = 0
        self.last_error = ""
        self.last_event_at: float | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._drainer: asyncio.Task[None] | None = None

    @property
    def coalesced(self) -> int:
        return self.queue.coalesced

    def offer(
        self, topic: str, payload: dict[str, Any], key: str | None = None, priority: Priority = Priority.normal
    ) -> None:
        """Queue one event; a waiting one with the same key is replaced (and counted). Redaction happens at publish,
        so a flood costs one redaction per published event, not per offer."""
        item = Pending(topic, payload, priority, first_offered=self.clock())
        self.queue.put(key if key is not None else f"{topic}#{id(item)}", item)
        self._idle.clear()
        self._ensure_drainer()
        self._wake.set()

    def _ensure_drainer(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name=f"outlet:{self.producer}")

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while len(self.queue):
                wait = self.bucket.wait_time()
                if wait > 0:
                    await self.sleep(wait)
                    continue
                if not self.bucket.try_take():
                    continue
                item = self.queue.pop()
                if item is not None:
                    await self._publish(item)
            self._idle.set()

    async def publish_now(self, topic: str, payload: dict[str, Any], priority: Priority = Priority.normal) -> Event:
        """Publish at once (redacted), or raise RateLimited when the bucket is empty; for request/response producers."""
        if not self.bucket.try_take():
            self.rejected += 1
            raise RateLimited(
                f"{self.producer}: rate limit reached ({self.bucket.rate:g}/s, burst {self.bucket.burst})"
            )
        event = await self.publish(
            EventIn(topic=topic, payload=redact_payload(escaped(payload)), priority=priority, source=self.source)
        )
        self.emitted += 1
        self.last_event_at = event.created_at
        self.on_published(event)
        return event

    async def _publish(self, item: Pending) -> None:
        # What a producer saw is kept, escaped where it breaks a value rule (a lone surrogate in a file name).
        payload = redact_payload(escaped(item.payload))
        if item.superseded:
            payload["coalesced"] = item.superseded
        try:
            event = await self.publish(
                EventIn(topic=item.topic, payload=payload, priority=item.priority, source=self.source)
            )
        except Exception as error:
            self.failed += 1
            self.last_error = f"publish failed: {error}"
            log.warning("producer %s could not publish %s: %s", self.producer, item.topic, error)
            return
        self.emitted += 1
        self.last_event_at = event.created_at
        self.on_published(event)

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything offered so far is published (or failed)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
            self._drainer = None
