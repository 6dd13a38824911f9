"""Queries over assignments and agent_responses: claims with leases, retries, dead letters, responses."""

from __future__ import annotations

import json
import sqlite3
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from aiventbus.store.database import Database
from aiventbus.store.responses import (
    RESPONSE_COLUMNS,
    AgentResponseRecord,
    ResponseRow,
    TranscriptRow,
    insert_response,
    row_to_response,
)

COLUMNS = (
    "seq, id, event_id, agent_id, topic, lane, status, attempts, available_at, lease_expires_at, worker, last_error,"
    " response_id, created_at, updated_at"
)


class AssignmentStatus(StrEnum):
    pending = "pending"
    claimed = "claimed"
    completed = "completed"
    failed = "failed"
    expired = "expired"  # interactive work that waited too long for a model; terminal, like failed


class Assignment(BaseModel):
    """One event handed to one agent."""

    seq: int = 0
    id: str
    event_id: str
    agent_id: str
    topic: str
    lane: str
    status: AssignmentStatus = AssignmentStatus.pending
    attempts: int = 0
    available_at: float
    lease_expires_at: float | None = None
    worker: str | None = None
    last_error: str | None = None
    response_id: str | None = None
    created_at: float
    updated_at: float

    def update_message(self, state: str, error: str = "") -> dict[str, Any]:
        """The /ws `assignment` message for this assignment entering `state`."""
        return {
            "assignment_id": self.id,
            "event_id": self.event_id,
            "agent_id": self.agent_id,
            "lane": self.lane,
            "state": state,
            "attempts": self.attempts,
            "error": error or None,
        }


def row_to_assignment(row: sqlite3.Row) -> Assignment:
    return Assignment.model_validate(dict(row))


def insert_assignment(conn: sqlite3.Connection, assignment: Assignment) -> Assignment | None:
    """Insert unless the event already has an assignment for that agent; returns it with its seq."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO assignments (id, event_id, agent_id, topic, lane, status, attempts, available_at,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        (
            assignment.id,
            assignment.event_id,
            assignment.agent_id,
            assignment.topic,
            assignment.lane,
            assignment.available_at,
            assignment.created_at,
            assignment.updated_at,
        ),
    )
    if not cursor.rowcount:
        return None
    return assignment.model_copy(update={"seq": cursor.lastrowid or 0})


def _claimed_event(conn: sqlite3.Connection, assignment_id: str, worker: str) -> str | None:
    """The assignment's event id while `worker` still holds its claim, else None (the claim was lost)."""
    row = conn.execute(
        "SELECT event_id FROM assignments WHERE id = ? AND status = 'claimed' AND worker = ?", (assignment_id, worker)
    ).fetchone()
    return None if row is None else str(row[0])


def settle_event(conn: sqlite3.Connection, event_id: str) -> None:
    """Once no assignment of the event is open, the event is completed (any success) or failed."""
    open_count, completed = conn.execute(
        "SELECT SUM(status IN ('pending', 'claimed')), SUM(status = 'completed') FROM assignments WHERE event_id = ?",
        (event_id,),
    ).fetchone()
    if open_count:
        return
    conn.execute("UPDATE events SET status = ? WHERE id = ?", ("completed" if completed else "failed", event_id))


