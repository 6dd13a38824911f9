"""The insert job the writer runs for a batch of publishes: dedupe, chain placement and limits, taint, and the
multi-row INSERTs."""

from __future__ import annotations

import functools
import itertools
import json
import operator
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from aiventbus.errors import AiventbusError, ChainLimitExceeded, ValidationFailed
from aiventbus.labels import label_of
from aiventbus.records.events import (
    ChainLimits,
    ChainState,
    Event,
    EventIn,
    EventStatus,
    Priority,
    chain_limit_violation,
    new_id,
    within_dedupe_window,
)
from aiventbus.store.events import COLUMNS, row_to_event, trace_members


@dataclass(frozen=True)
class PublishRules:
    limits: ChainLimits
    dedupe_window_seconds: float
    trusted_sources: frozenset[str]


def compact_json(value: Any) -> str:
    """Minified JSON text; orjson is ~8x faster than the stdlib encoder on a publish's payload."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits, which orjson refuses
        return json.dumps(value, separators=(",", ":"))


Row = tuple[Any, ...]


def root_trace_id(event_id: str) -> str:
    """The trace a new root event starts is named after it (evt_X starts tr_X): as unique as the event id."""
    return f"tr_{event_id[4:]}"


@dataclass(slots=True)
class Placement:
    """Where an event sits in the chain: decided by the writer, or before it for a new root event."""

    trace_id: str
    depth: int
    taint: list[str]
    status: EventStatus = EventStatus.pending


@dataclass(slots=True)
class PendingPublish:
    """One publish on its way to the writer; what needs no database is prepared before, off the writer thread."""

    incoming: EventIn
    now: float
    enforce_limits: bool
    event_id: str
    payload_json: str
    # A new event starting its own trace (no dedupe key, parent or trace): decided here, the writer only inserts.
    root: Placement | None

    @classmethod
    def prepare(
        cls, incoming: EventIn, now: float, enforce_limits: bool = True, trusted_sources: frozenset[str] = frozenset()
    ) -> PendingPublish:
        event_id = new_id("evt")
        root = None
        if incoming.dedupe_key is None and incoming.parent_event is None and incoming.trace_id is None:
            taint = (
                label_of(incoming.source, incoming.taint, trusted=trusted_sources)
                if incoming.taint
                else _root_taint(incoming.source, trusted_sources)
            )
            root = Placement(root_trace_id(event_id), 0, taint)
        return cls(incoming, now, enforce_limits, event_id, compact_json(incoming.payload), root)

    def row(self, placement: Placement) -> Row:
        """The INSERT row, in `ROW_COLUMNS` order."""
        incoming = self.incoming
        return (
            self.event_id,
            incoming.topic,
            self.payload_json,
            _PRIORITY_TEXT[incoming.priority],
            incoming.semantic_type,
            incoming.dedupe_key,
            placement.trace_id,
            incoming.parent_event,
            incoming.output_topic,
            _json_list(incoming.context_refs),
            incoming.memory_scope,
            incoming.source,
            _json_list(placement.taint),
            placement.depth,
            self.now,
        )

    def event(self, seq: int, placement: Placement) -> Event:
        incoming = self.incoming
        values = {
            "id": self.event_id,
            "seq": seq,
            "topic": incoming.topic,
            "payload": incoming.payload,
            "priority": incoming.priority,
            "semantic_type": incoming.semantic_type,
            "dedupe_key": incoming.dedupe_key,
            "trace_id": placement.trace_id,
            "parent_event": incoming.parent_event,
            "output_topic": incoming.output_topic,
            "context_refs": incoming.context_refs,
            "memory_scope": incoming.memory_scope,
            "source": incoming.source,
            "taint": placement.taint,
            "depth": placement.depth,
            "status": placement.status,
            "created_at": self.now,
            "deduplicated": False,
        }
        # Every value was validated on the way in and every field is set: this is model_construct without its
        # per-field default filling, which is most of a publish's cost on the event loop.
        event = _new_model(Event)
        _set_slot(event, "__dict__", values)
        _set_slot(event, "__pydantic_fields_set__", _EVENT_FIELDS)
        _set_slot(event, "__pydantic_extra__", None)
        _set_slot(event, "__pydantic_private__", None)
        return event


_EVENT_FIELDS = set(Event.model_fields)
_new_model = Event.__new__
_set_slot = object.__setattr__  # pydantic models refuse their own __setattr__ for these
_PRIORITY_TEXT = {priority: priority.value for priority in Priority}  # a dict lookup is cheaper than .value
_root_taints: dict[tuple[str, frozenset[str]], list[str]] = {}


def _root_taint(source: str, trusted_sources: frozenset[str]) -> list[str]:
    """The label of an event without a parent or a stated label, which depends on its source alone."""
    key = (source, trusted_sources)
    taint = _root_taints.get(key)
    if taint is None:
        if len(_root_taints) > 1000:
            _root_taints.clear()
        taint = _root_taints[key] = label_of(source, trusted=trusted_sources)
    return list(taint)


# An INSERT row holds every column but seq, which SQLite assigns in insertion order, and status, which starts at
# the table's default ('pending').
ROW_COLUMNS = (
    "id", "topic", "payload", "priority", "semantic_type", "dedupe_key", "trace_id", "parent_event", "output_topic",
    "context_refs", "memory_scope", "source", "taint", "depth", "created_at",
)  # fmt: skip
_REQUIRED = object()
# The table's default for each column that has one (NULL for the optional ones). An INSERT leaves out a column
# whose value is the default in every one of its rows: most events set none of these, and each value bound costs.
COLUMN_DEFAULTS: dict[str, Any] = {
    "semantic_type": None,
    "dedupe_key": None,
    "parent_event": None,
    "output_topic": None,
    "context_refs": "[]",
    "memory_scope": None,
    "taint": "[]",
    "depth": 0,
}
_ROW_DEFAULTS = tuple(COLUMN_DEFAULTS.get(column, _REQUIRED) for column in ROW_COLUMNS)
# Rows go in as multi-row INSERTs: SQLite steps once per statement, where executemany releases and retakes the GIL
# for every row.
MAX_ROWS_PER_INSERT = 256


def _stated_columns(rows: list[Row]) -> tuple[int, ...]:
    """The positions of the columns these rows need to state: the required ones, and those not left at default."""
    count = len(rows)
    return tuple(
        position
        for position, (values, default) in enumerate(zip(zip(*rows, strict=True), _ROW_DEFAULTS, strict=True))
        if default is _REQUIRED or values.count(default) != count
    )


@functools.lru_cache(maxsize=512)  # a few column sets, at up to MAX_ROWS_PER_INSERT sizes
def _insert_plan(stated: tuple[int, ...], rows: int) -> tuple[str, Callable[[Row], Row] | None]:
    """The INSERT for `rows` rows stating the columns at `stated`, and what picks those values out of a row (None
    when the rows state every column)."""
    columns = ", ".join(ROW_COLUMNS[position] for position in stated)
    marks = "(" + ",".join("?" * len(stated)) + ")"
    pick = None if len(stated) == len(ROW_COLUMNS) else operator.itemgetter(*stated)
    return f"INSERT INTO events ({columns}) VALUES {','.join([marks] * rows)}", pick


def _json_list(values: list[str]) -> str:
    return json.dumps(values) if values else "[]"


# What the writer decided for one publish: (row index, placement) for a new event, the original Event for a
# duplicate, or the error that refused it. A row's seq is the batch's first seq plus its index.
PublishOutcome = tuple[int, Placement] | Event | AiventbusError


@dataclass(slots=True)
class InsertResult:
    first_seq: int
    outcomes: list[PublishOutcome]
    inserted: int  # rows stored, with seqs first_seq .. first_seq + inserted - 1

    @property
    def seqs(self) -> range:
        return range(self.first_seq, self.first_seq + self.inserted)


class _Batch:
    """Rows decided but not inserted yet, and the seqs SQLite gave the inserted ones."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.rows: list[Row] = []
        self.inserted = 0
        self.first_seq = 0
        self.last_seq = 0

    def add(self, row: Row) -> int:
        self.rows.append(row)
        return self.inserted + len(self.rows) - 1

    def insert_pending(self) -> None:
        """Insert the queued rows, so the database answers the next lookup with them in it."""
        rows = self.rows
        for start in range(0, len(rows), MAX_ROWS_PER_INSERT):
            chunk = rows[start : start + MAX_ROWS_PER_INSERT]
            sql, pick = _insert_plan(_stated_columns(chunk), len(chunk))
            values = itertools.chain.from_iterable(chunk if pick is None else map(pick, chunk))
            cursor = self.conn.execute(sql, list(values))
            last = cursor.lastrowid or 0
            if self.inserted == 0:
                self.first_seq = last - len(chunk) + 1
            elif last != self.last_seq + len(chunk):
                raise RuntimeError("events.seq is not consecutive within one writer batch")
            self.last_seq = last
            self.inserted += len(chunk)
        self.rows = []


