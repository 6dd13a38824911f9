"""An agent run as the runner leaves it (a triggering event and a response to it), for driving the executor."""

from __future__ import annotations

from typing import Any

from aiventbus.core.executor import RunContext
from aiventbus.records.events import EventIn
from tests.support.daemon import RunningDaemon


async def run_context(d: RunningDaemon, source: str = "user", payload: dict[str, Any] | None = None) -> RunContext:
    """A `user.ask` event from `source` and agent_tester's response to it; the run's label is the response's."""
    event = await d.daemon.bus.publish(EventIn(topic="user.ask", payload=payload or {"text": "hi"}, source=source))
    response = await d.daemon.bus.publish(
        EventIn(topic="agent.tester.response", payload={}, parent_event=event.id, source="agent:agent_tester")
    )
    return RunContext(
        agent_id="agent_tester",
        event=event,
        response_id="resp_test",
        response_event_id=response.id,
        trace_id=event.trace_id,
        taint=list(response.taint),
    )
