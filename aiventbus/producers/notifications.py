"""notification.received for every Notify call on the session bus, seen as a DBus monitor."""

from __future__ import annotations

from typing import Any

from dbus_fast import Message, MessageType

from aiventbus.platform import CapabilityUnavailable
from aiventbus.platform.base import NOTIFICATIONS_INBOUND
from aiventbus.producers.dbus import bus_call, connect
from aiventbus.producers.outlet import Outlet

NOTIFY_RULE = "type='method_call',interface='org.freedesktop.Notifications',member='Notify'"
URGENCY = {0: "low", 1: "normal", 2: "critical"}
MAX_TEXT = 4096
# The daemon's own notifications (platform notify uses --app-name=aiventbus) are not events: an agent that
# notifies must not trigger itself through the notification producer.
OWN_APP_NAMES = frozenset({"aiventbus"})


def parse_notify(message: Message) -> dict[str, Any] | None:
    """The payload for one Notify(app_name, replaces_id, icon, summary, body, actions, hints, timeout) call."""
    if (
        message.message_type is not MessageType.METHOD_CALL
        or message.interface != "org.freedesktop.Notifications"
        or message.member != "Notify"
        or message.signature != "susssasa{sv}i"
    ):
        return None
    app, _replaces, _icon, summary, body, _actions, hints, _timeout = message.body
    urgency = hints.get("urgency")
    level = URGENCY.get(int(urgency.value), "normal") if urgency is not None else "normal"
    return {"app": str(app)[:200], "summary": str(summary)[:MAX_TEXT], "body": str(body)[:MAX_TEXT], "urgency": level}


class NotificationsProducer:
    name = "notifications"
    source = "notification"
    capability = NOTIFICATIONS_INBOUND

    def __init__(self, address: str, ignore_apps: frozenset[str] = OWN_APP_NAMES) -> None:
        self.address = address
        self.ignore_apps = ignore_apps
        self.listening = False
        self.ignored = 0

    def details(self) -> dict[str, Any]:
        return {"bus": self.address, "listening": self.listening, "ignored_own": self.ignored}

    async def run(self, outlet: Outlet) -> None:
        bus = await connect(self.address, NOTIFICATIONS_INBOUND, "dbus_session_bus_address")
        try:
            reply = await bus.call(
                bus_call("BecomeMonitor", "asu", [[NOTIFY_RULE], 0], "org.freedesktop.DBus.Monitoring")
            )
            if reply.message_type is MessageType.ERROR:
                raise CapabilityUnavailable(
                    NOTIFICATIONS_INBOUND,
                    f"the session bus refused BecomeMonitor: {reply.error_name} {reply.body}",
                    "use a dbus-daemon >= 1.10 that allows monitoring on the session bus",
                )

            def on_message(message: Message) -> bool:
                payload = parse_notify(message)
                if payload is not None and payload["app"] in self.ignore_apps:
                    self.ignored += 1
                elif payload is not None:
                    outlet.offer("notification.received", payload)
                # A monitor must never answer: claiming every message keeps dbus-fast from replying.
                return True

            bus.add_message_handler(on_message)
            self.listening = True
            await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
        finally:
            self.listening = False
            bus.disconnect()
        raise ConnectionError(f"DBus monitor connection to {self.address} closed")