def insert_events(conn: sqlite3.Connection, batch: list[PendingPublish], rules: PublishRules) -> InsertResult:
    """Dedupe, apply chain limits and insert a batch; one outcome per item.

    Inside the writer's transaction, or alone: a batch of new root events is then one INSERT, atomic by itself, and
    any other batch opens its own transaction."""
    if not conn.in_transaction and not _one_statement(batch):
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = insert_events(conn, batch, rules)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
    state = _Batch(conn)
    outcomes: list[PublishOutcome] = []
    for item in batch:
        if item.root is not None:
            outcomes.append((state.add(item.row(item.root)), item.root))
            continue
        state.insert_pending()
        try:
            outcomes.append(_decide(conn, item, rules, state))
        except AiventbusError as error:
            outcomes.append(error)
    state.insert_pending()
    return InsertResult(state.first_seq, outcomes, state.inserted)


def _one_statement(batch: list[PendingPublish]) -> bool:
    return len(batch) <= MAX_ROWS_PER_INSERT and all(item.root is not None for item in batch)


def _decide(
    conn: sqlite3.Connection, item: PendingPublish, rules: PublishRules, state: _Batch
) -> tuple[int, Placement] | Event:
    """An event with a dedupe key, a parent or a trace: every earlier event of the batch is already inserted."""
    incoming, now = item.incoming, item.now
    if incoming.dedupe_key is not None and rules.dedupe_window_seconds > 0:
        original = _find_duplicate(conn, incoming.dedupe_key, now, rules.dedupe_window_seconds)
        if original is not None:
            return original

    parent_taint: list[str] = []
    depth = 0
    trace_id = incoming.trace_id
    parent_children = 0
    if incoming.parent_event is not None:
        parent_id = incoming.parent_event
        parent = conn.execute("SELECT trace_id, depth, taint FROM events WHERE id = ?", (parent_id,)).fetchone()
        if parent is None:
            raise ValidationFailed("parent_event", f"event {parent_id} does not exist")
        parent_trace, parent_depth, parent_taint = parent[0], parent[1], json.loads(parent[2])
        if trace_id is not None and trace_id != parent_trace:
            raise ValidationFailed("trace_id", f"must match the parent's trace {parent_trace}")
        trace_id = parent_trace
        depth = parent_depth + 1
        parent_children = conn.execute("SELECT COUNT(*) FROM events WHERE parent_event = ?", (parent_id,)).fetchone()[0]
    trace_events = 0
    if trace_id is None:
        trace_id = root_trace_id(item.event_id)
    else:
        trace_events = conn.execute(f"SELECT COUNT(*) FROM {trace_members('id')}", {"trace": trace_id}).fetchone()[0]
    if incoming.parent_event is None and trace_events:
        # Joining an existing trace without a parent inherits the trace's taint.
        for (taint_json,) in conn.execute(
            f"SELECT DISTINCT taint FROM {trace_members('taint')} WHERE taint != '[]'", {"trace": trace_id}
        ):
            parent_taint = [*parent_taint, *json.loads(taint_json)]

    violation = chain_limit_violation(ChainState(depth, trace_events, parent_children), rules.limits)
    if violation is not None and item.enforce_limits:
        raise ChainLimitExceeded(violation[0], violation[1], trace_id)

    taint = label_of(incoming.source, parent_taint, incoming.taint, trusted=rules.trusted_sources)
    if violation is None:
        placement = Placement(trace_id, depth, taint)
        return state.add(item.row(placement)), placement
    # An event exempt from the limits (a system report, an admitted response's result) is kept but starts no more
    # work past them: otherwise a loop through reports (an agent answering its own invalid actions) never ends.
    placement = Placement(trace_id, depth, taint, EventStatus.unrouted)
    index = state.add(item.row(placement))
    state.insert_pending()
    conn.execute("UPDATE events SET status = ? WHERE id = ?", (EventStatus.unrouted.value, item.event_id))
    return index, placement


def _find_duplicate(conn: sqlite3.Connection, key: str, now: float, window_seconds: float) -> Event | None:
    original = conn.execute(
        f"SELECT {COLUMNS} FROM events WHERE dedupe_key = ? AND created_at > ? ORDER BY seq DESC LIMIT 1",
        (key, now - window_seconds),
    ).fetchone()
    if original is not None and within_dedupe_window(original["created_at"], now, window_seconds):
        return row_to_event(original)
    return None
