"""The router: every committed event is matched against the rules (or the classifier), becomes persisted
assignments in its lane, and is marked routed or unrouted."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable

from aiventbus.config import ClassifierConfig, LanesConfig, OllamaConfig
from aiventbus.core.agent_registry import AgentRegistry
from aiventbus.core.bus import EventBus
from aiventbus.core.prompts import classifier_prompt, classifier_schema
from aiventbus.core.routing import Routable, classifier_may_route, match_agents
from aiventbus.core.scheduler import Scheduler
from aiventbus.core.watermark import RoutingWatermark
from aiventbus.errors import AiventbusError
from aiventbus.llm.base import ChatMessage, ChatRequest
from aiventbus.llm.registry import LLMRegistry
from aiventbus.records.events import Event, EventStatus, lane_of, new_id
from aiventbus.service import LiveFeed
from aiventbus.store.assignments import Assignment, insert_assignment
from aiventbus.store.database import Database
from aiventbus.store.events import EventQueries, set_routing_status
from aiventbus.store.router_state import advance_routed_through, routed_through
from aiventbus.telemetry import Metrics

MAX_BATCH = 256
RECOVER_PAGE = 10_000
log = logging.getLogger(__name__)


class Router:
    """Subscribes to the bus; routing happens in its own task so a publish never waits for it."""

    name = "router"

    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        registry: AgentRegistry,
        scheduler: Scheduler,
        lanes: LanesConfig,
        classifier: ClassifierConfig,
        ollama: OllamaConfig,
        llm: LLMRegistry,
        metrics: Metrics,
        hub: LiveFeed,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.events = EventQueries(db)
        self.bus = bus
        self.registry = registry
        self.scheduler = scheduler
        self.lanes = lanes
        self.classifier = classifier
        self.ollama = ollama
        self.llm = llm
        self.metrics = metrics
        self.hub = hub
        self.clock = clock
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._unsubscribe: Callable[[], None] | None = None
        self._stop_listening: Callable[[], None] | None = None
        # Held at 0 (ceiling) until start() has read the stored watermark; commits heard before that are kept.
        self._watermark = RoutingWatermark(0, ceiling=0)
        self._recover_after: int | None = None  # the last seq recovery has read, while it has more to read
        self._task: asyncio.Task[None] | None = None
        self._classifying: set[asyncio.Task[None]] = set()
        self._classifier_slot = asyncio.Semaphore(1)
        self.routed = 0
        self._routing = False

    async def start(self) -> None:
        """Route what a previous run committed but never routed, then follow the bus."""
        self._stop_listening = self.bus.on_commit(self._watermark.committed)
        self._unsubscribe = self.bus.subscribe(self._queue.put_nowait)
        # Everything at or below the stored watermark was routed; what commits from here on, the watermark hears.
        stored_through = await routed_through(self.db)
        highest = await self.events.highest_seq()
        self._watermark.resume(stored_through, highest)
        self._recover_after = stored_through
        await self._recover_page()
        self._task = asyncio.create_task(self._loop(), name="router")

    async def _recover_page(self) -> None:
        """Queue the next page of events a previous run committed but never routed (pages bound the memory)."""
        assert self._recover_after is not None
        events = await self.events.pending_after(self._recover_after, RECOVER_PAGE)
        self._watermark.committed(event.seq for event in events)
        for event in events:
            self._queue.put_nowait(event)
        if len(events) < RECOVER_PAGE:
            self._recover_after = None
            self._watermark.recovered_through(None)
        else:
            self._recover_after = events[-1].seq
            self._watermark.recovered_through(self._recover_after)

    async def stop(self) -> None:
        for remove in (self._unsubscribe, self._stop_listening):
            if remove is not None:
                remove()
        for task in [*self._classifying, *([self._task] if self._task else [])]:
            task.cancel()
        await asyncio.gather(*self._classifying, *([self._task] if self._task else []), return_exceptions=True)

    def idle(self) -> bool:
        """Every event the bus handed over is routed (recovery included), and no classification is running."""
        return self._queue.empty() and not self._routing and not self._classifying and self._recover_after is None

    def status(self) -> dict[str, int]:
        return {
            "queued": self._queue.qsize(),
            "routed": self.routed,
            "classifying": len(self._classifying),
            "routed_through_seq": self._watermark.routed_through,
            "unrouted": self._watermark.unsettled,
            "recovering": int(self._recover_after is not None),
        }

    async def _loop(self) -> None:
        while True:
            if self._recover_after is not None and self._queue.empty():
                await self._recover_page()
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._routing = True
            try:
                await self.route(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("routing %d events failed", len(batch))
            finally:
                self._routing = False

    async def route(self, events: list[Event]) -> list[Assignment]:
        """Match each event; store its assignments and status in one write; hand them to the scheduler."""
        # Interactive events first: a user query never waits behind a batch of ambient ones.
        events = sorted(events, key=lambda e: lane_of(e.topic, self.lanes.interactive_prefixes, []) != "interactive")
        enabled = self.registry.enabled_ids()
        rules = self.registry.rules()
        decided: list[tuple[Event, list[str], float]] = []
        for event in events:
            started = time.perf_counter()
            if event.status is not EventStatus.pending:  # stored past a chain limit: it starts no work
                decided.append((event, [], started))
                continue
            routable = Routable(event.topic, event.source, event.semantic_type)
            agent_ids = match_agents(rules, routable, enabled)
            if not agent_ids and self.classifier.enabled and enabled and classifier_may_route(routable):
                self._spawn_classifier(event)
                continue
            decided.append((event, agent_ids, started))
        return await self._commit(decided)

    async def _commit(self, decided: list[tuple[Event, list[str], float]]) -> list[Assignment]:
        if not decided:
            return []
        now = self.clock()
        planned = [
            (event, [self._assignment(event, agent_id, now) for agent_id in agent_ids], started)
            for event, agent_ids, started in decided
        ]

        seqs = [event.seq for event, _, _ in planned]
        through = self._watermark.settling(seqs)
        advance = through > self._watermark.routed_through

        def job(conn: sqlite3.Connection) -> list[Assignment]:
            created: list[Assignment] = []
            for event, assignments, _ in planned:
                for assignment in assignments:
                    stored = insert_assignment(conn, assignment)
                    if stored is not None:
                        created.append(stored)
                set_routing_status(conn, event.id, EventStatus.routed if assignments else EventStatus.unrouted)
            if advance:
                advance_routed_through(conn, through)
            return created

        try:
            created = await self.db.write(job)
        except BaseException:
            self._watermark.failed(seqs)
            raise
        self._watermark.settled(seqs, through)
        await self.scheduler.submit(created)
        for event, assignments, started in planned:
            result = "matched" if assignments else "unmatched"
            self.metrics.routing_decisions.labels(result).inc()
            self.metrics.routing_duration.labels(result).observe(time.perf_counter() - started)
            if not assignments:
                self.hub.publish(
                    "assignment",
                    {"assignment_id": None, "event_id": event.id, "agent_id": None, "state": "unrouted"},
                    topic=event.topic,
                )
        for assignment in created:
            self.metrics.assignments_created.labels(assignment.agent_id, assignment.lane).inc()
            self.hub.publish("assignment", assignment.update_message("pending"), topic=assignment.topic)
        self.routed += len(planned)
        return created

    def _assignment(self, event: Event, agent_id: str, now: float) -> Assignment:
        lane = lane_of(event.topic, self.lanes.interactive_prefixes, self.lanes.critical_prefixes)
        return Assignment(
            id=new_id("asg"),
            event_id=event.id,
            agent_id=agent_id,
            topic=event.topic,
            lane=lane,
            available_at=now,
            created_at=now,
            updated_at=now,
        )

    # -- classifier fallback -------------------------------------------------------------------

    def _spawn_classifier(self, event: Event) -> None:
        task = asyncio.create_task(self._classify_and_route(event), name=f"classify-{event.id}")
        self._classifying.add(task)
        task.add_done_callback(self._classifying.discard)

    async def _classify_and_route(self, event: Event) -> None:
        started = time.perf_counter()
        async with self._classifier_slot:
            agent_id = await self.classify(event)
        await self._commit([(event, [agent_id] if agent_id else [], started)])

    async def classify(self, event: Event) -> str | None:
        """A small LLM call choosing among the enabled agents by description; None for "none" or an error."""
        agents = [agent for agent in self.registry.all() if agent.enabled]
        if not agents:
            return None
        provider = self.llm.provider(self.classifier.provider, self.classifier.base_url or self.ollama.base_url)
        event_text = json.dumps(
            {"topic": event.topic, "semantic_type": event.semantic_type, "payload": event.payload},
            ensure_ascii=False,
        )[:4000]
        request = ChatRequest(
            model=self.classifier.model,
            messages=[ChatMessage("system", classifier_prompt(agents)), ChatMessage("user", event_text)],
            json_schema=classifier_schema([agent.id for agent in agents]),
            temperature=0.0,
            max_tokens=64,
        )
        try:
            result = await provider.chat(request)
            choice = json.loads(result.text).get("agent_id")
        except (AiventbusError, ValueError, AttributeError) as error:
            log.warning("classifier failed on %s: %s", event.id, error)
            self.metrics.classifier_fallbacks.labels("error").inc()
            return None
        if isinstance(choice, str) and choice in self.registry.enabled_ids():
            self.metrics.classifier_fallbacks.labels("matched").inc()
            return choice
        self.metrics.classifier_fallbacks.labels("none").inc()
        return None
