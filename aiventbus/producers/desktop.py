"""session.locked|unlocked from login1's Lock/Unlock signals and LockedHint changes, believed only from the
name's real owner."""

from __future__ import annotations

from typing import Any

from dbus_fast import Message, MessageType

from aiventbus.platform.base import SESSION_LOCK
from aiventbus.producers.dbus import DBUS_NAME, bus_call, connect
from aiventbus.producers.outlet import Outlet

LOGIN1 = "org.freedesktop.login1"
SESSION_INTERFACE = "org.freedesktop.login1.Session"
PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties"
TOPICS = {"Lock": "session.locked", "Unlock": "session.unlocked"}


class SessionLockProducer:
    name = "desktop"
    source = "session"
    capability = SESSION_LOCK

    def __init__(self, address: str) -> None:
        self.address = address
        self.owner: str | None = None
        self.listening = False
        self.ignored_signals = 0
        self.locked: dict[str, bool] = {}

    def details(self) -> dict[str, Any]:
        return {
            "bus": self.address,
            "listening": self.listening,
            "login1_owner": self.owner,
            "ignored_signals": self.ignored_signals,
        }

    def handle(self, message: Message, outlet: Outlet) -> None:
        """Track the owner of org.freedesktop.login1 and turn its Lock/Unlock signals into events."""
        if message.message_type is not MessageType.SIGNAL:
            return
        if message.sender == DBUS_NAME and message.member == "NameOwnerChanged" and message.body[0] == LOGIN1:
            self.owner = message.body[2] or None
            return
        locked = self._lock_state(message)
        if locked is None:
            return
        if self.owner is None or message.sender != self.owner:
            self.ignored_signals += 1
            return
        path = str(message.path)
        if self.locked.get(path) is locked:
            return  # Lock then LockedHint=true is one lock, not two
        self.locked[path] = locked
        topic = "session.locked" if locked else "session.unlocked"
        outlet.offer(topic, {"session_path": path, "sender": LOGIN1})

    @staticmethod
    def _lock_state(message: Message) -> bool | None:
        """True/False for a Lock/Unlock signal or a LockedHint change on a Session; None for anything else."""
        if message.interface == SESSION_INTERFACE and message.member in TOPICS:
            return message.member == "Lock"
        if (
            message.interface == PROPERTIES_INTERFACE
            and message.member == "PropertiesChanged"
            and message.body
            and message.body[0] == SESSION_INTERFACE
            and "LockedHint" in message.body[1]
        ):
            return bool(message.body[1]["LockedHint"].value)
        return None

    async def run(self, outlet: Outlet) -> None:
        bus = await connect(self.address, SESSION_LOCK, "dbus_system_bus_address")
        try:
            bus.add_message_handler(lambda message: self.handle(message, outlet))
            rules = [
                f"type='signal',sender='{DBUS_NAME}',member='NameOwnerChanged',arg0='{LOGIN1}'",
                f"type='signal',sender='{LOGIN1}',interface='{SESSION_INTERFACE}'",
                f"type='signal',sender='{LOGIN1}',interface='{PROPERTIES_INTERFACE}',arg0='{SESSION_INTERFACE}'",
            ]
            for rule in rules:
                answer = await bus.call(bus_call("AddMatch", "s", [rule]))
                if answer.message_type is MessageType.ERROR:
                    raise ConnectionError(f"AddMatch refused: {answer.error_name} {answer.body}")
            reply = await bus.call(bus_call("GetNameOwner", "s", [LOGIN1]))
            if reply.message_type is MessageType.METHOD_RETURN:
                self.owner = str(reply.body[0])
            self.listening = True
            await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
        finally:
            self.listening = False
            bus.disconnect()
        raise ConnectionError(f"DBus connection to {self.address} closed")
