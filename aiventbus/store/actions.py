"""The actions table (every proposal, its decision and result) and the backups index."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from aiventbus.records.actions import content_digest
from aiventbus.store.database import Database
from aiventbus.values import load_stored


class ActionStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    executed = "executed"
    failed = "failed"
    expired = "expired"


class ActionRecord(BaseModel):
    """An action as stored and served."""

    id: str
    action_type: str
    content: dict[str, Any] = Field(description="The action exactly as it will run")
    content_sha256: str = Field(description="SHA-256 of the canonical content JSON the approval is bound to")
    status: ActionStatus
    verdict: str = Field(description="Policy verdict: auto, confirm or deny (invalid for malformed proposals)")
    rule: str
    reason: str
    agent_id: str
    response_id: str | None = None
    event_id: str
    response_event_id: str | None = None
    trace_id: str
    taint: list[str] = Field(default_factory=list)
    created_at: float
    expires_at: float | None = None
    decided_at: float | None = None
    decided_by: str | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    result_taint: list[str] = Field(
        default_factory=list, description="Label of the result: the run's label plus the origin of what it read"
    )
    error: str | None = None
    result_event_id: str | None = None

    @property
    def parent_event_id(self) -> str:
        return self.response_event_id or self.event_id


ACTION_COLUMNS = (
    "id, action_type, content, content_sha256, status, verdict, rule, reason, agent_id, response_id, event_id,"
    " response_event_id, trace_id, taint, created_at, expires_at, decided_at, decided_by, finished_at, result,"
    " error, result_event_id, result_taint"
)


def row_to_action(row: sqlite3.Row) -> ActionRecord:
    data = dict(row)
    content = load_stored(data["content"])
    data["content"] = content if isinstance(content, dict) else {"value": content}
    data["taint"] = json.loads(data["taint"])
    data["result_taint"] = json.loads(data["result_taint"])
    data["result"] = load_stored(data["result"]) if data["result"] else None
    return ActionRecord.model_validate(data)


@dataclass(frozen=True)
class NewAction:
    id: str
    action_type: str
    content_json: str
    status: ActionStatus
    verdict: str
    rule: str
    reason: str
    agent_id: str
    response_id: str | None
    event_id: str
    response_event_id: str | None
    trace_id: str
    taint: list[str]
    created_at: float
    expires_at: float | None


class ClaimOutcome(StrEnum):
    claimed = "claimed"
    not_pending = "not_pending"
    expired = "expired"
    tampered = "tampered"
    refused = "refused"
    missing = "missing"


# A pure re-check run inside the claim's transaction: the reason to refuse the stored action, or None.
Recheck = Callable[[ActionRecord], str | None]


class ActionStore:
    """Writes go through the single writer; each state transition is one atomic job."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, new: NewAction) -> ActionRecord:
        def job(conn: sqlite3.Connection) -> ActionRecord:
            conn.execute(
                f"INSERT INTO actions ({ACTION_COLUMNS}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, NULL, ?)",
                (
                    new.id,
                    new.action_type,
                    new.content_json,
                    content_digest(new.content_json),
                    new.status.value,
                    new.verdict,
                    new.rule,
                    new.reason,
                    new.agent_id,
                    new.response_id,
                    new.event_id,
                    new.response_event_id,
                    new.trace_id,
                    json.dumps(new.taint),
                    new.created_at,
                    new.expires_at,
                    json.dumps(new.taint),
                ),
            )
            return _select(conn, new.id)

        return await self.db.write(job)

    async def claim(
        self, action_id: str, now: float, decided_by: str, recheck: Recheck
    ) -> tuple[ClaimOutcome, ActionRecord | None, str]:
        """pending -> approved exactly once, after the expiry, content-hash and policy checks."""

        def job(conn: sqlite3.Connection) -> tuple[ClaimOutcome, ActionRecord | None, str]:
            row = conn.execute(f"SELECT {ACTION_COLUMNS} FROM actions WHERE id = ?", (action_id,)).fetchone()
            if row is None:
                return ClaimOutcome.missing, None, ""
            if row["status"] != ActionStatus.pending:
                return ClaimOutcome.not_pending, row_to_action(row), ""
            if row["expires_at"] is not None and now >= row["expires_at"]:
                _set_status(conn, action_id, ActionStatus.expired, now, "system", "approval window passed")
                return ClaimOutcome.expired, _select(conn, action_id), "the approval window has passed"
            if content_digest(row["content"]) != row["content_sha256"]:
                reason = "the stored action changed after it was proposed; the approval no longer matches it"
                _set_status(conn, action_id, ActionStatus.denied, now, "system", reason)
                return ClaimOutcome.tampered, _select(conn, action_id), reason
            refusal = recheck(row_to_action(row))
            if refusal is not None:
                _set_status(conn, action_id, ActionStatus.denied, now, "policy", refusal)
                return ClaimOutcome.refused, _select(conn, action_id), refusal
            conn.execute(
                "UPDATE actions SET status = 'approved', decided_at = ?, decided_by = ? WHERE id = ? AND status = ?",
                (now, decided_by, action_id, ActionStatus.pending.value),
            )
            return ClaimOutcome.claimed, _select(conn, action_id), ""

        return await self.db.write(job)

    async def deny(self, action_id: str, now: float, decided_by: str, reason: str) -> bool:
        """pending -> denied; False when the action was not pending."""

        def job(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(
                "UPDATE actions SET status = 'denied', decided_at = ?, decided_by = ?, error = ?"
                " WHERE id = ? AND status = 'pending'",
                (now, decided_by, reason, action_id),
            ).rowcount
            return bool(changed)

        return await self.db.write(job)

    async def finish(
        self,
        action_id: str,
        status: ActionStatus,
        now: float,
        result: dict[str, Any] | None,
        error: str | None,
        result_taint: list[str],
    ) -> ActionRecord:
        def job(conn: sqlite3.Connection) -> ActionRecord:
            conn.execute(
                "UPDATE actions SET status = ?, finished_at = ?, result = ?, error = ?, result_taint = ? WHERE id = ?",
                (
                    status.value,
                    now,
                    json.dumps(result) if result is not None else None,
                    error,
                    json.dumps(result_taint),
                    action_id,
                ),
            )
            return _select(conn, action_id)

        return await self.db.write(job)

    async def set_result_event(self, action_id: str, event_id: str) -> None:
        await self.db.execute("UPDATE actions SET result_event_id = ? WHERE id = ?", (event_id, action_id))

    async def expire_due(self, now: float) -> int:
        return await self.db.execute(
            "UPDATE actions SET status = 'expired', decided_at = ?, decided_by = 'system',"
            " error = 'approval window passed' WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?",
            (now, now),
        )

    async def fail_interrupted(self, now: float) -> int:
        """Actions left `approved` by a daemon that stopped while running them: failed, never re-run."""
        return await self.db.execute(
            "UPDATE actions SET status = 'failed', finished_at = ?, error = 'the daemon stopped while it ran'"
            " WHERE status = 'approved'",
            (now,),
        )

    async def get(self, action_id: str) -> ActionRecord | None:
        row = await self.db.fetch_one(f"SELECT {ACTION_COLUMNS} FROM actions WHERE id = ?", (action_id,))
        return None if row is None else row_to_action(row)

    async def count_pending(self) -> int:
        """How many actions wait for an approval."""
        return int(await self.db.fetch_value("SELECT COUNT(*) FROM actions WHERE status = 'pending'") or 0)

    async def list(self, status: str | None = None, trace_id: str | None = None, limit: int = 50) -> list[ActionRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if trace_id:
            clauses.append("trace_id = ?")
            params.append(trace_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.db.fetch_all(
            f"SELECT {ACTION_COLUMNS} FROM actions {where} ORDER BY seq DESC LIMIT ?", [*params, limit]
        )
        return [row_to_action(row) for row in rows]


def _select(conn: sqlite3.Connection, action_id: str) -> ActionRecord:
    return row_to_action(conn.execute(f"SELECT {ACTION_COLUMNS} FROM actions WHERE id = ?", (action_id,)).fetchone())


def _set_status(
    conn: sqlite3.Connection, action_id: str, status: ActionStatus, now: float, by: str, reason: str
) -> None:
    conn.execute(
        "UPDATE actions SET status = ?, decided_at = ?, decided_by = ?, error = ? WHERE id = ?",
        (status.value, now, by, reason, action_id),
    )


class BackupRecord(BaseModel):
    id: str
    path: str
    mode: int
    size: int
    sha256: str
    stored_as: str
    reason: str
    action_id: str | None = None
    created_at: float
    restored_at: float | None = None


BACKUP_COLUMNS = "id, path, mode, size, sha256, stored_as, reason, action_id, created_at, restored_at"


class BackupIndex:
    """Rows describing each saved copy; the bytes live in files under the backups directory."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, record: BackupRecord) -> None:
        await self.db.execute(
            f"INSERT INTO backups ({BACKUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.path,
                record.mode,
                record.size,
                record.sha256,
                record.stored_as,
                record.reason,
                record.action_id,
                record.created_at,
                record.restored_at,
            ),
        )

    async def mark_restored(self, backup_id: str, now: float) -> None:
        await self.db.execute("UPDATE backups SET restored_at = ? WHERE id = ?", (now, backup_id))

    async def get(self, backup_id: str) -> BackupRecord | None:
        row = await self.db.fetch_one(f"SELECT {BACKUP_COLUMNS} FROM backups WHERE id = ?", (backup_id,))
        return None if row is None else BackupRecord.model_validate(dict(row))

    async def list(self, path: str | None = None, limit: int = 50) -> list[BackupRecord]:
        if path:
            rows = await self.db.fetch_all(
                f"SELECT {BACKUP_COLUMNS} FROM backups WHERE path = ? ORDER BY seq DESC LIMIT ?", (path, limit)
            )
        else:
            rows = await self.db.fetch_all(f"SELECT {BACKUP_COLUMNS} FROM backups ORDER BY seq DESC LIMIT ?", (limit,))
        return [BackupRecord.model_validate(dict(row)) for row in rows]
