"""Queries over memories, their FTS5 index, the sqlite-vec vectors and the distilled-response log."""

from __future__ import annotations

import json
import sqlite3
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiventbus.labels import join
from aiventbus.records.memory import Memory, SearchWeights
from aiventbus.store.database import Database

COLUMNS = (
    "m.seq, m.id, m.kind, m.scope, m.content, m.importance, m.seen_count, m.source_event_id, m.trace_id,"
    " m.agent_id, m.response_id, m.taint, m.created_by, m.created_at, m.updated_at, m.last_recalled_at,"
    " m.recall_count, m.superseded_by"
)
VECTOR_TABLE = "memory_vectors"
# Sign bits of each vector in sqlite-vec: a KNN scan over bits is ~8x cheaper than over floats; the float vectors
# (a plain table, read by primary key) then rank the shortlist exactly (binary quantization with rescoring).
BITS_TABLE = "memory_vector_bits"
SHORTLIST_FACTOR = 2


def row_to_memory(row: sqlite3.Row, score: float | None = None) -> Memory:
    return Memory(
        id=row["id"],
        kind=row["kind"],
        scope=row["scope"],
        content=row["content"],
        importance=row["importance"],
        seen_count=row["seen_count"],
        source_event_id=row["source_event_id"],
        trace_id=row["trace_id"],
        agent_id=row["agent_id"],
        response_id=row["response_id"],
        taint=json.loads(row["taint"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_recalled_at=row["last_recalled_at"],
        recall_count=row["recall_count"],
        superseded_by=row["superseded_by"],
        score=score,
    )


def insert_memory(conn: sqlite3.Connection, memory: Memory) -> int:
    """Insert inside a writer job; returns the row's seq (the FTS and vector rowid)."""
    cursor = conn.execute(
        "INSERT INTO memories (id, kind, scope, content, importance, seen_count, source_event_id, trace_id,"
        " agent_id, response_id, taint, created_by, created_at, updated_at, last_recalled_at, recall_count,"
        " superseded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            memory.id,
            memory.kind,
            memory.scope,
            memory.content,
            memory.importance,
            memory.seen_count,
            memory.source_event_id,
            memory.trace_id,
            memory.agent_id,
            memory.response_id,
            json.dumps(memory.taint),
            memory.created_by,
            memory.created_at,
            memory.updated_at,
            memory.last_recalled_at,
            memory.recall_count,
            memory.superseded_by,
        ),
    )
    return int(cursor.lastrowid or 0)


def merge_into(conn: sqlite3.Connection, target_id: str, importance: float, taint: list[str], now: float) -> bool:
    """A repeat of `target_id`: count it, lift its importance, widen its taint; False if it is gone."""
    row = conn.execute("SELECT importance, taint FROM memories WHERE id = ?", (target_id,)).fetchone()
    if row is None:
        return False
    lifted = min(1.0, max(row["importance"], importance) + 0.05)
    merged_taint = join(json.loads(row["taint"]), taint)
    conn.execute(
        "UPDATE memories SET seen_count = seen_count + 1, importance = ?, taint = ?, updated_at = ? WHERE id = ?",
        (lifted, json.dumps(merged_taint), now, target_id),
    )
    return True


def supersede(conn: sqlite3.Connection, old_id: str, new_id: str, now: float) -> None:
    conn.execute("UPDATE memories SET superseded_by = ?, updated_at = ? WHERE id = ?", (new_id, now, old_id))


def vector_blob(vector: Sequence[float]) -> bytes:
    return struct.pack(f"{len(vector)}f", *vector)


def create_vector_table(conn: sqlite3.Connection, dimensions: int) -> None:
    conn.execute(f"CREATE TABLE IF NOT EXISTS {VECTOR_TABLE} (seq INTEGER PRIMARY KEY, embedding BLOB NOT NULL)")
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {BITS_TABLE} USING vec0(embedding bit[{int(dimensions)}])")


def upsert_vector(conn: sqlite3.Connection, seq: int, vector: Sequence[float]) -> None:
    delete_vector(conn, seq)
    blob = vector_blob(vector)
    conn.execute(f"INSERT INTO {VECTOR_TABLE} (seq, embedding) VALUES (?, ?)", (seq, blob))
    conn.execute(f"INSERT INTO {BITS_TABLE} (rowid, embedding) VALUES (?, vec_quantize_binary(?))", (seq, blob))


def delete_vector(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute(f"DELETE FROM {VECTOR_TABLE} WHERE seq = ?", (seq,))
    conn.execute(f"DELETE FROM {BITS_TABLE} WHERE rowid = ?", (seq,))


def _filters(scopes: list[str] | None, kind: str | None, include_superseded: bool) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if not include_superseded:
        clauses.append("m.superseded_by IS NULL")
    if scopes is not None:
        clauses.append(f"m.scope IN ({','.join('?' * len(scopes))})")
        params.extend(scopes)
    if kind is not None:
        clauses.append("m.kind = ?")
        params.append(kind)
    return clauses, params


class MemoryTable:
    """Reads and writes of memories; every write goes through the one writer."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, memory: Memory) -> int:
        return await self.db.write(lambda conn: insert_memory(conn, memory))

    async def get(self, memory_id: str) -> Memory | None:
        row = await self.db.fetch_one(f"SELECT {COLUMNS} FROM memories m WHERE m.id = ?", (memory_id,))
        return None if row is None else row_to_memory(row)

    async def seq_of(self, memory_id: str) -> int | None:
        value = await self.db.fetch_value("SELECT seq FROM memories WHERE id = ?", (memory_id,))
        return None if value is None else int(value)

    async def list_filtered(
        self, scopes: list[str] | None, kind: str | None, limit: int, include_superseded: bool = False
    ) -> list[Memory]:
        """Most important first, then newest."""
        clauses, params = _filters(scopes, kind, include_superseded)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.db.fetch_all(
            f"SELECT {COLUMNS} FROM memories m {where} ORDER BY m.importance DESC, m.seq DESC LIMIT ?",
            [*params, limit],
        )
        return [row_to_memory(row) for row in rows]

    async def search(
        self,
        match: str,
        scopes: list[str] | None,
        kind: str | None,
        limit: int,
        now: float,
        weights: SearchWeights,
    ) -> list[Memory]:
        """FTS5 BM25 hits, weighted by importance and recency (see SearchWeights), best first.

        With `weights.window`, only the newest `window` matches are scored (bm25 costs a lookup per match, so a common
        term would otherwise score tens of thousands of rows); when that leaves fewer than `limit` hits in the
        scopes, every match is scored."""
        floor = await self._window_floor(match, weights.window) if weights.window else None
        rows = await self._scored(match, scopes, kind, limit, now, weights, floor)
        if floor is not None and len(rows) < limit:
            rows = await self._scored(match, scopes, kind, limit, now, weights, None)
        return [row_to_memory(row, score=row["score"]) for row in rows]

    async def _window_floor(self, match: str, window: int) -> int | None:
        """The seq of the window-th newest match, or None when there are fewer matches (no cut needed)."""
        value = await self.db.fetch_value(
            "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            (match, window - 1),
        )
        return None if value is None else int(value)

    async def _scored(
        self,
        match: str,
        scopes: list[str] | None,
        kind: str | None,
        limit: int,
        now: float,
        weights: SearchWeights,
        floor: int | None,
    ) -> list[sqlite3.Row]:
        clauses, params = _filters(scopes, kind, include_superseded=False)
        if floor is not None:
            clauses.append("memories_fts.rowid >= ?")
            params.append(floor)
        extra = "".join(f" AND {clause}" for clause in clauses)
        score = (
            "(-bm25(memories_fts)) * (1.0 + ? * m.importance) * (1.0 + 1.0 / (1.0 + max(0.0, ? - m.created_at) / ?))"
        )
        return await self.db.fetch_all(
            f"SELECT {COLUMNS}, {score} AS score FROM memories_fts JOIN memories m ON m.seq = memories_fts.rowid"
            f" WHERE memories_fts MATCH ?{extra} ORDER BY score DESC LIMIT ?",
            [weights.importance_weight, now, weights.half_life_seconds, match, *params, limit],
        )

    async def nearest(
        self, vector: Sequence[float], scopes: list[str] | None, kind: str | None, limit: int, candidates: int
    ) -> list[Memory]:
        """Nearest memories: a binary KNN shortlist of 2 x `candidates`, ranked by exact L2, filtered."""
        clauses, params = _filters(scopes, kind, include_superseded=False)
        extra = "".join(f" AND {clause}" for clause in clauses)
        blob = vector_blob(vector)
        rows = await self.db.fetch_all(
            f"WITH short AS MATERIALIZED (SELECT rowid FROM {BITS_TABLE}"
            f" WHERE embedding MATCH vec_quantize_binary(?) AND k = ?)"
            f" SELECT {COLUMNS}, vec_distance_l2(v.embedding, ?) AS distance FROM short"
            f" JOIN {VECTOR_TABLE} v ON v.seq = short.rowid JOIN memories m ON m.seq = v.seq"
            f" WHERE 1 = 1{extra} ORDER BY distance LIMIT ?",
            [blob, candidates * SHORTLIST_FACTOR, blob, *params, min(limit, candidates)],
        )
        return [row_to_memory(row, score=-float(row["distance"])) for row in rows]

    async def set_importance(self, memory_id: str, importance: float, now: float) -> bool:
        changed = await self.db.execute(
            "UPDATE memories SET importance = ?, updated_at = ? WHERE id = ?", (importance, now, memory_id)
        )
        return changed > 0

    async def delete(self, memory_id: str, with_vector: bool) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT seq FROM memories WHERE id = ?", (memory_id,)).fetchone()
            if row is None:
                return False
            if with_vector:
                delete_vector(conn, row["seq"])
            conn.execute("UPDATE memories SET superseded_by = NULL WHERE superseded_by = ?", (memory_id,))
            conn.execute("DELETE FROM memories WHERE seq = ?", (row["seq"],))
            return True

        return await self.db.write(job)

    async def mark_recalled(self, memory_ids: list[str], now: float) -> None:
        if not memory_ids:
            return
        marks = ",".join("?" * len(memory_ids))
        await self.db.execute(
            f"UPDATE memories SET last_recalled_at = ?, recall_count = recall_count + 1 WHERE id IN ({marks})",
            [now, *memory_ids],
        )

    async def count(self) -> int:
        return int(await self.db.fetch_value("SELECT COUNT(*) FROM memories") or 0)


@dataclass(frozen=True)
class UndistilledResponse:
    """An agent response the distiller has not handled yet, with what is left of the event that caused it."""

    id: str
    event_id: str
    agent_id: str
    trace_id: str
    summary: str | None
    raw_text: str
    taint: list[str]
    event_taint: list[str]
    topic: str | None  # None (and so the other event fields) when the event is gone
    payload: str | None
    memory_scope: str | None


class DistillLog:
    """Which agent responses the distiller has handled (memory_distilled), and which still wait."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def pending_count(self) -> int:
        return int(
            await self.db.fetch_value(
                "SELECT COUNT(*) FROM agent_responses r LEFT JOIN memory_distilled d ON d.response_id = r.id"
                " WHERE d.response_id IS NULL"
            )
            or 0
        )

    async def pending(self, limit: int) -> list[UndistilledResponse]:
        """The oldest `limit` responses not distilled yet."""
        rows = await self.db.fetch_all(
            "SELECT r.id, r.event_id, r.agent_id, r.trace_id, r.summary, r.raw_text, r.taint, e.topic, e.payload,"
            " e.memory_scope, e.taint AS event_taint FROM agent_responses r"
            " LEFT JOIN memory_distilled d ON d.response_id = r.id LEFT JOIN events e ON e.id = r.event_id"
            " WHERE d.response_id IS NULL ORDER BY r.created_at, r.id LIMIT ?",
            (limit,),
        )
        return [
            UndistilledResponse(
                id=row["id"],
                event_id=row["event_id"],
                agent_id=row["agent_id"],
                trace_id=row["trace_id"],
                summary=row["summary"],
                raw_text=row["raw_text"],
                taint=json.loads(row["taint"] or "[]"),
                event_taint=json.loads(row["event_taint"] or "[]"),
                topic=row["topic"],
                payload=row["payload"],
                memory_scope=row["memory_scope"],
            )
            for row in rows
        ]


def mark_distilled(conn: sqlite3.Connection, response_ids: list[str], outcome: str, count: int, now: float) -> None:
    """Log the responses as handled; one already logged keeps its first entry."""
    conn.executemany(
        "INSERT OR IGNORE INTO memory_distilled (response_id, distilled_at, outcome, memories) VALUES (?, ?, ?, ?)",
        [(response_id, now, outcome, count) for response_id in response_ids],
    )
