"""What became of an action, told where it is followed: the live feed, and an `action.<type>.<status>` event on its
trace whose parent is the response that proposed it."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiventbus.config import BusConfig
from aiventbus.core.bus import EventBus
from aiventbus.errors import AiventbusError
from aiventbus.records.events import EventIn
from aiventbus.service import LiveFeed
from aiventbus.store.actions import ActionRecord, ActionStore

log = logging.getLogger(__name__)
# Room left in an event payload for everything but the result itself.
PAYLOAD_HEADROOM_BYTES = 8192


class ActionResults:
    """Publishes each decided or finished action and stores the id of the event that carried it."""

    def __init__(self, bus: EventBus, hub: LiveFeed, store: ActionStore, limits: BusConfig) -> None:
        self.bus = bus
        self.hub = hub
        self.store = store
        self.limits = limits

    async def publish(self, record: ActionRecord, source: str) -> ActionRecord:
        """`action.<type>.<status>` on the trace, parent = the response event; the record with its event id."""
        payload = {
            "action_id": record.id,
            "action_type": record.action_type,
            "agent_id": record.agent_id,
            "status": record.status.value,
            "rule": record.rule,
            "reason": record.reason,
            "action": record.content,
            "result": bounded(record.result, self.limits.max_payload_bytes - PAYLOAD_HEADROOM_BYTES),
            "error": record.error,
        }
        topic = f"action.{record.action_type}.{record.status.value}"
        self.hub.publish("action", payload, topic=topic)
        try:
            event = await self.bus.publish(
                EventIn(
                    topic=topic,
                    payload=payload,
                    parent_event=record.parent_event_id,
                    trace_id=record.trace_id,
                    source=source,
                    taint=record.result_taint,
                ),
                # A result hangs off a response the limits admitted, and must not be lost to its fan-out. Without
                # that response (the limits refused it), results meet the limits, so no loop can grow through them.
                enforce_limits=record.response_event_id is None,
            )
        except AiventbusError as error:
            log.warning("result of %s not published: %s", record.id, error.detail)
            return record
        await self.store.set_result_event(record.id, event.id)
        return record.model_copy(update={"result_event_id": event.id})


def bounded(value: Any, max_bytes: int) -> Any:
    """`value`, or a note with its start when its JSON is over `max_bytes`."""
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text.encode()) <= max_bytes:
        return value
    return {"truncated": True, "json_start": text[: max(0, max_bytes // 2)]}
