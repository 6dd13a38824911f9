"""Linux: X11/Wayland clipboard helpers, inotify, journald, login1 and notifications over DBus, xdg-open, bwrap."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from aiventbus.platform import x11_watch
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
from aiventbus.platform.sandbox import Bubblewrap, Sandbox

DEFAULT_SYSTEM_BUS = "unix:path=/var/run/dbus/system_bus_socket"
JOURNAL_DIRS = ("/var/log/journal", "/run/log/journal")
# wl-paste runs this once per clipboard change with the new text on stdin; a fixed string, never user input.
WL_WATCH_SCRIPT = "cat; printf '\\0'"


class LinuxPlatform(CapabilityReports):
    """Capability checks read only the environment and PATH, so they are cheap and testable; the sandbox's is
    probed once and cached."""

    name = "linux"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        which: Which = shutil.which,
        system_log_command: list[str] | None = None,
        system_bus_address: str | None = None,
        session_bus_address: str | None = None,
        x11_change_events: bool = True,
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.which = which
        self.custom_log_command = list(system_log_command or [])
        self.system_bus = system_bus_address or self.env.get("DBUS_SYSTEM_BUS_ADDRESS") or DEFAULT_SYSTEM_BUS
        self.session_bus = session_bus_address or self.env.get("DBUS_SESSION_BUS_ADDRESS") or ""
        self.x11_change_events = x11_change_events
        self.sandbox: Sandbox = Bubblewrap(which)

    # -- capability reports --------------------------------------------------------------------

    def capability(self, name: str) -> Capability:
        checks: dict[str, Callable[[], Capability]] = {
            CLIPBOARD: self._clipboard,
            FILE_WATCHING: self._file_watching,
            SYSTEM_LOG: self._system_log,
            SESSION_LOCK: self._session_lock,
            APP_LIFECYCLE: lambda: Capability(
                APP_LIFECYCLE, False, "app lifecycle: not exposed on Linux desktops", "none (macOS only)"
            ),
            NOTIFICATIONS_INBOUND: self._notifications_inbound,
            NOTIFICATIONS_OUTBOUND: self._notifications_outbound,
            APP_LAUNCHING: self._app_launching,
            TERMINAL: lambda: Capability(TERMINAL, True, backend="history files + preexec hook spool"),
            SANDBOX: self.sandbox.report,
        }
        if name not in checks:
            return Capability(name, False, f"unknown capability {name!r}")
        return checks[name]()

    def _graphical(self) -> str:
        if self.env.get("WAYLAND_DISPLAY"):
            return "wayland"
        if self.env.get("DISPLAY"):
            return "x11"
        return ""

    def _clipboard(self) -> Capability:
        session = self._graphical()
        if not session:
            return Capability(
                CLIPBOARD,
                False,
                "no graphical session ($DISPLAY and $WAYLAND_DISPLAY unset)",
                "run the daemon inside your desktop session, or export DISPLAY",
            )
        if session == "wayland":
            if self.which("wl-paste"):
                return Capability(CLIPBOARD, True, backend="wl-paste --watch")
            if not (self.env.get("DISPLAY") and self.which("xclip")):
                return Capability(CLIPBOARD, False, "wl-paste not found", "apt install wl-clipboard")
        if self.which("xclip"):
            mode = "read on XFixes owner change" if self._x11_notifier_usable() else "polling"
            return Capability(CLIPBOARD, True, backend=f"xclip {mode}")
        return Capability(CLIPBOARD, False, "xclip not found", "apt install xclip")

    def _file_watching(self) -> Capability:
        if not Path("/proc/sys/fs/inotify").exists():
            return Capability(FILE_WATCHING, False, "inotify is not available in this kernel", "enable CONFIG_INOTIFY")
        return Capability(FILE_WATCHING, True, backend="inotify (watchfiles)")

    def _system_log(self) -> Capability:
        command = self.system_log_command()
        if not self.which(command[0]):
            fix = "install systemd's journalctl" if not self.custom_log_command else "fix producers.system_log_command"
            return Capability(SYSTEM_LOG, False, f"{command[0]} not found", fix)
        if not self.custom_log_command and not any(Path(d).is_dir() for d in JOURNAL_DIRS):
            return Capability(
                SYSTEM_LOG,
                False,
                "no systemd journal on this machine (/var/log/journal and /run/log/journal missing)",
                "run under systemd-journald, or set producers.system_log_command to a JSON-lines source",
            )
        return Capability(SYSTEM_LOG, True, backend=" ".join(command))

    def _session_lock(self) -> Capability:
        problem = _bus_problem(self.system_bus)
        if problem:
            return Capability(
                SESSION_LOCK,
                False,
                f"no DBus system bus ({problem})",
                "start dbus/systemd-logind, or set producers.dbus_system_bus_address",
            )
        return Capability(SESSION_LOCK, True, backend=f"login1 on {self.system_bus}")

    def _notifications_inbound(self) -> Capability:
        if not self.session_bus:
            return Capability(
                NOTIFICATIONS_INBOUND,
                False,
                "no DBus session bus ($DBUS_SESSION_BUS_ADDRESS unset)",
                "run the daemon inside your desktop session, or set producers.dbus_session_bus_address",
            )
        problem = _bus_problem(self.session_bus)
        if problem:
            return Capability(NOTIFICATIONS_INBOUND, False, f"DBus session bus unusable ({problem})", "")
        return Capability(NOTIFICATIONS_INBOUND, True, backend=f"BecomeMonitor on {self.session_bus}")

    def _notifications_outbound(self) -> Capability:
        if not self.which("notify-send"):
            return Capability(NOTIFICATIONS_OUTBOUND, False, "notify-send not found", "apt install libnotify-bin")
        if not self.session_bus:
            return Capability(
                NOTIFICATIONS_OUTBOUND,
                False,
                "no DBus session bus ($DBUS_SESSION_BUS_ADDRESS unset)",
                "run the daemon inside your desktop session, or set producers.dbus_session_bus_address",
            )
        return Capability(NOTIFICATIONS_OUTBOUND, True, backend="notify-send")

    def _app_launching(self) -> Capability:
        if not self.which("xdg-open"):
            return Capability(APP_LAUNCHING, False, "xdg-open not found", "apt install xdg-utils")
        if not self._graphical():
            return Capability(
                APP_LAUNCHING,
                False,
                "no graphical session ($DISPLAY and $WAYLAND_DISPLAY unset)",
                "run the daemon inside your desktop session",
            )
        return Capability(APP_LAUNCHING, True, backend="xdg-open")

    # -- commands the producers run ------------------------------------------------------------

    def clipboard_command(self) -> list[str]:
        self._require(CLIPBOARD)
        if self._graphical() == "wayland" and self.which("wl-paste"):
            return ["wl-paste", "--no-newline", "--type", "text"]
        return ["xclip", "-selection", "clipboard", "-o"]

    def clipboard_watch_command(self) -> list[str] | None:
        self._require(CLIPBOARD)
        if self._graphical() == "wayland" and self.which("wl-paste"):
            return ["wl-paste", "--type", "text", "--watch", "sh", "-c", WL_WATCH_SCRIPT]
        return None

    def _x11_notifier_usable(self) -> bool:
        return self.x11_change_events and self._graphical() == "x11" and x11_watch.library_available()

    def clipboard_change_notifier(self) -> list[str] | None:
        self._require(CLIPBOARD)
        if self._graphical() == "wayland" and self.which("wl-paste"):
            return None
        return [sys.executable, "-m", "aiventbus.platform.x11_watch"] if self._x11_notifier_usable() else None

    def system_log_command(self) -> list[str]:
        return self.custom_log_command or ["journalctl", "--follow", "--output=json", "--lines=0"]

    def bus_addresses(self) -> tuple[str, str]:
        return self.system_bus, self.session_bus

    def helper_env(self) -> dict[str, str]:
        env = dict(self.env)
        if self.session_bus:
            env["DBUS_SESSION_BUS_ADDRESS"] = self.session_bus
        return env

    # -- outbound actions ----------------------------------------------------------------------

    async def notify(self, title: str, message: str, urgency: str = "normal") -> None:
        check_notification(title, message, urgency)
        self._require(NOTIFICATIONS_OUTBOUND)
        argv = ["notify-send", f"--urgency={urgency}", "--app-name=aiventbus", "--", title, message]
        code, output = await run_helper(argv, self.helper_env())
        if code != 0:
            raise PlatformCommandFailed("notify-send", _describe_failure(code, output))

    async def open_target(self, target: str) -> None:
        check_target(target)
        self._require(APP_LAUNCHING)
        code, output = await run_helper(["xdg-open", target], self.helper_env())
        if code != 0:
            raise PlatformCommandFailed("xdg-open", _describe_failure(code, output))


def _bus_problem(address: str) -> str:
    """Why a DBus address cannot work, judged without connecting ('' when it may)."""
    if not address:
        return "no address"
    for part in address.split(";"):
        transport, _, params = part.partition(":")
        values = dict(item.split("=", 1) for item in params.split(",") if "=" in item)
        if transport == "unix" and "path" in values:
            return "" if Path(values["path"]).exists() else f"{values['path']} does not exist"
        if transport in {"unix", "tcp"} and values:
            return ""
    return f"cannot parse DBus address {address!r}"


def _describe_failure(code: int, output: bytes) -> str:
    text = output.decode("utf-8", "replace").strip().splitlines()
    return f"exit status {code}" + (f": {text[0][:300]}" if text else "")
