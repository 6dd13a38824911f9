"""The event bus: validate, dedupe, apply chain limits, commit durably, then notify subscribers."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiventbus.config import BusConfig
from aiventbus.errors import AiventbusError, ChainLimitExceeded, PayloadTooLarge, StoreClosed
from aiventbus.records.events import ChainLimits, Event, EventIn, Priority
from aiventbus.store.database import Database
from aiventbus.store.event_insert import (
    MAX_ROWS_PER_INSERT,
    InsertResult,
    PendingPublish,
    PublishOutcome,
    PublishRules,
    compact_json,
    insert_events,
)
from aiventbus.store.events import EventQueries
from aiventbus.telemetry import Metrics, bounded_topic
from aiventbus.values import check_value, escaped

Subscriber = Callable[[Event], Awaitable[None] | None]
CommitListener = Callable[[range], None]  # the seqs of one commit's new events
Published = tuple[int, PublishOutcome]  # the batch's first seq, and this publish's outcome
Clock = Callable[[], float]
T = TypeVar("T")
log = logging.getLogger(__name__)


class EventBus:
    """Durable publish with group commit; a publish returns only after its event is committed."""

    def __init__(
        self,
        db: Database,
        config: BusConfig,
        metrics: Metrics,
        clock: Clock = time.time,
        trusted_sources: frozenset[str] = frozenset(),
    ) -> None:
        self.db = db
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.queries = EventQueries(db)
        self.trusted_sources = trusted_sources
        self._subscribers: list[Subscriber] = []
        self._commit_listeners: list[CommitListener] = []
        self._late_notices: set[asyncio.Task[None]] = set()
        self._accepting = True
        self._pending: list[tuple[PendingPublish, asyncio.Future[Published]]] = []
        self._publishing = 0  # publishes between their call and their subscribers having heard
        self._duration_children: dict[str, Any] = {}
        self._published_duration = metrics.event_publish_duration.labels("published")
        self._published_children: dict[tuple[str, str], Any] = {}
        self.subscriber_failures = 0

    @property
    def limits(self) -> ChainLimits:
        return ChainLimits(self.config.max_chain_depth, self.config.max_chain_budget, self.config.max_fan_out)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber` with every committed event; returns the unsubscribe function."""
        return _added(self._subscribers, subscriber)

    def on_commit(self, listener: CommitListener) -> Callable[[], None]:
        """Call `listener` with the seqs of every commit's new events, right after the commit and before any
        publisher or subscriber hears of them; returns the function that removes it."""
        return _added(self._commit_listeners, listener)

    def stop_intake(self) -> None:
        self._accepting = False

    def idle(self) -> bool:
        """No publish is on its way to the store or to the subscribers."""
        return not self._publishing and not self._pending and not self._late_notices

    async def publish(self, incoming: EventIn, *, enforce_limits: bool = True) -> Event:
        """Store one event (or answer with the original when deduplicated) and notify subscribers."""
        if not self._accepting:
            raise StoreClosed("the daemon is shutting down and accepts no new events")
        # Counted until the subscribers have heard (idle() reads it); in this frame, not a wrapper coroutine, as a
        # second frame per publish costs measurable throughput.
        self._publishing += 1
        try:
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            future: asyncio.Future[Published] = loop.create_future()
            item = self._prepared(incoming, enforce_limits, started)
            self._pending.append((item, future))
            if len(self._pending) == 1:
                # Publishes made in the same loop turn travel to the writer as one job.
                loop.call_soon(self._flush)
            try:
                first_seq, outcome = await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():  # cancelled after its commit, before it could go on
                    self._notify_later(item, *future.result())
                raise
            except Exception:
                self._observe("error", started)
                raise
            if isinstance(outcome, tuple):
                event = item.event(first_seq + outcome[0], outcome[1])
            elif isinstance(outcome, Event):
                event = outcome.model_copy(update={"deduplicated": True})
                self._observe("deduplicated", started)
                self.metrics.events_deduped.labels(bounded_topic(event.topic)).inc()
                return event
            elif isinstance(outcome, ChainLimitExceeded):
                self._observe("chain_limit", started)
                self.metrics.events_chain_limit.labels(outcome.reason).inc()
                facts = {"reason": outcome.reason, "limit": outcome.limit, "topic": incoming.topic}
                await self.publish_system(
                    "chain_limit", {**facts, "source": incoming.source}, trace_id=outcome.trace_id
                )
                raise outcome
            else:
                self._observe("rejected", started)
                raise outcome
            self._published_duration.observe(time.perf_counter() - started)
            self._published_counter(event.topic, event.source).inc()
            if event.topic.startswith("system."):
                self.metrics.system_events.labels(bounded_topic(event.topic)).inc()
            if self._subscribers:
                await self._notify(event)
            return event
        finally:
            self._publishing -= 1

    def _prepared(self, incoming: EventIn, enforce_limits: bool, started: float) -> PendingPublish:
        """The event checked (values, size) and made ready to store; a refusal is counted as rejected."""
        try:
            check_value(incoming.payload, "payload")
            item = PendingPublish.prepare(incoming, self.clock(), enforce_limits, self.trusted_sources)
            self._check_size(item.payload_json, "payload")
        except AiventbusError:
            self._observe("rejected", started)
            raise
        return item

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        rules = PublishRules(self.limits, self.config.dedupe_window_seconds, self.trusted_sources)
        items = [item for item, _ in batch]
        try:
            # Up to one INSERT's worth (a few ms at most) may go in on the loop; a flood goes to the writer thread.
            written = self.db.submit(
                lambda conn: insert_events(conn, items, rules),
                commits_itself=True,
                on_loop=len(items) <= MAX_ROWS_PER_INSERT,
            )
        except Exception as error:
            for _, future in batch:
                future.set_exception(error)
            return

        def deliver(done: asyncio.Future[InsertResult]) -> None:
            error = done.exception() if not done.cancelled() else StoreClosed("the store closed")
            if error is not None:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                return
            result = done.result()
            if result.inserted:
                self._committed(result.seqs)
            first_seq = result.first_seq
            for (item, future), outcome in zip(batch, result.outcomes, strict=True):
                if not future.done():
                    future.set_result((first_seq, outcome))
                else:  # its publisher was cancelled while the commit went on
                    self._notify_later(item, first_seq, outcome)

        written.add_done_callback(deliver)

    def _committed(self, seqs: range) -> None:
        for listener in list(self._commit_listeners):
            try:
                listener(seqs)
            except Exception:
                self.subscriber_failures += 1
                log.exception("commit listener %r failed on seqs %d-%d", listener, seqs.start, seqs.stop - 1)

    def _observe(self, outcome: str, started: float) -> None:
        child = self._duration_children.get(outcome)
        if child is None:
            child = self._duration_children[outcome] = self.metrics.event_publish_duration.labels(outcome)
        child.observe(time.perf_counter() - started)

    def _published_counter(self, topic: str, source: str) -> Any:
        key = (topic, source)
        child = self._published_children.get(key)
        if child is None:
            if len(self._published_children) > 10_000:
                self._published_children.clear()
            child = self.metrics.events_published.labels(bounded_topic(topic), _bounded_source(source))
            self._published_children[key] = child
        return child

    def _check_size(self, payload_json: str, field: str) -> None:
        """Every publisher meets bus.max_payload_bytes, not only the HTTP route."""
        limit = self.config.max_payload_bytes
        size = len(payload_json) if payload_json.isascii() else len(payload_json.encode())
        if size > limit:
            raise PayloadTooLarge(f"{field}: {size} bytes exceeds bus.max_payload_bytes ({limit})", field=field)

    async def publish_many(self, incoming: list[EventIn]) -> list[Event | ChainLimitExceeded]:
        """Publish a batch concurrently so it shares commits; chain-limit refusals are returned, not raised.
        Every payload is checked first (values and size, named `events[<i>].payload`), so a bad one stores none."""
        for index, item in enumerate(incoming):
            check_value(item.payload, f"events[{index}].payload")
            self._check_size(compact_json(item.payload), f"events[{index}].payload")
        results = await asyncio.gather(*(self.publish(item) for item in incoming), return_exceptions=True)
        out: list[Event | ChainLimitExceeded] = []
        for result in results:
            if isinstance(result, ChainLimitExceeded | Event):
                out.append(result)
            elif isinstance(result, BaseException):
                raise result
        return out

    async def publish_system(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        trace_id: str | None = None,
        parent_event: str | None = None,
        priority: Priority = Priority.high,
    ) -> Event | None:
        """A `system.<name>` event; guardrails do not apply, and failure to store it is only logged."""
        try:
            return await self.publish(
                EventIn(
                    topic=f"system.{name}",
                    payload=escaped(payload),  # a report may quote what was refused: it must not be refused too
                    priority=priority,
                    trace_id=trace_id,
                    parent_event=parent_event,
                    source="system",
                ),
                enforce_limits=False,
            )
        except Exception:
            log.warning("could not publish system.%s", name, exc_info=True)
            return None

    def _notify_later(self, item: PendingPublish, first_seq: int, outcome: PublishOutcome) -> None:
        """An event committed but its publisher stopped waiting: the subscribers (the router) must still hear."""
        if isinstance(outcome, tuple) and self._subscribers:
            event = item.event(first_seq + outcome[0], outcome[1])
            task = asyncio.get_running_loop().create_task(self._notify(event), name=f"notify-{event.id}")
            self._late_notices.add(task)
            task.add_done_callback(self._late_notices.discard)

    async def _notify(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                result = subscriber(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.subscriber_failures += 1
                log.exception("event subscriber %r failed on %s", subscriber, event.id)


def _added(members: list[T], member: T) -> Callable[[], None]:
    """Append `member`; returns the function that takes it out again (once)."""
    members.append(member)

    def remove() -> None:
        if member in members:
            members.remove(member)

    return remove


def _bounded_source(source: str) -> str:
    return source.split(":", 1)[0] if not source.startswith("producer:") else source[:40]
