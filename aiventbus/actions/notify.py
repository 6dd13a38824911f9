"""notify, alert and open_app through the platform layer (notify-send / xdg-open on Linux)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiventbus.errors import AiventbusError
from aiventbus.platform.base import APP_LAUNCHING, NOTIFICATIONS_OUTBOUND, Capability
from aiventbus.records.actions import (
    ActionFailed,
    ActionScope,
    AlertAction,
    HandlerResult,
    NotifyAction,
    OpenAppAction,
)

# The OS capability each desktop action needs.
NEEDS = {"notify": NOTIFICATIONS_OUTBOUND, "alert": NOTIFICATIONS_OUTBOUND, "open_app": APP_LAUNCHING}


class DesktopPlatform(Protocol):
    """The part of `aiventbus.platform.Platform` these actions use."""

    def capability(self, name: str) -> Capability: ...

    async def notify(self, title: str, message: str, urgency: str = "normal") -> None: ...

    async def open_target(self, target: str) -> None: ...


class DesktopActions:
    """Desktop handlers; the platform is looked up lazily so a missing desktop only fails these actions."""

    def __init__(self, platform: Callable[[], DesktopPlatform]) -> None:
        self._platform = platform

    def unavailable(self, action_type: str) -> str | None:
        """Why the desktop cannot do `action_type` here (the platform's reason and fix), or None."""
        needed = NEEDS.get(action_type)
        if needed is None:
            return None
        report = self._platform().capability(needed)
        if report.available:
            return None
        return f"{needed}: {report.reason}" + (f" ({report.fix})" if report.fix else "")

    async def notify(self, action: NotifyAction, scope: ActionScope) -> HandlerResult:
        await self._call_notify(action.title, action.message, action.urgency)
        return HandlerResult({"shown": True, "title": action.title, "urgency": action.urgency})

    async def alert(self, action: AlertAction, scope: ActionScope) -> HandlerResult:
        await self._call_notify(action.title, action.message, "critical")
        return HandlerResult({"shown": True, "title": action.title, "urgency": "critical"})

    async def open_app(self, action: OpenAppAction, scope: ActionScope) -> HandlerResult:
        try:
            await self._platform().open_target(action.target)
        except AiventbusError as error:
            raise ActionFailed(f"open_app: {error.detail}") from None
        return HandlerResult({"opened": action.target})

    async def _call_notify(self, title: str, message: str, urgency: str) -> None:
        try:
            await self._platform().notify(title, message, urgency)
        except AiventbusError as error:
            raise ActionFailed(f"notify: {error.detail}") from None
