"""Cron: the next fire time is pure; the loop runs on a fake clock and a fake sleep."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from aiventbus.config import CronJobConfig, parse_config
from aiventbus.core.bus import EventBus
from aiventbus.errors import ConfigError
from aiventbus.producers.cron import CronProducer, next_fire
from aiventbus.producers.outlet import Outlet
from aiventbus.records.events import Event
from aiventbus.store.events import EventFilter
from tests.support.clock import FakeClock


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/5 * * * *", "2026-03-01T10:02:30", "2026-03-01T10:05:00"),
        ("*/5 * * * *", "2026-03-01T10:05:00", "2026-03-01T10:10:00"),
        ("0 9 * * 1", "2026-03-01T10:00:00", "2026-03-02T09:00:00"),
        ("30 23 31 12 *", "2026-06-01T00:00:00", "2026-12-31T23:30:00"),
        ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
    ],
)
def test_next_fire(schedule: str, after: str, expected: str) -> None:
    assert next_fire(schedule, at(after), UTC) == at(expected)


@pytest.mark.parametrize("schedule", ["bad", "* * * *", "61 * * * *", "* * * * * *"])
def test_invalid_schedule_is_a_config_error(schedule: str) -> None:
    with pytest.raises(ConfigError, match=r"producers\.cron\.nightly\.schedule"):
        parse_config({"producers": {"cron": {"nightly": {"schedule": schedule}}}})


class FakeSleeper:
    """A sleep that moves the fake clock, publishes what was fired first, and parks the job after `fires` fires."""

    def __init__(self, clock: FakeClock, outlet: Outlet, fires: int, suspend_after: int | None = None) -> None:
        self.clock = clock
        self.outlet = outlet
        self.fires = fires
        self.suspend_after = suspend_after
        self.producer: CronProducer | None = None
        self.sleeps: list[float] = []
        self.done = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        await self.outlet.flush()  # each fire is stored before time moves on, so none coalesce here
        assert self.producer is not None
        fired = sum(self.producer.fired.values())
        if fired >= self.fires:
            self.done.set()
            await asyncio.Event().wait()  # park: the test has what it needs
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        if fired == self.suspend_after:
            self.suspend_after = None
            self.clock.advance(10 * 3600)  # the machine was suspended for ten hours
        await asyncio.sleep(0)


async def run(
    jobs: dict[str, CronJobConfig], bus: EventBus, fires: int, suspend_after: int | None = None
) -> tuple[list[Event], FakeSleeper]:
    """Run a cron producer on a fake clock until it has fired `fires` times; its events by scheduled time."""
    clock = FakeClock(at("2026-03-01T10:00:10"))
    outlet = Outlet("cron", bus.publish, rate=100, burst=100, capacity=10)
    outlet.source = "cron"
    sleeper = FakeSleeper(clock, outlet, fires, suspend_after)
    producer = CronProducer(jobs, clock=clock, sleep=sleeper, tz=UTC)
    sleeper.producer = producer
    task = asyncio.create_task(producer.run(outlet))
    try:
        await asyncio.wait_for(sleeper.done.wait(), 10)
        await outlet.flush()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await outlet.close()
    events = await bus.queries.search(EventFilter())
    return sorted(events, key=lambda e: e.payload["cron"]["scheduled_at"]), sleeper


async def test_loop_fires_on_schedule_with_a_fake_clock(bus: EventBus) -> None:
    jobs = {"tick": CronJobConfig(schedule="*/15 * * * *", payload={"kind": "digest"})}
    events, sleeper = await run(jobs, bus, fires=4)
    assert [e.payload["cron"]["scheduled_at"] for e in events] == [
        at("2026-03-01T10:15:00"),
        at("2026-03-01T10:30:00"),
        at("2026-03-01T10:45:00"),
        at("2026-03-01T11:00:00"),
    ]
    assert {e.topic for e in events} == {"cron.tick"}
    assert events[0].payload["kind"] == "digest" and events[0].source == "cron"
    assert all(s <= 60 for s in sleeper.sleeps), "the loop re-reads the clock at least every minute"


async def test_a_long_suspend_fires_once_not_once_per_missed_slot(bus: EventBus) -> None:
    events, _ = await run({"tick": CronJobConfig(schedule="*/15 * * * *")}, bus, fires=3, suspend_after=1)
    times = [e.payload["cron"]["scheduled_at"] for e in events]
    assert times[0] == at("2026-03-01T10:15:00")
    assert times[1] == at("2026-03-01T10:30:00"), "the slot the machine slept through fires once"
    assert times[2] > at("2026-03-01T20:00:00"), "then the schedule resumes from now, skipping missed slots"
