"""Waiting for a condition with a deadline, for the few things a test cannot simply await."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any] | Any], timeout: float = 90.0, interval: float = 0.02, what: str = "condition"
) -> Any:
    """Call `check` (sync or async) until it returns something truthy, and return that; fail at the deadline. For
    what happens outside the daemon (inotify, D-Bus, X, a model server); the daemon's own work is awaited with
    `Daemon.settled()`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g}s")
        await asyncio.sleep(interval)
