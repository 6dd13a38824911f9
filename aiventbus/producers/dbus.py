"""Connecting to a DBus bus by address, with failures reported as an unavailable capability."""

from __future__ import annotations

from dbus_fast import Message
from dbus_fast.aio import MessageBus

from aiventbus.platform import CapabilityUnavailable

DBUS_NAME = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"
CONNECT_TIMEOUT_SECONDS = 10.0


async def connect(address: str, capability: str, setting: str) -> MessageBus:
    """A connected bus, or CapabilityUnavailable naming the address and the config key to fix."""
    if not address:
        raise CapabilityUnavailable(capability, "no DBus bus address", f"set producers.{setting}")
    try:
        bus = MessageBus(bus_address=address, auth_timeout=CONNECT_TIMEOUT_SECONDS)
        return await bus.connect()
    except Exception as error:
        raise CapabilityUnavailable(
            capability,
            f"cannot connect to DBus at {address}: {error or type(error).__name__}",
            f"fix producers.{setting}",
        ) from None


def bus_call(member: str, signature: str, body: list[object], interface: str = DBUS_NAME) -> Message:
    return Message(
        destination=DBUS_NAME, path=DBUS_PATH, interface=interface, member=member, signature=signature, body=body
    )
