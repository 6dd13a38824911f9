"""session.locked|unlocked from login1's Lock/Unlock signals, believed only from the name's real owner."""

from __future__ import annotations

from typing import Any

from dbus_fast import Message, MessageType

from aiventbus.platform.base import SESSION_LOCK
from aiventbus.producers.dbus import DBUS_NAME, bus_call, connect
from aiventbus.producers.outlet import Outlet

LOGIN1 = "org.freedesktop.login1"
SESSION_INTERFACE = "org.freedesktop.login1.Session"
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
        if message.interface != SESSION_INTERFACE or message.member not in TOPICS:
            return
        if self.owner is None or message.sender != self.owner:
            self.ignored_signals += 1
            return
        outlet.offer(TOPICS[message.member], {"session_path": message.path, "sender": LOGIN1})

    async def run(self, outlet: Outlet) -> None:
        bus = await connect(self.address, SESSION_LOCK, "dbus_system_bus_address")
        try:
            bus.add_message_handler(lambda message: self.handle(message, outlet))
            rules = [
                f"type='signal',sender='{DBUS_NAME}',member='NameOwnerChanged',arg0='{LOGIN1}'",
                f"type='signal',sender='{LOGIN1}',interface='{SESSION_INTERFACE}'",
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
