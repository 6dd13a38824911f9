"""Real desktop parts for e2e tests: Xvfb, a private dbus-daemon, dunst. Each is stopped when its scope ends."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiventbus.core.bus import EventBus
from aiventbus.records.events import Event

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def require(*programs: str) -> None:
    missing = [program for program in programs if shutil.which(program) is None]
    if missing:
        pytest.fail(f"missing programs for this e2e test: {', '.join(missing)} (apt install xvfb xclip dbus dunst ...)")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll a condition with a deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class Display:
    display: str
    process: subprocess.Popen[bytes]


@dataclass
class SessionBus:
    address: str
    process: subprocess.Popen[bytes]


def start_xvfb() -> Display:
    require("Xvfb")
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        number = reader.readline().decode().strip()
    if not number.isdigit():
        stop(process)
        raise RuntimeError("Xvfb did not report a display number")
    return Display(f":{number}", process)


def start_session_bus(directory: Path) -> SessionBus:
    require("dbus-daemon")
    socket = directory / "bus"
    config = directory / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=socket))
    process = subprocess.Popen(
        ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert process.stdout is not None
    address = process.stdout.readline().decode().strip()
    if not address:
        stop(process)
        raise RuntimeError("dbus-daemon did not print its address")
    return SessionBus(address, process)


@pytest.fixture(scope="module")
def xvfb() -> Iterator[Display]:
    display = start_xvfb()
    try:
        yield display
    finally:
        stop(display.process)


@pytest.fixture(scope="module")
def session_bus() -> Iterator[SessionBus]:
    with tempfile.TemporaryDirectory(prefix="aibus-dbus-") as directory:
        bus = start_session_bus(Path(directory))
        try:
            yield bus
        finally:
            stop(bus.process)


def bus_has_name(address: str, name: str) -> bool:
    result = subprocess.run(
        [
            "dbus-send",
            f"--bus={address}",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            f"string:{name}",
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return "boolean true" in result.stdout


@pytest.fixture(scope="module")
def dunst(xvfb: Display, session_bus: SessionBus) -> Iterator[dict[str, str]]:
    """dunst on the private bus and Xvfb; yields the environment a client (notify-send, dunstctl) needs."""
    require("dunst", "dbus-send")
    env = {**os.environ, "DISPLAY": xvfb.display, "DBUS_SESSION_BUS_ADDRESS": session_bus.address}
    env.pop("WAYLAND_DISPLAY", None)
    with tempfile.TemporaryDirectory(prefix="aibus-dunst-") as home:
        env["HOME"] = home
        env["XDG_CONFIG_HOME"] = home
        process = subprocess.Popen(
            ["dunst"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_for(lambda: bus_has_name(session_bus.address, "org.freedesktop.Notifications"), "dunst on the bus")
            yield env
        finally:
            stop(process)


class EventCollector:
    """Every event the bus commits from now on; `wait_for` awaits a matching one (no polling)."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Condition()
        self.unsubscribe = bus.subscribe(self._on_event)

    async def _on_event(self, event: Event) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def matching(self, predicate: Callable[[Event], bool]) -> list[Event]:
        return [event for event in self.events if predicate(event)]

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 30.0, count: int = 1) -> list[Event]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.matching(predicate)) >= count)
        return self.matching(predicate)


def topic_is(topic: str) -> Callable[[Event], bool]:
    return lambda event: event.topic == topic
