"""Per-server request slots: how many requests the daemon sends to one model server at once, and who goes next.

llama-cpp-python's server cuts a running answer when another request arrives, so by default one request at a time
reaches a server; waiting requests are served by rank (a health check, then interactive, critical, ambient work),
first come first served within a rank.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Lower goes first. A check is short and holds up nothing for long; ambient work and the distiller wait.
RANKS: Mapping[str, int] = {"check": 0, "interactive": 1, "critical": 2, "ambient": 3, "background": 4}
DEFAULT_RANK = RANKS["ambient"]


def rank_of(lane: str) -> int:
    return RANKS.get(lane, DEFAULT_RANK)


@dataclass(frozen=True, order=True)
class Ticket:
    """One waiting request: served by (rank, arrival)."""

    rank: int
    seq: int
    lane: str = field(compare=False)


def next_ticket(waiting: list[Ticket]) -> Ticket | None:
    """The waiting request to serve next: the lowest rank, the earliest arrival within it."""
    return min(waiting, default=None)


def slot_count(base_url: str, by_url: Mapping[str, int], detected: int | None, default: int) -> int:
    """Slots for a server: configured for its URL, else what the server reports (llama.cpp's total_slots), else
    the default."""
    wanted = base_url.rstrip("/")
    for url, count in by_url.items():
        if url.rstrip("/").removesuffix("/v1") == wanted.removesuffix("/v1"):
            return count
    return detected if detected is not None and detected > 0 else default


class ServerSlots:
    """The slots of one model server: `async with slots.hold(lane):` around every request sent to it."""

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = max(1, capacity)
        self.busy = 0
        self._seq = itertools.count()
        self._waiting: dict[Ticket, asyncio.Future[None]] = {}

    @property
    def full(self) -> bool:
        return self.busy >= self.capacity

    def resize(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._grant()

    @contextlib.asynccontextmanager
    async def hold(self, lane: str) -> AsyncIterator[None]:
        """Wait for a slot (by rank), hold it for the body, then hand it to the next waiting request."""
        await self._acquire(lane)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, lane: str) -> None:
        if not self.full and not self._waiting:
            self.busy += 1
            return
        ticket = Ticket(rank_of(lane), next(self._seq), lane)
        granted = self._waiting[ticket] = asyncio.get_running_loop().create_future()
        try:
            await granted
        except asyncio.CancelledError:
            if self._waiting.pop(ticket, None) is None and granted.done() and not granted.cancelled():
                self._release()  # granted as it was cancelled: pass the slot on
            raise

    def _release(self) -> None:
        self.busy -= 1
        self._grant()

    def _grant(self) -> None:
        while not self.full and (ticket := next_ticket(list(self._waiting))) is not None:
            future = self._waiting.pop(ticket)
            self.busy += 1
            future.set_result(None)

    def status(self) -> dict[str, Any]:
        waiting: dict[str, int] = {}
        for ticket in self._waiting:
            waiting[ticket.lane] = waiting.get(ticket.lane, 0) + 1
        return {"slots": self.capacity, "busy": self.busy, "waiting": waiting}
