"""The Platform protocol, capability reports, and the errors outbound actions raise."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from aiventbus.errors import ValidationFailed
from aiventbus.platform.capabilities import (
    APP_LAUNCHING,
    APP_LIFECYCLE,
    CAPABILITY_NAMES,
    CLIPBOARD,
    COMMAND_TIMEOUT_SECONDS,
    FILE_WATCHING,
    NOTIFICATIONS_INBOUND,
    NOTIFICATIONS_OUTBOUND,
    OUTPUT_CAP_BYTES,
    SANDBOX,
    SESSION_LOCK,
    SYSTEM_LOG,
    TERMINAL,
    URGENCIES,
    Capability,
    CapabilityUnavailable,
    PlatformCommandFailed,
    Which,
)

__all__ = [
    "APP_LAUNCHING",
    "APP_LIFECYCLE",
    "CAPABILITY_NAMES",
    "CLIPBOARD",
    "COMMAND_TIMEOUT_SECONDS",
    "FILE_WATCHING",
    "NOTIFICATIONS_INBOUND",
    "NOTIFICATIONS_OUTBOUND",
    "OUTPUT_CAP_BYTES",
    "SANDBOX",
    "SESSION_LOCK",
    "SYSTEM_LOG",
    "TERMINAL",
    "URGENCIES",
    "Capability",
    "CapabilityReports",
    "CapabilityUnavailable",
    "Platform",
    "PlatformCommandFailed",
    "Which",
]

if TYPE_CHECKING:
    from aiventbus.platform.sandbox import Sandbox


class CapabilityReports(ABC):
    """What every platform shares: the report of every capability, and refusing work whose capability is missing."""

    @abstractmethod
    def capability(self, name: str) -> Capability:
        """Whether `name` works here; an unknown name is reported unavailable."""

    def capabilities(self) -> list[Capability]:
        return [self.capability(name) for name in CAPABILITY_NAMES]

    def _require(self, name: str) -> None:
        report = self.capability(name)
        if not report.available:
            raise CapabilityUnavailable(name, report.reason, report.fix)


class Platform(Protocol):
    """Everything OS-specific the daemon needs: capability reports and outbound desktop actions."""

    name: str
    sandbox: Sandbox  # confines shell commands that run without the user's approval

    def capabilities(self) -> list[Capability]:
        """One report per name in CAPABILITY_NAMES."""
        ...

    def capability(self, name: str) -> Capability:
        """The report for one capability name."""
        ...

    def clipboard_command(self) -> list[str]:
        """The command that prints the clipboard's text once (raises CapabilityUnavailable)."""
        ...

    def clipboard_watch_command(self) -> list[str] | None:
        """A command that prints each new clipboard text NUL-terminated, or None where only polling works."""
        ...

    def clipboard_change_notifier(self) -> list[str] | None:
        """A command printing one line per clipboard change (after a `ready` line), or None where there is none."""
        ...

    def system_log_command(self) -> list[str]:
        """The command following the system log as JSON lines."""
        ...

    def bus_addresses(self) -> tuple[str, str]:
        """The DBus (system, session) bus addresses; empty where there is no DBus."""
        ...

    async def notify(self, title: str, message: str, urgency: str = "normal") -> None:
        """Show a desktop notification (raises CapabilityUnavailable / PlatformCommandFailed)."""
        ...

    async def open_target(self, target: str) -> None:
        """Open a URL or path with the desktop's default application."""
        ...


async def run_helper(
    argv: Sequence[str], env: Mapping[str, str], timeout: float = COMMAND_TIMEOUT_SECONDS
) -> tuple[int, bytes]:
    """Run a helper without a shell; returns (exit code, capped stderr+stdout); kills it on timeout."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
        start_new_session=True,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise PlatformCommandFailed(argv[0], f"did not finish within {timeout:g}s") from None
    return int(process.returncode or 0), output[:OUTPUT_CAP_BYTES]


def check_notification(title: str, message: str, urgency: str) -> None:
    """Refuse arguments a helper could misread as options, and unknown urgencies."""
    if urgency not in URGENCIES:
        raise ValidationFailed("urgency", f"must be one of {', '.join(URGENCIES)}, got {urgency!r}")
    if not title.strip():
        raise ValidationFailed("title", "must not be empty")
    if len(title) > 1000 or len(message) > 10_000:
        raise ValidationFailed("message", "title over 1000 or message over 10000 characters")


def check_target(target: str) -> None:
    if not target.strip():
        raise ValidationFailed("target", "must not be empty")
    if target.startswith("-"):
        raise ValidationFailed("target", "must not start with '-' (it would be read as an option)")
    if "\x00" in target or "\n" in target:
        raise ValidationFailed("target", "must not contain NUL or newline characters")
