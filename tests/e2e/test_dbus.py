"""A private dbus-daemon: the test owns org.freedesktop.login1 and emits Lock/Unlock; real notify-send reaches a
real dunst while the producer, a DBus monitor, sees each notification."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, Variant
from dbus_fast.aio import MessageBus

from aiventbus.errors import ValidationFailed
from aiventbus.platform import CapabilityUnavailable
from aiventbus.platform.linux import LinuxPlatform
from aiventbus.producers.desktop import SessionLockProducer
from aiventbus.producers.notifications import NotificationsProducer
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.desktop import Display, EventCollector, SessionBus, require
from tests.support.desktop import dunst as dunst  # the fixtures
from tests.support.desktop import session_bus as session_bus
from tests.support.desktop import xvfb as xvfb
from tests.support.waiting import eventually

SESSION_PATH = "/org/freedesktop/login1/session/_31"


def dbus_overrides(address: str) -> dict[str, Any]:
    return {
        "producers": {
            "dbus_enabled": True,
            "notifications_enabled": True,
            "dbus_system_bus_address": address,
            "dbus_session_bus_address": address,
            "rate_limit_per_second": 100,
            "rate_limit_burst": 100,
        }
    }


@pytest.fixture
async def daemon_on_bus(tmp_path: Path, session_bus: SessionBus) -> AsyncIterator[RunningDaemon]:
    async with running_daemon(tmp_path, dbus_overrides(session_bus.address)) as running:
        yield running


async def connect(address: str) -> MessageBus:
    return await MessageBus(bus_address=address).connect()


def session_signal(member: str) -> Message:
    return Message.new_signal(SESSION_PATH, "org.freedesktop.login1.Session", member)


def locked_hint(value: bool) -> Message:
    return Message.new_signal(
        SESSION_PATH,
        "org.freedesktop.DBus.Properties",
        "PropertiesChanged",
        "sa{sv}as",
        ["org.freedesktop.login1.Session", {"LockedHint": Variant("b", value)}, []],
    )


async def test_lock_and_unlock_from_the_login1_owner_only(
    daemon_on_bus: RunningDaemon, session_bus: SessionBus
) -> None:
    running = daemon_on_bus
    collector = EventCollector(running.daemon.bus)
    producer = running.daemon.producers.get("desktop")
    assert isinstance(producer, SessionLockProducer)
    await eventually(lambda: producer.listening, timeout=20, what="the login1 listener")

    login1 = await connect(session_bus.address)
    impostor = await connect(session_bus.address)
    try:
        await login1.request_name("org.freedesktop.login1")
        await eventually(
            lambda: producer.owner == login1.unique_name, timeout=20, what="the producer to learn login1's owner"
        )

        await impostor.send(session_signal("Lock"))
        await login1.send(session_signal("Unlock"))
        [unlocked] = await collector.wait_for(lambda e: e.topic.startswith("session."))
        await login1.send(session_signal("Lock"))
        await collector.wait_for(lambda e: e.topic.startswith("session."), count=2)
        # A screen locker then sets LockedHint: the same lock, no second event; clearing it is an unlock.
        await login1.send(locked_hint(True))
        await login1.send(locked_hint(False))
        await collector.wait_for(lambda e: e.topic.startswith("session."), count=3)
    finally:
        impostor.disconnect()
        login1.disconnect()
    topics = [e.topic for e in collector.events if e.topic.startswith("session.")]
    assert topics == ["session.unlocked", "session.locked", "session.unlocked"], "the impostor's Lock is ignored"
    assert unlocked.payload == {"session_path": SESSION_PATH, "sender": "org.freedesktop.login1"}
    assert unlocked.source == "session" and unlocked.taint == []
    await eventually(lambda: producer.owner is None, timeout=20, what="the owner's departure to be noticed")


async def test_notify_send_reaches_dunst_and_the_producer_sees_it(
    daemon_on_bus: RunningDaemon, dunst: dict[str, str], session_bus: SessionBus
) -> None:
    require("notify-send", "dunstctl")
    running = daemon_on_bus
    collector = EventCollector(running.daemon.bus)
    producer = running.daemon.producers.get("notifications")
    assert isinstance(producer, NotificationsProducer)
    await eventually(lambda: producer.listening, timeout=20, what="the notification monitor")

    before = dunst_count(dunst)
    sent = await asyncio.to_thread(
        subprocess.run,
        ["notify-send", "--app-name=backup-tool", "--urgency=critical", "Backup failed", "token=abcd1234efgh on disk"],
        env=dunst,
        capture_output=True,
        timeout=20,
    )
    assert sent.returncode == 0, sent.stderr
    [event] = await collector.wait_for(lambda e: e.topic == "notification.received")
    assert event.payload["app"] == "backup-tool"
    assert event.payload["summary"] == "Backup failed"
    assert event.payload["body"] == "token=[REDACTED:password] on disk"
    assert event.payload["urgency"] == "critical"
    assert event.source == "notification" and event.taint == ["notification"]
    await eventually(lambda: dunst_count(dunst) > before, timeout=20, what="dunst to count the notification")

    # The daemon's own notifications (the executor's notify action) reach dunst but are not events,
    # so an agent that notifies cannot trigger itself.
    platform = LinuxPlatform(env=dunst, session_bus_address=session_bus.address)
    shown = dunst_count(dunst)
    await platform.notify("aiventbus", "agent finished", urgency="low")
    await eventually(lambda: dunst_count(dunst) > shown, timeout=20, what="dunst to show the daemon's own notification")
    await eventually(lambda: producer.ignored == 1, timeout=20, what="the monitor to see and skip it")
    assert not collector.matching(lambda e: e.topic == "notification.received" and e.payload["app"] == "aiventbus")
    report = {p["name"]: p for p in (await running.client.get("/api/v1/producers")).json()["producers"]}
    assert report["notifications"]["state"] == "running" and report["notifications"]["events_emitted"] == 1
    assert report["desktop"]["state"] == "running"


def dunst_count(env: dict[str, str]) -> int:
    total = 0
    for which in ("displayed", "history", "waiting"):
        result = subprocess.run(["dunstctl", "count", which], env=env, capture_output=True, text=True, timeout=10)
        total += int(result.stdout.strip() or 0)
    return total


async def test_platform_capabilities_on_the_private_bus(session_bus: SessionBus, xvfb: Display) -> None:
    env = {"DISPLAY": xvfb.display, "DBUS_SESSION_BUS_ADDRESS": session_bus.address, "PATH": "/usr/bin:/bin"}
    platform = LinuxPlatform(env=env, system_bus_address=session_bus.address)
    reports = {c.name: c for c in platform.capabilities()}
    assert reports["session_lock"].available and reports["notifications_inbound"].available
    assert reports["notifications_outbound"].available and reports["clipboard"].backend.startswith("xclip ")
    missing = LinuxPlatform(env={"PATH": "/nonexistent"}, which=lambda _name: None)
    with pytest.raises(CapabilityUnavailable, match="notify-send not found") as error:
        await missing.notify("t", "m")
    assert error.value.fix == "apt install libnotify-bin"
    with pytest.raises(ValidationFailed, match="urgency"):
        await platform.notify("t", "m", urgency="loud")
    with pytest.raises(ValidationFailed, match="target"):
        await platform.open_target("--help")
