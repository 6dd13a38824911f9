"""macOS: pbpaste polling, FSEvents, `log stream`, osascript notifications, open(1), sandbox-exec."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping

from aiventbus.platform.base import (
    APP_LAUNCHING,
    APP_LIFECYCLE,
    CLIPBOARD,
    FILE_WATCHING,
    NOTIFICATIONS_INBOUND,
    NOTIFICATIONS_OUTBOUND,
    SANDBOX,
    SESSION_LOCK,
    SYSTEM_LOG,
    TERMINAL,
    Capability,
    CapabilityReports,
    PlatformCommandFailed,
    Which,
    check_notification,
    check_target,
    run_helper,
)
from aiventbus.platform.sandbox import Sandbox, SandboxExec


class MacOSPlatform(CapabilityReports):
    name = "macos"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        which: Which = shutil.which,
        system_log_command: list[str] | None = None,
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.which = which
        self.custom_log_command = list(system_log_command or [])
        self.sandbox: Sandbox = SandboxExec(which)

    def capability(self, name: str) -> Capability:
        def tool(capability: str, program: str, backend: str) -> Capability:
            if self.which(program):
                return Capability(capability, True, backend=backend)
            return Capability(capability, False, f"{program} not found", "it ships with macOS: check PATH")

        checks: dict[str, Callable[[], Capability]] = {
            CLIPBOARD: lambda: tool(CLIPBOARD, "pbpaste", "pbpaste polling"),
            FILE_WATCHING: lambda: Capability(FILE_WATCHING, True, backend="FSEvents (watchfiles)"),
            SYSTEM_LOG: lambda: tool(SYSTEM_LOG, self.system_log_command()[0], " ".join(self.system_log_command())),
            SESSION_LOCK: lambda: Capability(
                SESSION_LOCK,
                False,
                "macOS helper not installed: lock/unlock arrive only through NSDistributedNotificationCenter",
                "this build has no Swift helper; session events are unavailable on macOS",
            ),
            APP_LIFECYCLE: lambda: Capability(
                APP_LIFECYCLE,
                False,
                "macOS helper not installed: app launch/quit arrive only through NSWorkspace notifications",
                "this build has no Swift helper; app lifecycle events are unavailable on macOS",
            ),
            NOTIFICATIONS_INBOUND: lambda: Capability(
                NOTIFICATIONS_INBOUND, False, "inbound notifications: not exposed to other apps on macOS", ""
            ),
            NOTIFICATIONS_OUTBOUND: lambda: tool(NOTIFICATIONS_OUTBOUND, "osascript", "osascript"),
            APP_LAUNCHING: lambda: tool(APP_LAUNCHING, "open", "open"),
            TERMINAL: lambda: Capability(TERMINAL, True, backend="history files + preexec hook spool"),
            SANDBOX: self.sandbox.report,
        }
        if name not in checks:
            return Capability(name, False, f"unknown capability {name!r}")
        return checks[name]()

    def clipboard_command(self) -> list[str]:
        self._require(CLIPBOARD)
        return ["pbpaste"]

    def clipboard_watch_command(self) -> list[str] | None:
        return None

    def clipboard_change_notifier(self) -> list[str] | None:
        return None

    def system_log_command(self) -> list[str]:
        return self.custom_log_command or ["log", "stream", "--style", "ndjson"]

    def bus_addresses(self) -> tuple[str, str]:
        return "", ""

    async def notify(self, title: str, message: str, urgency: str = "normal") -> None:
        check_notification(title, message, urgency)
        self._require(NOTIFICATIONS_OUTBOUND)
        # Text reaches AppleScript as argv items, never spliced into the script source.
        script = "on run argv\ndisplay notification (item 2 of argv) with title (item 1 of argv)\nend run"
        code, output = await run_helper(["osascript", "-e", script, title, message], self.env)
        if code != 0:
            raise PlatformCommandFailed("osascript", f"exit status {code}: {output[:300].decode('utf-8', 'replace')}")

    async def open_target(self, target: str) -> None:
        check_target(target)
        self._require(APP_LAUNCHING)
        code, output = await run_helper(["open", target], self.env)
        if code != 0:
            raise PlatformCommandFailed("open", f"exit status {code}: {output[:300].decode('utf-8', 'replace')}")
