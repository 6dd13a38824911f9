"""The router's watermark: every event at or below `routed_through` has been routed."""

from __future__ import annotations

import sqlite3

from aiventbus.store.database import Database


async def routed_through(db: Database) -> int:
    return int(await db.fetch_value("SELECT routed_through FROM router_state") or 0)


def advance_routed_through(conn: sqlite3.Connection, seq: int) -> None:
    """Move the watermark up to `seq`; never down, whatever order the writes commit in."""
    conn.execute("UPDATE router_state SET routed_through = MAX(routed_through, ?)", (seq,))
