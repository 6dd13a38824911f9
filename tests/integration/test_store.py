"""The single writer: group commit, per-job isolation, durable acknowledgement, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from aiventbus.errors import StoreClosed
from aiventbus.store.database import Database
from aiventbus.store.migrations import apply_migrations, available_migrations


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "t.db")
    await database.open()
    await database.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    yield database
    await database.close()


async def test_pending_writes_share_one_commit(db: Database) -> None:
    commits_before = db.commits
    await asyncio.gather(*(db.execute("INSERT INTO t VALUES (?)", (n,)) for n in range(200)))
    assert await db.fetch_value("SELECT COUNT(*) FROM t") == 200
    assert db.commits - commits_before < 20  # 200 writes pending together did not take 200 transactions


async def test_a_failing_job_does_not_undo_the_others(db: Database) -> None:
    await db.execute("INSERT INTO t VALUES (1)")
    results = await asyncio.gather(
        db.execute("INSERT INTO t VALUES (2)"),
        db.execute("INSERT INTO t VALUES (1)"),  # primary key clash
        db.execute("INSERT INTO t VALUES (3)"),
        return_exceptions=True,
    )
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert [r for i, r in enumerate(results) if i != 1] == [1, 1]
    rows = [row[0] for row in await db.fetch_all("SELECT n FROM t ORDER BY n")]
    assert rows == [1, 2, 3]


async def test_partial_job_is_rolled_back_alone(db: Database) -> None:
    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (10)")
        raise ValueError("changed my mind")

    outcome = await asyncio.gather(
        db.write(half_then_fail), db.execute("INSERT INTO t VALUES (11)"), return_exceptions=True
    )
    assert isinstance(outcome[0], ValueError)
    assert [row[0] for row in await db.fetch_all("SELECT n FROM t")] == [11]


async def test_acknowledged_write_is_on_disk(tmp_path: Path, db: Database) -> None:
    await db.execute("INSERT INTO t VALUES (42)")
    other = sqlite3.connect(tmp_path / "t.db")
    try:
        assert other.execute("SELECT n FROM t").fetchall() == [(42,)]
    finally:
        other.close()


async def test_close_commits_what_was_submitted_then_refuses(tmp_path: Path) -> None:
    database = Database(tmp_path / "c.db")
    await database.open()
    await database.execute("CREATE TABLE t (n INTEGER)")
    pending = [database.submit(lambda conn, n=n: conn.execute("INSERT INTO t VALUES (?)", (n,))) for n in range(50)]
    await database.close()
    await asyncio.gather(*pending)
    with pytest.raises(StoreClosed):
        await database.execute("INSERT INTO t VALUES (1)")
    check = sqlite3.connect(tmp_path / "c.db")
    try:
        assert check.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 50
    finally:
        check.close()


def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    first = apply_migrations(conn)
    assert first == [name for _, name, _ in available_migrations()]
    assert first[0] == "0001_events.sql"
    assert apply_migrations(conn) == []
    versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == sorted(versions) and len(versions) == len(first)
    conn.close()


def database_before(path: Path, version: int) -> sqlite3.Connection:
    """A database as a daemon before migration `version` left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL)")
    for number, name, sql in available_migrations():
        if number < version:
            conn.executescript(f"BEGIN;\n{sql}\nINSERT INTO schema_migrations VALUES ({number}, '{name}', 0);\nCOMMIT;")
    return conn


@pytest.mark.parametrize(
    ("statuses", "expected"), [(["routed", "unrouted", "pending", "routed"], 2), (["routed"] * 3, 3)]
)
def test_an_older_database_gets_a_routing_watermark_below_its_first_pending_event(
    tmp_path: Path, statuses: list[str], expected: int
) -> None:
    conn = database_before(tmp_path / "old.db", 6)
    for n, status in enumerate(statuses):
        conn.execute(
            "INSERT INTO events (id, topic, payload, priority, trace_id, source, status, created_at)"
            " VALUES (?, 't', '{}', 'normal', ?, 'api', ?, 0)",
            (f"evt_{n}", f"tr_{n}", status),
        )
    assert apply_migrations(conn)[0] == "0006_events_routing_watermark.sql"
    assert conn.execute("SELECT routed_through FROM router_state").fetchone()[0] == expected
    assert conn.execute("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'events_status'").fetchone()[0] == 0
    conn.close()


async def test_wal_mode(db: Database) -> None:
    assert await db.fetch_value("PRAGMA journal_mode") == "wal"


async def test_checkpoints_run_off_the_writer_and_close_truncates_the_wal(tmp_path: Path) -> None:
    database = Database(tmp_path / "w.db")
    await database.open()
    assert await database.write(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0
    await database.execute("CREATE TABLE t (n INTEGER, pad TEXT)")
    for chunk in range(20):
        await asyncio.gather(
            *(database.execute("INSERT INTO t VALUES (?, ?)", (chunk * 100 + n, "x" * 200)) for n in range(100))
        )
    checkpointer = database._checkpointer
    assert checkpointer is not None
    deadline = asyncio.get_running_loop().time() + 10
    while checkpointer.checkpoints == 0:  # at most every_seconds after the first commits
        assert asyncio.get_running_loop().time() < deadline, "no background checkpoint ran"
        await asyncio.sleep(0.05)
    await database.close()
    wal = tmp_path / "w.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    check = sqlite3.connect(tmp_path / "w.db")
    try:
        assert check.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2000
    finally:
        check.close()


def test_labels_migration_marks_knowledge_agents_wrote_as_unlabelled(tmp_path: Path) -> None:
    conn = database_before(tmp_path / "old.db", 7)
    conn.executemany(
        "INSERT INTO knowledge (key, value, set_by, updated_at) VALUES (?, '1', ?, 0)",
        [("a", "agent:agent_x"), ("b", "user"), ("c", "system")],
    )
    assert apply_migrations(conn) == ["0007_labels.sql"]
    labels = dict(conn.execute("SELECT key, taint FROM knowledge ORDER BY key").fetchall())
    assert labels == {"a": '["unlabelled"]', "b": "[]", "c": "[]"}
