"""Events: publish (one or a batch), list with filters and cursor, detail, chain, trace, topics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from aiventbus.api.body import InvalidBody, parse_model, read_json
from aiventbus.api.deps import daemon_of
from aiventbus.errors import ChainLimitExceeded, NotFound, ValidationFailed
from aiventbus.records.events import Event, EventIn, EventStatus
from aiventbus.store.events import EventFilter

router = APIRouter(prefix="/api/v1", tags=["events"])
MAX_BATCH = 1000

PUBLISH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON"},
    413: {"description": "Body or payload over the size limit"},
    415: {"description": "Content type is not application/json"},
    422: {"description": "A field is missing or invalid, or a value breaks a value rule; detail names it"},
    429: {"description": "A chain limit (depth, budget, fan_out) refused the event"},
}


class EventPage(BaseModel):
    events: list[Event]
    next_cursor: str | None = Field(None, description="Pass as cursor= for the next (older) page")


class BatchItem(BaseModel):
    ok: bool
    event: Event | None = None
    error: str | None = None
    reason: str | None = None


class BatchResult(BaseModel):
    results: list[BatchItem]


def _event_body_schema() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventIn.model_json_schema()}},
        }
    }


@router.post(
    "/events",
    status_code=201,
    response_model=Event,
    responses=PUBLISH_ERRORS,
    openapi_extra=_event_body_schema(),
)
async def publish_event(request: Request) -> Any:
    """Publish one event. A duplicate within the dedupe window returns the original (200, deduplicated)."""
    daemon = daemon_of(request)
    limit = daemon.config.bus.max_payload_bytes
    data = await read_json(request, max(limit + 65536, daemon.config.server.max_body_bytes))
    if not isinstance(data, dict):
        raise InvalidBody("body: must be a JSON object (one event); use /api/v1/events/batch for a list")
    # The bus checks the payload's values and size (422 / 413 naming the path and the rule).
    event = await daemon.bus.publish(parse_model(EventIn, data))
    return JSONResponse(event.model_dump(mode="json"), status_code=200 if event.deduplicated else 201)


@router.post("/events/batch", response_model=BatchResult, responses=PUBLISH_ERRORS)
async def publish_batch(request: Request) -> BatchResult:
    """Publish up to 1,000 events; all are validated first, so a bad one stores none."""
    daemon = daemon_of(request)
    limit = daemon.config.bus.max_payload_bytes
    data = await read_json(request, max(limit * 4, daemon.config.server.max_body_bytes * 4))
    items = data.get("events") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise InvalidBody("events: must be a non-empty list of events")
    if len(items) > MAX_BATCH:
        raise InvalidBody(f"events: at most {MAX_BATCH} events per batch, got {len(items)}")
    incoming = [parse_model(EventIn, item, prefix=f"events.{i}.") for i, item in enumerate(items)]
    results = []
    for outcome in await daemon.bus.publish_many(incoming):
        if isinstance(outcome, ChainLimitExceeded):
            results.append(BatchItem(ok=False, error=outcome.detail, reason=outcome.reason))
        else:
            results.append(BatchItem(ok=True, event=outcome))
    return BatchResult(results=results)


def parse_time(value: str | None, field: str) -> float | None:
    """Epoch seconds or ISO 8601."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(field, "must be epoch seconds or an ISO 8601 time") from None
    return parsed.timestamp()


@router.get("/events", response_model=EventPage, responses={422: {"description": "Bad filter"}})
async def list_events(
    request: Request,
    topic: str | None = Query(None, description="Topic glob, e.g. clipboard.* or log.error"),
    status: EventStatus | None = Query(None),
    source: str | None = Query(None),
    since: str | None = Query(None, description="Epoch seconds or ISO 8601, inclusive"),
    until: str | None = Query(None, description="Epoch seconds or ISO 8601, exclusive"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=1000),
) -> EventPage:
    """Newest first."""
    before = None
    if cursor:
        if not cursor.isdigit():
            raise ValidationFailed("cursor", "is not a cursor returned by this endpoint")
        before = int(cursor)
    events = await daemon_of(request).bus.queries.search(
        EventFilter(
            topic_glob=topic,
            status=status.value if status else None,
            source=source,
            since=parse_time(since, "since"),
            until=parse_time(until, "until"),
            before_seq=before,
            limit=limit,
        )
    )
    next_cursor = str(events[-1].seq) if len(events) == limit else None
    return EventPage(events=events, next_cursor=next_cursor)


@router.get("/events/trace/{trace_id}", response_model=EventPage, responses={404: {"description": "No such trace"}})
async def trace(request: Request, trace_id: str) -> EventPage:
    events = await daemon_of(request).bus.queries.trace(trace_id)
    if not events:
        raise NotFound("trace", trace_id)
    return EventPage(events=events)


@router.get("/events/{event_id}", response_model=Event, responses={404: {"description": "No such event"}})
async def get_event(request: Request, event_id: str) -> Event:
    event = await daemon_of(request).bus.queries.get(event_id)
    if event is None:
        raise NotFound("event", event_id)
    return event


@router.get("/events/{event_id}/chain", response_model=EventPage, responses={404: {"description": "No such event"}})
async def chain(request: Request, event_id: str) -> EventPage:
    """Ancestors, the event itself and every descendant, in causal order."""
    events = await daemon_of(request).bus.queries.chain(event_id)
    if not events:
        raise NotFound("event", event_id)
    return EventPage(events=events)


@router.get("/topics")
async def topics(request: Request) -> dict[str, Any]:
    return {"topics": await daemon_of(request).bus.queries.topics()}
