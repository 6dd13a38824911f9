"""The capability vocabulary every platform reports in: capability names, a report, and the errors for a missing
capability or a failed OS helper. Shared by the platform protocol and the sandbox, and imports neither."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiventbus.errors import AiventbusError

CLIPBOARD = "clipboard"
FILE_WATCHING = "file_watching"
SYSTEM_LOG = "system_log"
SESSION_LOCK = "session_lock"
APP_LIFECYCLE = "app_lifecycle"
NOTIFICATIONS_INBOUND = "notifications_inbound"
NOTIFICATIONS_OUTBOUND = "notifications_outbound"
APP_LAUNCHING = "app_launching"
TERMINAL = "terminal"
SANDBOX = "sandbox"  # a kernel sandbox for shell commands that run without the user's approval
CAPABILITY_NAMES = (
    CLIPBOARD,
    FILE_WATCHING,
    SYSTEM_LOG,
    SESSION_LOCK,
    APP_LIFECYCLE,
    NOTIFICATIONS_INBOUND,
    NOTIFICATIONS_OUTBOUND,
    APP_LAUNCHING,
    TERMINAL,
    SANDBOX,
)
URGENCIES = ("low", "normal", "critical")
COMMAND_TIMEOUT_SECONDS = 10.0
OUTPUT_CAP_BYTES = 4096


@dataclass(frozen=True)
class Capability:
    """Whether one OS capability works here; when not, why and how to fix it."""

    name: str
    available: bool
    reason: str = ""
    fix: str = ""
    backend: str = ""

    def to_api(self) -> dict[str, str | bool]:
        return {
            "name": self.name,
            "available": self.available,
            "reason": self.reason,
            "fix": self.fix,
            "backend": self.backend,
        }


class CapabilityUnavailable(AiventbusError):
    """An OS capability is missing; `reason` and `fix` say why and what to do."""

    status_code = 503

    def __init__(self, capability: str, reason: str, fix: str = "") -> None:
        super().__init__(f"{capability}: {reason}", capability=capability, reason=reason, fix=fix)
        self.capability = capability
        self.reason = reason
        self.fix = fix


class PlatformCommandFailed(AiventbusError):
    """An OS helper program ran but failed or timed out."""

    status_code = 502

    def __init__(self, command: str, detail: str) -> None:
        super().__init__(f"{command}: {detail}", command=command)
        self.command = command


Which = Callable[[str], str | None]  # shutil.which, or a test's stand-in
