"""What every component shares with the daemon: its lifecycle (`Service`), how it reports what keeps it from working
(`Problem`), and where it sends live messages (`LiveFeed`). A leaf: it imports nothing of the project, so any layer
may use it without pointing back up at the daemon or the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Problem:
    """Something that keeps a part of the daemon from working, and how to fix it."""

    component: str
    problem: str
    fix: str = ""

    def to_api(self) -> dict[str, str]:
        return {"component": self.component, "problem": self.problem, "fix": self.fix}


@runtime_checkable
class Service(Protocol):
    """A component with a lifecycle; the daemon starts them in order and stops them in reverse."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LiveFeed(Protocol):
    """Where components send live messages (events, assignment changes, tokens, approvals) for watching clients;
    the API's WebSocket hub is one."""

    def publish(self, channel: str, data: dict[str, Any], topic: str | None = None) -> None: ...
