"""cron.<name> events on the schedules in producers.cron; the next fire time is a pure function."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import Any

from croniter import croniter

from aiventbus.config import CronJobConfig
from aiventbus.producers.outlet import Outlet

MAX_SLEEP_SECONDS = 60.0  # re-read the clock at least this often, so a wall-clock jump is noticed
LATE_SKIP_SECONDS = 60.0


def next_fire(schedule: str, after: float, tz: tzinfo | None = None) -> float:
    """The first time strictly after `after` (epoch seconds) that `schedule` fires, in tz (default local)."""
    start = datetime.fromtimestamp(after, tz) if tz is not None else datetime.fromtimestamp(after).astimezone()
    return float(croniter(schedule, start).get_next(float))


class CronProducer:
    name = "cron"
    source = "cron"
    capability = ""  # needs nothing from the OS but a clock

    def __init__(
        self,
        jobs: dict[str, CronJobConfig],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tz: tzinfo | None = None,
    ) -> None:
        self.jobs = jobs
        self.clock = clock
        self.sleep = sleep
        self.tz = tz
        self.next_due: dict[str, float] = {}
        self.fired: dict[str, int] = dict.fromkeys(jobs, 0)

    def details(self) -> dict[str, Any]:
        return {
            "jobs": {
                name: {"schedule": job.schedule, "next_fire": self.next_due.get(name), "fired": self.fired[name]}
                for name, job in self.jobs.items()
            }
        }

    async def run(self, outlet: Outlet) -> None:
        await asyncio.gather(*(self._job(name, job, outlet) for name, job in self.jobs.items()))

    async def _job(self, name: str, job: CronJobConfig, outlet: Outlet) -> None:
        last = self.clock()
        while True:
            due = next_fire(job.schedule, last, self.tz)
            self.next_due[name] = due
            while (now := self.clock()) < due:
                await self.sleep(min(due - now, MAX_SLEEP_SECONDS))
            payload = {**job.payload, "cron": {"name": name, "schedule": job.schedule, "scheduled_at": due}}
            outlet.offer(f"cron.{name}", payload, key=f"cron:{name}")
            self.fired[name] += 1
            # After a long suspend, fire once and resume from now instead of replaying every missed slot.
            last = due if now - due < LATE_SKIP_SECONDS else now
