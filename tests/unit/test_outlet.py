"""Rate limit, coalescing and redaction on a producer's outlet, publishing into a real bus on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from aiventbus.core.bus import EventBus
from aiventbus.producers.outlet import CoalescingQueue, Outlet, Pending, RateLimited, TokenBucket
from aiventbus.records.events import Priority
from aiventbus.store.events import EventFilter
from tests.support.clock import FakeClock


def fake_sleep(clock: FakeClock) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    return sleep


def test_token_bucket_allows_burst_then_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.try_take()
    clock.advance(100)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False], "refill is capped at the burst"


def test_queue_keeps_latest_per_key_and_stays_bounded() -> None:
    queue = CoalescingQueue(capacity=3)
    for i in range(1000):
        queue.put("clip", Pending("clipboard.text", {"i": i}, Priority.normal))
    assert len(queue) == 1
    item = queue.pop()
    assert item is not None and item.payload == {"i": 999} and item.superseded == 999
    for i in range(10):
        queue.put(f"k{i}", Pending("file.modified", {"i": i}, Priority.normal))
    assert len(queue) == 3
    assert [p.payload["i"] for p in queue.items.values()] == [7, 8, 9]
    assert sum(p.superseded for p in queue.items.values()) == 7, "evicted entries are counted, not lost silently"


async def test_flood_is_coalesced_and_redacted(bus: EventBus) -> None:
    clock = FakeClock()
    outlet = Outlet("clipboard", bus.publish, rate=5, burst=2, capacity=16, clock=clock, sleep=fake_sleep(clock))
    outlet.source = "clipboard"
    for i in range(10_000):
        outlet.offer("clipboard.text", {"text": f"copy {i} password=hunter{i}x"}, key="clipboard")
    await outlet.flush()
    stored = await bus.queries.count()
    assert stored <= 3, f"10,000 offers became {stored} events"
    assert outlet.emitted == stored
    assert outlet.coalesced >= 10_000 - 3
    events = await bus.queries.search(EventFilter())
    latest = max(events, key=lambda e: e.seq)
    assert latest.payload["text"] == "copy 9999 password=[REDACTED:password]"
    assert latest.payload["redacted"] == ["password"]
    assert latest.source == "clipboard" and latest.taint == ["clipboard"]
    assert sum(e.payload.get("coalesced", 0) for e in events) + len(events) == 10_000
    await outlet.close()


async def test_distinct_keys_are_all_published_in_order(bus: EventBus) -> None:
    clock = FakeClock()
    outlet = Outlet("file_watcher", bus.publish, rate=1, burst=1, capacity=100, clock=clock, sleep=fake_sleep(clock))
    for i in range(20):
        outlet.offer("file.created", {"path": f"/tmp/{i}"}, key=f"/tmp/{i}")
    await outlet.flush()
    assert outlet.emitted == 20 and outlet.coalesced == 0
    assert clock.now - FakeClock().now >= 19, "a 1/s limit spreads 20 events over at least 19 seconds"
    await outlet.close()


async def test_publish_now_refuses_over_the_limit(bus: EventBus) -> None:
    clock = FakeClock()
    outlet = Outlet("webhook", bus.publish, rate=1, burst=2, capacity=4, clock=clock)
    outlet.source = "webhook"
    first = await outlet.publish_now("webhook.ci", {"body": "token=abcdef123456"})
    assert first.payload["body"] == "token=[REDACTED:password]"
    await outlet.publish_now("webhook.ci", {"n": 2})
    with pytest.raises(RateLimited):
        await outlet.publish_now("webhook.ci", {"n": 3})
    assert outlet.rejected == 1 and outlet.emitted == 2
    clock.advance(1)
    await outlet.publish_now("webhook.ci", {"n": 4})
