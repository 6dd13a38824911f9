"""The platform boundary: the only package that names an operating system."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from aiventbus.platform.base import Capability, CapabilityUnavailable, Platform, PlatformCommandFailed
from aiventbus.platform.sandbox import Bubblewrap, Sandbox, SandboxExec

if TYPE_CHECKING:
    from aiventbus.config import ProducersConfig

__all__ = [
    "Capability",
    "CapabilityUnavailable",
    "Platform",
    "PlatformCommandFailed",
    "Sandbox",
    "current",
    "current_sandbox",
]


def current(config: ProducersConfig | None = None) -> Platform:
    """The platform this process runs on, honouring the producers section's bus and log overrides."""
    log_command = list(config.system_log_command) if config is not None else None
    if sys.platform == "darwin":
        from aiventbus.platform.macos import MacOSPlatform

        return MacOSPlatform(system_log_command=log_command)
    from aiventbus.platform.linux import LinuxPlatform

    return LinuxPlatform(
        system_log_command=log_command,
        system_bus_address=config.dbus_system_bus_address if config is not None else None,
        session_bus_address=config.dbus_session_bus_address if config is not None else None,
        x11_change_events=config.clipboard_x11_change_events if config is not None else True,
    )


def current_sandbox() -> Sandbox:
    """The kernel sandbox this OS offers (not probed yet)."""
    return SandboxExec() if sys.platform == "darwin" else Bubblewrap()
