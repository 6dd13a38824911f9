"""emit_event (a chain reaction back into the bus) and log (the daemon log plus an event)."""

from __future__ import annotations

import logging

from aiventbus.errors import ChainLimitExceeded, ValidationFailed
from aiventbus.records.actions import ActionFailed, ActionScope, EmitEventAction, HandlerResult, LogAction
from aiventbus.records.events import EventIn, EventPublisher
from aiventbus.redaction import redact_text

agent_log = logging.getLogger("aiventbus.agents")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class EventActions:
    def __init__(self, bus: EventPublisher) -> None:
        self.bus = bus

    async def emit(self, action: EmitEventAction, scope: ActionScope) -> HandlerResult:
        """Publish on the proposing trace: the parent link applies the chain limits, and the event carries the
        proposing run's label (everything its prompt held, not only the parent event)."""
        try:
            event = await self.bus.publish(
                EventIn(
                    topic=action.topic,
                    payload=action.payload,
                    priority=action.priority,
                    parent_event=scope.parent_event_id,
                    trace_id=scope.trace_id,
                    source=f"agent:{scope.agent_id}",
                    taint=scope.taint,
                )
            )
        except ChainLimitExceeded as error:
            raise ActionFailed(error.detail, {"chain_limit": error.reason, "limit": error.limit}) from None
        except ValidationFailed as error:
            raise ActionFailed(error.detail) from None
        return HandlerResult({"event_id": event.id, "topic": event.topic, "trace_id": event.trace_id})

    async def log(self, action: LogAction, scope: ActionScope) -> HandlerResult:
        """Write the message (secrets masked) to the daemon log under aiventbus.agents."""
        message, masked = redact_text(action.message)
        agent_log.log(LEVELS[action.level], "[%s] %s", scope.agent_id, message)
        return HandlerResult({"level": action.level, "message": message, "redacted": masked})