class AssignmentTable:
    """State changes are conditional on the claim (status and worker), so a stale worker changes nothing."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, assignment_id: str) -> Assignment | None:
        row = await self.db.fetch_one(f"SELECT {COLUMNS} FROM assignments WHERE id = ?", (assignment_id,))
        return None if row is None else row_to_assignment(row)

    async def for_event(self, event_id: str) -> list[Assignment]:
        rows = await self.db.fetch_all(
            f"SELECT {COLUMNS} FROM assignments WHERE event_id = ? ORDER BY seq", (event_id,)
        )
        return [row_to_assignment(row) for row in rows]

    async def pending(self) -> list[Assignment]:
        rows = await self.db.fetch_all(f"SELECT {COLUMNS} FROM assignments WHERE status = 'pending' ORDER BY seq")
        return [row_to_assignment(row) for row in rows]

    async def pending_in_lane(self, lane: str) -> list[Assignment]:
        rows = await self.db.fetch_all(
            f"SELECT {COLUMNS} FROM assignments WHERE status = 'pending' AND lane = ? ORDER BY seq", (lane,)
        )
        return [row_to_assignment(row) for row in rows]

    async def queue_depth(self) -> dict[str, int]:
        rows = await self.db.fetch_all(
            "SELECT lane, COUNT(*) AS n FROM assignments WHERE status = 'pending' GROUP BY lane"
        )
        return {row["lane"]: row["n"] for row in rows}

    async def counts(self) -> dict[str, int]:
        rows = await self.db.fetch_all("SELECT status, COUNT(*) AS n FROM assignments GROUP BY status")
        return {row["status"]: row["n"] for row in rows}

    async def claim(self, assignment_id: str, worker: str, now: float, lease_until: float) -> Assignment | None:
        def job(conn: sqlite3.Connection) -> Assignment | None:
            changed = conn.execute(
                "UPDATE assignments SET status = 'claimed', worker = ?, lease_expires_at = ?, updated_at = ?"
                " WHERE id = ? AND status = 'pending'",
                (worker, lease_until, now, assignment_id),
            ).rowcount
            if not changed:
                return None
            row = conn.execute(f"SELECT {COLUMNS} FROM assignments WHERE id = ?", (assignment_id,)).fetchone()
            # The event shows that an agent is working on it until its last assignment settles.
            conn.execute(
                "UPDATE events SET status = 'processing' WHERE id = ? AND status = 'routed'", (row["event_id"],)
            )
            return row_to_assignment(row)

        return await self.db.write(job)

    async def renew(self, assignment_id: str, worker: str, lease_until: float) -> bool:
        changed = await self.db.execute(
            "UPDATE assignments SET lease_expires_at = ? WHERE id = ? AND status = 'claimed' AND worker = ?",
            (lease_until, assignment_id, worker),
        )
        return bool(changed)

    async def release(self, assignment_ids: list[str], worker: str, now: float, error: str | None = None) -> None:
        """Back to pending without spending an attempt (preempted, LLM unavailable, shutdown)."""
        if not assignment_ids:
            return

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE assignments SET status = 'pending', worker = NULL, lease_expires_at = NULL, updated_at = ?,"
                " last_error = COALESCE(?, last_error) WHERE id = ? AND status = 'claimed' AND worker = ?",
                [(now, error, assignment_id, worker) for assignment_id in assignment_ids],
            )

        await self.db.write(job)

    async def release_all(self, worker: str, now: float) -> int:
        """Give back every claim `worker` still holds (graceful shutdown), spending no attempt."""
        return await self.db.execute(
            "UPDATE assignments SET status = 'pending', worker = NULL, lease_expires_at = NULL, updated_at = ?"
            " WHERE status = 'claimed' AND worker = ?",
            (now, worker),
        )

    async def fail(
        self, assignment_id: str, worker: str, now: float, error: str, retry_at: float | None
    ) -> AssignmentStatus | None:
        """Spend an attempt: pending again at `retry_at`, or failed (dead letter) when it is None."""

        def job(conn: sqlite3.Connection) -> AssignmentStatus | None:
            event_id = _claimed_event(conn, assignment_id, worker)
            if event_id is None:
                return None
            status = AssignmentStatus.pending if retry_at is not None else AssignmentStatus.failed
            conn.execute(
                "UPDATE assignments SET status = ?, attempts = attempts + 1, worker = NULL, lease_expires_at = NULL,"
                " available_at = ?, last_error = ?, updated_at = ? WHERE id = ?",
                (status.value, retry_at if retry_at is not None else now, error[:2000], now, assignment_id),
            )
            if status is AssignmentStatus.failed:
                settle_event(conn, event_id)
            return status

        return await self.db.write(job)

    async def complete(self, assignment_id: str, worker: str, now: float, response: ResponseRow | None) -> bool:
        """Store the response and complete the claim in one transaction; False when the claim was lost."""

        def job(conn: sqlite3.Connection) -> bool:
            event_id = _claimed_event(conn, assignment_id, worker)
            if event_id is None:
                return False
            if response is not None:
                insert_response(conn, response)
            conn.execute(
                "UPDATE assignments SET status = 'completed', worker = NULL, lease_expires_at = NULL,"
                " response_id = ?, updated_at = ? WHERE id = ?",
                (response.id if response else None, now, assignment_id),
            )
            settle_event(conn, event_id)
            return True

        return await self.db.write(job)

    async def dead_letter(self, assignment_id: str, worker: str, now: float, error: str, raw: ResponseRow) -> bool:
        """Fail for good without retries (e.g. unparseable output), keeping the raw text as a response row."""

        def job(conn: sqlite3.Connection) -> bool:
            event_id = _claimed_event(conn, assignment_id, worker)
            if event_id is None:
                return False
            insert_response(conn, raw)
            conn.execute(
                "UPDATE assignments SET status = 'failed', attempts = attempts + 1, worker = NULL,"
                " lease_expires_at = NULL, last_error = ?, response_id = ?, updated_at = ? WHERE id = ?",
                (error[:2000], raw.id, now, assignment_id),
            )
            settle_event(conn, event_id)
            return True

        return await self.db.write(job)

    async def reclaim_expired(
        self, now: float, max_attempts: int, keep: frozenset[str]
    ) -> tuple[list[Assignment], list[Assignment]]:
        """Claims whose lease ran out (their worker died): (back to pending, dead-lettered). `keep` is skipped."""

        def job(conn: sqlite3.Connection) -> tuple[list[Assignment], list[Assignment]]:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM assignments WHERE status = 'claimed' AND lease_expires_at < ?", (now,)
            ).fetchall()
            requeued: list[Assignment] = []
            dead: list[Assignment] = []
            for row in rows:
                if row["id"] in keep:
                    continue
                attempts = row["attempts"] + 1
                status = "failed" if attempts >= max_attempts else "pending"
                conn.execute(
                    "UPDATE assignments SET status = ?, attempts = ?, worker = NULL, lease_expires_at = NULL,"
                    " available_at = ?, last_error = ?, updated_at = ? WHERE id = ?",
                    (status, attempts, now, f"lease of worker {row['worker']} expired", now, row["id"]),
                )
                fresh = row_to_assignment(
                    conn.execute(f"SELECT {COLUMNS} FROM assignments WHERE id = ?", (row["id"],)).fetchone()
                )
                if status == "failed":
                    settle_event(conn, row["event_id"])
                    dead.append(fresh)
                else:
                    requeued.append(fresh)
            return requeued, dead

        return await self.db.write(job)

    async def expire(self, reasons: dict[str, str], now: float) -> list[Assignment]:
        """Mark still-pending assignments expired (id -> reason kept as last_error); returns those it changed."""

        def job(conn: sqlite3.Connection) -> list[Assignment]:
            expired: list[Assignment] = []
            for assignment_id, reason in reasons.items():
                changed = conn.execute(
                    "UPDATE assignments SET status = 'expired', worker = NULL, lease_expires_at = NULL,"
                    " last_error = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
                    (reason[:2000], now, assignment_id),
                ).rowcount
                if not changed:
                    continue  # claimed or settled meanwhile
                row = conn.execute(f"SELECT {COLUMNS} FROM assignments WHERE id = ?", (assignment_id,)).fetchone()
                settle_event(conn, row["event_id"])
                expired.append(row_to_assignment(row))
            return expired

        return await self.db.write(job)

    async def fail_for_agent(self, agent_id: str, now: float, error: str) -> int:
        """Dead-letter the pending work of an agent that was deleted."""

        def job(conn: sqlite3.Connection) -> int:
            events = [
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT event_id FROM assignments WHERE agent_id = ? AND status = 'pending'", (agent_id,)
                )
            ]
            changed = conn.execute(
                "UPDATE assignments SET status = 'failed', last_error = ?, updated_at = ?"
                " WHERE agent_id = ? AND status = 'pending'",
                (error, now, agent_id),
            ).rowcount
            for event_id in events:
                settle_event(conn, event_id)
            return changed

        return await self.db.write(job)

    async def set_response_event(self, response_id: str, event_id: str) -> None:
        await self.db.execute("UPDATE agent_responses SET response_event_id = ? WHERE id = ?", (event_id, response_id))

    async def responses_for_event(self, event_id: str) -> list[AgentResponseRecord]:
        rows = await self.db.fetch_all(
            f"SELECT {RESPONSE_COLUMNS} FROM agent_responses WHERE event_id = ? ORDER BY created_at, id", (event_id,)
        )
        return [row_to_response(row) for row in rows]

    async def transcript(self, agent_id: str, limit: int, exclude_event: str | None = None) -> list[TranscriptRow]:
        """The agent's latest responses with their events, newest first, leaving out those to `exclude_event`."""
        rows = await self.db.fetch_all(
            "SELECT r.id, r.event_id, r.raw_text, r.summary, r.response, r.taint, r.created_at, e.topic, e.payload,"
            " e.taint AS event_taint FROM agent_responses r JOIN events e ON e.id = r.event_id"
            " WHERE r.agent_id = ? AND r.event_id != ? ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
            (agent_id, exclude_event or "", limit),
        )
        return [
            TranscriptRow(
                response_id=row["id"],
                event_id=row["event_id"],
                topic=row["topic"],
                payload=row["payload"],
                summary=row["summary"],
                response=row["response"],
                raw_text=row["raw_text"],
                taint=json.loads(row["taint"] or "[]"),
                event_taint=json.loads(row["event_taint"] or "[]"),
                created_at=row["created_at"],
            )
            for row in rows
        ]
